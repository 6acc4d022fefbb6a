//go:build !linux || gosync_portable

package engine

import "os"

// openForWriting: only Linux can tell whether another process has a file
// open for writing (a read lease is refused then; see writing_lease.go).
// macOS, FreeBSD and Windows have no such question to ask without
// scanning every process's descriptors, so the answer is "no" and the file
// is sent as it is, as on Linux when a lease cannot be had. On Windows a
// writer that opened the file without read sharing makes the open fail,
// which is held (see fileBusy), not reported.
func openForWriting(f *os.File) bool { return false }
