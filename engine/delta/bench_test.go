package delta

import (
	"bytes"
	"context"
	"math/rand/v2"
	"sync"
	"testing"
)

const benchSize = 64 << 20

type benchSet struct {
	base, edited, allNew []byte
	sig                  *Signature
	editOps              []Op
}

// benchData is built once per test binary, outside every timed loop.
var benchData = sync.OnceValue(func() *benchSet {
	s := &benchSet{base: genMixed(1, benchSize), allNew: genMixed(2, benchSize)}
	r := rand.New(rand.NewPCG(3, 3))
	// Ten 100-byte edits spread over both halves: overwrites, insertions
	// and deletions, so some shift the rest of the file.
	s.edited = bytes.Clone(s.base)
	for i := range 10 {
		at := i*len(s.base)/10 + r.IntN(len(s.base)/20)
		switch i % 3 {
		case 0:
			s.edited = splice(s.edited, at, 100, genRandom(r, 100))
		case 1:
			s.edited = splice(s.edited, at, 0, genRandom(r, 100))
		case 2:
			s.edited = splice(s.edited, at, 100, nil)
		}
	}
	sig, err := Sign(context.Background(), bytes.NewReader(s.base), int64(len(s.base)))
	if err != nil {
		panic(err)
	}
	s.sig = sig
	_, err = Diff(context.Background(), sig, bytes.NewReader(s.edited), func(op Op) error {
		op.Data = bytes.Clone(op.Data)
		s.editOps = append(s.editOps, op)
		return nil
	})
	if err != nil {
		panic(err)
	}
	return s
})

func BenchmarkSign64MiB(b *testing.B) {
	s := benchData()
	b.SetBytes(int64(len(s.base)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := Sign(context.Background(), bytes.NewReader(s.base), int64(len(s.base))); err != nil {
			b.Fatal(err)
		}
	}
}

func benchDiff(b *testing.B, target []byte) {
	s := benchData()
	b.SetBytes(int64(len(target)))
	b.ResetTimer()
	var st Stats
	for b.Loop() {
		var err error
		st, err = Diff(context.Background(), s.sig, bytes.NewReader(target), func(Op) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(st.Literal), "literal-bytes")
	b.ReportMetric(float64(st.Ops), "ops")
}

func BenchmarkDiff64MiBUnchanged(b *testing.B)      { benchDiff(b, benchData().base) }
func BenchmarkDiff64MiBScatteredEdits(b *testing.B) { benchDiff(b, benchData().edited) }
func BenchmarkDiff64MiBAllNew(b *testing.B)         { benchDiff(b, benchData().allNew) }

func BenchmarkPatch64MiB(b *testing.B) {
	s := benchData()
	var out bytes.Buffer
	out.Grow(len(s.edited))
	b.SetBytes(int64(len(s.edited)))
	b.ResetTimer()
	for b.Loop() {
		out.Reset()
		p := NewPatcher(bytes.NewReader(s.base), int64(len(s.base)), s.sig.BlockSize, &out)
		for _, op := range s.editOps {
			if err := p.Apply(op); err != nil {
				b.Fatal(err)
			}
		}
	}
	if !bytes.Equal(out.Bytes(), s.edited) {
		b.Fatal("patched output differs")
	}
}

// The agent's path: SignSparseWith sums blocks on every core.
func BenchmarkSignSparse64MiB(b *testing.B) {
	s := benchData()
	size := int64(len(s.base))
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		if _, err := SignSparse(context.Background(), bytes.NewReader(s.base), size, func(int64) (int64, int64) { return 0, size }); err != nil {
			b.Fatal(err)
		}
	}
}
