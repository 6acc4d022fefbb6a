package delta

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// A target diffed in pieces (the data between a sparse file's holes):
// the ops of each piece rebuild exactly that piece, blocks of the basis
// are found in every piece, and the stats add up over the pieces.
func TestDifferPieces(t *testing.T) {
	const bs = 1024
	base := genMixed(7, 64*bs+100)
	sig := mustSign(t, base, bs)
	pieces := [][]byte{
		append(bytes.Clone(base[:10*bs]), []byte("an edit")...),
		genMixed(8, 3*bs),
		bytes.Clone(base[20*bs : 30*bs+5]),
		bytes.Clone(base[len(base)-100:]), // the short last block
	}
	var ops []Op
	d, err := NewDiffer(context.Background(), sig, func(op Op) error {
		if op.Kind == OpLiteral {
			op.Data = bytes.Clone(op.Data)
		}
		ops = append(ops, op)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var total int
	for i, piece := range pieces {
		ops = ops[:0]
		before := d.Stats()
		if err := d.Piece(bytes.NewReader(piece)); err != nil {
			t.Fatalf("piece %d: %v", i, err)
		}
		st := d.Stats()
		st.Literal -= before.Literal
		st.Matched -= before.Matched
		st.Ops -= before.Ops
		checkOps(t, sig, ops, st, len(piece))
		if got := patch(t, base, bs, ops); !bytes.Equal(got, piece) {
			t.Fatalf("piece %d rebuilt wrong", i)
		}
		total += len(piece)
	}
	st := d.Stats()
	if st.Literal+st.Matched != int64(total) {
		t.Errorf("stats %+v for %d bytes", st, total)
	}
	if st.Matched < int64(20*bs) {
		t.Errorf("matched only %d bytes", st.Matched)
	}
	if _, err := NewDiffer(context.Background(), &Signature{BlockSize: 0, Size: 5}, nil); err == nil {
		t.Errorf("a bad signature was accepted")
	}
}

// SignSparse makes the signature Sign makes of the same bytes, whatever
// the holes it is told of (as long as they hold zeros), also when the
// blocks straddle the edges of the data.
func TestSignSparse(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int64{1, 700, 5000, 1 << 20, 3<<20 + 333} {
		for trial := range 5 {
			b := make([]byte, size)
			// Data runs at random places; the rest stays zero.
			type run struct{ start, end int64 }
			var runs []run
			for off := int64(0); off < size; {
				gap := r.Int64N(size/4 + 2)
				n := r.Int64N(size/8 + 2)
				start, end := min(size, off+gap), min(size, off+gap+n)
				if end > start {
					copy(b[start:end], genRandom(r, int(end-start)))
					runs = append(runs, run{start, end})
				}
				off = end
			}
			nextData := func(off int64) (int64, int64) {
				for _, x := range runs {
					if x.end > off {
						return max(x.start, off), x.end
					}
				}
				return size, size
			}
			want, err := Sign(context.Background(), bytes.NewReader(b), size)
			if err != nil {
				t.Fatal(err)
			}
			for name, nd := range map[string]func(int64) (int64, int64){
				"holes":    nextData,
				"all data": func(off int64) (int64, int64) { return off, size },
			} {
				got, err := SignSparse(context.Background(), bytes.NewReader(b), size, nd)
				if err != nil {
					t.Fatalf("size %d trial %d %s: %v", size, trial, name, err)
				}
				if !slices.Equal(got.Weak, want.Weak) || !bytes.Equal(got.Strong, want.Strong) || got.BlockSize != want.BlockSize || got.Size != want.Size {
					t.Fatalf("size %d trial %d %s: signature differs from Sign's", size, trial, name)
				}
			}
		}
	}
	all := func(off int64) (int64, int64) { return off, 1 << 20 }
	if _, err := SignSparse(context.Background(), bytes.NewReader(make([]byte, 1<<20-1)), 1<<20, all); !errors.Is(err, ErrBasisSize) {
		t.Errorf("short basis: %v", err)
	}
	if _, err := SignSparse(context.Background(), bytes.NewReader(make([]byte, 1<<20+1)), 1<<20, all); !errors.Is(err, ErrBasisSize) {
		t.Errorf("long basis: %v", err)
	}
}
