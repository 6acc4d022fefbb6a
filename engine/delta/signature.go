package delta

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"

	"github.com/zeebo/xxh3"
)

// Limits that every signature, local or decoded, must respect.
const (
	// MaxBlockSize is the largest block length; like rsync, bigger files get
	// more blocks rather than longer ones so one edit never costs more than
	// a bounded literal.
	MaxBlockSize = 128 << 10
	// MinStrongLen and MaxStrongLen bound the kept prefix of the 128-bit
	// per-block hash.
	MinStrongLen = 4
	MaxStrongLen = 16
	// MaxBlocks caps the block count so that a decoded or requested
	// signature cannot ask for unbounded memory (16 Mi blocks of 128 KiB is
	// 2 TiB of basis).
	MaxBlocks = 1 << 24
)

// minBlockSize is rsync's floor: below it the per-block signature overhead
// outweighs what smaller literals save.
const minBlockSize = 700

// Two signature rounds: a big changed file is first diffed against a
// signature of CoarseBlockSize blocks (a quarter of the default's
// bytes), then each stretch of the target left unmatched is diffed again
// against a signature, in FineBlockSize blocks, of the stretch of the
// basis it replaced (the blocks between the matches around it). An edit
// then costs a fine block of literal bytes, not a default block.
const (
	// RefineMin is the smallest basis worth a second round.
	RefineMin = 1 << 20
	// MinFineBlock is the smallest block a signature may be asked for.
	MinFineBlock = 256
	// MaxRequestedBlocks bounds the blocks of a signature whose block
	// size the peer chose, so a hostile request costs bounded memory.
	MaxRequestedBlocks = 1 << 20
)

// CoarseBlockSize is the block length of a first round that a second
// one follows: four default blocks, at most MaxBlockSize.
func CoarseBlockSize(size int64) int { return min(MaxBlockSize, 4*BlockSize(size)) }

// FineBlockSize is the block length of the second round after a first
// one in blocks of coarse bytes.
func FineBlockSize(coarse int) int { return max(MinFineBlock, coarse/128&^7) }

// sigVersion is the first byte of an encoded signature.
const sigVersion = 1

// ErrInvalidSignature reports a signature that is malformed or out of range,
// whether it was decoded from the wire or built by a caller.
var ErrInvalidSignature = errors.New("invalid signature")

// ErrBasisSize reports a basis reader that did not yield exactly the
// declared number of bytes.
var ErrBasisSize = errors.New("basis length differs from declared size")

// BlockSize returns the block length used for a basis of the given size:
// about sqrt(size) rounded down to a multiple of 8, clamped to
// [700, MaxBlockSize] (rsync's choice, which balances signature bytes
// against the literal cost of one edit).
func BlockSize(size int64) int {
	if size <= minBlockSize*minBlockSize {
		return minBlockSize
	}
	if size >= int64(MaxBlockSize)*MaxBlockSize {
		return MaxBlockSize
	}
	bs := isqrt(uint64(size)) &^ 7
	return max(minBlockSize, min(int(bs), MaxBlockSize))
}

func isqrt(x uint64) uint64 {
	// Newton's method from a power of two above the root; exact for uint64.
	if x < 2 {
		return x
	}
	r := uint64(1) << ((bits.Len64(x) + 1) / 2)
	for {
		n := (r + x/r) / 2
		if n >= r {
			return r
		}
		r = n
	}
}

// strongBias is how many bits of margin the strong sum keeps over the
// number of (target position, block) pairs it may be compared against.
// rsync uses 10; a little more costs at most one byte a block.
const strongBias = 16

// weakCredit is how many of the weak sum's 32 bits count as filtering
// before the strong sum is consulted. rsync credits all 32; its a/b sums
// are poorer than that on text, so we credit 24.
const weakCredit = 24

// StrongLen returns how many bytes of the per-block strong hash to keep for
// a basis of that size: enough bits, with the weak sum's, for
// log2(size * blocks) plus a margin, between MinStrongLen and MaxStrongLen
// bytes. Signatures are most of what a delta of a big file costs on the
// wire, and a false block match is not a corruption: the whole-file hash
// catches it and the engine sends that file again whole. For 100 MiB this
// is 5 bytes (a 9-byte block entry; rsync's is about 7).
func StrongLen(size int64) int { return StrongLenFor(size, BlockSize(size)) }

