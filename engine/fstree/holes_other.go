//go:build !(linux || darwin || freebsd) || gosync_portable

package fstree

import "os"

// NextData cannot find holes here: everything from off is data, and the
// caller reads it (finding runs of zeros itself).
func NextData(f *os.File, off, size int64) (start, end int64, ok bool) {
	return off, size, false
}
