//go:build unix

package watch

import (
	"strconv"
	"syscall"
)

// openFilesLimit is the process's current RLIMIT_NOFILE.
func openFilesLimit() string {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return "unknown"
	}
	return strconv.FormatUint(uint64(rl.Cur), 10)
}
