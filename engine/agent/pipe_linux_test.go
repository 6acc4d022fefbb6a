package agent

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// The agent grows the pipes sshd gives it (64 KiB) to pipeSize before
// it answers the handshake, both the one it reads and the one it writes.
func TestServeGrowsPipes(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if n := pipeBytes(t, r); n >= pipeSize {
		t.Fatalf("a new pipe already holds %d bytes: the test shows nothing", n)
	}
	r.Close()
	w.Close()
	_, ar, aw := servePipes(t, t.TempDir(), 0)
	if a, b := pipeBytes(t, ar), pipeBytes(t, aw); a != pipeSize || b != pipeSize {
		t.Errorf("pipes after the handshake: %d and %d bytes, want %d", a, b, pipeSize)
	}
}

// pipeBytes is what f's pipe holds (F_GETPIPE_SZ), asked through
// SyscallConn so that f stays non-blocking while the agent reads it.
func pipeBytes(t *testing.T, f *os.File) (n int) {
	t.Helper()
	rc, err := f.SyscallConn()
	if err == nil {
		rc.Control(func(fd uintptr) { n, err = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0) })
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}
