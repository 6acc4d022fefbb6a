//go:build !windows

package agent

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/gosync/gosync/engine/fstree"
)

// node is one entry of the mirror, opened without following a symbolic
// link and checked through its descriptor, so every later change lands
// on the inode that was checked and never on what the name may point to
// by then: another user of the mirror host who can write a directory of
// the mirror can swap any name in it for a symlink to a file outside ROOT
// (renameat2 RENAME_EXCHANGE) between a check by name and a change by
// name. How the descriptor is opened and changed is the platform's
// (sys_linux.go, sys_bsd.go).
type node struct {
	fd    int // the entry; -1 where the platform could only check it by name
	own   bool
	dirfd int    // its directory (not ours to close)
	name  string // and its name there
	st    unix.Stat_t
}

func (n *node) kind() fstree.Kind { return kindOf(uint32(n.st.Mode)) }

// perm is the entry's permission bits as checked.
func (n *node) perm() uint32 { return uint32(n.st.Mode) & 07777 }

// linked tells a file with more than one name: a change made in place
// would reach the other names too, and they may be outside ROOT.
func (n *node) linked() bool { return n.kind() != fstree.Dir && uint64(n.st.Nlink) > 1 }

func (n *node) close() {
	if n.own && n.fd >= 0 {
		unix.Close(n.fd)
	}
	n.fd = -1
}

// same tells whether st describes the inode n was checked as.
func (n *node) same(st *unix.Stat_t) bool { return st.Dev == n.st.Dev && st.Ino == n.st.Ino }

// reopen opens n's inode for reading (a hard-linked file rewritten under
// a new inode reads its content here). The name is opened again without
// following a symlink and must still be the inode n checked.
func (n *node) reopen() (int, error) {
	fd, err := unix.Openat(n.dirfd, n.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EMLINK) || errors.Is(err, unix.ENOENT) {
		return -1, fmt.Errorf("%w: replaced while being changed", errMismatch) // EMLINK: FreeBSD's answer to O_NOFOLLOW
	}
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if !n.same(&st) {
		unix.Close(fd)
		return -1, fmt.Errorf("%w: replaced while being changed", errMismatch)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// fileNode is a node of a file the agent has open for writing (its own
// temporary): its descriptor is the file, whatever its name holds.
func fileNode(fd, dirfd int, name string) (*node, error) {
	n := &node{fd: fd, dirfd: dirfd, name: name}
	if err := unix.Fstat(fd, &n.st); err != nil {
		return nil, err
	}
	return n, nil
}
