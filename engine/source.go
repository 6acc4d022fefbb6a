package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"

	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/ignore"
)

// Source is a scanned source tree.
type Source struct {
	Dir     string
	Root    *os.Root
	fd      int            // the source directory, for OpenBeneath
	Entries []fstree.Entry // depth-first pre-order, parents before children
	RootEnt fstree.Entry   // the source directory itself
	Errors  []OpError      // paths that could not be read
	Special []string       // FIFOs, sockets, devices: not mirrored
}

// ErrSource wraps problems with the source directory itself.
var ErrSource = errors.New("source")

// ScanSource lists dir, leaving out what m ignores. With hash set, regular
// files get content hashes.
func ScanSource(ctx context.Context, dir string, m *ignore.Matcher, hash bool) (*Source, error) {
	return ScanSourceCached(ctx, dir, m, hash, nil)
}

// ScanSourceCached is ScanSource taking content hashes from cache where
// files did not change since the cache saw them.
func ScanSourceCached(ctx context.Context, dir string, m *ignore.Matcher, hash bool, cache *fstree.HashCache) (*Source, error) {
	s, err := OpenSource(dir)
	if err != nil {
		return nil, err
	}
	wopt := fstree.WalkOptions{
		Hash: hash,
		Skip: func(rel string, isDir bool) bool { return m != nil && m.Match(rel, isDir) },
		OnError: func(rel string, err error) {
			s.Errors = append(s.Errors, OpError{Path: rel, Msg: errString(err)})
		},
	}
	if hash && cache != nil {
		cache.Begin()
		defer cache.End()
		wopt.HashFunc = cache.Hash
	}
	fd, err := unix.Dup(s.fd)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("%w %s: %w", ErrSource, dir, err)
	}
	d := os.NewFile(uintptr(fd), dir)
	defer d.Close()
	err = fstree.Walk(ctx, d, wopt, func(e *fstree.Entry) error {
		if e.Kind == fstree.Other {
			s.Special = append(s.Special, e.Path)
			return nil
		}
		s.Entries = append(s.Entries, *e)
		return nil
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("%w %s: %w", ErrSource, dir, err)
	}
	return s, nil
}

// OpenSource opens the source directory without listing it, for syncing
// a batch of named paths. Close it soon: an open descriptor keeps a
// removed directory alive, and the kernel reports its removal to the
// watcher only when the last one is closed.
func OpenSource(dir string) (*Source, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT):
			return nil, fmt.Errorf("%w %s does not exist", ErrSource, dir)
		case errors.Is(err, unix.ENOTDIR):
			return nil, fmt.Errorf("%w %s is not a directory (gosync mirrors a directory's contents)", ErrSource, dir)
		}
		return nil, fmt.Errorf("%w %s: %w", ErrSource, dir, err)
	}
	root, err := fstree.StatAt(fd, ".")
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%w %s: %w", ErrSource, dir, err)
	}
	root.Path = ""
	return &Source{Dir: dir, fd: fd, RootEnt: root}, nil
}

// Close releases the source directory.
func (s *Source) Close() error { return unix.Close(s.fd) }

// open opens a regular file of the source for reading, refusing a
// symlink anywhere on its path (the tree changed since the scan).
func (s *Source) open(rel string) (*os.File, error) {
	fd, err := fstree.OpenBeneath(s.fd, rel, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), rel), nil
}

// errString gives the innermost useful message of a path error, without
// repeating the path that callers print anyway.
func errString(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
