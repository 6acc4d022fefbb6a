//go:build (linux || darwin || freebsd) && !gosync_portable

package fstree

import (
	"context"
	"os"

	"golang.org/x/sys/unix"
)

// Root is described in root.go.
type Root struct {
	fd   int
	name string
}

// OpenRoot opens the directory dir.
func OpenRoot(dir string) (*Root, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return &Root{fd: fd, name: dir}, nil
}

// Close releases the directory.
func (r *Root) Close() error { return unix.Close(r.fd) }

// Stat describes the entry at rel without following a final symbolic
// link. Parent components are resolved by the kernel as they are, so rel
// must come from a walk or a watcher of this tree.
func (r *Root) Stat(rel string) (Entry, error) {
	if rel == "" {
		rel = "."
	}
	return StatAt(r.fd, rel)
}

// Open opens the regular file at rel for reading, refusing a symbolic
// link anywhere on the way (the tree changed since it was listed) and
// anything but a regular file (ErrNotRegular), without ever blocking on
// a FIFO.
func (r *Root) Open(rel string) (*os.File, error) {
	f, _, err := r.OpenStat(rel)
	return f, err
}

// OpenStat is Open that also describes the file it opened, as StatOpen
// would, from the one fstat that checks it is a regular file.
func (r *Root) OpenStat(rel string) (*os.File, Entry, error) {
	fd, err := OpenBeneath(r.fd, rel, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return nil, Entry{}, &os.PathError{Op: "open", Path: rel, Err: err}
	}
	f, st, err := regularFileStat(fd, rel)
	if err != nil {
		return nil, Entry{}, err
	}
	return f, entryFromStat(rel, st), nil
}

// Walk lists the subtree at rel (the whole tree for "") as Walk does,
// reporting paths relative to the root. A failure to open rel itself
// (gone, not a directory, a symlink on the way) is returned as is.
func (r *Root) Walk(ctx context.Context, rel string, opt WalkOptions, fn func(*Entry) error) error {
	fd, err := OpenBeneath(r.fd, rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return &os.PathError{Op: "open", Path: displayPath(rel), Err: err}
	}
	opt.Prefix = rel
	return walkFD(ctx, fd, opt, fn)
}

// Empty reports whether the root directory has no entries (or cannot be
// listed).
func (r *Root) Empty() bool {
	fd, err := unix.Openat(r.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return true
	}
	f := os.NewFile(uintptr(fd), r.name)
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) == 0
}
