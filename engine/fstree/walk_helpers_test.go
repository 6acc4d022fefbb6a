//go:build linux || darwin || freebsd

package fstree

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// A walk whose helpers stat a large directory's entries lists exactly
// what a walk without them lists, in the same order, with the same
// errors, whatever the number of helpers.
func TestWalkHelpersSameListing(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.Mkdir(big, 0o755); err != nil {
		t.Fatal(err)
	}
	n := parallelFrom*3 + 7
	for i := range n {
		p := filepath.Join(big, fmt.Sprintf("e%04d", i))
		var err error
		switch i % 7 {
		case 0:
			err = os.Mkdir(p, 0o750)
			if err == nil {
				err = os.WriteFile(filepath.Join(p, "inner"), []byte("x"), 0o600)
			}
		case 1:
			err = os.Symlink(fmt.Sprintf("target%d", i), p)
		case 2:
			err = os.Mkdir(p, 0o000) // listed; its contents cannot be
		default:
			err = os.WriteFile(p, []byte(fmt.Sprint(i)), os.FileMode(0o600+i%3*0o44))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "small"), []byte("s"), 0o644)
	walk := func(helpers int) (list, errs []string) {
		f, err := os.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		opt := WalkOptions{Helpers: helpers, Hash: true, OnError: func(rel string, err error) {
			errs = append(errs, rel+": "+err.Error())
		}}
		err = Walk(context.Background(), f, opt, func(e *Entry) error {
			list = append(list, fmt.Sprintf("%s %v %o %d %d %d %q %x", e.Path, e.Kind, e.Perm, e.Size, e.Mtime, e.Ino, e.Target, e.Hash))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return list, errs
	}
	want, wantErrs := walk(0)
	if inner := (n + 6) / 7; len(want) != n+inner+2 {
		t.Fatalf("the plain walk listed %d entries, want %d", len(want), n+inner+2)
	}
	for _, helpers := range []int{1, 2, 5} {
		got, errs := walk(helpers)
		if !slices.Equal(got, want) || !slices.Equal(errs, wantErrs) {
			t.Errorf("%d helpers: the listing or its errors differ from the plain walk's", helpers)
		}
	}
}
