//go:build linux

package sshx_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosync/gosync/engine/sshx"
	"github.com/gosync/gosync/engine/sshx/sshtest"
)

// result is what a goroutine blocked on the connection ended with.
type result struct {
	err error
	at  time.Time
}

// A frozen link is detected by the keepalive: a read waiting for data
// and a write blocked on a full window both fail with ErrUnresponsive,
// and a dial through the frozen link fails too, all in bounded time.
func TestKeepaliveClosesFrozenLink(t *testing.T) {
	srv := sshtest.Start(t)
	p := srv.ViaProxy(t, "frozen", "  ServerAliveInterval 1\n  ServerAliveCountMax 2\n")
	c, err := sshx.Dial(context.Background(), "frozen", sshx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := sshx.StartAgent(c, "cat")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var echoed atomic.Int64
	readDone, writeDone := make(chan result, 1), make(chan result, 1)
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := st.Stdout.Read(buf)
			echoed.Add(int64(n))
			if err != nil {
				readDone <- result{err, time.Now()}
				return
			}
		}
	}()
	go func() {
		chunk := make([]byte, 16<<10)
		for {
			if _, err := st.Stdin.Write(chunk); err != nil {
				writeDone <- result{err, time.Now()}
				return
			}
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for echoed.Load() < 1<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d bytes echoed through the proxy before freezing", echoed.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.Freeze()
	frozen := time.Now()
	// Expected after (2+1)*1 s of silence; the bound leaves room for a
	// loaded machine.
	const bound = 30 * time.Second
	for _, ch := range []struct {
		what string
		c    chan result
	}{{"read", readDone}, {"write", writeDone}} {
		select {
		case r := <-ch.c:
			if !errors.Is(r.err, sshx.ErrUnresponsive) || !strings.Contains(r.err.Error(), "SSH server not responding") {
				t.Errorf("blocked %s failed with %v, want ErrUnresponsive", ch.what, r.err)
			}
			t.Logf("blocked %s failed %v after the freeze: %v", ch.what, r.at.Sub(frozen).Round(time.Millisecond), r.err)
		case <-time.After(bound):
			t.Fatalf("blocked %s still blocked %v after the link froze", ch.what, bound)
		}
	}

	// A new dial through the frozen link: TCP connects (to the proxy), the
	// handshake never completes; without ConnectTimeout the keepalive
	// settings bound it.
	start := time.Now()
	_, err = sshx.Dial(context.Background(), "frozen", sshx.Options{})
	if err == nil || !strings.Contains(err.Error(), "SSH handshake timed out after 3s") {
		t.Fatalf("dial through a frozen link: err = %v", err)
	}
	if sshx.Permanent(err) {
		t.Fatalf("Permanent(%v) = true", err)
	}
	if d := time.Since(start); d > bound {
		t.Fatalf("dial through a frozen link took %v", d)
	}
}

// Close ends a write blocked on a full channel window: the remote command
// never reads, so the window runs out.
func TestCloseUnblocksWindowBlockedWrite(t *testing.T) {
	sshtest.Start(t)
	c, err := sshx.Dial(context.Background(), sshtest.Alias, sshx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sshx.StartAgent(c, "exec sleep 600")
	if err != nil {
		t.Fatal(err)
	}
	var written atomic.Int64
	done := make(chan error, 1)
	go func() {
		chunk := make([]byte, 16<<10)
		for {
			n, err := st.Stdin.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				done <- err
				return
			}
		}
	}()
	// sshd's session window is 2 MiB, plus what the pipe to sleep holds:
	// past 2 MiB the writer is at the end of the window.
	deadline := time.Now().Add(30 * time.Second)
	for written.Load() < 2<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d bytes written", written.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("write returned no error after Close")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("write still blocked 30 s after Close")
	}
	if n := written.Load(); n > 16<<20 {
		t.Fatalf("%d bytes written to a command that never reads: the write was never blocked", n)
	}
	st.Close()
}

// TestKeepaliveDefaultsMeasure measures, with no keepalive settings,
// the time from a link freezing to the connection being closed. It takes
// about 20 s, so it runs only when asked:
//
//	GOSYNC_MEASURE_KEEPALIVE=1 go test -run KeepaliveDefaultsMeasure -v ./engine/sshx/
func TestKeepaliveDefaultsMeasure(t *testing.T) {
	if os.Getenv("GOSYNC_MEASURE_KEEPALIVE") == "" {
		t.Skip("a measurement, not a check; set GOSYNC_MEASURE_KEEPALIVE=1 to run it")
	}
	srv := sshtest.Start(t)
	p := srv.ViaProxy(t, "frozen-defaults", "")
	c, err := sshx.Dial(context.Background(), "frozen-defaults", sshx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Some traffic, then silence, as on an idle watch.
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sess.Output("echo hello"); err != nil {
		t.Fatal(err)
	}
	sess.Close()
	p.Freeze()
	frozen := time.Now()
	closed := make(chan struct{})
	go func() {
		c.Wait()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Minute):
		t.Fatal("connection still open 5 minutes after the link froze")
	}
	d := time.Since(frozen)
	t.Logf("default keepalives (ServerAliveInterval %v, ServerAliveCountMax %d): frozen to closed in %.1f s; %v",
		sshx.DefaultAliveInterval, sshx.DefaultAliveCountMax, d.Seconds(), c.Lost())
	if !errors.Is(c.Lost(), sshx.ErrUnresponsive) {
		t.Fatalf("Lost() = %v", c.Lost())
	}
}

// A healthy but idle link is never taken for a frozen one: a keepalive
// answered at once counts as hearing from the server, even when the next
// tick comes a little late (a forced-command agent's session was lost
// every (ServerAliveCountMax+1) intervals before).
func TestKeepaliveKeepsIdleHealthyLink(t *testing.T) {
	srv := sshtest.Start(t)
	srv.AppendConfig(t, "\nHost idle\n  HostName 127.0.0.1\n  Port "+strconv.Itoa(srv.Port)+"\n  IdentityFile "+srv.UserKey+
		"\n  UserKnownHostsFile "+srv.KnownHosts+"\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n")
	c, err := sshx.Dial(context.Background(), "idle", sshx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := sshx.StartAgent(c, "cat")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Five intervals of silence from the session: the keepalive alone
	// keeps hearing from the server.
	time.Sleep(5 * time.Second)
	if err := c.Lost(); err != nil {
		t.Fatalf("idle healthy link closed: %v", err)
	}
}
