//go:build !(linux || darwin || freebsd) || gosync_portable

package fstree

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"
)

// Root is described in root.go. This implementation uses only os.Root:
// it never resolves a path outside the tree (os.Root refuses escapes), and
// it follows no symbolic link inside it either: every directory is entered
// one name at a time, after an lstat said it is a directory, and the
// opened directory or file must be the one the lstat saw (os.SameFile), so
// a symlink swapped in meanwhile is refused rather than followed.
type Root struct {
	r    *os.Root
	name string
}

// errReplaced answers for a path whose entry changed between the lstat and
// the open: as a symlink on the way would (ELOOP), so callers treat it as
// "changed since listed".
var errReplaced = fmt.Errorf("replaced while opened: %w", syscall.ELOOP)

// OpenRoot opens the directory dir.
func OpenRoot(dir string) (*Root, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &os.PathError{Op: "open", Path: dir, Err: syscall.ENOTDIR}
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &Root{r: r, name: dir}, nil
}

// Close releases the directory.
func (r *Root) Close() error { return r.r.Close() }

// Stat describes the entry at rel without following a final symbolic link.
func (r *Root) Stat(rel string) (Entry, error) {
	if rel == "" {
		rel = "."
	}
	fi, err := r.r.Lstat(rel)
	if err != nil {
		return Entry{}, err
	}
	e, _ := FromFileInfo(rel, fi)
	if e.Kind == Symlink {
		if e.Target, err = r.r.Readlink(rel); err != nil {
			return Entry{}, err
		}
	}
	return e, nil
}

// Open opens the file at rel for reading, refusing a symbolic link
// anywhere on the way.
func (r *Root) Open(rel string) (*os.File, error) {
	i := strings.LastIndexByte(rel, '/')
	dir, base := "", rel
	if i >= 0 {
		dir, base = rel[:i], rel[i+1:]
	}
	d, err := r.dir(dir)
	if err != nil {
		return nil, err
	}
	if d != r.r {
		defer d.Close()
	}
	return openFile(d, base, rel)
}

// OpenStat is Open that also describes the file it opened (StatOpen).
func (r *Root) OpenStat(rel string) (*os.File, Entry, error) {
	f, err := r.Open(rel)
	if err != nil {
		return nil, Entry{}, err
	}
	e, _, err := StatOpen(rel, f)
	if err != nil {
		f.Close()
		// As the descriptor walk's: Op "stat", rel, and the cause once.
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, Entry{}, &os.PathError{Op: "stat", Path: rel, Err: err}
	}
	return f, e, nil
}

// Walk lists the subtree at rel (the whole tree for "") as the descriptor
// walk does, reporting paths relative to the root. A failure to open rel
// itself is returned as is.
func (r *Root) Walk(ctx context.Context, rel string, opt WalkOptions, fn func(*Entry) error) error {
	d, err := r.dir(rel)
	if err != nil {
		return err
	}
	if d == r.r {
		// The walk closes what it walks; the root stays open.
		if d, err = r.r.OpenRoot("."); err != nil {
			return err
		}
	}
	w := &rootWalker{walkState{ctx: ctx, opt: opt, fn: fn}}
	return w.dir(d, rel)
}

// Empty reports whether the root directory has no entries (or cannot be
// listed).
func (r *Root) Empty() bool {
	f, err := r.r.Open(".")
	if err != nil {
		return true
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) == 0
}

// dir opens the directory at rel one component at a time; "" is r itself
// (not a new handle: callers close what is not r.r).
func (r *Root) dir(rel string) (*os.Root, error) {
	if rel == "" || rel == "." {
		return r.r, nil
	}
	cur := r.r
	for p := range strings.SplitSeq(rel, "/") {
		next, err := openDir(cur, p, rel)
		if cur != r.r {
			cur.Close()
		}
		if err != nil {
			return nil, err
		}
		cur = next
	}
	return cur, nil
}

