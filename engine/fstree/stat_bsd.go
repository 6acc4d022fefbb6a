//go:build darwin || freebsd

package fstree

import (
	"os"
	"syscall"
)

// statSys fills what only the system's stat has: owner, inode identity, ctime.
func statSys(fi os.FileInfo, e *Entry) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	e.Uid, e.Gid = st.Uid, st.Gid
	e.Dev, e.Ino = uint64(st.Dev), uint64(st.Ino)
	e.CtimeNs = st.Ctimespec.Nano()
	return true
}

// Unlinked reports whether fi (from File.Stat) describes a file that no
// longer has a name.
func Unlinked(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Nlink == 0
}
