package fstree

import "os"

// WalkOptions tune a walk.
type WalkOptions struct {
	// Skip reports whether a path (and, for a directory, all below it) is
	// left out of the walk. It is called right after the entry's lstat,
	// before a directory is opened, so ignored trees such as node_modules
	// cost one lstat.
	Skip func(rel string, isDir bool) bool
	// Temp, if set, is called for every leftover temporary (IsTemp) found:
	// the walk is the mirror's. Reserved names are never passed to fn; a
	// walk without Temp reports them to OnError (ErrReservedName).
	Temp func(rel string)
	// Prefix is prepended (with a slash) to every reported path, for a walk
	// of a subtree whose paths are relative to an outer root.
	Prefix string
	// OnError receives errors about single paths (an unreadable directory,
	// a file that vanished). The walk goes on without them. If nil, the
	// first such error ends the walk.
	OnError func(rel string, err error)
	// Hash fills Entry.Hash for regular files.
	Hash bool
	// HashFunc, if set, is used instead of reading the file when Hash is
	// set: a cache can answer for unchanged files.
	HashFunc func(e *Entry, open func() (*os.File, error)) (Hash, error)
	// SkippedLink, if set, receives the symbolic links that cannot be read
	// on this system (Windows: junctions to other volumes, app execution
	// aliases); they are left out of the walk. Unset, or on Unix, a link
	// that cannot be read is an error like any other.
	SkippedLink func(rel string, err error)
	// Widen, if set, is called when a directory (name, in the directory
	// open as dirfd) cannot be opened for want of permission: if it
	// returns ok, the walk tries again and calls restore once the
	// directory's subtree is walked. The mirror's walk uses it for the
	// directories its user owns (Unix only).
	Widen func(dirfd int, name string) (restore func(), ok bool)
	// Helpers is how many goroutines besides the walk's own stat the
	// entries of a large directory (Unix): 0, one after another.
	Helpers int
}
