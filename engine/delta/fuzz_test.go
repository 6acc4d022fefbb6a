package delta

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

func FuzzUnmarshalSignature(f *testing.F) {
	for _, base := range [][]byte{nil, []byte("x"), genMixed(41, 3000)} {
		for _, bs := range []int{1, 700} {
			sig, err := SignWith(context.Background(), bytes.NewReader(base), int64(len(base)), bs, 8)
			if err != nil {
				f.Fatal(err)
			}
			enc, err := sig.AppendBinary(nil)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(enc)
		}
	}
	target := genMixed(42, 5000)
	f.Fuzz(func(t *testing.T, b []byte) {
		sig, err := UnmarshalSignature(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("error %v does not wrap ErrInvalidSignature", err)
			}
			return
		}
		enc, err := sig.AppendBinary(nil)
		if err != nil {
			t.Fatalf("re-encoding a decoded signature: %v", err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding gave %x, decoded %x", enc, b)
		}
		// Whatever a peer sends, a diff against it must be well formed.
		_, st := diffOps(t, sig, target)
		if st.Literal+st.Matched != int64(len(target)) {
			t.Fatalf("diff covers %d of %d bytes", st.Literal+st.Matched, len(target))
		}
	})
}

// fuzzBasis is what FuzzPatch's ops apply to: 15 blocks of 64 and a short
// one of 40.
var fuzzBasis = genMixed(43, 1000)

const fuzzBlock = 64

// decodeFuzzOps turns fuzz bytes into ops, valid or not. Each op starts with
// a selector byte; numbers are uvarints so both small and huge values are
// easy to reach. Literal contents are generated, so long literals need few
// input bytes.
func decodeFuzzOps(b []byte) []Op {
	var ops []Op
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	for len(b) > 0 {
		sel := b[0]
		b = b[1:]
		switch sel % 4 {
		case 0, 1:
			block, ok1 := next()
			count, ok2 := next()
			if !ok1 || !ok2 {
				return ops
			}
			ops = append(ops, Op{Kind: OpCopy, Block: block, Count: uint32(min(count, math.MaxUint32))})
		case 2:
			n, ok := next()
			if !ok {
				return ops
			}
			ops = append(ops, Op{Kind: OpLiteral, Data: fuzzData(sel, min(n, MaxLiteral+2))})
		case 3:
			kind, ok1 := next()
			n, ok2 := next()
			if !ok1 || !ok2 {
				return ops
			}
			ops = append(ops, Op{Kind: OpKind(kind), Block: n, Count: uint32(n), Data: fuzzData(sel, min(n, 100))})
		}
	}
	return ops
}

func fuzzData(seed byte, n uint64) []byte {
	d := make([]byte, n)
	for i := range d {
		d[i] = seed + byte(i*7)
	}
	return d
}

// expectApply is the reference model of Patcher.Apply: the bytes op stands
// for, or false if the op must be rejected.
func expectApply(op Op) ([]byte, bool) {
	nb := uint64(len(fuzzBasis)+fuzzBlock-1) / fuzzBlock
	switch op.Kind {
	case OpCopy:
		if op.Count == 0 || op.Block >= nb || op.Block+uint64(op.Count) > nb {
			return nil, false
		}
		start := op.Block * fuzzBlock
		end := min(uint64(len(fuzzBasis)), (op.Block+uint64(op.Count))*fuzzBlock)
		return fuzzBasis[start:end], true
	case OpLiteral:
		if len(op.Data) == 0 || len(op.Data) > MaxLiteral {
			return nil, false
		}
		return op.Data, true
	}
	return nil, false
}

func FuzzPatch(f *testing.F) {
	f.Add([]byte{0, 0, 16})                             // whole basis
	f.Add([]byte{0, 15, 1, 2, 10, 1, 3, 2})             // short block, literal, copy
	f.Add([]byte{2, 0x80, 0x80, 0x04})                  // literal of MaxLiteral
	f.Add([]byte{2, 0x81, 0x80, 0x04})                  // literal of MaxLiteral+1
	f.Add([]byte{1, 16, 1, 0, 17, 0, 3, 3, 5, 7, 0, 0}) // invalid ops between valid ones
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		var out bytes.Buffer
		p := NewPatcher(bytes.NewReader(fuzzBasis), int64(len(fuzzBasis)), fuzzBlock, &out)
		wantLen := 0
		for i, op := range decodeFuzzOps(b) {
			exp, ok := expectApply(op)
			err := p.Apply(op)
			switch {
			case ok && err != nil:
				t.Fatalf("op %d %+v: unexpected error %v", i, op, err)
			case !ok && err == nil:
				t.Fatalf("op %d %+v: accepted an invalid op", i, op)
			case !ok && !errors.Is(err, ErrInvalidOp):
				t.Fatalf("op %d: error %v does not wrap ErrInvalidOp", i, err)
			}
			got := out.Bytes()[wantLen:]
			if !bytes.Equal(got, exp) || p.Written() != int64(out.Len()) {
				t.Fatalf("op %d %+v: wrote %d bytes (Written %d), want %d", i, op, len(got), p.Written(), len(exp))
			}
			wantLen += len(exp)
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	base := genMixed(44, 600)
	f.Add([]byte{}, []byte{}, uint16(0))
	f.Add([]byte("hello"), []byte("hello, world"), uint16(2))
	f.Add(base, base, uint16(100))
	f.Add(base, splice(base, 300, 3, []byte("edit")), uint16(63))
	f.Add(base, append([]byte("x"), base...), uint16(699))
	f.Add(make([]byte, 500), make([]byte, 777), uint16(10))
	f.Fuzz(func(t *testing.T, base, target []byte, bs uint16) {
		// Strong sums of 8+ bytes: a fuzzer will not find an xxh3 collision,
		// so any mismatch is a real bug.
		roundTrip(t, base, target, 1+int(bs)%1024, 8)
	})
}
