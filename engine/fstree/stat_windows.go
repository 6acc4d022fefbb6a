package fstree

import (
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// statSys on Windows: there are no Unix permission bits or owners, and
// the stat carries no change time (fileIndex asks the open handle for it).
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

// fromHandle: see StatOpen.
func fromHandle(f *os.File, e *Entry) { fileIndex(f, e) }

// fileIndex fills e.Dev and e.Ino with the volume serial number and file
// index of the open file f, the identity Windows has, and e.CtimeNs with
// NTFS's change time, which (like a Unix ctime) moves on every write and
// cannot be set through the usual APIs. The hash cache keys on these.
func fileIndex(f *os.File, e *Entry) {
	h := windows.Handle(f.Fd())
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		return
	}
	e.Dev = uint64(info.VolumeSerialNumber)
	e.Ino = uint64(info.FileIndexHigh)<<32 | uint64(info.FileIndexLow)
	var basic fileBasicInfo
	if err := windows.GetFileInformationByHandleEx(h, windows.FileBasicInfo, (*byte)(unsafe.Pointer(&basic)), uint32(unsafe.Sizeof(basic))); err == nil && basic.ChangeTime != 0 {
		e.CtimeNs = (basic.ChangeTime - unixEpochFiletime) * 100
	}
}

// fileBasicInfo is FILE_BASIC_INFO; times are FILETIMEs (100 ns since 1601).
type fileBasicInfo struct {
	CreationTime, LastAccessTime, LastWriteTime, ChangeTime int64
	FileAttributes                                          uint32
	_                                                       uint32
}

// unixEpochFiletime is 1970-01-01 as a FILETIME.
const unixEpochFiletime = 116444736000000000
