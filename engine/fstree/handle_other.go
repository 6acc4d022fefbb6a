//go:build !windows

package fstree

import "os"

// fromHandle: a Unix stat already carries the inode and ctime.
func fromHandle(f *os.File, e *Entry) {}