// StrongLenFor is StrongLen for blocks of bs bytes: a target of size
// bytes compared against as many blocks as a basis of that size has.
func StrongLenFor(size int64, bs int) int {
	if size <= 0 || bs <= 0 {
		return MinStrongLen
	}
	nb := (size + int64(bs) - 1) / int64(bs)
	need := bits.Len64(uint64(size)) + bits.Len64(uint64(nb)) + strongBias - weakCredit
	return max(MinStrongLen, min((need+7)/8, MaxStrongLen))
}

// Signature describes a basis file block by block: a rolling weak checksum
// to find candidate positions cheaply and a truncated strong hash to
// confirm them.
type Signature struct {
	BlockSize int
	StrongLen int
	Size      int64    // basis length in bytes; the last block may be short
	Weak      []uint32 // one per block
	Strong    []byte   // len(Weak)*StrongLen bytes, block i at [i*StrongLen:(i+1)*StrongLen]
}

// Blocks returns the number of blocks a signature of this size and block
// size has.
func (s *Signature) Blocks() int64 {
	return blockCount(s.Size, s.BlockSize)
}

func blockCount(size int64, bs int) int64 {
	if bs <= 0 || size <= 0 {
		return 0
	}
	n := size / int64(bs)
	if size%int64(bs) != 0 {
		n++
	}
	return n
}

// blockLen is the length of block i; only the last one may be short.
func (s *Signature) blockLen(i int64) int {
	off := i * int64(s.BlockSize)
	return int(min(int64(s.BlockSize), s.Size-off))
}

func (s *Signature) strongOf(i int64) []byte {
	o := int(i) * s.StrongLen
	return s.Strong[o : o+s.StrongLen]
}

// checkShape validates everything but the slices, so SignWith can reject bad
// parameters before reading the basis.
func checkShape(size int64, blockSize, strongLen int) error {
	if blockSize < 1 || blockSize > MaxBlockSize {
		return fmt.Errorf("%w: block size %d outside [1, %d]", ErrInvalidSignature, blockSize, MaxBlockSize)
	}
	if strongLen < MinStrongLen || strongLen > MaxStrongLen {
		return fmt.Errorf("%w: strong length %d outside [%d, %d]", ErrInvalidSignature, strongLen, MinStrongLen, MaxStrongLen)
	}
	if size < 0 {
		return fmt.Errorf("%w: negative size %d", ErrInvalidSignature, size)
	}
	if nb := blockCount(size, blockSize); nb > MaxBlocks {
		return fmt.Errorf("%w: %d blocks of %d bytes exceed the limit of %d", ErrInvalidSignature, nb, blockSize, MaxBlocks)
	}
	return nil
}

func (s *Signature) validate() error {
	if s == nil {
		return fmt.Errorf("%w: nil", ErrInvalidSignature)
	}
	if err := checkShape(s.Size, s.BlockSize, s.StrongLen); err != nil {
		return err
	}
	nb := s.Blocks()
	if int64(len(s.Weak)) != nb {
		return fmt.Errorf("%w: %d weak sums for %d blocks", ErrInvalidSignature, len(s.Weak), nb)
	}
	if int64(len(s.Strong)) != nb*int64(s.StrongLen) {
		return fmt.Errorf("%w: %d strong bytes for %d blocks of %d", ErrInvalidSignature, len(s.Strong), nb, s.StrongLen)
	}
	return nil
}

// Sign reads the basis, which must be exactly size bytes long, and builds
// its signature with the default block size and strong length.
func Sign(ctx context.Context, r io.Reader, size int64) (*Signature, error) {
	return SignWith(ctx, r, size, BlockSize(size), StrongLen(size))
}

// signChunk is how much of the basis Sign reads at a time.
const signChunk = 1 << 20

// SignWith is Sign with a caller-chosen block size and strong length.
//
// A basis of parallelMin bytes or more that r can also read at an offset
// and seek in (an *os.File, *io.SectionReader, *bytes.Reader) is read with
// ReadAt from r's current offset and summed on several goroutines; r is
// then left where reading it through would have left it.
func SignWith(ctx context.Context, r io.Reader, size int64, blockSize, strongLen int) (*Signature, error) {
	return signWith(ctx, r, size, blockSize, strongLen, signWorkers(size))
}

