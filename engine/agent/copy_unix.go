//go:build !windows

package agent

import (
	"os"

	"golang.org/x/sys/unix"
)

const copyBuf = 256 << 10

// emitFunc is told of every range a copier put on the temporary, in
// order: with data, the bytes it wrote through its buffer (the callee
// takes them and returns a buffer of copyBuf bytes for the next read);
// without, a range the kernel copied or cloned, which only a read of the
// temporary can show (it returns nil then).
type emitFunc func(off, n int64, data []byte) []byte

// buffered copies n bytes with pread and pwrite; short only at the end
// of the basis.
func (c *copier) buffered(src, dst int, srcOff, dstOff, n int64) (int64, error) {
	if n > 0 && c.buf == nil {
		c.buf = make([]byte, copyBuf)
	}
	done := int64(0)
	for done < n {
		m, err := unix.Pread(src, c.buf[:min(n-done, int64(len(c.buf)))], srcOff+done)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, &os.PathError{Op: "read", Path: "basis", Err: err}
		}
		if m == 0 {
			return done, nil
		}
		if err := pwriteAll(dst, c.buf[:m], dstOff+done); err != nil {
			return done, err
		}
		if c.emit != nil {
			c.buf = c.emit(dstOff+done, int64(m), c.buf[:m])
		}
		done += int64(m)
	}
	return done, nil
}
