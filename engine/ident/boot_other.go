//go:build unix && !linux && !darwin && !freebsd

package ident

// Boot is unknown on this system: places compare with nothing.
func Boot() string { return "" }
