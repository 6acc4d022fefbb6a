package status

import (
	"errors"
	"syscall"
)

// refused reports a connection refused (WSAECONNREFUSED): nobody listens
// on the socket.
func refused(err error) bool { return errors.Is(err, syscall.Errno(10061)) }

// restrictSocket does nothing: Windows has no file modes for sockets;
// the per-user temp directory's ACL keeps other users out.
func restrictSocket(path string) error { return nil }
