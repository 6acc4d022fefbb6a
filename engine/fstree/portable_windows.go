package fstree

import "os"

// sameFile tells whether b (from the opened handle) is still what a (from
// the lstat) described. Windows FileInfo from an lstat carries no file
// index, so this compares what both have: type, size and mtime. A
// directory or file swapped for a symlink between the two (which os.Root
// would follow, but never out of the tree) almost always differs in them.
func sameFile(a, b os.FileInfo) bool {
	if a.Mode().Type() != b.Mode().Type() || !a.ModTime().Equal(b.ModTime()) {
		return false
	}
	return !a.Mode().IsRegular() || a.Size() == b.Size()
}

// identify fills the file index and change time the hash cache keys on
// (Windows has neither in its stat).
func identify(open func() (*os.File, error), e *Entry) error {
	f, err := open()
	if err != nil {
		return err
	}
	defer f.Close()
	fileIndex(f, e)
	return nil
}

// skipUnreadableLinks: reading a symlink fails on Windows for kinds
// gosync cannot mirror (junctions to other volumes, app execution
// aliases, links without the right privilege); those are skipped with a
// warning, as special files are.
const skipUnreadableLinks = true

// openNonblock: Windows has no FIFOs in the file system.
const openNonblock = 0
