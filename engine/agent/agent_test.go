//go:build !windows

package agent

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/gosync/gosync/engine/wire"
)

// handshake runs Serve on root and returns the agent's Hello.
func handshake(t *testing.T, root string, flags uint64) *wire.Hello {
	t.Helper()
	ar, cw := io.Pipe()
	cr, aw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Serve(context.Background(), ar, aw, Options{Root: root})
		aw.Close()
	}()
	c := wire.NewConn(cr, cw)
	if err := c.WriteMsg(&wire.Hello{Version: wire.Version, Flags: flags}); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	m, err := c.ReadMsg()
	if err != nil {
		t.Fatal(err)
	}
	cw.Close()
	<-done
	return m.(*wire.Hello)
}

func TestRefusedRoots(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, root := range []string{"/", home, home + "/"} {
		h := handshake(t, root, wire.FlagCreate)
		if !strings.Contains(h.Err, "refusing to use") {
			t.Errorf("root %q: hello error %q, want a refusal", root, h.Err)
		}
	}
	if h := handshake(t, home+"/www", wire.FlagCreate); h.Err != "" {
		t.Errorf("a directory below home was refused: %s", h.Err)
	}
}

func TestMissingRootWithoutCreate(t *testing.T) {
	h := handshake(t, t.TempDir()+"/absent", 0)
	if h.Err != "" || h.Flags&wire.FlagMissing == 0 {
		t.Fatalf("hello = %+v, want FlagMissing and no error", h)
	}
}

func TestVersionMismatch(t *testing.T) {
	ar, cw := io.Pipe()
	cr, aw := io.Pipe()
	go func() {
		Serve(context.Background(), ar, aw, Options{Root: t.TempDir()})
		aw.Close()
	}()
	c := wire.NewConn(cr, cw)
	c.WriteMsg(&wire.Hello{Version: wire.Version + 1})
	c.Flush()
	m, err := c.ReadMsg()
	if err != nil {
		t.Fatal(err)
	}
	if h := m.(*wire.Hello); !strings.Contains(h.Err, "protocol version") {
		t.Fatalf("hello error %q", h.Err)
	}
	cw.Close()
}
