package fstree

import "bytes"

// ZeroBlock is the unit in which runs of zeros become holes: a block of
// the usual file systems, aligned on the file's offsets. A shorter run of
// zeros inside data would not free a block.
const ZeroBlock = 4096

var zeros [ZeroBlock]byte

// SplitZeros cuts b, the bytes of a file at offset off, into runs that
// are all zeros (whole ZeroBlock-aligned blocks, or the pieces of blocks
// at b's ends) and runs of data, and calls fn for each run in order.
func SplitZeros(b []byte, off int64, fn func(run []byte, zero bool) error) error {
	start, startZero := 0, false
	for i := 0; i < len(b); {
		j := min(len(b), i+ZeroBlock-int((off+int64(i))%ZeroBlock))
		z := bytes.Equal(b[i:j], zeros[:j-i])
		if i > start && z != startZero {
			if err := fn(b[start:i], startZero); err != nil {
				return err
			}
			start = i
		}
		if i == start {
			startZero = z
		}
		i = j
	}
	if start < len(b) {
		return fn(b[start:], startZero)
	}
	return nil
}
