package fstree

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"
)

// Both implementations of Root (run the package with and without
// -tags gosync_portable) list symlinks as symlinks, never read through
// one, and refuse a path with a symlink on the way.
func TestRootNeverFollowsSymlinks(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("outside"), 0o600)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a/b"), 0o755)
	os.WriteFile(filepath.Join(dir, "a/b/f"), []byte("inside"), 0o640)
	symlink(t, outside, filepath.Join(dir, "out"))
	symlink(t, "a", filepath.Join(dir, "alias"))
	symlink(t, "b/f", filepath.Join(dir, "a/flink"))

	r, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []string
	kinds := map[string]Entry{}
	err = r.Walk(context.Background(), "", WalkOptions{Hash: true}, func(e *Entry) error {
		got = append(got, e.Path)
		kinds[e.Path] = *e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "a/b", "a/b/f", "a/flink", "alias", "out"}
	if !slices.Equal(got, want) {
		t.Fatalf("walk = %q, want %q", got, want)
	}
	if e := kinds["out"]; e.Kind != Symlink || e.Target != outside {
		t.Errorf("out = %v %q, want a symlink to %q", e.Kind, e.Target, outside)
	}
	wantPerm := uint32(0o640)
	if runtime.GOOS == "windows" {
		wantPerm = 0o644 // what gosync sends for every file from Windows
	}
	if e := kinds["a/b/f"]; e.Kind != File || e.Size != 6 || e.Perm != wantPerm || !e.HasHash {
		t.Errorf("a/b/f = %+v", e)
	}

	// A subtree walk reports paths relative to the root.
	got = got[:0]
	if err := r.Walk(context.Background(), "a/b", WalkOptions{}, func(e *Entry) error { got = append(got, e.Path); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"a/b/f"}) {
		t.Errorf("walk of a/b = %q", got)
	}

	if f, err := r.Open("a/b/f"); err != nil {
		t.Errorf("open a/b/f: %v", err)
	} else {
		f.Close()
	}
	for _, p := range []string{"out/secret", "alias/b/f", "a/flink"} {
		if f, err := r.Open(p); err == nil {
			f.Close()
			t.Errorf("open %s went through a symlink", p)
		} else if !errors.Is(err, syscall.ELOOP) && !errors.Is(err, syscall.ENOTDIR) {
			t.Errorf("open %s: %v, want ELOOP or ENOTDIR", p, err)
		}
	}
	if err := r.Walk(context.Background(), "alias", WalkOptions{}, func(*Entry) error { return nil }); err == nil {
		t.Error("walk of a symlinked directory succeeded")
	}
	if _, err := r.Open("../x"); err == nil {
		t.Error("open ../x succeeded")
	}
	if e, err := r.Stat("out"); err != nil || e.Kind != Symlink || e.Target != outside {
		t.Errorf("stat out = %+v, %v", e, err)
	}
	if _, err := r.Stat("missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat missing: %v, want not exist", err)
	}
}

// symlink makes a symlink or skips t where the system cannot: Windows
// without the privilege (and wine, which reports success but makes none).
func symlink(t *testing.T, target, name string) {
	t.Helper()
	err := os.Symlink(target, name)
	if err == nil {
		_, err = os.Lstat(name)
	}
	if err != nil {
		if runtime.GOOS == "windows" {
			t.Skipf("cannot create symlinks here: %v", err)
		}
		t.Fatal(err)
	}
}