// openDir opens the directory name in d, refusing a symlink.
func openDir(d *os.Root, name, rel string) (*os.Root, error) {
	if name == "" || name == "." || name == ".." {
		return nil, &os.PathError{Op: "open", Path: rel, Err: syscall.EXDEV}
	}
	fi, err := d.Lstat(name)
	if err != nil {
		return nil, err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, &os.PathError{Op: "open", Path: rel, Err: syscall.ELOOP}
	case !fi.IsDir():
		return nil, &os.PathError{Op: "open", Path: rel, Err: syscall.ENOTDIR}
	}
	sub, err := d.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	now, err := sub.Stat(".")
	if err != nil || !sameFile(fi, now) {
		sub.Close()
		return nil, &os.PathError{Op: "open", Path: rel, Err: errReplaced}
	}
	return sub, nil
}

// openFile opens the regular file name in d for reading, refusing a
// symlink and anything else (ErrNotRegular). It opens non-blocking where
// the system has FIFOs: one swapped in after the lstat would otherwise
// hold the open until a writer comes.
func openFile(d *os.Root, name, rel string) (*os.File, error) {
	fi, err := d.Lstat(name)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, &os.PathError{Op: "open", Path: rel, Err: syscall.ELOOP}
	}
	if !fi.Mode().IsRegular() {
		return nil, &os.PathError{Op: "open", Path: rel, Err: ErrNotRegular}
	}
	f, err := d.OpenFile(name, os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil, err
	}
	now, err := f.Stat()
	switch {
	case err == nil && !now.Mode().IsRegular():
		f.Close()
		return nil, &os.PathError{Op: "open", Path: rel, Err: ErrNotRegular}
	case err != nil || !sameFile(fi, now):
		f.Close()
		return nil, &os.PathError{Op: "open", Path: rel, Err: errReplaced}
	}
	return f, nil
}

// rootWalker walks with os.Root.
type rootWalker struct{ walkState }

// dir walks the directory d (which it closes), at rel below the root.
func (w *rootWalker) dir(d *os.Root, rel string) error {
	defer d.Close()
	f, err := d.Open(".")
	if err != nil {
		return w.fail(rel, err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return w.fail(rel, err)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		child := name
		if rel != "" {
			child = rel + "/" + name
		}
		if Reserved(name) {
			w.reserved(name, child)
			continue
		}
		fi, err := d.Lstat(name)
		if err != nil {
			if err := w.skip(child, err); err != nil {
				return err
			}
			continue
		}
		e, _ := FromFileInfo(child, fi)
		if w.opt.Skip != nil && w.opt.Skip(child, e.Kind == Dir) {
			continue
		}
		switch e.Kind {
		case Symlink:
			if e.Target, err = d.Readlink(name); err != nil {
				if skipUnreadableLinks && w.opt.SkippedLink != nil && !errors.Is(err, fs.ErrNotExist) {
					w.opt.SkippedLink(child, err)
					continue
				}
				if err := w.skip(child, err); err != nil {
					return err
				}
				continue
			}
		case File:
			if w.opt.Hash {
				if err := w.hash(d, name, &e); err != nil {
					if err := w.skip(child, err); err != nil {
						return err
					}
					continue
				}
			}
		}
		if err := w.fn(&e); err != nil {
			return err
		}
		if e.Kind == Dir {
			sub, err := openDir(d, name, child)
			if err != nil {
				if err := w.skip(child, err); err != nil {
					return err
				}
				continue
			}
			if err := w.dir(sub, child); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *rootWalker) hash(d *os.Root, name string, e *Entry) error {
	open := func() (*os.File, error) { return openFile(d, name, e.Path) }
	var sum Hash
	var err error
	if w.opt.HashFunc != nil {
		if err := identify(open, e); err != nil {
			return err
		}
		sum, err = w.opt.HashFunc(e, open)
	} else {
		sum, err = hashOpen(open)
	}
	if err != nil {
		return err
	}
	e.Hash, e.HasHash = sum, true
	return nil
}
