package delta

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/iotest"
)

// edit turns a basis into a target; bs is the block size in use, so edits
// can aim at block boundaries.
type edit struct {
	name string
	f    func(r *rand.Rand, base []byte, bs int) []byte
}

func pos(r *rand.Rand, n int) int { return r.IntN(n + 1) }

func splice(base []byte, at, del int, ins []byte) []byte {
	out := slices.Clone(base[:at])
	out = append(out, ins...)
	return append(out, base[min(len(base), at+del):]...)
}

var edits = []edit{
	{"unchanged", func(r *rand.Rand, b []byte, bs int) []byte { return slices.Clone(b) }},
	{"empty", func(r *rand.Rand, b []byte, bs int) []byte { return nil }},
	{"tiny", func(r *rand.Rand, b []byte, bs int) []byte { return genRandom(r, 1+r.IntN(10)) }},
	{"one block of base", func(r *rand.Rand, b []byte, bs int) []byte {
		if len(b) < bs {
			return slices.Clone(b)
		}
		i := r.IntN(len(b)/bs) * bs
		return slices.Clone(b[i : i+bs])
	}},
	{"shift by one", func(r *rand.Rand, b []byte, bs int) []byte { return append([]byte{byte(r.Uint32())}, b...) }},
	{"drop first byte", func(r *rand.Rand, b []byte, bs int) []byte {
		if len(b) == 0 {
			return nil
		}
		return slices.Clone(b[1:])
	}},
	{"insert", func(r *rand.Rand, b []byte, bs int) []byte {
		return splice(b, pos(r, len(b)), 0, genRandom(r, 1+r.IntN(2*bs+3)))
	}},
	{"insert at block boundary", func(r *rand.Rand, b []byte, bs int) []byte {
		return splice(b, r.IntN(len(b)/bs+1)*bs, 0, genRandom(r, 1+r.IntN(5)))
	}},
	{"overwrite across block boundary", func(r *rand.Rand, b []byte, bs int) []byte {
		at := max(0, r.IntN(len(b)/bs+1)*bs-r.IntN(3))
		n := min(len(b)-at, 1+r.IntN(6))
		return splice(b, at, n, genRandom(r, n))
	}},
	{"overwrite", func(r *rand.Rand, b []byte, bs int) []byte {
		at := pos(r, len(b))
		n := min(len(b)-at, 1+r.IntN(100))
		return splice(b, at, n, genRandom(r, n))
	}},
	{"append", func(r *rand.Rand, b []byte, bs int) []byte {
		return append(slices.Clone(b), genRandom(r, 1+r.IntN(3*bs))...)
	}},
	{"truncate", func(r *rand.Rand, b []byte, bs int) []byte { return slices.Clone(b[:pos(r, len(b))]) }},
	{"delete range", func(r *rand.Rand, b []byte, bs int) []byte {
		at := pos(r, len(b))
		return splice(b, at, r.IntN(len(b)-at+1), nil)
	}},
	{"completely different", func(r *rand.Rand, b []byte, bs int) []byte {
		return genRandom(r, r.IntN(2*len(b)+10))
	}},
	{"all zeros", func(r *rand.Rand, b []byte, bs int) []byte { return make([]byte, r.IntN(2*len(b)+10)) }},
	{"reorder blocks", func(r *rand.Rand, b []byte, bs int) []byte {
		var chunks [][]byte
		for i := 0; i < len(b); i += bs {
			chunks = append(chunks, b[i:min(len(b), i+bs)])
		}
		r.Shuffle(len(chunks), func(i, j int) { chunks[i], chunks[j] = chunks[j], chunks[i] })
		return bytes.Join(chunks, nil)
	}},
	{"several edits", func(r *rand.Rand, b []byte, bs int) []byte {
		out := slices.Clone(b)
		for range 1 + r.IntN(5) {
			at := pos(r, len(out))
			out = splice(out, at, r.IntN(min(len(out)-at, 50)+1), genRandom(r, r.IntN(50)))
		}
		return out
	}},
}

type basisGen struct {
	name string
	f    func(r *rand.Rand, bs int) []byte
}

var bases = []basisGen{
	{"empty", func(r *rand.Rand, bs int) []byte { return nil }},
	{"tiny", func(r *rand.Rand, bs int) []byte { return genRandom(r, 1+r.IntN(10)) }},
	{"one block", func(r *rand.Rand, bs int) []byte { return genRandom(r, bs) }},
	{"blocks and a bit", func(r *rand.Rand, bs int) []byte { return genRandom(r, bs*(2+r.IntN(20))+1+r.IntN(bs)) }},
	{"exact blocks", func(r *rand.Rand, bs int) []byte { return genText(r, bs*(2+r.IntN(20))) }},
	{"text", func(r *rand.Rand, bs int) []byte { return genText(r, r.IntN(40*bs+100)) }},
	{"zeros", func(r *rand.Rand, bs int) []byte { return make([]byte, r.IntN(30*bs+100)) }},
	{"repeating pattern", func(r *rand.Rand, bs int) []byte {
		return bytes.Repeat(genRandom(r, 1+r.IntN(2*bs)), 1+r.IntN(30))
	}},
}

