package fstree

import (
	"errors"

	"golang.org/x/sys/unix"
)

// openat2Beneath is OpenBeneath in one system call; done is false where the
// kernel cannot do it, and the caller walks instead.
func openat2Beneath(dirfd int, rel string, flags int) (fd int, done bool, err error) {
	if noOpenat2 {
		return -1, false, nil
	}
	how := unix.OpenHow{Flags: uint64(flags), Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	fd, err = unix.Openat2(dirfd, rel, &how)
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM) {
		return fd, true, err
	}
	noOpenat2 = true // seccomp filters and old kernels: fall back for good
	return -1, false, nil
}

var noOpenat2 bool
