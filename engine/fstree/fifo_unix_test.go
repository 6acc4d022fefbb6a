//go:build linux || darwin || freebsd

package fstree

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// toFIFO replaces the file p with a FIFO, as another user of the host
// can between a walk's lstat and its open.
func toFIFO(t *testing.T, p string) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
}

// noHang runs f and fails the test if it has not returned within a
// generous deadline; then it opens the FIFO fifo for writing, which lets
// a blocked open of it return, so the test ends either way.
func noHang(t *testing.T, what, fifo string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		// A writer that comes and goes: the blocked open returns, and
		// the read that follows sees end of file.
		if fd, err := unix.Open(fifo, unix.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
			unix.Close(fd)
			<-done
		}
		t.Fatalf("%s blocked on a FIFO put in place of a regular file", what)
	}
}

// A regular file that becomes a FIFO after the walk's lstat is reported
// as no longer regular, without blocking (issue 10 items 2 and 10: the
// agent's hashed scans and the source side share this walk and Open).
func TestFIFOSwappedInNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a", "b", "c"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("content "+n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	fifo := filepath.Join(dir, "b")
	var hashed []string
	var errs = map[string]error{}
	noHang(t, "hashed walk", fifo, func() {
		err = r.Walk(context.Background(), "", WalkOptions{
			Hash: true,
			HashFunc: func(e *Entry, open func() (*os.File, error)) (Hash, error) {
				if e.Path == "b" {
					toFIFO(t, fifo)
				}
				hashed = append(hashed, e.Path)
				return hashOpen(open)
			},
			OnError: func(rel string, err error) { errs[rel] = err },
		}, func(*Entry) error { return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(hashed) != 3 || len(errs) != 1 || !errors.Is(errs["b"], ErrNotRegular) {
		t.Fatalf("hashed %q, errors %v; want all three tried and b not regular", hashed, errs)
	}

	noHang(t, "Open", fifo, func() {
		var f *os.File
		f, err = r.Open("b")
		if f != nil {
			f.Close()
		}
	})
	if !errors.Is(err, ErrNotRegular) {
		t.Fatalf("Open of a FIFO: %v, want ErrNotRegular", err)
	}
	if f, err := r.Open("c"); err != nil {
		t.Fatalf("Open c: %v", err)
	} else {
		f.Close()
	}
}

// TestOpenStat: OpenStat describes the file it opened exactly as
// StatOpen does and refuses a FIFO without hanging.
func TestOpenStat(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a", "f"), []byte("some bytes"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "p"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, e, err := r.OpenStat("a/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, _, err := StatOpen("a/f", f)
	if err != nil {
		t.Fatal(err)
	}
	if e != want || e.Kind != File || e.Size != 10 || e.Perm != 0o640 || e.Ino == 0 {
		t.Fatalf("OpenStat gave %+v, StatOpen %+v", e, want)
	}
	noHang(t, "OpenStat", filepath.Join(dir, "p"), func() {
		var g *os.File
		g, _, err = r.OpenStat("p")
		if g != nil {
			g.Close()
		}
	})
	if !errors.Is(err, ErrNotRegular) {
		t.Fatalf("OpenStat of a FIFO: %v, want ErrNotRegular", err)
	}
}
