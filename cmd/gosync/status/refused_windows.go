package status

import (
	"errors"
	"syscall"
)

// refused reports a connection refused (WSAECONNREFUSED): nobody listens
// on the socket.
func refused(err error) bool { return errors.Is(err, syscall.Errno(10061)) }
