//go:build !windows

package agent

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/gosync/gosync/engine/wire"
)

// serve runs Serve on root over real pipes and returns the client's end
// after the handshake.
func serve(t *testing.T, root string, heartbeat time.Duration) *wire.Conn {
	t.Helper()
	c, _, _ := servePipes(t, root, heartbeat)
	return c
}

// servePipes is serve that also returns the pipe ends the agent reads
// and writes (open until the test ends).
func servePipes(t *testing.T, root string, heartbeat time.Duration) (c *wire.Conn, ar, aw *os.File) {
	t.Helper()
	ar, cw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cr, aw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Serve(ctx, ar, aw, Options{Root: root, Heartbeat: heartbeat})
		aw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		cw.Close()
		cr.Close()
		<-done
		ar.Close()
	})
	c = wire.NewConn(cr, cw)
	if err := c.WriteMsg(&wire.Hello{Version: wire.Version}); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if m, err := c.ReadMsg(); err != nil || m.(*wire.Hello).Err != "" {
		t.Fatalf("handshake: %v %+v", err, m)
	}
	return c, ar, aw
}

// The agent sends heartbeats while it works on a message and stops once
// it is idle, so an idle session costs nothing.
func TestHeartbeatOnlyWhileBusy(t *testing.T) {
	const every = 20 * time.Millisecond
	c := serve(t, t.TempDir(), every)
	if err := c.WriteMsg(&wire.Run{ID: 1, Cmd: "sleep 0.5"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	msgs := make(chan wire.Msg, 1024)
	go func() {
		defer close(msgs)
		for {
			m, err := c.ReadMsg()
			if err != nil {
				return
			}
			msgs <- m
		}
	}()
	beats := 0
	for m := range msgs {
		if _, ok := m.(*wire.RunDone); ok {
			break
		}
		if _, ok := m.(*wire.Heartbeat); !ok {
			t.Fatalf("unexpected %T", m)
		}
		beats++
	}
	if beats < 2 {
		t.Fatalf("%d heartbeats during a 0.5 s command with a %s interval", beats, every)
	}
	// Idle now: at most the tick already under way may still arrive.
	quiet := time.NewTimer(25 * every)
	defer quiet.Stop()
	late := 0
	for {
		select {
		case m := <-msgs:
			if _, ok := m.(*wire.Heartbeat); !ok {
				t.Fatalf("unexpected %T", m)
			}
			if late++; late > 2 {
				t.Fatalf("%d heartbeats from an idle agent", late)
			}
		case <-quiet.C:
			return
		}
	}
}
