package sshx

import (
	"net"

	"golang.org/x/sys/unix"
)

// quickAcker returns what makes Linux acknowledge the data just read
// from c at once rather than up to 40 ms later, or nil if c is no TCP
// connection.
//
// sshd sends with Nagle's algorithm on outside interactive sessions: a
// small segment waits until everything sent before it is acknowledged.
// After authentication it sends two messages in a row; the second waited
// for the client's delayed ACK of the first, 40-44 ms on every
// connection (seen with tcpdump on loopback: the session's channel could
// open only after it). The agent's handshake and every small answer
// after it met the same wait. TCP_QUICKACK is not sticky (the kernel
// falls back to delayed ACKs on its own), so it is set after every read:
// one setsockopt per read, nothing next to the read itself.
func quickAcker(c net.Conn) func() error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return func() error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1) }); err != nil {
			return err
		}
		return serr
	}
}
