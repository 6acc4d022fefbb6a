//go:build !linux && !windows

package agent

// copier copies basis ranges into a temporary by reading and writing
// through a buffer: these systems have no copy_file_range the agent uses.
type copier struct {
	buf  []byte
	emit emitFunc // if set, told of what was written (copy_unix.go)
}

func (c *copier) copyRange(src, dst int, srcOff, dstOff, n int64) (int64, error) {
	return c.buffered(src, dst, srcOff, dstOff, n)
}
