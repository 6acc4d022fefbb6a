//go:build darwin || freebsd

package agent

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/gosync/gosync/engine/fstree"
)

// utimeOmit is UTIME_OMIT of <sys/stat.h> (-2 on macOS, which x/sys/unix
// does not name; FreeBSD's is the same value): leave atime alone.
const utimeOmit = -2

// openNode opens name in dirfd for reading without following a symlink
// (nodeOpenFlags: O_SYMLINK on macOS opens a symlink as itself, O_NOFOLLOW
// on FreeBSD refuses it), non-blocking (a FIFO swapped in never holds the
// agent) and without taking a terminal. An entry that cannot be opened
// that way (a symlink on FreeBSD, a file this user may not read, a
// socket) is checked and changed by name instead: macOS and FreeBSD honour
// AT_SYMLINK_NOFOLLOW for chmod, chown and utimes alike, so a symlink
// swapped in is changed itself, never followed.
func openNode(dirfd int, name string) (*node, error) {
	n := &node{fd: -1, dirfd: dirfd, name: name}
	fd, err := unix.Openat(dirfd, name, nodeOpenFlags|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err == nil {
		if err := unix.Fstat(fd, &n.st); err != nil {
			unix.Close(fd)
			return nil, err
		}
		n.fd, n.own = fd, true
		return n, nil
	}
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil, err
	}
	if err := unix.Fstatat(dirfd, name, &n.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *node) chmod(mode uint32) error {
	if n.fd >= 0 {
		return unix.Fchmod(n.fd, mode)
	}
	return unix.Fchmodat(n.dirfd, n.name, mode, unix.AT_SYMLINK_NOFOLLOW)
}

func (n *node) chown(uid, gid int) error {
	if n.fd >= 0 {
		return unix.Fchown(n.fd, uid, gid)
	}
	return unix.Fchownat(n.dirfd, n.name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
}

// setTimes sets the mtime by name with AT_SYMLINK_NOFOLLOW (x/sys/unix
// has no futimens for macOS, and futimes would cut the nanoseconds the
// client compares): it never follows a link; at worst it sets the time
// of what the name holds by then, inside the mirror.
func (n *node) setTimes(mtime fstree.Time) error {
	m, err := unix.TimeToTimespec(mtime.Time())
	if err != nil {
		return fmt.Errorf("mtime %v does not fit this system's time_t: %w", mtime.Time(), err)
	}
	ts := []unix.Timespec{{Nsec: utimeOmit}, m}
	return unix.UtimesNanoAt(n.dirfd, n.name, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// growPipe does nothing here: these systems have no call that sizes a
// pipe (F_SETPIPE_SZ is Linux's).
func growPipe(any) {}
