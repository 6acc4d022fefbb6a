//go:build linux || darwin || freebsd

package fstree

import (
	"strings"

	"golang.org/x/sys/unix"
)

// OpenBeneath opens rel below the directory open as dirfd with flags
// (O_CLOEXEC is added), refusing any symbolic link on the way, final
// component included, and any path that would leave dirfd's tree. It is
// one openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) call where the kernel
// has it (Linux 5.6+), and a walk with O_NOFOLLOW at each step elsewhere
// (older kernels, seccomp sandboxes, macOS and FreeBSD agents).
// rel "" or "." opens dirfd's directory itself.
func OpenBeneath(dirfd int, rel string, flags int) (int, error) {
	if rel == "" {
		rel = "."
	}
	flags |= unix.O_CLOEXEC
	if fd, done, err := openat2Beneath(dirfd, rel, flags); done {
		return fd, err
	}
	return openWalk(dirfd, rel, flags)
}

func openWalk(dirfd int, rel string, flags int) (int, error) {
	parts := strings.Split(rel, "/")
	cur, owned := dirfd, false
	for i, p := range parts {
		if p == ".." || p == "" {
			if owned {
				unix.Close(cur)
			}
			return -1, unix.EXDEV // as openat2 answers an escape
		}
		f := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if i == len(parts)-1 {
			f = flags | unix.O_NOFOLLOW
		}
		fd, err := unix.Openat(cur, p, f, 0)
		if owned {
			unix.Close(cur)
		}
		if err != nil {
			return -1, err
		}
		cur, owned = fd, true
	}
	return cur, nil
}
