// Package treetest compares and builds directory trees for tests of the
// engine, the agent and the command line: whole trees, by content, kind,
// permission bits, mtime to the nanosecond, symlink target and owner.
package treetest

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gosync/gosync/engine/fstree"
)

// Options of a comparison.
type Options struct {
	// Ignore lists relative paths (and everything below them) left out
	// of the comparison on both sides.
	Ignore []string
	// SkipRootMeta leaves out the mode and mtime of the two roots.
	SkipRootMeta bool
}

// Diff returns the differences between trees a and b, one line each; an
// empty slice means identical.
func Diff(a, b string, opt Options) ([]string, error) {
	ma, err := list(a, opt)
	if err != nil {
		return nil, err
	}
	mb, err := list(b, opt)
	if err != nil {
		return nil, err
	}
	var diffs []string
	for p, ea := range ma {
		eb, ok := mb[p]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s: only in %s", p, a))
			continue
		}
		if d := ea.diff(eb, p == "." && opt.SkipRootMeta); d != "" {
			diffs = append(diffs, p+": "+d)
		}
	}
	for p := range mb {
		if _, ok := ma[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: only in %s", p, b))
		}
	}
	sort.Strings(diffs)
	return diffs, nil
}

// Equal fails the test if the trees differ.
func Equal(t testing.TB, a, b string, opt Options) {
	t.Helper()
	diffs, err := Diff(a, b, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		if len(diffs) > 20 {
			diffs = append(diffs[:20], fmt.Sprintf("... and %d more", len(diffs)-20))
		}
		t.Fatalf("trees differ:\n  %s", strings.Join(diffs, "\n  "))
	}
}

type entry struct {
	mode     fs.FileMode
	mtime    int64
	uid, gid uint32
	target   string
	content  []byte
}

func (x entry) diff(y entry, skipMeta bool) string {
	switch {
	case x.mode.Type() != y.mode.Type():
		return fmt.Sprintf("type %v vs %v", x.mode.Type(), y.mode.Type())
	case x.target != y.target:
		return fmt.Sprintf("symlink target %q vs %q", x.target, y.target)
	case !bytes.Equal(x.content, y.content):
		return fmt.Sprintf("content differs (%d vs %d bytes)", len(x.content), len(y.content))
	case skipMeta:
		return ""
	case x.mode.Type() != fs.ModeSymlink && x.mode != y.mode:
		return fmt.Sprintf("mode %v vs %v", x.mode, y.mode)
	case x.mtime != y.mtime:
		return fmt.Sprintf("mtime %v vs %v", time.Unix(0, x.mtime).UTC(), time.Unix(0, y.mtime).UTC())
	case x.uid != y.uid || x.gid != y.gid:
		return fmt.Sprintf("owner %d:%d vs %d:%d", x.uid, x.gid, y.uid, y.gid)
	}
	return ""
}

func list(root string, opt Options) (map[string]entry, error) {
	out := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		for _, ig := range opt.Ignore {
			if rel == ig || strings.HasPrefix(rel, ig+"/") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		fe, _ := fstree.FromFileInfo(rel, fi)
		e := entry{mode: fi.Mode(), mtime: fe.MtimeNs, uid: fe.Uid, gid: fe.Gid}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			e.target, err = os.Readlink(p)
		case fi.Mode().IsRegular():
			e.content, err = os.ReadFile(p)
		}
		if err != nil {
			return err
		}
		out[rel] = e
		return nil
	})
	return out, err
}

// Write creates files from a map of relative path to content; a path
// ending in "/" is a directory, content "-> target" makes a symlink.
func Write(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(c, "-> "); ok {
			os.Remove(full)
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Temporaries lists leftover agent temporaries below root.
func Temporaries(t testing.TB, root, prefix string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), prefix) {
			found = append(found, p)
		}
		return nil
	})
	return found
}

// NeedAgent skips t on Windows, where the mirror side does not run: the
// gosync agent is Unix-only and Windows is a client only.
func NeedAgent(t testing.TB) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the mirror side (gosync agent) does not run on Windows; Windows is a client only")
	}
}

// SkipUnderWine skips t when the Windows test binaries run under wine
// (.ci/wine-windows sets GOSYNC_WINE=1), for what wine does not do as
// Windows does; why is the reason given.
func SkipUnderWine(t testing.TB, why string) {
	t.Helper()
	if runtime.GOOS == "windows" && os.Getenv("GOSYNC_WINE") == "1" {
		t.Skip("under wine: " + why)
	}
}
