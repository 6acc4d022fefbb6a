//go:build !unix

package cli

// umask: Windows has none; --chmod items without a class use chmod(1)'s
// usual 022.
func umask() uint32 { return 0o022 }
