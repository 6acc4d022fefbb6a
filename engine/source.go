package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"
	"syscall"

	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/ignore"
)

// Source is a scanned source tree.
type Source struct {
	Dir     string
	root    *fstree.Root
	Entries []fstree.Entry // depth-first pre-order, parents before children
	Count   int            // entries listed (Entries may not hold them: SyncTree)
	RootEnt fstree.Entry   // the source directory itself
	Errors  []OpError      // paths that could not be read
	Special []string       // FIFOs, sockets, devices: not mirrored
	// Symlinks this system cannot read (Windows only): not mirrored.
	SkippedLinks []string

	mu sync.Mutex // the lists above, while a walk runs on its own goroutine
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
	if err := s.walk(ctx, m, hash, cache, func(e *fstree.Entry) error {
		s.Entries = append(s.Entries, *e)
		return nil
	}); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// SourceSpec is a source to walk in step with a mirror's listing
// (SyncTree), a directory at a time, never held whole.
type SourceSpec struct {
	Dir    string
	Ignore *ignore.Matcher
	Hash   bool              // content hashes for regular files (--checksum)
	Cache  *fstree.HashCache // where unchanged files' hashes are kept, or nil
	// Done, if set, gets the source once it is walked (its Entries
	// empty, Count set), for reporting what was skipped.
	Done func(*Source)
	// Pre, if set, is a walk of this spec started before the mirror was
	// reached; the first full sync given it takes it over.
	Pre *Prewalk
}

// walk lists the source as ScanSource does, calling fn for each entry in
// walk order; the entries not mirrored go to s's lists. s.Count counts
// what fn got.
func (s *Source) walk(ctx context.Context, m *ignore.Matcher, hash bool, cache *fstree.HashCache, fn func(*fstree.Entry) error) error {
	wopt := fstree.WalkOptions{
		Hash: hash,
		Skip: func(rel string, isDir bool) bool { return m != nil && m.Match(rel, isDir) },
		OnError: func(rel string, err error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			if errors.Is(err, fstree.ErrNotRegular) {
				// Replaced by a FIFO, socket or device between lstat
				// and the open for hashing: skipped like one.
				s.Special = append(s.Special, rel)
				return
			}
			s.Errors = append(s.Errors, OpError{Path: rel, Op: "read source", Msg: errString(err)})
		},
		SkippedLink: func(rel string, err error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.SkippedLinks = append(s.SkippedLinks, rel)
		},
	}
	if hash && cache != nil {
		cache.Begin()
		defer cache.End()
		wopt.HashFunc = cache.Hash
	}
	err := s.root.Walk(ctx, "", wopt, func(e *fstree.Entry) error {
		if e.Kind == fstree.Other {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.Special = append(s.Special, e.Path)
			return nil
		}
		s.Count++
		return fn(e)
	})
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrSource, s.Dir, err)
	}
	return nil
}

// skips is what the walk so far left out, for a plan: it may still be
// walking.
func (s *Source) skips() skipped {
	s.mu.Lock()
	defer s.mu.Unlock()
	return skipped{unread: slices.Clone(s.Errors), special: slices.Clone(s.Special)}
}

// OpenSource opens the source directory without listing it, for syncing
// a batch of named paths. Close it soon: an open descriptor keeps a
// removed directory alive, and the kernel reports its removal to the
// watcher only when the last one is closed.
func OpenSource(dir string) (*Source, error) {
	r, err := fstree.OpenRoot(dir)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("%w %s does not exist", ErrSource, dir)
		case errors.Is(err, syscall.ENOTDIR):
			return nil, fmt.Errorf("%w %s is not a directory (gosync mirrors a directory's contents)", ErrSource, dir)
		}
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			err = pe.Err // the message names dir already
		}
		return nil, fmt.Errorf("%w %s: %w", ErrSource, dir, err)
	}
	root, err := r.Stat("")
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("%w %s: %w", ErrSource, dir, err)
	}
	root.Path = ""
	return &Source{Dir: dir, root: r, RootEnt: root}, nil
}

// Close releases the source directory.
func (s *Source) Close() error { return s.root.Close() }

// open opens a regular file of the source for reading, refusing a
// symlink anywhere on its path (the tree changed since the scan) and,
// without blocking, anything but a regular file (fstree.ErrNotRegular).
func (s *Source) open(rel string) (*os.File, error) { return s.root.Open(rel) }

// openStat opens rel as open does and describes it as it is now.
func (s *Source) openStat(rel string) (*os.File, fstree.Entry, error) { return s.root.OpenStat(rel) }

// stat describes rel (or the source directory for "") as it is now.
func (s *Source) stat(rel string) (fstree.Entry, error) { return s.root.Stat(rel) }

// errString gives the innermost useful message of a path error, without
// repeating the path that callers print anyway.
func errString(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
