package agent

import (
	"errors"
	"fmt"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gosync/gosync/engine/fstree"
)

const utimeOmit = unix.UTIME_OMIT

// openNode opens name in dirfd as an O_PATH descriptor with O_NOFOLLOW:
// a symlink is opened as itself, nothing is resolved past dirfd, no
// device or FIFO is opened for I/O, and no permission on the entry is
// needed. Everything after goes through this descriptor.
func openNode(dirfd int, name string) (*node, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	n := &node{fd: fd, own: true, dirfd: dirfd, name: name}
	if err := unix.Fstat(fd, &n.st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return n, nil
}

// oldKernel is set by tests to take the paths kernels before 6.6
// (fchmodat2) and 5.8 (utimensat with AT_EMPTY_PATH) take.
var oldKernel bool

// unsupported tells an answer of a kernel that lacks an *at form.
func unsupported(err error) bool {
	return errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL)
}

// procPath names the open file fd through /proc: a magic link that the
// kernel resolves to the file the descriptor holds, not by path, so it
// changes exactly the checked inode (glibc's lchmod does the same).
func procPath(fd int) string { return procFD + strconv.Itoa(fd) }

// procFD is where /proc shows this process's descriptors; tests point it
// elsewhere to take the path of a host without /proc.
var procFD = "/proc/self/fd/"

// chmod changes the checked inode's mode. fchmod refuses an O_PATH
// descriptor (EBADF); fchmodat2 with AT_EMPTY_PATH (Linux 6.6) takes it.
// Older kernels chmod it through /proc/self/fd; without /proc, the name
// is opened for reading without following and must still be the checked
// inode. Symlinks have no mode of their own on Linux: never asked.
func (n *node) chmod(mode uint32) error {
	if !n.own {
		return unix.Fchmod(n.fd, mode)
	}
	if n.kind() == fstree.Symlink {
		return unix.EOPNOTSUPP
	}
	if !oldKernel {
		err := unix.Fchmodat(n.fd, "", mode, unix.AT_EMPTY_PATH)
		// EPERM too: container seccomp profiles older than fchmodat2
		// answer so; a real EPERM comes back from the fallback as well.
		if !unsupported(err) && !errors.Is(err, unix.EPERM) {
			return err
		}
	}
	err := unix.Fchmodat(unix.AT_FDCWD, procPath(n.fd), mode, 0)
	if !errors.Is(err, unix.ENOENT) {
		return err
	}
	fd, err := n.reopen()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fchmod(fd, mode)
}

// chown changes the checked inode's owner (a symlink's own, for a
// symlink): fchownat takes an O_PATH descriptor with AT_EMPTY_PATH on
// every kernel since 2.6.39.
func (n *node) chown(uid, gid int) error {
	return unix.Fchownat(n.fd, "", uid, gid, unix.AT_EMPTY_PATH)
}

// setTimes sets the checked inode's mtime and leaves its atime. Kernels
// before 5.8 refuse AT_EMPTY_PATH here: a file or directory is then
// changed through /proc/self/fd, and a symlink (or a host without /proc)
// by name with AT_SYMLINK_NOFOLLOW, which never follows a link: at worst
// it sets the time of what the name holds by then, inside the mirror.
func (n *node) setTimes(mtime fstree.Time) error {
	m, err := unix.TimeToTimespec(mtime.Time())
	if err != nil {
		return fmt.Errorf("mtime %v does not fit this system's time_t: %w", mtime.Time(), err)
	}
	ts := []unix.Timespec{{Nsec: utimeOmit}, m}
	if !oldKernel {
		err := unix.UtimesNanoAt(n.fd, "", ts, unix.AT_EMPTY_PATH)
		if !unsupported(err) {
			return err
		}
	}
	if n.kind() != fstree.Symlink {
		err := unix.UtimesNanoAt(unix.AT_FDCWD, procPath(n.fd), ts, 0)
		if !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	return unix.UtimesNanoAt(n.dirfd, n.name, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// pipeSize is what the agent asks of the pipes it talks through. sshd
// hands a remote command pipes of 64 KiB: a 1 GiB file crosses the one
// into the agent in 16,384 fills, each a wake-up of the agent and then
// of sshd, and the two stall each other. With 1 MiB (the default
// /proc/sys/fs/pipe-max-size, so any user may ask for it) the same file
// over SSH took 2.8-3.1 s instead of 4.0-4.8 s on two cores.
const pipeSize = 1 << 20

// growPipe enlarges f's pipe to pipeSize if f is a pipe; anything else
// (a socket, a terminal, a pipe the system will not grow) is left as
// it is. It goes through SyscallConn, which leaves the descriptor's
// blocking mode alone (Fd would not).
func growPipe(f any) {
	sc, ok := f.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		if sz, err := unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0); err == nil && sz < pipeSize {
			unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize)
		}
	})
}
