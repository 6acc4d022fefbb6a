package delta

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
)

// words make text-like data: compressible, with the short repeats and
// skewed byte distribution that strain a weak checksum.
var words = []string{
	"func", "return", "if", "err", "!=", "nil", "{", "}", "(", ")", "package",
	"import", "the", "a", "mirror", "block", "delta", "signature", "int64",
	"for", "range", ":=", "=", "//", "\n", "\n\t", "\t", " ", " ", " ",
}

func genText(r *rand.Rand, n int) []byte {
	b := make([]byte, 0, n+16)
	for len(b) < n {
		b = append(b, words[r.IntN(len(words))]...)
		if r.IntN(4) == 0 {
			b = append(b, ' ')
		}
	}
	return b[:n]
}

func genRandom(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// genMixed is half text-like, half random, deterministic in seed.
func genMixed(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	return append(genText(r, n/2), genRandom(r, n-n/2)...)
}

// diffOps runs Diff and returns copies of its ops, checking the invariants
// every delta must keep.
func diffOps(t testing.TB, sig *Signature, target []byte) ([]Op, Stats) {
	t.Helper()
	var ops []Op
	st, err := Diff(context.Background(), sig, bytes.NewReader(target), func(op Op) error {
		if op.Kind == OpLiteral {
			op.Data = bytes.Clone(op.Data)
		}
		ops = append(ops, op)
		return nil
	})
	if err != nil {
		t.Fatalf("Diff: %v", err)
	}
	checkOps(t, sig, ops, st, len(target))
	return ops, st
}

func checkOps(t testing.TB, sig *Signature, ops []Op, st Stats, targetLen int) {
	t.Helper()
	if st.Ops != len(ops) {
		t.Fatalf("Stats.Ops = %d, emitted %d", st.Ops, len(ops))
	}
	if st.Literal+st.Matched != int64(targetLen) {
		t.Fatalf("Literal %d + Matched %d != target length %d", st.Literal, st.Matched, targetLen)
	}
	var lit int64
	for i, op := range ops {
		switch op.Kind {
		case OpLiteral:
			if len(op.Data) == 0 || len(op.Data) > MaxLiteral {
				t.Fatalf("op %d: literal of %d bytes", i, len(op.Data))
			}
			lit += int64(len(op.Data))
		case OpCopy:
			if op.Count == 0 || op.Block+uint64(op.Count) > uint64(sig.Blocks()) {
				t.Fatalf("op %d: copy %d+%d out of %d blocks", i, op.Block, op.Count, sig.Blocks())
			}
			if i > 0 {
				if prev := ops[i-1]; prev.Kind == OpCopy && prev.Block+uint64(prev.Count) == op.Block {
					t.Fatalf("op %d: copy %d+%d not merged with %d+%d", i, op.Block, op.Count, prev.Block, prev.Count)
				}
			}
		default:
			t.Fatalf("op %d: kind %d", i, op.Kind)
		}
	}
	if lit != st.Literal {
		t.Fatalf("literal bytes %d, Stats.Literal %d", lit, st.Literal)
	}
}

func patch(t testing.TB, base []byte, bs int, ops []Op) []byte {
	t.Helper()
	var out bytes.Buffer
	p := NewPatcher(bytes.NewReader(base), int64(len(base)), bs, &out)
	for i, op := range ops {
		if err := p.Apply(op); err != nil {
			t.Fatalf("Apply op %d (%s): %v", i, op.Kind, err)
		}
	}
	if p.Written() != int64(out.Len()) {
		t.Fatalf("Written() = %d, wrote %d", p.Written(), out.Len())
	}
	return out.Bytes()
}

// roundTrip signs base with the given block size and strong length (0 for
// the defaults), diffs target against it, patches, and checks the result.
func roundTrip(t testing.TB, base, target []byte, bs, sl int) Stats {
	t.Helper()
	if bs == 0 {
		bs = BlockSize(int64(len(base)))
	}
	if sl == 0 {
		sl = StrongLen(int64(len(base)))
	}
	sig, err := SignWith(context.Background(), bytes.NewReader(base), int64(len(base)), bs, sl)
	if err != nil {
		t.Fatalf("SignWith: %v", err)
	}
	ops, st := diffOps(t, sig, target)
	if got := patch(t, base, bs, ops); !bytes.Equal(got, target) {
		t.Fatalf("patched %d bytes differ from target of %d (base %d, block %d, %d ops)", len(got), len(target), len(base), bs, len(ops))
	}
	return st
}
