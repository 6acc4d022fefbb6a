package watch

import (
	"io/fs"
	"maps"
	"os"
	"slices"

	"github.com/gosync/gosync/engine/fstree"
)

// polledTree is a subtree that could not be watched, with what it looked
// like at the last poll.
type polledTree struct {
	snap map[string]entry
}

// entry is what a poll compares: cheap to get, and different after any
// change a caller would care about.
type entry struct {
	size, mtime, ctime int64
	mode               fs.FileMode
	id                 devIno
}

func entryOf(fi fs.FileInfo) entry {
	return entry{size: fi.Size(), mtime: fi.ModTime().UnixNano(), ctime: changeTime(fi), mode: fi.Mode(), id: fileID(fi)}
}

func (w *Watcher) snapshot(rel string) *polledTree {
	t := &polledTree{snap: make(map[string]entry)}
	if fi, err := os.Lstat(w.abs(rel)); err == nil {
		w.walkSnapshot(rel, fi, t.snap)
	}
	return t
}

func (w *Watcher) walkSnapshot(rel string, fi fs.FileInfo, snap map[string]entry) {
	snap[rel] = entryOf(fi)
	if !fi.IsDir() {
		return
	}
	f, err := openDir(w.abs(rel))
	if err != nil {
		return
	}
	names, _ := f.Readdirnames(-1)
	f.Close()
	rules := w.rules.Load()
	for _, name := range names {
		if fstree.Reserved(name) {
			continue
		}
		crel := join(rel, name)
		cfi, err := os.Lstat(w.abs(crel))
		if err != nil || rules.Match(crel, cfi.IsDir()) {
			continue
		}
		w.walkSnapshot(crel, cfi, snap)
	}
}

// pollAll first tries to watch the polled subtrees again (the limit may
// have been raised), then compares the rest with their last snapshots.
func (w *Watcher) pollAll() {
	if w.polled[""] != nil {
		if fi, err := os.Stat(w.root); err != nil || !fi.IsDir() {
			w.rootLost()
			return
		}
	}
	for _, rel := range slices.Sorted(maps.Keys(w.polled)) {
		if w.polled[rel] == nil {
			continue
		}
		if rel != "" && w.dirs[parent(rel)] == nil {
			continue
		}
		fi, err := os.Lstat(w.abs(rel))
		if err != nil || !fi.IsDir() {
			continue
		}
		w.watchTree(rel, fileID(fi), false)
		if w.polled[rel] != nil {
			break // still at the limit
		}
		w.note(Change{Path: rel, Subtree: true})
	}
	for rel, old := range w.polled {
		cur := w.snapshot(rel)
		for p, e := range cur.snap {
			if o, ok := old.snap[p]; !ok || o != e {
				w.note(Change{Path: p, Subtree: !ok && e.mode.IsDir()})
			}
		}
		for p := range old.snap {
			if _, ok := cur.snap[p]; !ok {
				w.note(Change{Path: p})
			}
		}
		w.polled[rel] = cur
	}
}
