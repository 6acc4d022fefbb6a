//go:build linux || darwin || freebsd

package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosync/gosync/engine"
)

// planHook is a Progress whose Plan runs a function: the moment after
// both trees were listed and before any file is opened.
type planHook struct{ plan func() }

func (h planHook) Plan(int, int64)  { h.plan() }
func (planHook) File(string, int64) {}
func (planHook) Read(int64)         {}

// A source file replaced by a FIFO after the scan is skipped with the
// special files, without opening it for I/O: the sync neither blocks nor
// fails, and every other file is mirrored (issue 10, item 10).
func TestSourceFIFOAfterScanSkipped(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	for _, n := range []string{"a", "b", "c"} {
		if err := os.WriteFile(filepath.Join(src, n), []byte("content "+n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	m, err := engine.DialLocal(ctx, dst, dst, engine.ClientOptions{Create: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	fifo := filepath.Join(src, "b")
	replace := func() {
		os.Remove(fifo)
		if err := unix.Mkfifo(fifo, 0o644); err != nil {
			t.Error(err)
		}
	}
	for _, checksum := range []bool{false, true} {
		os.Remove(fifo)
		os.WriteFile(fifo, []byte("content b"), 0o644)
		os.RemoveAll(filepath.Join(dst, "a"))
		os.RemoveAll(filepath.Join(dst, "c"))
		s, err := engine.ScanSource(ctx, src, nil, checksum)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan engine.Result, 1)
		go func() {
			done <- engine.Sync(ctx, s, m, engine.Options{Checksum: checksum, Progress: planHook{replace}, MaxDelete: -1})
		}()
		var res engine.Result
		select {
		case res = <-done:
		case <-time.After(20 * time.Second):
			// A writer that comes and goes lets a blocked open return.
			if fd, err := unix.Open(fifo, unix.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
				unix.Close(fd)
			}
			<-done
			t.Fatal("the sync blocked on a FIFO put in place of a source file")
		}
		s.Close()
		if res.Err != nil || len(res.Failed) > 0 {
			t.Fatalf("checksum=%v: err %v, failed %+v", checksum, res.Err, res.Failed)
		}
		if !slices.Equal(res.Special, []string{"b"}) {
			t.Errorf("checksum=%v: special %q, want [b]", checksum, res.Special)
		}
		for _, n := range []string{"a", "c"} {
			if b, err := os.ReadFile(filepath.Join(dst, n)); err != nil || string(b) != "content "+n {
				t.Errorf("checksum=%v: mirror %s = %q, %v", checksum, n, b, err)
			}
		}
	}
}
