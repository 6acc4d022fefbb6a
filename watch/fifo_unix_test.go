//go:build linux || darwin || freebsd

package watch

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A FIFO put in place of a watched directory, between the lstat that saw
// a directory and the open that lists it, is refused at once: the watcher
// never waits for a writer (issue 10, item 10).
func TestOpenDirRefusesFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "was-a-dir")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		f, err := openDir(p)
		if f != nil {
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.ENOTDIR) {
			t.Fatalf("openDir of a FIFO: %v, want ENOTDIR", err)
		}
	case <-time.After(patience):
		// A writer that comes and goes lets the blocked open return.
		if fd, err := syscall.Open(p, syscall.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			syscall.Close(fd)
		}
		<-done
		t.Fatal("openDir blocked on a FIFO")
	}
}
