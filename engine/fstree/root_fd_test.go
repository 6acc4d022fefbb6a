//go:build (linux || darwin || freebsd) && !gosync_portable

package fstree

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOpenBlocking: the descriptor walk opens files with O_NONBLOCK (a
// FIFO put in a file's place must not hang it) and hands them on without
// it, as a plain open gives them, from Open and OpenStat alike.
func TestOpenBlocking(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f1, err := r.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	defer f1.Close()
	f2, _, err := r.OpenStat("f")
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	for _, f := range []*os.File{f1, f2} {
		fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
		if err != nil || fl&unix.O_NONBLOCK != 0 {
			t.Fatalf("descriptor flags %#x (%v): O_NONBLOCK still set", fl, err)
		}
	}
}
