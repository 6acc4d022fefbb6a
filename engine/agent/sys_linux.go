package agent

import "golang.org/x/sys/unix"

const utimeOmit = unix.UTIME_OMIT

// chmodNoFollow: Linux's fchmodat cannot refuse a symlink (x/sys answers
// EOPNOTSUPP to AT_SYMLINK_NOFOLLOW), so the callers lstat the name in
// the same directory descriptor first and only chmod what is not a link.
const chmodNoFollow = 0
