package delta

import (
	"context"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
)

// editedStream yields a long target made of the basis over and over, each
// pass with a few edits, without ever holding more than one read's worth.
type editedStream struct {
	basis []byte
	left  int64
	off   int
	r     *rand.Rand
}

func (s *editedStream) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), s.left)]
	var n int
	if s.r.IntN(50) == 0 {
		// A burst of new bytes, or a skip that shifts what follows.
		if s.r.IntN(2) == 0 {
			n = min(len(p), 1+s.r.IntN(3000))
			for i := range n {
				p[i] = byte(s.r.Uint32())
			}
		} else {
			s.off = (s.off + 1 + s.r.IntN(500)) % len(s.basis)
		}
	} else {
		n = copy(p, s.basis[s.off:])
		s.off = (s.off + n) % len(s.basis)
	}
	s.left -= int64(n)
	return n, nil
}

func TestDiffMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("streams hundreds of MiB")
	}
	size := int64(256 << 20)
	if raceEnabled {
		size = 32 << 20
	}
	basis := genMixed(51, 1<<20)
	sig := mustSign(t, basis, BlockSize(int64(len(basis))))
	target := &editedStream{basis: basis, left: size, r: rand.New(rand.NewPCG(52, 53))}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var emitted int64
	st, err := Diff(context.Background(), sig, target, func(op Op) error {
		emitted += int64(len(op.Data))
		return nil
	})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if st.Literal+st.Matched != size || emitted != st.Literal {
		t.Fatalf("diff covered %d+%d bytes of %d", st.Literal, st.Matched, size)
	}
	if st.Matched < size/2 {
		t.Fatalf("only %d of %d bytes matched; the stream is mostly the basis", st.Matched, size)
	}
	const limit = 8 << 20
	if grew := after.TotalAlloc - before.TotalAlloc; grew > limit {
		t.Fatalf("Diff of %d MiB allocated %d bytes, want < %d", size>>20, grew, limit)
	}
	t.Logf("target %d MiB: allocated %d KiB, literal %d, matched %d, %d ops",
		size>>20, (after.TotalAlloc-before.TotalAlloc)>>10, st.Literal, st.Matched, st.Ops)
}
