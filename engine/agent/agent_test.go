//go:build !windows

package agent

import (
	"context"
	"io"
	"os"
	"path/filepath"
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

// The file system root and the home directory are refused however they
// are spelled: through symlinks, /proc/self/root, "/./" (issue 10,
// item 16).
func TestRefusedRoots(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	home := filepath.Join(real, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link") // link/home is home
	for target, name := range map[string]string{real: link, "/": filepath.Join(base, "slash"), home: filepath.Join(base, "homelink")} {
		if err := os.Symlink(target, name); err != nil {
			t.Fatal(err)
		}
	}
	refused := []string{"/", "//", "/./", "/proc/self/root", "/proc/self/root/", "/proc/self/root/proc/..",
		filepath.Join(base, "slash"), filepath.Join(base, "slash") + "/.", home, home + "/", filepath.Join(base, "homelink"), filepath.Join(link, "home")}
	for _, env := range []string{home, filepath.Join(link, "home")} { // HOME itself through a symlink too
		t.Setenv("HOME", env)
		for _, root := range refused {
			if h := handshake(t, root, wire.FlagCreate); !strings.Contains(h.Err, "refusing to use") {
				t.Errorf("HOME=%s, root %q: hello error %q, want a refusal", env, root, h.Err)
			}
		}
		for _, root := range []string{filepath.Join(home, "www"), filepath.Join(base, "homelink", "www2"), filepath.Join(base, "new")} {
			if h := handshake(t, root, wire.FlagCreate); h.Err != "" {
				t.Errorf("HOME=%s: %s was refused: %s", env, root, h.Err)
			}
		}
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