func TestRoundTripProperty(t *testing.T) {
	blockSizes := []int{1, 2, 3, 8, 61, 700}
	rounds := 4
	if testing.Short() {
		rounds = 1
	}
	for _, bs := range blockSizes {
		for _, bg := range bases {
			for _, e := range edits {
				t.Run(fmt.Sprintf("bs=%d/%s/%s", bs, bg.name, e.name), func(t *testing.T) {
					r := rand.New(rand.NewPCG(uint64(bs), uint64(len(bg.name)*131+len(e.name))))
					for range rounds {
						base := bg.f(r, bs)
						target := e.f(r, base, bs)
						sl := []int{MinStrongLen, 8, MaxStrongLen}[r.IntN(3)]
						st := roundTrip(t, base, target, bs, sl)
						if e.name == "unchanged" && st.Literal != 0 {
							t.Fatalf("unchanged target of %d bytes sent %d literal bytes", len(target), st.Literal)
						}
					}
				})
			}
		}
	}
}

// TestRoundTripRandom mixes random bases, edit chains and block sizes,
// testing/quick style, with fixed seeds so failures reproduce.
func TestRoundTripRandom(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 50
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		bs := []int{1, 4, 16, 100, 700, 0}[r.IntN(6)]
		eff := bs
		if eff == 0 {
			eff = 700
		}
		base := bases[r.IntN(len(bases))].f(r, eff)
		target := base
		for range 1 + r.IntN(3) {
			target = edits[r.IntN(len(edits))].f(r, target, eff)
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { roundTrip(t, base, target, bs, 0) })
	}
}

func TestDefaultSizes(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 699, 700, 701, 490_000, 490_001, 1 << 20, 3<<20 + 17} {
		base := genMixed(uint64(n), n)
		roundTrip(t, base, base, 0, 0)
		roundTrip(t, base, edits[r.IntN(len(edits))].f(r, base, BlockSize(int64(n))), 0, 0)
	}
}

func TestLongLiteralsAreChunked(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	base := genRandom(r, 10_000)
	target := genRandom(r, 3*MaxLiteral+12345)
	// Put a copy of the basis in the middle so literals on both sides are long.
	target = splice(target, MaxLiteral+7, 0, base)
	for _, bs := range []int{1, 700, MaxBlockSize} {
		st := roundTrip(t, base, target, bs, 8)
		if bs == 700 && st.Matched < int64(len(base))-2*700 {
			t.Errorf("bs %d: matched %d of the embedded %d-byte basis", bs, st.Matched, len(base))
		}
	}
}

func TestSmallEditsSendLittle(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	base := genMixed(9, 4<<20)
	bs := BlockSize(int64(len(base)))
	for _, tc := range []struct {
		name   string
		target []byte
		extra  int
	}{
		{"unchanged", base, -1},
		{"overwrite 100", splice(base, 1_000_003, 100, genRandom(r, 100)), 100},
		{"overwrite 100 in text", splice(base, 12_345, 100, genText(r, 100)), 100},
		{"insert 100", splice(base, 3_000_001, 0, genRandom(r, 100)), 100},
		{"delete 100", splice(base, 2_500_000, 100, nil), 0},
		{"prepend 1", append([]byte{'x'}, base...), 1},
		{"append 5000", append(slices.Clone(base), genRandom(r, 5000)...), 5000},
		{"truncate", base[:len(base)-1234], 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := roundTrip(t, base, tc.target, 0, 0)
			if tc.extra < 0 {
				if st.Literal != 0 || st.Ops != 1 {
					t.Fatalf("unchanged file: %d literal bytes in %d ops, want 0 in 1", st.Literal, st.Ops)
				}
				return
			}
			if limit := int64(2*bs + tc.extra); st.Literal > limit {
				t.Fatalf("literal %d bytes, want <= %d (block %d)", st.Literal, limit, bs)
			}
			if st.Ops > 6 {
				t.Fatalf("%d ops for one edit", st.Ops)
			}
		})
	}
}

// A basis that repeats one block must still give merged copies: the block
// after the last match is preferred over the first one with that content.
func TestRepeatedBlocksStayMerged(t *testing.T) {
	const bs = 64
	base := make([]byte, 100*bs)
	for _, target := range [][]byte{
		base,
		append([]byte{'x'}, base...),
		append(append([]byte{}, base[:50*bs+3]...), append([]byte("edit"), base[50*bs+3:]...)...),
	} {
		_, st := diffOps(t, mustSign(t, base, bs), target)
		if st.Ops > 4 {
			t.Errorf("target of %d bytes: %d ops, want copies merged", len(target), st.Ops)
		}
		roundTrip(t, base, target, bs, 8)
	}
}

