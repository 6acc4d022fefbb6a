package fstree

import (
	"os"
	"syscall"
)

// statSys on Windows: there are no Unix permission bits, owners or ctime.
// Go reports 0666 or 0444 (read-only attribute) for files and 0777 for
// directories; gosync sends what a Unix server expects of a web tree
// instead, 0644 and 0755, and marks the entry NoPerm so that a mirror's
// executable bits are kept (see engine's plan). Dev and Ino stay zero here;
// the walk fills Ino with the file index where it hashes (FileIndex).
func statSys(fi os.FileInfo, e *Entry) bool {
	switch e.Kind {
	case File:
		e.Perm = 0o644
	case Dir:
		e.Perm = 0o755
	case Symlink:
		e.Perm = 0o777
	}
	e.NoPerm = true
	return false
}

// Unlinked: Windows does not let a file open in gosync lose its name
// (deleting it only marks it for deletion), so this is never true.
func Unlinked(fi os.FileInfo) bool { return false }

// fileIndex fills e.Dev and e.Ino with the volume serial number and file
// index of the open file f: the identity Windows has, and what the hash
// cache keys on there.
func fileIndex(f *os.File, e *Entry) {
	var info syscall.ByHandleFileInformation
	if err := syscall.GetFileInformationByHandle(syscall.Handle(f.Fd()), &info); err != nil {
		return
	}
	e.Dev = uint64(info.VolumeSerialNumber)
	e.Ino = uint64(info.FileIndexHigh)<<32 | uint64(info.FileIndexLow)
}
