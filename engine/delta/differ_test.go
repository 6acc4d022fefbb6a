package delta

import (
	"bytes"
	"context"
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
