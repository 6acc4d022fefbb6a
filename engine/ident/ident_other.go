//go:build !unix

package ident

// Locate cannot tell a directory's identity here (Windows: no agent runs
// on it and no inode numbers are at hand): the place is unknown and
// compares with nothing.
func Locate(dir string) (Place, error) { return Place{}, nil }

// Boot is unknown.
func Boot() string { return "" }
