package engine

import (
	"errors"
	"syscall"
)

// fileBusy reports whether opening a source file failed because another
// process has it open without sharing (ERROR_SHARING_VIOLATION or
// ERROR_LOCK_VIOLATION): on Windows that is how a file still being
// written usually looks, so it is held like one, not reported.
func fileBusy(err error) bool {
	return errors.Is(err, syscall.Errno(32)) || errors.Is(err, syscall.Errno(33))
}
