package delta

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestPatcherRejects(t *testing.T) {
	base := genMixed(31, 1000) // blocks of 64: 15 full and one of 40
	for _, tc := range []struct {
		name string
		size int64
		bs   int
		op   Op
	}{
		{"unknown kind", 1000, 64, Op{Kind: 0}},
		{"kind 3", 1000, 64, Op{Kind: 3, Data: []byte("x")}},
		{"empty literal", 1000, 64, Op{Kind: OpLiteral}},
		{"long literal", 1000, 64, Op{Kind: OpLiteral, Data: make([]byte, MaxLiteral+1)}},
		{"zero count", 1000, 64, Op{Kind: OpCopy, Block: 0, Count: 0}},
		{"block past end", 1000, 64, Op{Kind: OpCopy, Block: 16, Count: 1}},
		{"count past end", 1000, 64, Op{Kind: OpCopy, Block: 10, Count: 7}},
		{"huge block", 1000, 64, Op{Kind: OpCopy, Block: math.MaxUint64, Count: 1}},
		{"huge count", 1000, 64, Op{Kind: OpCopy, Block: 1, Count: math.MaxUint32}},
		{"empty basis", 0, 64, Op{Kind: OpCopy, Block: 0, Count: 1}},
		{"block size 0", 1000, 0, Op{Kind: OpCopy, Block: 0, Count: 1}},
		{"negative size", -5, 64, Op{Kind: OpCopy, Block: 0, Count: 1}},
		{"block size too big", 1000, MaxBlockSize + 1, Op{Kind: OpCopy, Block: 0, Count: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			p := NewPatcher(bytes.NewReader(base), tc.size, tc.bs, &out)
			err := p.Apply(tc.op)
			if !errors.Is(err, ErrInvalidOp) && !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("err = %v, want ErrInvalidOp", err)
			}
			if out.Len() != 0 || p.Written() != 0 {
				t.Fatalf("wrote %d bytes for a rejected op", out.Len())
			}
		})
	}
}

func TestPatcherCopies(t *testing.T) {
	base := genMixed(32, 1000)
	var out bytes.Buffer
	p := NewPatcher(bytes.NewReader(base), int64(len(base)), 64, &out)
	for _, op := range []Op{
		{Kind: OpCopy, Block: 15, Count: 1}, // the short last block
		{Kind: OpLiteral, Data: []byte("--")},
		{Kind: OpCopy, Block: 0, Count: 16},
		{Kind: OpCopy, Block: 3, Count: 2},
	} {
		if err := p.Apply(op); err != nil {
			t.Fatal(err)
		}
	}
	want := bytes.Join([][]byte{base[960:], []byte("--"), base, base[192:320]}, nil)
	if !bytes.Equal(out.Bytes(), want) || p.Written() != int64(len(want)) {
		t.Fatalf("got %d bytes (Written %d), want %d", out.Len(), p.Written(), len(want))
	}
}

func TestPatcherShortBasis(t *testing.T) {
	base := genMixed(33, 1000)
	p := NewPatcher(bytes.NewReader(base[:900]), 1000, 64, io.Discard)
	if err := p.Apply(Op{Kind: OpCopy, Block: 14, Count: 2}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
}

// An *os.File on both sides takes the kernel copy path through
// SectionReader; the bytes must be the same.
func TestPatcherFiles(t *testing.T) {
	dir := t.TempDir()
	base := genMixed(34, 3<<20+5)
	target := splice(base, 1<<20, 10, []byte("a change"))
	basePath := filepath.Join(dir, "base")
	if err := os.WriteFile(basePath, base, 0o600); err != nil {
		t.Fatal(err)
	}
	sig := mustSign(t, base, BlockSize(int64(len(base))))
	ops, _ := diffOps(t, sig, target)

	bf, err := os.Open(basePath)
	if err != nil {
		t.Fatal(err)
	}
	defer bf.Close()
	of, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer of.Close()
	p := NewPatcher(bf, int64(len(base)), sig.BlockSize, of)
	for _, op := range ops {
		if err := p.Apply(op); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(of.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, target) || p.Written() != int64(len(target)) {
		t.Fatalf("file patch gave %d bytes (Written %d), want %d", len(got), p.Written(), len(target))
	}
}

// CopyAt takes byte ranges off the wire: only those inside the basis.
func TestPatcherCopyAt(t *testing.T) {
	base := genMixed(32, 1000)
	var out bytes.Buffer
	p := NewPatcher(bytes.NewReader(base), int64(len(base)), 64, &out)
	for _, tc := range []struct {
		off int64
		n   uint32
	}{{0, 0}, {-1, 1}, {1000, 1}, {999, 2}, {1, math.MaxUint32}, {math.MaxInt64, 1}} {
		if err := p.CopyAt(tc.off, tc.n); !errors.Is(err, ErrInvalidOp) {
			t.Errorf("CopyAt(%d, %d) = %v, want ErrInvalidOp", tc.off, tc.n, err)
		}
	}
	if err := p.CopyAt(3, 500); err != nil {
		t.Fatal(err)
	}
	if err := p.CopyAt(999, 1); err != nil {
		t.Fatal(err)
	}
	if want := append(bytes.Clone(base[3:503]), base[999]); !bytes.Equal(out.Bytes(), want) || p.Written() != 501 {
		t.Fatalf("CopyAt wrote %d bytes, not the ranges", out.Len())
	}
}
