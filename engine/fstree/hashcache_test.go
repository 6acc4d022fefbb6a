package fstree

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func walkHashes(t *testing.T, dir string, c *HashCache) map[string]Hash {
	t.Helper()
	r, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c.Begin()
	defer c.End()
	out := map[string]Hash{}
	err = r.Walk(context.Background(), "", WalkOptions{Hash: true, HashFunc: c.Hash}, func(e *Entry) error {
		if e.Kind == File {
			out[e.Path] = e.Hash
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestHashCache(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a", "b", "c"} {
		os.WriteFile(filepath.Join(dir, n), []byte("content "+n), 0o644)
	}
	var c HashCache
	first := walkHashes(t, dir, &c)
	if c.Misses != 3 || c.Hits != 0 {
		t.Fatalf("first walk: %d misses %d hits", c.Misses, c.Hits)
	}
	if again := walkHashes(t, dir, &c); c.Hits != 3 || c.Misses != 0 || again["a"] != first["a"] {
		t.Fatalf("second walk: %d misses %d hits", c.Misses, c.Hits)
	}
	// A same-size edit that puts the mtime back is still noticed (ctime).
	p := filepath.Join(dir, "b")
	fi, _ := os.Stat(p)
	os.WriteFile(p, []byte("CONTENT b"), 0o644)
	os.Chtimes(p, fi.ModTime(), fi.ModTime())
	os.Remove(filepath.Join(dir, "c"))
	got := walkHashes(t, dir, &c)
	if c.Misses != 1 || c.Hits != 1 || got["b"] == first["b"] {
		t.Fatalf("after hand edit: %d misses %d hits, changed=%v", c.Misses, c.Hits, got["b"] != first["b"])
	}
	if len(c.cur) != 2 {
		t.Fatalf("cache keeps %d entries, want 2 (the deleted file dropped)", len(c.cur))
	}
}

// A single file hashed outside any walk (the agent hashes one file to
// confirm a rename) is cached, not a panic.
func TestHashCacheOutsideWalk(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var c HashCache
	e := Entry{Dev: 1, Ino: 2, Size: 1}
	open := func() (*os.File, error) { return os.Open(p) }
	if _, err := c.Hash(&e, open); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Hash(&e, open); err != nil || c.Hits != 1 {
		t.Fatalf("second hash: err %v, %d hits", err, c.Hits)
	}
}