func signWith(ctx context.Context, r io.Reader, size int64, blockSize, strongLen, workers int) (*Signature, error) {
	if err := checkShape(size, blockSize, strongLen); err != nil {
		return nil, fmt.Errorf("delta: sign: %w", err)
	}
	if ra, ok := r.(readAtSeeker); ok && workers > 1 {
		// A reader that cannot tell its offset (a pipe) is read in turn.
		if base, err := ra.Seek(0, io.SeekCurrent); err == nil {
			return signAt(ctx, ra, base, size, blockSize, strongLen, workers)
		}
	}
	nb := blockCount(size, blockSize)
	// size is the caller's claim, not yet backed by bytes: grow past a
	// modest preallocation only as blocks actually arrive.
	prealloc := min(nb, 1<<16)
	s := &Signature{
		BlockSize: blockSize,
		StrongLen: strongLen,
		Size:      size,
		Weak:      make([]uint32, 0, prealloc),
		Strong:    make([]byte, 0, prealloc*int64(strongLen)),
	}
	chunk := max(1, signChunk/blockSize) * blockSize
	buf := make([]byte, min(int64(chunk), size))
	for left := size; left > 0; {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("delta: sign: %w", err)
		}
		b := buf[:min(int64(len(buf)), left)]
		if _, err := io.ReadFull(r, b); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("delta: sign: %w: shorter than %d bytes", ErrBasisSize, size)
			}
			return nil, fmt.Errorf("delta: sign: read basis: %w", err)
		}
		left -= int64(len(b))
		for len(b) > 0 {
			blk := b[:min(len(b), blockSize)]
			b = b[len(blk):]
			s.Weak = append(s.Weak, weakOf(weakSum(blk)))
			sum := strongSum(blk)
			s.Strong = append(s.Strong, sum[:strongLen]...)
		}
	}
	if err := atEnd(r, size); err != nil {
		return nil, err
	}
	return s, nil
}

// SignSparse is Sign of a basis whose holes the caller can find:
// nextData(off) says where the first data at or after off starts and
// where it ends (start == size when only a hole is left). Blocks wholly
// inside a hole are zeros: they get a zero block's sums without being
// read, so a 20 GiB sparse basis is signed in the time its data takes.
// The signature is the one Sign makes of the same bytes.
func SignSparse(ctx context.Context, r io.ReaderAt, size int64, nextData func(off int64) (start, end int64)) (*Signature, error) {
	return SignSparseWith(ctx, r, size, BlockSize(size), StrongLen(size), nextData)
}

// SignSparseWith is SignSparse with a caller-chosen block size and strong
// length.
//
// A basis of parallelMin bytes or more has its data summed on several
// goroutines; nextData is still called on the caller's goroutine only.
func SignSparseWith(ctx context.Context, r io.ReaderAt, size int64, bs, strongLen int, nextData func(off int64) (start, end int64)) (*Signature, error) {
	return signSparseWith(ctx, r, size, bs, strongLen, nextData, signWorkers(size))
}

func signSparseWith(ctx context.Context, r io.ReaderAt, size int64, bs, strongLen int, nextData func(off int64) (start, end int64), workers int) (*Signature, error) {
	if err := checkShape(size, bs, strongLen); err != nil {
		return nil, fmt.Errorf("delta: sign: %w", err)
	}
	if workers > 1 {
		return signSparseAt(ctx, r, size, bs, strongLen, nextData, workers)
	}
	nb := blockCount(size, bs)
	prealloc := min(nb, 1<<16)
	s := &Signature{
		BlockSize: bs,
		StrongLen: strongLen,
		Size:      size,
		Weak:      make([]uint32, 0, prealloc),
		Strong:    make([]byte, 0, prealloc*int64(strongLen)),
	}
	add := func(blk []byte) {
		s.Weak = append(s.Weak, weakOf(weakSum(blk)))
		sum := strongSum(blk)
		s.Strong = append(s.Strong, sum[:strongLen]...)
	}
	var zeros []byte
	var zeroWeak uint32
	var zeroStrong [16]byte
	chunk := int64(max(1, signChunk/bs) * bs)
	buf := make([]byte, min(chunk, size))
	var start, end int64 // the data run last found
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("delta: sign: %w", err)
		}
		if off >= end {
			start, end = nextData(off)
			start, end = max(start, off), min(end, size)
			if end <= start {
				start, end = size, size
			}
		}
		blen := min(int64(bs), size-off)
		if off+blen <= start {
			if zeros == nil {
				zeros = make([]byte, bs)
				zeroWeak, zeroStrong = weakOf(weakSum(zeros)), strongSum(zeros)
			}
			if blen == int64(bs) {
				s.Weak = append(s.Weak, zeroWeak)
				s.Strong = append(s.Strong, zeroStrong[:strongLen]...)
			} else {
				add(zeros[:blen])
			}
			off += blen
			continue
		}
		// The blocks that hold data, up to a chunk.
		n := min(chunk, size-off, (end-off+int64(bs)-1)/int64(bs)*int64(bs))
		b := buf[:n]
		if k, err := r.ReadAt(b, off); k < len(b) {
			if err == nil || errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("delta: sign: %w: shorter than %d bytes", ErrBasisSize, size)
			}
			return nil, fmt.Errorf("delta: sign: read basis: %w", err)
		}
		off += n
		for len(b) > 0 {
			blk := b[:min(len(b), bs)]
			b = b[len(blk):]
			add(blk)
		}
	}
	var one [1]byte
	switch n, err := r.ReadAt(one[:], size); {
	case n > 0:
		return nil, fmt.Errorf("delta: sign: %w: longer than %d bytes", ErrBasisSize, size)
	case err != nil && !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("delta: sign: read basis: %w", err)
	}
	return s, nil
}

