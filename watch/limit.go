package watch

import (
	"errors"
	"syscall"
)

// limit is what ran out when a watch could not be added.
type limit uint8

const (
	noLimit limit = iota
	// inotifyLimit: the user's inotify watches (ENOSPC), on Linux.
	inotifyLimit
	// descriptorLimit: open files, of the process (EMFILE) or of the
	// system (ENFILE). kqueue, which fsnotify uses on macOS and the BSDs,
	// holds one descriptor per watched directory and per file in it, so a
	// big tree runs out of descriptors long before anything else.
	descriptorLimit
)

// limitOf classifies an error of adding a watch. Either limit means the
// same to the watcher: poll what could not be watched.
func limitOf(err error) limit {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return inotifyLimit
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return descriptorLimit
	}
	return noLimit
}

// descriptorLimitHelp returns the process's open-files limit and how to
// raise it, for the warning logged when it is reached. Go already raises
// the soft limit to the hard one at start, so what is left to raise is
// the hard limit (the shell's and, on macOS, launchd's).
func descriptorLimitHelp() (current, help string) {
	return openFilesLimit(), "raise it with `ulimit -n 65536` in the shell that starts gosync; " +
		"on macOS the system caps it too: see `launchctl limit maxfiles` and raise it with `sudo launchctl limit maxfiles 65536 200000` " +
		"(or `sudo sysctl kern.maxfiles=200000 kern.maxfilesperproc=100000`)"
}
