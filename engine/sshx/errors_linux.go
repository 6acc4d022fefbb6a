package sshx

import "syscall"

func errConnRefused() error { return syscall.ECONNREFUSED }
