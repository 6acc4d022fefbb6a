//go:build unix

package cli

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// umask is the process's file creation mask, which --chmod items that
// name no class (+x) respect, as chmod(1) and rsync do. Linux reports it
// without changing it; elsewhere it is set and put back at once.
func umask() uint32 {
	if f, err := os.Open("/proc/self/status"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return uint32(m)
				}
			}
		}
	}
	old := syscall.Umask(0o022)
	syscall.Umask(old)
	return uint32(old)
}
