//go:build !windows

package status

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

func userID() string { return strconv.Itoa(os.Getuid()) }

// checkPrivate refuses a directory of another user, or one that its
// group or others may use.
func checkPrivate(dir string, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("status directory %s belongs to user %d, not to you (%d); remove it", dir, st.Uid, os.Getuid())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("status directory %s has mode %04o; make it private: chmod 700 %s", dir, fi.Mode().Perm(), dir)
	}
	return nil
}
