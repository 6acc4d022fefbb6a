//go:build linux && !gosync_portable

package engine

import (
	"os"
	"path/filepath"
	"testing"
)

func TestOpenForWriting(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	w, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !openForWriting(r) {
		t.Fatal("a file open for writing was not reported")
	}
	w.Close()
	if openForWriting(r) {
		t.Fatal("a file no longer open for writing was reported")
	}
	// Readers do not count.
	r2, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if openForWriting(r) {
		t.Fatal("another reader was taken for a writer")
	}
}
