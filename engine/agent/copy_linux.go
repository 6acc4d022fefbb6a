package agent

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// copier copies basis ranges into a temporary. On Linux it first clones
// what it can (FICLONERANGE: XFS, btrfs and others share the blocks, so a
// copy costs no data I/O and no space), then lets copy_file_range copy
// the rest in the kernel (a server-side copy on network file systems),
// and reads and writes through a buffer where neither works, and on
// tmpfs: there copy_file_range took two to three times the wall time of
// pread and pwrite for the same CPU (1 GiB: 5.1 s against 1.7 s, 2.1 s
// against 0.7 s). What fails once for a file is not tried again.
type copier struct {
	noClone, noKernel bool
	checked           bool  // the file system was looked at
	align             int64 // the file system's block size, for clones
	buf               []byte
	emit              emitFunc // if set, told of what was written (copy_unix.go)
}

// cloneMin: below this a clone saves too little to be worth its call.
const cloneMin = 64 << 10

func (c *copier) copyRange(src, dst int, srcOff, dstOff, n int64) (int64, error) {
	if !c.checked {
		c.checked = true
		var fs unix.Statfs_t
		if unix.Fstatfs(dst, &fs) == nil && fs.Type == unix.TMPFS_MAGIC {
			c.noClone, c.noKernel = true, true
		}
	}
	done := int64(0)
	if !c.noClone && n >= cloneMin {
		if c.align == 0 {
			var st unix.Stat_t
			if err := unix.Fstat(dst, &st); err != nil || st.Blksize <= 0 {
				c.noClone = true
			} else {
				c.align = int64(st.Blksize)
			}
		}
		// Both offsets must sit at the same place in a block; then the
		// whole blocks between the edges are cloned.
		if a := c.align; a > 0 && (srcOff-dstOff)%a == 0 {
			head := (a - srcOff%a) % a
			body := (n - head) / a * a
			if body >= cloneMin {
				m, err := c.kernel(src, dst, srcOff, dstOff, head)
				if done += m; err != nil || m < head {
					return done, err
				}
				if c.clone(src, dst, srcOff+done, dstOff+done, body) {
					c.emitKernel(dst, dstOff+done, body)
					done += body
				}
			}
		}
	}
	m, err := c.kernel(src, dst, srcOff+done, dstOff+done, n-done)
	return done + m, err
}

func (c *copier) clone(src, dst int, srcOff, dstOff, n int64) bool {
	err := unix.IoctlFileCloneRange(dst, &unix.FileCloneRange{
		Src_fd: int64(src), Src_offset: uint64(srcOff), Src_length: uint64(n), Dest_offset: uint64(dstOff),
	})
	if err != nil {
		// Not supported here, another file system, or blocks it will
		// not share: copy from now on.
		c.noClone = true
		return false
	}
	return true
}

// kernel copies with copy_file_range, falling back to buffered reads
// and writes; it returns short only at the end of the basis.
func (c *copier) kernel(src, dst int, srcOff, dstOff, n int64) (int64, error) {
	done := int64(0)
	for !c.noKernel && done < n {
		roff, woff := srcOff+done, dstOff+done
		m, err := unix.CopyFileRange(src, &roff, dst, &woff, int(min(n-done, 1<<30)), 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			if done == 0 && fallbackErr(err) {
				c.noKernel = true
				break
			}
			return done, &os.PathError{Op: "copy", Path: "basis", Err: err}
		}
		if m == 0 {
			return done, nil
		}
		c.emitKernel(dst, dstOff+done, int64(m))
		done += int64(m)
	}
	m, err := c.buffered(src, dst, srcOff+done, dstOff+done, n-done)
	return done + m, err
}

// emitKernel tells the hasher of a range the kernel cloned or copied,
// which it reads back from the temporary. A clone's blocks are in no page
// cache (the cache is per file and the temporary is new), so that read
// goes to the device: the hint starts it now, while the hasher is still
// on the ranges before, instead of one readahead window at a time as the
// hasher's reads reach it. A range already cached costs a lookup.
func (c *copier) emitKernel(dst int, off, n int64) {
	if c.emit == nil {
		return
	}
	_ = unix.Fadvise(dst, off, n, unix.FADV_WILLNEED) // only a hint
	c.emit(off, n, nil)
}

func fallbackErr(err error) bool {
	return errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EOPNOTSUPP) ||
		errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EPERM)
}
