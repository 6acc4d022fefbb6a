package delta

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
)

// OpKind says what an Op does.
type OpKind uint8

const (
	OpCopy    OpKind = 1 // copy Count consecutive blocks starting at Block from the basis
	OpLiteral OpKind = 2 // Data bytes
)

func (k OpKind) String() string {
	switch k {
	case OpCopy:
		return "copy"
	case OpLiteral:
		return "literal"
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// Op is one step of a delta.
type Op struct {
	Kind  OpKind
	Block uint64
	Count uint32
	Data  []byte // OpLiteral only; only valid during the emit callback
}

// MaxLiteral is the longest literal op Diff emits and Patcher accepts. It
// bounds both Diff's window buffer and a receiver's per-op buffer.
const MaxLiteral = 64 << 10

// Stats summarises a Diff: bytes sent as literals, bytes covered by copies,
// and the number of ops emitted.
type Stats struct {
	Literal, Matched int64
	Ops              int
}

// readChunk is the target read size once the window buffer has grown to
// its largest: one of these beyond the pending literal and the current
// block.
const readChunk = 256 << 10

// initialWindow is where the window buffer starts (plus two blocks), so a
// diff of a small target does not pay for zeroing the largest window.
const initialWindow = 16 << 10

// maxChain bounds the candidates tried for one weak checksum, so crafted or
// degenerate weak collisions cost a missed match, never quadratic time.
const maxChain = 64

// Weak checksums are easy to forge, and a peer's signature is untrusted: a
// target whose every window hits the weak table but never a strong sum
// would cost a chain walk and a block hash per byte. So lookups draw on a
// budget that each scanned byte refills by lookupCredit units (one unit per
// byte hashed, lookupStep per chain step); when it runs dry, probes are
// treated as misses until it refills. Natural data hits the weak table a
// few times per megabyte and never comes near it.
const (
	lookupCredit    = 8
	lookupStep      = 16
	maxLookupBudget = 4 << 20
)

// golden spreads the weak checksum over the table bits (Fibonacci hashing):
// rsync's sums cluster in their low bits for text.
const golden = 0x9E3779B1

// Diff reads target to EOF and calls emit for each op of a delta that turns
// the basis described by sig into target. Copies of consecutive blocks are
// merged into one op and literals are at most MaxLiteral bytes. Memory is
// the signature and its index (up to 45 bytes a block) plus a window of two
// blocks, MaxLiteral and one read, whatever the target's length. sig may
// come from an untrusted peer: a forged one costs time linear in the target
// and yields a delta that the whole-file hash rejects.
//
// After a match the next aligned block is tried by its strong hash alone,
// so an unchanged stretch costs one hash pass; the weak checksum rolls byte
// by byte only where that fails.
func Diff(ctx context.Context, sig *Signature, target io.Reader, emit func(Op) error) (Stats, error) {
	if err := sig.validate(); err != nil {
		return Stats{}, fmt.Errorf("delta: diff: %w", err)
	}
	d := newDiffer(ctx, sig, target, emit)
	if err := d.run(); err != nil {
		return d.stats, fmt.Errorf("delta: diff: %w", err)
	}
	return d.stats, nil
}

// Differ diffs a target that comes in pieces against one signature: the
// data between the holes of a sparse file, each piece read on its own
// while the holes are never read. The ops of each piece rebuild exactly
// that piece; the signature's index is built once for all of them.
type Differ struct{ d *differ }

// NewDiffer returns a Differ that calls emit for the ops of each piece.
// sig is validated as Diff does.
func NewDiffer(ctx context.Context, sig *Signature, emit func(Op) error) (*Differ, error) {
	if err := sig.validate(); err != nil {
		return nil, fmt.Errorf("delta: diff: %w", err)
	}
	return &Differ{d: newDiffer(ctx, sig, nil, emit)}, nil
}

// Piece reads the next piece of the target to EOF and emits its ops.
func (x *Differ) Piece(r io.Reader) error {
	d := x.d
	d.r = r
	d.n, d.p, d.ls, d.eof, d.zeroReads = 0, 0, 0, false, 0
	if err := d.run(); err != nil {
		return fmt.Errorf("delta: diff: %w", err)
	}
	return nil
}

// Stats sums the pieces diffed so far.
func (x *Differ) Stats() Stats { return x.d.stats }

// index finds full-length blocks by weak checksum. Most target positions
// match nothing, so a bitset of 128 to 256 bits a block answers nearly all
// probes from one cache-friendly load; the chained table behind it is read
// only on a filter hit (under 0.4% of positions on the benchmarks; a filter
// an eighth that size made the all-new benchmark about 25% slower).
type index struct {
	filter []uint64
	fshift uint32
	head   []int32 // first block of each bucket, -1 if empty
	hshift uint32
	next   []int32 // next block in the same bucket
}

func newIndex(sig *Signature, full int64) index {
	if full == 0 {
		return index{}
	}
	hbits := max(4, bits.Len64(uint64(full)))
	fbits := min(28, bits.Len64(uint64(full))+7)
	x := index{
		filter: make([]uint64, max(1, (1<<fbits)/64)),
		fshift: uint32(32 - fbits),
		head:   make([]int32, 1<<hbits),
		hshift: uint32(32 - hbits),
		next:   make([]int32, full),
	}
	for i := range x.head {
		x.head[i] = -1
	}
outer:
	for j := range int32(full) {
		w := sig.Weak[j]
		m := w * golden
		x.filter[(m>>x.fshift)>>6] |= 1 << ((m >> x.fshift) & 63)
		b := m >> x.hshift
		// Blocks with identical content are indexed once: a repeated block
		// is found through its first copy, and the preferred (next aligned)
		// one is checked directly before the table.
		steps := 0
		for c := x.head[b]; c >= 0 && steps < maxChain; c = x.next[c] {
			steps++
			if sig.Weak[c] == w && string(sig.strongOf(int64(c))) == string(sig.strongOf(int64(j))) {
				continue outer
			}
		}
		x.next[j] = x.head[b]
		x.head[b] = j
	}
	return x
}

type differ struct {
	ctx  context.Context
	sig  *Signature
	r    io.Reader
	emit func(Op) error

	bs      int
	nblocks int64
	full    int64 // blocks of exactly bs bytes: all but a short last one
	lastLen int   // length of the last block
	idx     index

	// The window buffer: buf[ls:p] is the pending literal, the block being
	// tested starts at p, buf[:n] holds data read so far.
	buf       []byte
	n, p, ls  int
	eof       bool
	s1, s2    uint32 // rolling weak sum of buf[p:p+bs]
	expect    int64  // the block that would follow the last match
	runStart  uint64
	runCount  uint32
	zeroReads int
	budget    int64 // lookup work still allowed; see lookupCredit

	stats Stats
}

func newDiffer(ctx context.Context, sig *Signature, r io.Reader, emit func(Op) error) *differ {
	bs := sig.BlockSize
	nb := sig.Blocks()
	full := sig.Size / int64(bs)
	d := &differ{
		ctx:     ctx,
		sig:     sig,
		r:       r,
		emit:    emit,
		bs:      bs,
		nblocks: nb,
		full:    full,
		idx:     newIndex(sig, full),
		budget:  maxLookupBudget,
		buf:     make([]byte, min(maxWindow(bs), 2*bs+initialWindow)),
	}
	if nb > 0 {
		d.lastLen = sig.blockLen(nb - 1)
	}
	return d
}

func (d *differ) run() error {
	for {
		if d.expect < d.nblocks {
			blen := d.sig.blockLen(d.expect)
			if err := d.fill(blen); err != nil {
				return err
			}
			if d.n-d.p >= blen && d.sameBlock(d.buf[d.p:d.p+blen], d.expect) {
				if err := d.matched(d.expect, blen); err != nil {
					return err
				}
				continue
			}
		}
		done, err := d.roll()
		if err != nil {
			return err
		}
		if done {
			return d.finish()
		}
	}
}

// roll searches byte by byte from p for a window matching some full block.
// It returns after a match, or true once the target has ended with less
// than a block after p.
func (d *differ) roll() (bool, error) {
	bs := d.bs
	if err := d.fill(bs); err != nil {
		return false, err
	}
	if d.n-d.p < bs {
		return true, nil
	}
	if d.full > 0 {
		d.s1, d.s2 = weakSum(d.buf[d.p : d.p+bs])
	}
	for {
		end := min(d.n-bs, d.ls+MaxLiteral)
		if d.full > 0 {
			if j := d.scan(end); j >= 0 {
				return false, d.matched(j, bs)
			}
		} else {
			d.p = end
		}
		if d.p-d.ls >= MaxLiteral {
			if err := d.literal(d.p); err != nil {
				return false, err
			}
		}
		if d.p+bs >= d.n {
			// Rolling on needs the byte after the window.
			if err := d.fill(bs + 1); err != nil {
				return false, err
			}
			if d.n-d.p <= bs {
				return true, nil
			}
		}
		if d.full > 0 {
			out, in := uint32(d.buf[d.p]), uint32(d.buf[d.p+bs])
			d.s1 += in - out
			d.s2 += d.s1 - uint32(bs)*out
		}
		d.p++
	}
}

// scan probes the windows starting at p..end, rolling the weak sum between
// them, and returns the first matching block or -1 with p == end.
func (d *differ) scan(end int) int64 {
	bs := d.bs
	for {
		p := d.p
		i, hit, s1, s2 := roll(d.buf[p:end], d.buf[p+bs:end+bs], d.s1, d.s2, uint32(bs), d.idx.filter, d.idx.fshift)
		d.p, d.s1, d.s2 = p+i, s1, s2
		d.budget = min(d.budget+int64(i+1)*lookupCredit, maxLookupBudget)
		if !hit {
			return -1
		}
		if j := d.lookup(weakOf(s1, s2), d.buf[d.p:d.p+bs]); j >= 0 {
			return j
		}
		if d.p == end {
			return -1
		}
		out, in := uint32(d.buf[d.p]), uint32(d.buf[d.p+bs])
		d.s1 += in - out
		d.s2 += d.s1 - uint32(bs)*out
		d.p++
	}
}

// roll is the loop that runs once per byte of unmatched target. outs[i]
// leaves the window and ins[i] enters it when stepping from position i to
// i+1; positions 0..len(outs) are probed against the filter. It returns the
// first position whose weak sum passes the filter (hit) or len(outs), with
// the sums at that position. It calls nothing, so everything stays in
// registers.
func roll(outs, ins []byte, s1, s2, n uint32, filter []uint64, fshift uint32) (int, bool, uint32, uint32) {
	ins = ins[:len(outs)]
	fshift &= 31
	for i := 0; ; i++ {
		h := ((s1&0xffff | s2<<16) * golden) >> fshift
		if filter[h>>6]&(1<<(h&63)) != 0 {
			return i, true, s1, s2
		}
		if i >= len(outs) {
			return i, false, s1, s2
		}
		out := uint32(outs[i])
		s1 += uint32(ins[i]) - out
		s2 += s1 - n*out
	}
}

// lookup returns the full block whose weak and strong sums match win, or
// -1. The block after the last match is preferred so copies stay merged
// when the basis repeats itself.
func (d *differ) lookup(w uint32, win []byte) int64 {
	if d.budget < 0 {
		return -1
	}
	sig := d.sig
	var sum [16]byte
	summed := false
	if e := d.expect; e < d.full && sig.Weak[e] == w {
		sum, summed = strongSum(win), true
		d.budget -= int64(len(win))
		if string(sum[:sig.StrongLen]) == string(sig.strongOf(e)) {
			return e
		}
	}
	steps := 0
	for c := d.idx.head[(w*golden)>>d.idx.hshift]; c >= 0 && steps < maxChain; c = d.idx.next[c] {
		steps++
		d.budget -= lookupStep
		if sig.Weak[c] != w {
			continue
		}
		if !summed {
			sum, summed = strongSum(win), true
			d.budget -= int64(len(win))
		}
		if string(sum[:sig.StrongLen]) == string(sig.strongOf(int64(c))) {
			return int64(c)
		}
	}
	return -1
}

func (d *differ) sameBlock(b []byte, j int64) bool {
	sum := strongSum(b)
	return string(sum[:d.sig.StrongLen]) == string(d.sig.strongOf(j))
}

// finish handles the end of the target, where fewer than a block's bytes
// (or one unmatched block) remain: only the short last block of the basis
// can still match, and only as the target's suffix.
func (d *differ) finish() error {
	if l := d.lastLen; d.nblocks > 0 && l < d.bs && d.n-d.p >= l {
		if d.sameBlock(d.buf[d.n-l:d.n], d.nblocks-1) {
			d.p = d.n - l
			if err := d.matched(d.nblocks-1, l); err != nil {
				return err
			}
		}
	}
	if err := d.literal(d.n); err != nil {
		return err
	}
	d.p = d.n
	return d.flushRun()
}

// matched records that block j (blen bytes) matches at p.
func (d *differ) matched(j int64, blen int) error {
	if err := d.literal(d.p); err != nil {
		return err
	}
	if d.runCount > 0 && d.runStart+uint64(d.runCount) == uint64(j) && d.runCount < math.MaxUint32 {
		d.runCount++
	} else {
		if err := d.flushRun(); err != nil {
			return err
		}
		d.runStart, d.runCount = uint64(j), 1
	}
	d.stats.Matched += int64(blen)
	d.p += blen
	d.ls = d.p
	d.expect = j + 1
	return nil
}

// literal emits buf[ls:upTo] in chunks of at most MaxLiteral.
func (d *differ) literal(upTo int) error {
	if upTo <= d.ls {
		return nil
	}
	if err := d.flushRun(); err != nil {
		return err
	}
	for d.ls < upTo {
		m := min(upTo-d.ls, MaxLiteral)
		// Capped capacity: an emit that appends to Data must not scribble
		// over the window.
		data := d.buf[d.ls : d.ls+m : d.ls+m]
		if err := d.send(Op{Kind: OpLiteral, Data: data}); err != nil {
			return err
		}
		d.stats.Literal += int64(m)
		d.ls += m
	}
	return nil
}

func (d *differ) flushRun() error {
	if d.runCount == 0 {
		return nil
	}
	op := Op{Kind: OpCopy, Block: d.runStart, Count: d.runCount}
	d.runCount = 0
	return d.send(op)
}

func (d *differ) send(op Op) error {
	d.stats.Ops++
	if err := d.emit(op); err != nil {
		return fmt.Errorf("emit %s: %w", op.Kind, err)
	}
	return nil
}

// maxWindow bounds the window buffer: the longest pending literal, the
// block being tested and a read's worth. With it, compaction always frees at
// least readChunk bytes.
func maxWindow(bs int) int { return MaxLiteral + 2*bs + readChunk }

// fill reads until at least need (at most a block and a byte) bytes follow
// p or the target ends.
func (d *differ) fill(need int) error {
	for d.n-d.p < need && !d.eof {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		if free := len(d.buf) - d.n; free < readChunk/2 && free < len(d.buf)/4 {
			d.makeRoom()
		}
		m, err := d.r.Read(d.buf[d.n:])
		d.n += m
		switch {
		case errors.Is(err, io.EOF):
			d.eof = true
		case err != nil:
			return fmt.Errorf("read target: %w", err)
		case m == 0:
			if d.zeroReads++; d.zeroReads > 100 {
				return fmt.Errorf("read target: %w", io.ErrNoProgress)
			}
		default:
			d.zeroReads = 0
		}
	}
	return nil
}

// makeRoom drops the bytes before the pending literal and, while the buffer
// is below its bound and still short of a read's worth of space, doubles it.
// What it keeps is at most MaxLiteral plus a block, so at the bound it frees
// at least readChunk bytes.
func (d *differ) makeRoom() {
	keep := d.buf[d.ls:d.n]
	buf := d.buf
	if free := len(buf) - len(keep); free < readChunk/2 && len(buf) < maxWindow(d.bs) {
		buf = make([]byte, min(maxWindow(d.bs), 2*len(buf)))
	}
	copy(buf, keep)
	d.buf = buf
	d.n -= d.ls
	d.p -= d.ls
	d.ls = 0
}
