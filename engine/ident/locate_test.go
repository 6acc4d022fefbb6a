//go:build linux

package ident

import (
	"os"
	"path/filepath"
	"testing"
)

// Real directories, named through a symlink and a bind-like second path:
// what counts is the directory, not how its path is spelled.
func TestLocate(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "site")
	inner := filepath.Join(src, "public", "m")
	if err := os.MkdirAll(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink("site/public", link); err != nil {
		t.Fatal(err)
	}
	locate := func(p string) Place {
		t.Helper()
		pl, err := Locate(p)
		if err != nil {
			t.Fatal(err)
		}
		if !pl.Known() {
			t.Fatalf("%s: place unknown: %+v", p, pl)
		}
		return pl
	}
	s, m, viaLink := locate(src), locate(inner), locate(filepath.Join(link, "m"))
	if got := Relate(m, s); got != Inside {
		t.Errorf("mirror inside source: %d, want Inside", got)
	}
	if got := Relate(s, m); got != Contains {
		t.Errorf("source around mirror: %d, want Contains", got)
	}
	if got := Relate(viaLink, m); got != Same {
		t.Errorf("the same directory through a symlink: %d, want Same", got)
	}
	if got := Relate(locate(t.TempDir()), s); got != Apart {
		t.Errorf("unrelated directories: %d, want Apart", got)
	}
	if root := locate("/"); len(root.Chain) != 1 {
		t.Errorf("/ has a chain of %d, want 1", len(root.Chain))
	}
	if len(s.Chain) < 3 {
		t.Errorf("chain of %s too short: %v", src, s.Chain)
	}
	if _, err := Locate(filepath.Join(base, "absent")); err == nil {
		t.Error("a missing directory was located")
	}
}
