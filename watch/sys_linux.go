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

const (
	maxWatchesFile = "/proc/sys/fs/inotify/max_user_watches"
	// nsWatchesFile is the limit of the user namespace the process runs
	// in (a container): inside one, it applies on top of the host's, and
	// its root can raise it.
	nsWatchesFile = "/proc/sys/user/max_inotify_watches"
	uidMapFile    = "/proc/self/uid_map"
)

// watchLimitHelp names the limit that was reached, its current value and
// how to raise it, for the warning logged when it is reached.
func watchLimitHelp() (name, current, help string) {
	if inUserNamespace(uidMapFile) {
		ns := readLimit(nsWatchesFile)
		return "user.max_inotify_watches", ns,
			"gosync runs in a user namespace (a container), whose own limit " + nsWatchesFile + " (" + ns + ") applies besides the host's fs.inotify.max_user_watches (" +
				readLimit(maxWatchesFile) + "): raise it as the namespace's root with `echo 524288 > " + nsWatchesFile + "`; the host's can only be raised on the host"
	}
	return "fs.inotify.max_user_watches", readLimit(maxWatchesFile),
		"raise it with `sudo sysctl fs.inotify.max_user_watches=524288`; " +
			"to keep it after a reboot, `echo fs.inotify.max_user_watches=524288 | sudo tee /etc/sysctl.d/90-gosync.conf`"
}

func readLimit(file string) string {
	if b, err := os.ReadFile(file); err == nil {
		return strings.TrimSpace(string(b))
	}
	return "unknown"
}

// inUserNamespace reports whether the process runs in a user namespace
// other than the initial one, whose uid_map maps every id to itself.
func inUserNamespace(uidMap string) bool {
	b, err := os.ReadFile(uidMap)
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
}

// openDir opens a directory to list it. O_DIRECTORY: a FIFO put in its
// place since the lstat is refused (ENOTDIR) instead of blocking the
// watcher until a writer comes.
func openDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECTORY, 0)
}
