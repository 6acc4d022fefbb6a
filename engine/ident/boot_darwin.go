package ident

import (
	"sync"

	"golang.org/x/sys/unix"
)

// Boot returns macOS's boot session UUID (kern.bootsessionuuid), new at
// every boot.
var Boot = sync.OnceValue(func() string {
	s, err := unix.Sysctl("kern.bootsessionuuid")
	if err != nil || len(s) > MaxBoot {
		return ""
	}
	return s
})