func mustSign(t testing.TB, base []byte, bs int) *Signature {
	t.Helper()
	sig, err := SignWith(context.Background(), bytes.NewReader(base), int64(len(base)), bs, 8)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestDiffReaders(t *testing.T) {
	base := genMixed(10, 300_000)
	target := splice(base, 150_000, 10, []byte("something else"))
	sig := mustSign(t, base, 1000)
	want, _ := diffOps(t, sig, target)
	for name, rd := range map[string]func() io.Reader{
		"one byte":     func() io.Reader { return iotest.OneByteReader(bytes.NewReader(target)) },
		"half":         func() io.Reader { return iotest.HalfReader(bytes.NewReader(target)) },
		"data and EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(target)) },
	} {
		t.Run(name, func(t *testing.T) {
			var got []Op
			_, err := Diff(context.Background(), sig, rd(), func(op Op) error {
				op.Data = bytes.Clone(op.Data)
				got = append(got, op)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, want, func(a, b Op) bool {
				return a.Kind == b.Kind && a.Block == b.Block && a.Count == b.Count && bytes.Equal(a.Data, b.Data)
			}) {
				t.Fatalf("ops differ from those for a bytes.Reader")
			}
		})
	}
}

func TestDiffErrors(t *testing.T) {
	base := genMixed(11, 50_000)
	sig := mustSign(t, base, 700)
	nop := func(Op) error { return nil }

	t.Run("read error", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := Diff(context.Background(), sig, iotest.ErrReader(boom), nop)
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want boom", err)
		}
	})
	t.Run("emit error", func(t *testing.T) {
		stop := errors.New("stop")
		_, err := Diff(context.Background(), sig, bytes.NewReader(base), func(Op) error { return stop })
		if !errors.Is(err, stop) {
			t.Fatalf("err = %v, want stop", err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := Diff(ctx, sig, bytes.NewReader(base), nop)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("canceled midway", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r := rand.New(rand.NewPCG(1, 1))
		n := 0
		_, err := Diff(ctx, sig, bytes.NewReader(genRandom(r, 10<<20)), func(Op) error {
			if n++; n == 3 {
				cancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("no progress", func(t *testing.T) {
		_, err := Diff(context.Background(), sig, zeroReader{}, nop)
		if !errors.Is(err, io.ErrNoProgress) {
			t.Fatalf("err = %v, want io.ErrNoProgress", err)
		}
	})
	t.Run("invalid signature", func(t *testing.T) {
		bad := *sig
		bad.Weak = bad.Weak[1:]
		for _, s := range []*Signature{nil, &bad, {BlockSize: 0, StrongLen: 8}} {
			if _, err := Diff(context.Background(), s, bytes.NewReader(base), nop); !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("err = %v, want ErrInvalidSignature", err)
			}
		}
	})
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestSignErrors(t *testing.T) {
	base := genMixed(12, 10_000)
	ctx := context.Background()
	if _, err := Sign(ctx, bytes.NewReader(base), int64(len(base))+1); !errors.Is(err, ErrBasisSize) {
		t.Errorf("short basis: err = %v, want ErrBasisSize", err)
	}
	if _, err := Sign(ctx, bytes.NewReader(base), int64(len(base))-1); !errors.Is(err, ErrBasisSize) {
		t.Errorf("long basis: err = %v, want ErrBasisSize", err)
	}
	boom := errors.New("boom")
	if _, err := Sign(ctx, io.MultiReader(bytes.NewReader(base[:10]), iotest.ErrReader(boom)), 100); !errors.Is(err, boom) {
		t.Errorf("read error: err = %v, want boom", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Sign(canceled, bytes.NewReader(base), int64(len(base))); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: err = %v", err)
	}
	for _, c := range []struct{ size, bs, sl int }{
		{10, 0, 8}, {10, MaxBlockSize + 1, 8}, {10, 700, MinStrongLen - 1}, {10, 700, MaxStrongLen + 1}, {-1, 700, 8},
	} {
		if _, err := SignWith(ctx, bytes.NewReader(nil), int64(c.size), c.bs, c.sl); !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("SignWith(size %d, bs %d, sl %d): err = %v", c.size, c.bs, c.sl, err)
		}
	}
	if _, err := SignWith(ctx, bytes.NewReader(nil), MaxBlocks+1, 1, 8); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("too many blocks: err = %v", err)
	}
}

func TestBlockSizeAndStrongLen(t *testing.T) {
	prev := 0
	for _, size := range []int64{-1, 0, 1, 700, 490_000, 490_001, 1 << 20, 64 << 20, 1 << 30, 10 << 30, 16 << 30, 1 << 40, 1 << 62} {
		bs := BlockSize(size)
		if bs < minBlockSize || bs > MaxBlockSize || bs < prev {
			t.Errorf("BlockSize(%d) = %d", size, bs)
		}
		if bs > minBlockSize && bs < MaxBlockSize && bs%8 != 0 {
			t.Errorf("BlockSize(%d) = %d, not a multiple of 8", size, bs)
		}
		prev = bs
		if sl := StrongLen(size); sl < MinStrongLen || sl > MaxStrongLen {
			t.Errorf("StrongLen(%d) = %d", size, sl)
		}
	}
	if got := BlockSize(1 << 20); got != 1024 {
		t.Errorf("BlockSize(1 MiB) = %d, want 1024", got)
	}
	if got := BlockSize(10 << 30); got != 103_616 {
		t.Errorf("BlockSize(10 GiB) = %d, want 103616", got)
	}
	if StrongLen(1<<40) <= StrongLen(1<<20) {
		t.Errorf("StrongLen does not grow with size: %d for 1 TiB, %d for 1 MiB", StrongLen(1<<40), StrongLen(1<<20))
	}
	for x := uint64(0); x < 5000; x++ {
		if r := isqrt(x); r*r > x || (r+1)*(r+1) <= x {
			t.Fatalf("isqrt(%d) = %d", x, r)
		}
	}
	for _, x := range []uint64{1<<63 - 1, 1<<64 - 1, 1 << 62, 1<<32 - 1, 1 << 32} {
		if r := isqrt(x); r*r > x || (r+1 != 1<<32 && (r+1)*(r+1) <= x) {
			t.Errorf("isqrt(%d) = %d", x, r)
		}
	}
}

// The rolling update must agree with summing each window from scratch.
func TestWeakRolls(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	b := append(genText(r, 3000), genRandom(r, 3000)...)
	for _, n := range []int{1, 2, 3, 5, 64, 700} {
		s1, s2 := weakSum(b[:n])
		for p := 0; p+n < len(b); p++ {
			out, in := uint32(b[p]), uint32(b[p+n])
			s1 += in - out
			s2 += s1 - uint32(n)*out
			w1, w2 := weakSum(b[p+1 : p+1+n])
			if weakOf(s1, s2) != weakOf(w1, w2) {
				t.Fatalf("window %d at %d: rolled %08x, summed %08x", n, p+1, weakOf(s1, s2), weakOf(w1, w2))
			}
		}
	}
}

func TestWeakSumDefinition(t *testing.T) {
	def := func(b []byte) (s1, s2 uint32) {
		for i, x := range b {
			s1 += uint32(x)
			s2 += uint32(len(b)-i) * uint32(x)
		}
		return s1, s2
	}
	check := func(b []byte) {
		t.Helper()
		s1, s2 := def(b)
		if g1, g2 := weakSum(b); g1 != s1 || g2 != s2 {
			t.Fatalf("weakSum(%x) = %d, %d; want %d, %d", b, g1, g2, s1, s2)
		}
	}
	r := rand.New(rand.NewPCG(15, 16))
	for range 200 {
		b := genRandom(r, r.IntN(100))
		if r.IntN(3) == 0 {
			for i := range b {
				b[i] = 0xff
			}
		}
		check(b)
	}
	// Every length through the 32-, 8- and 1-byte loops, at every
	// alignment of the tail: random bytes, all 0xff (every lane at its
	// bound, the worst case for carries) and random bytes from {0, 0xff}.
	ff := bytes.Repeat([]byte{0xff}, 300)
	for n := range 301 {
		check(genRandom(r, n))
		check(ff[:n])
		b := genRandom(r, n)
		for i := range b {
			b[i] = -(b[i] & 1)
		}
		check(b)
	}
	// A long input, so s1 and s2 wrap mod 2^32.
	check(bytes.Repeat([]byte{0xff}, 1<<20+37))
	check(genRandom(r, 1<<20+13))
}

// A peer can forge weak sums: here every block claims the weak sum of an
// all-zero window but none has its strong sum, so every position of a zero
// target hits the table. The lookup budget must keep this linear; without
// it this diff hashes a block per byte and runs for hours.
func TestForgedWeakSumsStayLinear(t *testing.T) {
	const bs = 4096
	sig := &Signature{BlockSize: bs, StrongLen: 8, Size: 1000 * bs, Weak: make([]uint32, 1000)}
	r := rand.New(rand.NewPCG(17, 18))
	sig.Strong = genRandom(r, 1000*8)
	size := 64 << 20
	if testing.Short() || raceEnabled {
		size = 4 << 20
	}
	st, err := Diff(context.Background(), sig, bytes.NewReader(make([]byte, size)), func(Op) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if st.Literal != int64(size) {
		t.Fatalf("literal %d of %d", st.Literal, size)
	}
}
