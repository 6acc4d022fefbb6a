package ident

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// Boot: FreeBSD has no boot id; the host's UUID (kern.hostuuid) with the
// boot time to the microsecond (kern.boottime) stands in for one. Two
// clones of one VM image booted in the same microsecond would look alike.
var Boot = sync.OnceValue(func() string {
	host, err := unix.Sysctl("kern.hostuuid")
	if err != nil || host == "" {
		return ""
	}
	tv, err := unix.SysctlTimeval("kern.boottime")
	if err != nil {
		return ""
	}
	s := fmt.Sprintf("%s@%d.%06d", host, tv.Sec, tv.Usec)
	if len(s) > MaxBoot {
		return ""
	}
	return s
})
