//go:build !windows

package status

import (
	"errors"
	"syscall"
)

// refused reports a connection refused: nobody listens on the socket.
func refused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
