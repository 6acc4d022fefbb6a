package agent

import "golang.org/x/sys/unix"

// nodeOpenFlags: O_SYMLINK opens a symlink itself instead of its target.
const nodeOpenFlags = unix.O_RDONLY | unix.O_SYMLINK
