package delta

import (
	"errors"
	"fmt"
	"io"
)

// ErrInvalidOp reports an op that does not fit the basis: an unknown kind,
// a block range outside it, or a literal that is empty or too long.
var ErrInvalidOp = errors.New("invalid delta op")

// copyBuf is the buffer for copying basis bytes when w cannot pull them
// itself (an *os.File destination takes the copy_file_range path instead).
const copyBuf = 128 << 10

// RangeCopier is a Patcher destination that copies basis bytes on its
// own: the agent clones or copies them in the kernel and never reads
// them through the Patcher's buffer. CopyRange appends the n basis bytes
// at off (already checked to lie inside the basis) and returns how many
// it appended.
type RangeCopier interface {
	io.Writer
	CopyRange(off, n int64) (int64, error)
}

// Patcher rebuilds a target from a basis and the ops Diff produced against
// that basis's signature. It needs only what the patching side knows: the
// basis, its size and the block size the signature was made with.
type Patcher struct {
	basis   io.ReaderAt
	size    int64
	bs      int
	nblocks int64
	w       io.Writer
	written int64
	buf     []byte
}

// NewPatcher returns a Patcher that writes the target to w, reading copied
// blocks from basis, which is basisSize bytes long and was signed with
// blocks of blockSize bytes. Sizes that no valid signature could have are
// reported by Apply as ErrInvalidSignature.
func NewPatcher(basis io.ReaderAt, basisSize int64, blockSize int, w io.Writer) *Patcher {
	return &Patcher{basis: basis, size: basisSize, bs: blockSize, nblocks: blockCount(basisSize, blockSize), w: w}
}

// Written returns the number of target bytes written so far.
func (p *Patcher) Written() int64 { return p.written }

// Apply writes the bytes op stands for. op comes off the wire: anything
// that does not fit the basis is an error wrapping ErrInvalidOp.
func (p *Patcher) Apply(op Op) error {
	switch op.Kind {
	case OpCopy:
		return p.copyBlocks(op.Block, op.Count)
	case OpLiteral:
		if len(op.Data) == 0 || len(op.Data) > MaxLiteral {
			return fmt.Errorf("delta: patch: %w: literal of %d bytes outside [1, %d]", ErrInvalidOp, len(op.Data), MaxLiteral)
		}
		n, err := p.w.Write(op.Data)
		p.written += int64(n)
		if err != nil {
			return fmt.Errorf("delta: patch: write literal: %w", err)
		}
		return nil
	}
	return fmt.Errorf("delta: patch: %w: unknown kind %d", ErrInvalidOp, uint8(op.Kind))
}

func (p *Patcher) copyBlocks(block uint64, count uint32) error {
	if err := checkShape(p.size, p.bs, MinStrongLen); err != nil {
		return fmt.Errorf("delta: patch: basis of %d bytes in blocks of %d: %w", p.size, p.bs, err)
	}
	nb := uint64(p.nblocks)
	if count == 0 || block >= nb || uint64(count) > nb-block {
		return fmt.Errorf("delta: patch: %w: copy of %d blocks at %d from a basis of %d", ErrInvalidOp, count, block, nb)
	}
	off := int64(block) * int64(p.bs)
	end := min(int64(block+uint64(count))*int64(p.bs), p.size)
	return p.copyRange(off, end)
}

// CopyAt writes the n basis bytes at off: a match of a finer, second
// signature round, which is not in whole blocks. Like Apply's ops, off
// and n come off the wire.
func (p *Patcher) CopyAt(off int64, n uint32) error {
	if n == 0 || off < 0 || off > p.size || int64(n) > p.size-off {
		return fmt.Errorf("delta: patch: %w: copy of %d bytes at %d from a basis of %d bytes", ErrInvalidOp, n, off, p.size)
	}
	return p.copyRange(off, off+int64(n))
}

// copyRange writes basis bytes [off, end).
func (p *Patcher) copyRange(off, end int64) error {
	var n int64
	var err error
	if rc, ok := p.w.(RangeCopier); ok {
		n, err = rc.CopyRange(off, end-off)
	} else {
		if want := int(min(end-off, copyBuf)); len(p.buf) < want {
			// Sized to the copies seen so far: a small patch stays small.
			p.buf = make([]byte, max(want, min(2*len(p.buf), copyBuf)))
		}
		// A SectionReader exposes its underlying *os.File, so an *os.File
		// destination copies in the kernel and never touches p.buf.
		n, err = io.CopyBuffer(p.w, io.NewSectionReader(p.basis, off, end-off), p.buf)
	}
	p.written += n
	if err != nil {
		return fmt.Errorf("delta: patch: copy %d bytes at %d: %w", end-off, off, err)
	}
	if n != end-off {
		return fmt.Errorf("delta: patch: copy %d bytes at %d: basis ended after %d: %w", end-off, off, n, io.ErrUnexpectedEOF)
	}
	return nil
}
