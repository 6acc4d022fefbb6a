package sshx

import "golang.org/x/sys/windows"

// Winsock reports a refused connection with its own code.
func errConnRefused() error { return windows.WSAECONNREFUSED }

func errConnReset() error { return windows.WSAECONNRESET }
