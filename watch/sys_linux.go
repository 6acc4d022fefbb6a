package watch

import (
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// fileID identifies a directory across renames: the watch limit is per
// inode, and inotify hands out the same watch for the same inode.
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
		return st.Ctim.Nano()
	}
	return 0
}

const maxWatchesFile = "/proc/sys/fs/inotify/max_user_watches"

// watchLimitHelp returns the current limit and how to raise it, for the
// warning logged when it is reached.
func watchLimitHelp() (current, help string) {
	current = "unknown"
	if b, err := os.ReadFile(maxWatchesFile); err == nil {
		current = strings.TrimSpace(string(b))
	}
	help = "raise it with `sudo sysctl fs.inotify.max_user_watches=524288`; " +
		"to keep it after a reboot, `echo fs.inotify.max_user_watches=524288 | sudo tee /etc/sysctl.d/90-gosync.conf`"
	return current, help
}

// openDir opens a directory to list it. O_DIRECTORY: a FIFO put in its
// place since the lstat is refused (ENOTDIR) instead of blocking the
// watcher until a writer comes.
func openDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECTORY, 0)
}
