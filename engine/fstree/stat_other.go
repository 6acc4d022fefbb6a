//go:build !linux && !darwin && !freebsd && !windows

package fstree

import "os"

// statSys: on systems gosync is not built for, nothing beyond os.FileInfo.
func statSys(fi os.FileInfo, e *Entry) bool { return false }

// Unlinked cannot be known here.
func Unlinked(fi os.FileInfo) bool { return false }
