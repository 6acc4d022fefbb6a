//go:build darwin || freebsd

package agent

import "golang.org/x/sys/unix"

// utimeOmit is UTIME_OMIT of <sys/stat.h> (-2 on macOS, which x/sys/unix
// does not name; FreeBSD's is the same value): leave atime alone.
const utimeOmit = -2

// chmodNoFollow: macOS and FreeBSD refuse to chmod through a symlink
// when asked, which closes the gap between the caller's lstat and the
// chmod that Linux leaves open.
const chmodNoFollow = unix.AT_SYMLINK_NOFOLLOW
