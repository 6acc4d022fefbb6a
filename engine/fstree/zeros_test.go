package fstree

import (
	"bytes"
	"testing"
)

func TestSplitZeros(t *testing.T) {
	type run struct {
		n    int
		zero bool
	}
	data := func(n int) []byte { return bytes.Repeat([]byte{1}, n) }
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	tests := []struct {
		name string
		b    []byte
		off  int64
		want []run
	}{
		{"empty", nil, 0, nil},
		{"all zeros", make([]byte, 3*ZeroBlock), 0, []run{{3 * ZeroBlock, true}}},
		{"all data", data(2 * ZeroBlock), 0, []run{{2 * ZeroBlock, false}}},
		{"hole between data", cat(data(ZeroBlock), make([]byte, 2*ZeroBlock), data(10)), 0,
			[]run{{ZeroBlock, false}, {2 * ZeroBlock, true}, {10, false}}},
		// A block with one byte of data is data; short zero runs too.
		{"zeros short of a block", cat(make([]byte, ZeroBlock-1), data(1), make([]byte, ZeroBlock)), 0,
			[]run{{ZeroBlock, false}, {ZeroBlock, true}}},
		// Blocks are aligned on the file's offsets, not on b.
		{"unaligned", cat(make([]byte, 100), data(ZeroBlock), make([]byte, ZeroBlock+100)), ZeroBlock - 100,
			[]run{{100, true}, {ZeroBlock, false}, {ZeroBlock + 100, true}}},
		{"data across a boundary", cat(make([]byte, 98), data(4), make([]byte, ZeroBlock)), ZeroBlock - 100,
			[]run{{ZeroBlock + 100, false}, {2, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []run
			var back []byte
			SplitZeros(tt.b, tt.off, func(r []byte, zero bool) error {
				got = append(got, run{len(r), zero})
				if zero && !bytes.Equal(r, make([]byte, len(r))) {
					t.Errorf("a run of data called zero")
				}
				back = append(back, r...)
				return nil
			})
			if !bytes.Equal(back, tt.b) {
				t.Errorf("runs do not add up to the input")
			}
			if len(got) != len(tt.want) {
				t.Fatalf("runs %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("runs %v, want %v", got, tt.want)
				}
			}
		})
	}
}
