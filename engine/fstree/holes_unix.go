//go:build (linux || darwin || freebsd) && !gosync_portable

package fstree

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// NextData finds the first run of data at or after off in f, a file of
// size bytes, with SEEK_DATA and SEEK_HOLE: the data is [start, end);
// start == size when only a hole is left. ok is false when the system
// cannot tell (the file system does not support it): the caller reads
// everything from off as data. It moves f's offset.
func NextData(f *os.File, off, size int64) (start, end int64, ok bool) {
	if off >= size {
		return size, size, true
	}
	start, err := f.Seek(off, unix.SEEK_DATA)
	if err != nil {
		if errors.Is(err, unix.ENXIO) {
			return size, size, true // nothing but a hole up to the end
		}
		return off, size, false
	}
	if start >= size {
		return size, size, true
	}
	end, err = f.Seek(start, unix.SEEK_HOLE)
	if err != nil || end > size || end <= start {
		end = size
	}
	return start, end, true
}
