//go:build !unix

package project

import "io/fs"

// checkOwner: Windows has no Unix owners or modes to check.
func checkOwner(fs.FileInfo) error { return nil }
