//go:build unix

package project

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkOwner refuses a found project file that another user could have
// written: one owned by someone else (but root), or writable by group or
// others. A gosync.yaml in a shared parent such as /tmp could otherwise
// send the user's files to anyone's host (git refuses repositories of
// other owners for the same reason).
func checkOwner(fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := int(st.Uid); uid != os.Geteuid() && uid != 0 {
		return fmt.Errorf("owned by uid %d, not by you (uid %d)", uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("group or others can write it (mode %#o)", fi.Mode().Perm())
	}
	return nil
}
