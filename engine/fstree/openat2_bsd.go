//go:build darwin || freebsd

package fstree

// openat2Beneath: macOS and FreeBSD have no openat2, so OpenBeneath always
// walks component by component with O_NOFOLLOW.
func openat2Beneath(dirfd int, rel string, flags int) (int, bool, error) { return -1, false, nil }
