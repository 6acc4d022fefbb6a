//go:build !windows

package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/treetest"
	"github.com/gosync/gosync/queue"
)

// A source file replaced by a FIFO (which gosync does not mirror) is
// skipped like an ignored path: the batch leaves the mirror's file of that
// name alone instead of deleting it, in a plain batch and in a subtree one.
func TestSessionSpecialProtectsMirrorEntry(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "m")
	treetest.Write(t, src, map[string]string{"p": "file", "d/q": "file", "other": "x"})
	s := newSession(t, dst, engine.Options{Delete: true})
	ok(t, s.Full(context.Background(), scan(t, src), false))
	for _, p := range []string{"p", "d/q"} {
		os.Remove(filepath.Join(src, p))
		if err := syscall.Mkfifo(filepath.Join(src, p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(src, "other"))
	source, err := engine.OpenSource(src)
	if err != nil {
		t.Fatal(err)
	}
	defer source.Close()
	ok(t, s.Apply(context.Background(), source, []queue.Path{{Rel: "p"}, {Rel: "d", Subtree: true}, {Rel: "other"}}))
	for _, p := range []string{"p", "d/q"} {
		if got, err := os.ReadFile(filepath.Join(dst, p)); err != nil || string(got) != "file" {
			t.Errorf("mirror %s: %q %v, want the file kept", p, got, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dst, "other")); err == nil {
		t.Error("other was not deleted: deletes elsewhere must go on")
	}
}
