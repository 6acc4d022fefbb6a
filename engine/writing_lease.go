//go:build linux && !gosync_portable

package engine

import (
	"os"

	"golang.org/x/sys/unix"
)

// openForWriting reports whether some process has f's file open for
// writing, so that what it holds now may be half-written (a cp or a
// build in progress). Linux refuses a read lease with EAGAIN while any
// descriptor of the file is open for writing; the lease is dropped again
// at once, so a writer that opens the file meanwhile waits for
// microseconds, not for the lease-break timeout. A lease needs the
// caller to own the file (or CAP_LEASE) and a file system that supports
// leases; where one cannot be had the answer is "no", and the file is
// sent as it is, as before.
func openForWriting(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	busy := false
	rc.Control(func(fd uintptr) {
		if e := fcntlInt(fd, unix.F_SETLEASE, unix.F_RDLCK); e != nil {
			busy = e == unix.EAGAIN
			return
		}
		fcntlInt(fd, unix.F_SETLEASE, unix.F_UNLCK)
	})
	return busy
}

func fcntlInt(fd uintptr, cmd, arg int) error {
	_, err := unix.FcntlInt(fd, cmd, arg)
	return err
}
