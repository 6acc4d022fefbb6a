//go:build linux || darwin || freebsd

package fstree

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// Walk lists the tree below dir (an open directory) in depth-first
// pre-order with names sorted bytewise, calling fn for every entry but the
// root. Symbolic links are reported, never followed; the walk never leaves
// dir's file system subtree through a link, whatever it says.
func Walk(ctx context.Context, dir *os.File, opt WalkOptions, fn func(*Entry) error) error {
	// A new open file description, not a dup: a dup shares the directory
	// offset, and a second walk of a cached descriptor would list nothing.
	fd, err := unix.Openat(int(dir.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("walk %s: %w", dir.Name(), err)
	}
	return walkFD(ctx, fd, opt, fn)
}

// walkFD is Walk of the directory open as fd, which it closes.
func walkFD(ctx context.Context, fd int, opt WalkOptions, fn func(*Entry) error) error {
	w := &walker{walkState{ctx: ctx, opt: opt, fn: fn}}
	return w.dir(fd, opt.Prefix)
}

// walker walks with file descriptors.
type walker struct{ walkState }

// dir walks the directory open as fd (which it closes).
func (w *walker) dir(fd int, rel string) error {
	f := os.NewFile(uintptr(fd), rel)
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		return w.fail(rel, err)
	}
	defer f.Close()
	slices.Sort(names)
	stats := w.statAll(fd, names)
	for i, name := range names {
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
		var st unix.Stat_t
		var err error
		if stats != nil {
			st, err = stats[i].st, stats[i].err
		} else {
			err = unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		}
		if err != nil {
			if err := w.skip(child, err); err != nil {
				return err
			}
			continue
		}
		e := entryFromStat(child, &st)
		if w.opt.Skip != nil && w.opt.Skip(child, e.Kind == Dir) {
			continue
		}
		switch e.Kind {
		case Symlink:
			target, err := readlinkat(fd, name)
			if err != nil {
				if err := w.skip(child, err); err != nil {
					return err
				}
				continue
			}
			e.Target = target
		case File:
			if w.opt.Hash {
				open := func() (*os.File, error) {
					cfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
					if err != nil {
						return nil, err
					}
					return regularFile(cfd, child)
				}
				var sum Hash
				if w.opt.HashFunc != nil {
					sum, err = w.opt.HashFunc(&e, open)
				} else {
					sum, err = hashOpen(open)
				}
				if err != nil {
					if err := w.skip(child, err); err != nil {
						return err
					}
					continue
				}
				e.Hash, e.HasHash = sum, true
			}
		}
		if err := w.fn(&e); err != nil {
			return err
		}
		if e.Kind == Dir {
			open := func() (int, error) {
				return unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			}
			cfd, err := open()
			restore := func() {}
			if errors.Is(err, unix.EACCES) && w.opt.Widen != nil {
				if r, ok := w.opt.Widen(fd, name); ok {
					restore = r
					if cfd, err = open(); err != nil {
						restore()
					}
				}
			}
			if err != nil {
				if err := w.skip(child, err); err != nil {
					return err
				}
				continue
			}
			err = w.dir(cfd, child)
			restore()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// parallelFrom is the size of a directory whose entries the walk stats
// with its helpers: below it, handing the work over costs more than it
// saves.
const parallelFrom = 256

// statResult is the lstat of one entry of a directory.
type statResult struct {
	st  unix.Stat_t
	err error
}

// statAll lstats names in fd on the walk's goroutine and opt.Helpers
// others, each taking a contiguous share, or returns nil (the walk stats
// each entry as it comes to it) for a small directory or no helpers.
// The results are those of the same calls made a moment earlier: the
// walk is no snapshot either way.
func (w *walker) statAll(fd int, names []string) []statResult {
	if w.opt.Helpers <= 0 || len(names) < parallelFrom {
		return nil
	}
	res := make([]statResult, len(names))
	parts := w.opt.Helpers + 1
	share := (len(names) + parts - 1) / parts
	stat := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			res[i].err = unix.Fstatat(fd, names[i], &res[i].st, unix.AT_SYMLINK_NOFOLLOW)
		}
	}
	var wg sync.WaitGroup
	for lo := share; lo < len(names); lo += share {
		wg.Go(func() { stat(lo, min(lo+share, len(names))) })
	}
	stat(0, min(share, len(names)))
	wg.Wait()
	return res
}

// regularFile makes an *os.File of fd, opened with O_NONBLOCK, if it is
// a regular file, and closes it otherwise. Every open of a file to read
// goes through here: between the lstat that said "file" and the open,
// anyone who can write the directory can put a FIFO in its place, and a
// blocking open (or read) of a FIFO waits for a writer forever.
func regularFile(fd int, rel string) (*os.File, error) {
	f, _, err := regularFileStat(fd, rel)
	return f, err
}

// regularFileStat is regularFile, also giving the stat it took.
func regularFileStat(fd int, rel string) (*os.File, *unix.Stat_t, error) {
	st := new(unix.Stat_t)
	if err := unix.Fstat(fd, st); err != nil {
		unix.Close(fd)
		return nil, nil, &os.PathError{Op: "stat", Path: rel, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, nil, &os.PathError{Op: "open", Path: rel, Err: ErrNotRegular}
	}
	// Regular files ignore O_NONBLOCK; cleared all the same, so the
	// descriptor is what a plain open gives. The callers open with no
	// other flag F_SETFL sets (O_APPEND, O_ASYNC, O_DIRECT, O_NOATIME),
	// so one call clears it without reading the flags first.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, 0); err != nil {
		unix.Close(fd)
		return nil, nil, &os.PathError{Op: "open", Path: rel, Err: err}
	}
	return os.NewFile(uintptr(fd), rel), st, nil
}

func readlinkat(fd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// StatAt describes the entry at rel below the directory open as dirfd
// without following a final symbolic link. rel's parent components are
// resolved by the kernel relative to dirfd, so callers pass a trusted rel
// or a name in a directory resolved with OpenBeneath.
func StatAt(dirfd int, rel string) (Entry, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, rel, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return Entry{}, &os.PathError{Op: "lstat", Path: rel, Err: err}
	}
	e := entryFromStat(rel, &st)
	if e.Kind == Symlink {
		t, err := readlinkat(dirfd, rel)
		if err != nil {
			return Entry{}, &os.PathError{Op: "readlink", Path: rel, Err: err}
		}
		e.Target = t
	}
	return e, nil
}

func entryFromStat(rel string, st *unix.Stat_t) Entry {
	e := Entry{
		Path:    rel,
		Perm:    uint32(st.Mode) & 07777,
		Mtime:   timespec(st.Mtim),
		CtimeNs: st.Ctim.Nano(),
		Uid:     st.Uid,
		Gid:     st.Gid,
		Dev:     uint64(st.Dev),
		Ino:     uint64(st.Ino),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		e.Kind = File
		e.Size = st.Size
	case unix.S_IFDIR:
		e.Kind = Dir
	case unix.S_IFLNK:
		e.Kind = Symlink
	default:
		e.Kind = Other
	}
	return e
}

// timespec converts a stat time.
func timespec(ts unix.Timespec) Time {
	sec, nsec := ts.Unix()
	return Time{Sec: sec, Nsec: int32(nsec)}
}
