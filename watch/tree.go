package watch

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/gosync/gosync/engine/fstree"
)

// rewatch walks the whole tree: it watches every directory not watched yet,
// replaces watches whose path now names another directory, and drops the
// watches of directories that are gone or now ignored. It reports false,
// changing nothing, if the root is not a directory.
func (w *Watcher) rewatch() bool {
	fi, err := os.Stat(w.root)
	if err != nil || !fi.IsDir() {
		return false
	}
	w.gen++
	clear(w.ignored)
	clear(w.failed)
	clear(w.polled)
	w.watchTree("", fileID(fi), true)
	for rel, d := range w.dirs {
		if d.gen != w.gen {
			w.unwatchTree(rel)
		}
	}
	return true
}

// watchTree watches the directory rel (which rules do not ignore) and then
// lists it and does the same for each subdirectory, so that whatever is
// created in it after the listing has an event. With full unset it does not
// descend into a directory that is already watched: its listing was read
// after its watch was added.
func (w *Watcher) watchTree(rel string, id devIno, full bool) {
	d := w.dirs[rel]
	if d != nil && d.id != id {
		// Another directory now has this path.
		w.unwatchTree(rel)
		d = nil
	}
	if d != nil {
		d.gen = w.gen
		if !full {
			return
		}
	} else {
		if old, ok := w.byID[id]; ok && id != (devIno{}) {
			// The directory moved here and its rename was not seen
			// (yet): inotify would hand back its watch under the old
			// name.
			w.unwatchTree(old)
		}
		if !w.add(rel, id) {
			return
		}
	}

	f, err := openDir(w.abs(rel))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			w.log.Warn("cannot list a watched directory", slog.String("path", rel), slog.Any("err", err))
		}
		return
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		w.log.Warn("cannot list a watched directory", slog.String("path", rel), slog.Any("err", err))
	}
	// Only directories, in name order, so that which ones are watched
	// when the limit is reached does not depend on the listing's order.
	ents = slices.DeleteFunc(ents, func(e fs.DirEntry) bool {
		return !e.IsDir() || fstree.Reserved(e.Name())
	})
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	rules := w.rules.Load()
	for _, e := range ents {
		crel := join(rel, e.Name())
		if rules.Match(crel, true) {
			w.ignored[crel] = true
			continue
		}
		fi, err := e.Info()
		if err != nil || !fi.IsDir() {
			continue // gone or replaced since the listing; an event follows
		}
		w.watchTree(crel, fileID(fi), full)
	}
}

// add adds the watch of one directory. When the watch limit is reached the
// directory's subtree is polled instead.
func (w *Watcher) add(rel string, id devIno) bool {
	path := w.abs(rel)
	var err error
	if w.hooks.addWatch != nil {
		err = w.hooks.addWatch(w.fsw.Add, path)
	} else {
		err = w.fsw.Add(path)
	}
	switch {
	case err == nil:
		w.dirs[rel] = &dir{id: id, gen: w.gen}
		if id != (devIno{}) {
			w.byID[id] = rel
		}
		if rel != "" {
			if p := w.dirs[parent(rel)]; p != nil {
				if p.kids == nil {
					p.kids = make(map[string]bool)
				}
				p.kids[rel] = true
			}
		}
		delete(w.polled, rel)
		delete(w.failed, rel)
		w.watches.Add(1)
		return true
	case limitOf(err) != noLimit:
		w.limitReached(limitOf(err))
		if w.polled[rel] == nil {
			w.polled[rel] = w.snapshot(rel)
		}
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		// Gone since it was seen; the event that removed it reports it.
	default:
		w.failed[rel] = true
		w.log.Warn("cannot watch a directory; changes in it are seen only when the tree is rescanned or its mode changes",
			slog.String("path", rel), slog.Any("err", err))
	}
	return false
}

// limitReached logs, once per kind of limit, that it was reached and how
// to raise it.
func (w *Watcher) limitReached(l limit) {
	if w.warned[l] {
		return
	}
	w.warned[l] = true
	if l == descriptorLimit {
		cur, help := descriptorLimitHelp()
		w.log.Warn(fmt.Sprintf("open file descriptor limit reached while watching (open files limit = %s; each watched directory and file holds one on macOS and BSD): the directories that could not be watched are polled every %s instead; %s",
			cur, w.opt.PollInterval, help),
			slog.String("open_files_limit", cur))
		return
	}
	name, cur, help := watchLimitHelp()
	w.log.Warn(fmt.Sprintf("inotify watch limit reached (%s = %s): the directories that could not be watched are polled every %s instead; %s",
		name, cur, w.opt.PollInterval, help),
		slog.String("max_user_watches", cur))
}

// unwatchTree drops the watches of rel and of every directory below it.
// For a directory renamed away this matters: the watches follow the moved
// directories and would report their events under the old names.
func (w *Watcher) unwatchTree(rel string) {
	d := w.dirs[rel]
	if d == nil {
		return
	}
	for k := range d.kids {
		w.unwatchTree(k)
	}
	// An error means the kernel dropped the watch already (the
	// directory was deleted).
	_ = w.fsw.Remove(w.abs(rel))
	delete(w.dirs, rel)
	if w.byID[d.id] == rel {
		delete(w.byID, d.id)
	}
	if rel != "" {
		if p := w.dirs[parent(rel)]; p != nil {
			delete(p.kids, rel)
		}
	}
	w.watches.Add(-1)
}

// forget drops what the watcher knows about rel and everything below it,
// after rel was removed or renamed away.
func (w *Watcher) forget(rel string, isDir, known bool) {
	if known && !isDir {
		return // a file: nothing below it, nothing watched
	}
	w.unwatchTree(rel)
	pre := rel + "/"
	for _, m := range []map[string]bool{w.ignored, w.failed} {
		for k := range m {
			if k == rel || strings.HasPrefix(k, pre) {
				delete(m, k)
			}
		}
	}
	for k := range w.polled {
		if k == rel || strings.HasPrefix(k, pre) {
			delete(w.polled, k)
		}
	}
}

// unwatchAll drops every watch and everything known about the tree.
func (w *Watcher) unwatchAll() {
	for rel := range w.dirs {
		w.unwatchTree(rel)
	}
	clear(w.byID)
	clear(w.ignored)
	clear(w.failed)
	clear(w.polled)
}
