package ident

import (
	"os"
	"strings"
	"sync"
)

// Boot returns the kernel's random boot id, new at every boot: two
// processes that read the same one run on the same kernel, so their
// device and inode numbers name the same files (containers share it with
// their host, and so do their files' numbers).
var Boot = sync.OnceValue(func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(string(b))
	if len(s) > MaxBoot {
		return ""
	}
	return s
})
