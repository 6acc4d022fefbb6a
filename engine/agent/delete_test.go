//go:build !windows

package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/wire"
)

// Deleting a directory removes its whole subtree through descriptors and
// removes the symlinks in it, never what they point to.
func TestDeleteTreeRemovesLinksNotTargets(t *testing.T) {
	root, out := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(out, "keep"), []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"d/sub/deeper", "d/empty"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 1200 { // more than one batch of names
		os.WriteFile(filepath.Join(root, "d", "sub", "f"+string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676))), nil, 0o644)
	}
	os.WriteFile(filepath.Join(root, "d/sub/deeper/x"), []byte("x"), 0o400)
	os.Symlink(out, filepath.Join(root, "d/out"))
	os.Symlink(filepath.Join(out, "keep"), filepath.Join(root, "d/sub/keep"))
	os.WriteFile(filepath.Join(root, "stays"), []byte("stays"), 0o644)

	c := serve(t, root, time.Hour)
	if errs := roundTrip(t, c, &wire.Delete{ID: 1, Path: "d", Kind: fstree.Dir}, &wire.Delete{ID: 2, Path: "gone/too", Kind: fstree.File}); len(errs) > 0 {
		t.Fatalf("Delete: %+v", errs[0])
	}
	if _, err := os.Lstat(filepath.Join(root, "d")); !os.IsNotExist(err) {
		t.Fatalf("d still there: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "keep")); err != nil || string(b) != "outside" {
		t.Fatalf("outside file: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(root, "stays")); err != nil {
		t.Fatal(err)
	}
	// A kind mismatch leaves the entry alone.
	errs := roundTrip(t, c, &wire.Delete{ID: 3, Path: "stays", Kind: fstree.Dir})
	if len(errs) != 1 || errs[0].Code != wire.CodeMismatch {
		t.Fatalf("delete of a file as a directory: %+v", errs)
	}
	if _, err := os.Stat(filepath.Join(root, "stays")); err != nil {
		t.Fatal(err)
	}
}
