//go:build !windows

package status

import (
	"errors"
	"os"
	"syscall"
)

// refused reports a connection refused: nobody listens on the socket.
func refused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// restrictSocket makes the socket the user's alone (the directory is
// already; this holds if someone loosens it).
func restrictSocket(path string) error { return os.Chmod(path, 0o600) }
