//go:build !linux

package sshx

import "net"

// quickAcker is nil here: TCP_QUICKACK is Linux's (quickack_linux.go).
func quickAcker(net.Conn) func() error { return nil }
