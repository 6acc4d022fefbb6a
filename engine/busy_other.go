//go:build !windows

package engine

// fileBusy: on Unix, opening a file for reading does not fail because
// another process writes it.
func fileBusy(err error) bool { return false }
