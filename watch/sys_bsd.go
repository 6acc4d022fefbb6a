//go:build darwin || freebsd

package watch

import (
	"io/fs"
	"os"
	"syscall"
)

// fileID identifies a directory across renames.
func fileID(fi fs.FileInfo) devIno {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return devIno{dev: uint64(st.Dev), ino: st.Ino}
	}
	return devIno{}
}

// changeTime is the inode change time in nanoseconds: a polled file whose
// size and mtime were put back is still seen as changed.
func changeTime(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ctimespec.Nano()
	}
	return 0
}

// watchLimitHelp: kqueue has no watch limit of its own; what runs out is
// descriptors (see descriptorLimitHelp).
func watchLimitHelp() (name, current, help string) {
	return "watch limit", "unknown", "raise the system's limit on watched files or directories"
}

// openDir opens a directory to list it. O_DIRECTORY: a FIFO put in its
// place since the lstat is refused (ENOTDIR) instead of blocking the
// watcher until a writer comes.
func openDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECTORY, 0)
}