// weakSum is rsync's checksum over b: s1 = Σ b[i] and s2 = Σ (len-i)·b[i],
// which is the sum of the running s1. Both are only meaningful mod 2^16,
// but weakSum returns them exactly mod 2^32, as the byte loop would.
func weakSum(b []byte) (s1, s2 uint32) {
	// Bytes are summed as dot products on 16-bit lanes: x&lanes holds
	// bytes 0,2,4,6 of a little-endian word x in lanes 0..3, and the top
	// lane of x*w is Σ x_i·w_(3-i) (lane i of x times lane 3-i of w). The
	// top lane is exact as long as no coefficient Σ_(i+l=m) x_i·w_l, for
	// m = 0..3, reaches 2^16: then no lane carries into the next, so none
	// into the lane the multiply reads (carries out of lane 3 leave the
	// 64-bit word and never come back down).
	//
	// In a word, byte k weighs 8-k in s2. wOdd weighs lane i by 7-2i,
	// the weight of byte 2i+1; byte 2i weighs one more, 8-2i.
	const (
		lanes = 0x00ff00ff00ff00ff
		ones  = 0x0001000100010001
		wEven = 0x0008000600040002 // weights of bytes 0,2,4,6, reversed
		wOdd  = 0x0007000500030001 // weights of bytes 1,3,5,7, reversed
	)
	// Thirty-two bytes a step: four words j = 0..3. Byte k of word j
	// weighs 32-(8j+k) = (8-k) + 8(3-j) in s2. With e_j = w_j&lanes,
	// p_j = e_j + (w_j>>8)&lanes (byte pair sums, lanes <= 510),
	//
	//	P = Σ p_j            lanes <= 4·510 = 2040
	//	E = Σ e_j            lanes <= 4·255 = 1020
	//	Q = 3p_0+2p_1+p_2    lanes <= 6·510 = 3060
	//
	// s1 gains top(P*ones), and s2 gains 32·s1 (the old s1, once per
	// byte) + top(P*wOdd) + top(E*ones) (the 8-k) + 8·top(Q*ones) (the
	// 8(3-j)). The largest coefficient of each product, with all four
	// lanes at their bound, is P*ones 4·2040 = 8160, P*wOdd
	// 2040·(7+5+3+1) = 32640, E*ones 4·1020 = 4080 and Q*ones
	// 4·3060 = 12240, all below 2^16; the lane sums themselves are
	// below 2^16 too, so no add carries between lanes either. All-0xff
	// input reaches every bound.
	for len(b) >= 32 {
		v0 := binary.LittleEndian.Uint64(b)
		v1 := binary.LittleEndian.Uint64(b[8:])
		v2 := binary.LittleEndian.Uint64(b[16:])
		v3 := binary.LittleEndian.Uint64(b[24:])
		e0, e1, e2, e3 := v0&lanes, v1&lanes, v2&lanes, v3&lanes
		p0 := e0 + (v0>>8)&lanes
		p1 := e1 + (v1>>8)&lanes
		p2 := e2 + (v2>>8)&lanes
		p3 := e3 + (v3>>8)&lanes
		pSum := p0 + p1 + p2 + p3
		q := 3*p0 + 2*p1 + p2
		e := e0 + e1 + e2 + e3
		s2 += 32*s1 + uint32((pSum*wOdd)>>48) + uint32((e*ones)>>48) + 8*uint32((q*ones)>>48)
		s1 += uint32((pSum * ones) >> 48)
		b = b[32:]
	}
	// Eight bytes a step for the rest: lane products stay below
	// 255·(8+6+4+2) = 5100 and 510·4 = 2040.
	for len(b) >= 8 {
		v := binary.LittleEndian.Uint64(b)
		e, o := v&lanes, (v>>8)&lanes
		s2 += 8*s1 + uint32((e*wEven)>>48) + uint32((o*wOdd)>>48)
		s1 += uint32(((e + o) * ones) >> 48)
		b = b[8:]
	}
	for _, x := range b {
		s1 += uint32(x)
		s2 += s1
	}
	return s1, s2
}

