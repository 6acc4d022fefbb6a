//go:build !linux

package cli

import "io"

// isJournal: systemd's journal is Linux only.
func isJournal(io.Writer) bool { return false }
