//go:build unix

package sshx

import "syscall"

func errConnRefused() error { return syscall.ECONNREFUSED }

func errConnReset() error { return syscall.ECONNRESET }
