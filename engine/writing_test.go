package engine

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/gosync/gosync/engine/fstree"
)

// A file replaced by rename (an editor's save) or deleted while it is
// read is a consistent snapshot of what was read; a write to it is not.
func TestChangedWhileRead(t *testing.T) {
	dir := t.TempDir()
	src, err := OpenSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	p := &plan{src: src}
	open := func(name, content string) (*os.File, *fstree.Entry) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		e, _, err := fstree.StatOpen(name, f)
		if err != nil {
			t.Fatal(err)
		}
		return f, &e
	}
	// ctime has a coarse clock: make sure a change lands on another tick.
	tick := func() { time.Sleep(20 * time.Millisecond) }

	// Windows refuses to replace, delete or rename a file that another
	// handle has open, so these three cases cannot happen there.
	if runtime.GOOS != "windows" {
		f, e := open("renamed", "old version")
		tick()
		os.WriteFile(filepath.Join(dir, "tmp"), []byte("new version!"), 0o644)
		if err := os.Rename(filepath.Join(dir, "tmp"), filepath.Join(dir, "renamed")); err != nil {
			t.Fatal(err)
		}
		if p.changedWhileRead(f, e, false) {
			t.Error("a file replaced by rename while read was taken for a changed one")
		}

		f, e = open("deleted", "content")
		tick()
		os.Remove(filepath.Join(dir, "deleted"))
		if p.changedWhileRead(f, e, false) {
			t.Error("a file deleted while read was taken for a changed one")
		}

		f, e = open("moved-away", "content")
		tick()
		os.Rename(filepath.Join(dir, "moved-away"), filepath.Join(dir, "elsewhere"))
		if p.changedWhileRead(f, e, false) {
			t.Error("a file renamed away while read was taken for a changed one")
		}
	}

	f, e := open("written", "content")
	tick()
	os.WriteFile(filepath.Join(dir, "written"), []byte("CONTENT"), 0o644)
	if !p.changedWhileRead(f, e, false) {
		t.Error("a file written while read was not noticed")
	}

	// Written with its mtime put back: same size and mtime, the same
	// inode at its path, another ctime.
	f, e = open("sneaky", "content")
	tick()
	os.WriteFile(filepath.Join(dir, "sneaky"), []byte("CONTENT"), 0o644)
	mt := time.Unix(0, e.MtimeNs)
	os.Chtimes(filepath.Join(dir, "sneaky"), mt, mt)
	if !p.changedWhileRead(f, e, false) {
		t.Error("a file written in place with its mtime restored was not noticed")
	}

	// A prefix stays valid while the file grows, not when it shrinks.
	f, e = open("log", "line 1\n")
	tick()
	lf, _ := os.OpenFile(filepath.Join(dir, "log"), os.O_APPEND|os.O_WRONLY, 0)
	lf.WriteString("line 2\n")
	if p.changedWhileRead(f, e, true) {
		t.Error("a growing file's prefix was taken for changed")
	}
	lf.Truncate(2)
	lf.Close()
	if !p.changedWhileRead(f, e, true) {
		t.Error("a truncated file's prefix was not noticed")
	}
}
