//go:build !linux

package watch

import (
	"errors"
	"io/fs"
	"syscall"
)

func fileID(fs.FileInfo) devIno { return devIno{} }

func changeTime(fs.FileInfo) int64 { return 0 }

func isWatchLimit(err error) bool { return errors.Is(err, syscall.ENOSPC) }

func watchLimitHelp() (current, help string) {
	return "unknown", "raise the system's limit on watched files or directories"
}
