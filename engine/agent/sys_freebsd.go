package agent

import "golang.org/x/sys/unix"

// nodeOpenFlags: O_NOFOLLOW refuses a symlink (EMLINK); openNode then
// checks and changes it by name.
const nodeOpenFlags = unix.O_RDONLY | unix.O_NOFOLLOW