func weakOf(s1, s2 uint32) uint32 { return s1&0xffff | s2<<16 }

// strongSum is the per-block hash. xxh3 is not collision resistant, and
// need not be: the whole-file BLAKE3 check catches a false block match.
func strongSum(b []byte) [16]byte { return xxh3.Hash128(b).Bytes() }

// AppendBinary appends the wire encoding of s to b:
//
//	version   byte (1)
//	blockSize uvarint
//	strongLen byte
//	size      uvarint
//	weak      4 bytes little endian per block
//	strong    strongLen bytes per block
//
// The block count is implied by size and blockSize.
func (s *Signature) AppendBinary(b []byte) ([]byte, error) {
	if err := s.validate(); err != nil {
		return b, fmt.Errorf("delta: encode signature: %w", err)
	}
	b = append(b, sigVersion)
	b = binary.AppendUvarint(b, uint64(s.BlockSize))
	b = append(b, byte(s.StrongLen))
	b = binary.AppendUvarint(b, uint64(s.Size))
	b = slices.Grow(b, 4*len(s.Weak)+len(s.Strong))
	for _, w := range s.Weak {
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	return append(b, s.Strong...), nil
}

// UnmarshalSignature decodes an encoding made by AppendBinary. b is
// untrusted: every field is checked, the length must match exactly, and
// allocations never exceed len(b).
func UnmarshalSignature(b []byte) (*Signature, error) {
	fail := func(format string, args ...any) (*Signature, error) {
		return nil, fmt.Errorf("delta: decode signature: %w: %s", ErrInvalidSignature, fmt.Sprintf(format, args...))
	}
	if len(b) < 1 {
		return fail("empty")
	}
	if b[0] != sigVersion {
		return fail("unknown version %d", b[0])
	}
	b = b[1:]
	bs, b, ok := uvarint(b)
	if !ok || bs < 1 || bs > MaxBlockSize {
		return fail("bad block size")
	}
	if len(b) < 1 {
		return fail("truncated")
	}
	sl := int(b[0])
	b = b[1:]
	if sl < MinStrongLen || sl > MaxStrongLen {
		return fail("strong length %d outside [%d, %d]", sl, MinStrongLen, MaxStrongLen)
	}
	size, b, ok := uvarint(b)
	if !ok || size > MaxBlocks*MaxBlockSize {
		return fail("bad size")
	}
	nb := blockCount(int64(size), int(bs))
	if nb > MaxBlocks {
		return fail("%d blocks exceed the limit of %d", nb, MaxBlocks)
	}
	if int64(len(b)) != nb*int64(4+sl) {
		return fail("%d bytes of sums for %d blocks of %d", len(b), nb, 4+sl)
	}
	s := &Signature{
		BlockSize: int(bs),
		StrongLen: sl,
		Size:      int64(size),
		Weak:      make([]uint32, nb),
	}
	for i := range s.Weak {
		s.Weak[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	s.Strong = append([]byte(nil), b[4*nb:]...)
	return s, nil
}

// uvarint decodes a minimal uvarint, so that every accepted encoding
// re-encodes to the same bytes.
func uvarint(b []byte) (uint64, []byte, bool) {
	v, n := binary.Uvarint(b)
	var tmp [binary.MaxVarintLen64]byte
	if n <= 0 || n != binary.PutUvarint(tmp[:], v) {
		return 0, b, false
	}
	return v, b[n:], true
}

// atEnd checks that r, having given size bytes of the basis, has no more.
func atEnd(r io.Reader, size int64) error {
	var one [1]byte
	switch n, err := io.ReadFull(r, one[:]); {
	case n > 0:
		return fmt.Errorf("delta: sign: %w: longer than %d bytes", ErrBasisSize, size)
	case err != nil && !errors.Is(err, io.EOF):
		return fmt.Errorf("delta: sign: read basis: %w", err)
	}
	return nil
}
