//go:build gosync_portable && (linux || darwin || freebsd)

package fstree

import (
	"os"
	"syscall"
)

// sameFile: device and inode, from the stat results.
func sameFile(a, b os.FileInfo) bool { return os.SameFile(a, b) }

// identify: the lstat already gave the inode the hash cache keys on.
func identify(open func() (*os.File, error), e *Entry) error { return nil }

// skipUnreadableLinks: a symlink that cannot be read on Unix is an error
// worth reporting (permissions), as in the descriptor walk.
const skipUnreadableLinks = false

// openNonblock: a FIFO swapped in is opened without waiting for a writer
// (and then refused: it is not a regular file).
const openNonblock = syscall.O_NONBLOCK
