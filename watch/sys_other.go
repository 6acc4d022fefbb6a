//go:build !linux && !darwin && !freebsd

package watch

import (
	"io/fs"
	"os"
)

// fileID and changeTime: Windows stat results carry no inode or ctime;
// polling compares size, mtime and mode there.
func fileID(fs.FileInfo) devIno { return devIno{} }

func changeTime(fs.FileInfo) int64 { return 0 }

func watchLimitHelp() (name, current, help string) {
	return "watch limit", "unknown", "raise the system's limit on watched files or directories"
}

// openDir opens a directory to list it (Windows has no FIFOs in the file
// system).
func openDir(path string) (*os.File, error) { return os.Open(path) }
