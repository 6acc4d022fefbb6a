//go:build !linux || gosync_portable

package engine

import (
	"os"
	"path/filepath"
	"testing"
)

// Without leases there is no way to ask: a file still open for writing is
// sent as it is (and re-read if it changes while read).
func TestOpenForWritingPortable(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	w, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if openForWriting(r) {
		t.Fatal("the portable build reported a writer it cannot know of")
	}
}
