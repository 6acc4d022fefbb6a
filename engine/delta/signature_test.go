package delta

import (
	"bytes"
	"context"
	"encoding"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

var _ encoding.BinaryAppender = (*Signature)(nil)

func sameSignature(a, b *Signature) bool {
	return a.BlockSize == b.BlockSize && a.StrongLen == b.StrongLen && a.Size == b.Size &&
		slices.Equal(a.Weak, b.Weak) && bytes.Equal(a.Strong, b.Strong)
}

func TestSignatureRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for i := range 200 {
		size := []int{0, 1, 699, 700, 701, 5000, r.IntN(300_000)}[i%7]
		bs := []int{1, 7, 700, 4096, MaxBlockSize, BlockSize(int64(size))}[r.IntN(6)]
		sl := MinStrongLen + r.IntN(MaxStrongLen-MinStrongLen+1)
		base := genMixed(uint64(i), size)
		sig, err := SignWith(context.Background(), bytes.NewReader(base), int64(size), bs, sl)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := int64(len(sig.Weak)), sig.Blocks(); got != want {
			t.Fatalf("%d weak sums for %d blocks", got, want)
		}
		prefix := []byte("prefix")
		enc, err := sig.AppendBinary(slices.Clone(prefix))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(enc, prefix) {
			t.Fatal("AppendBinary lost the prefix")
		}
		enc = enc[len(prefix):]
		if want := 1 + 1 + len(sig.Weak)*(4+sl); len(enc) < want || len(enc) > want+2*10 {
			t.Fatalf("encoding of %d blocks is %d bytes", len(sig.Weak), len(enc))
		}
		dec, err := UnmarshalSignature(enc)
		if err != nil {
			t.Fatalf("UnmarshalSignature: %v", err)
		}
		if !sameSignature(sig, dec) {
			t.Fatalf("decoded signature differs: size %d bs %d sl %d", size, bs, sl)
		}
	}
}

func TestUnmarshalSignatureRejects(t *testing.T) {
	sig := mustSign(t, genMixed(23, 2000), 700)
	good, err := sig.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	mut := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	for name, b := range map[string][]byte{
		"nil":                 nil,
		"version only":        {sigVersion},
		"bad version":         mut(func(b []byte) []byte { b[0] = 2; return b }),
		"truncated":           good[:len(good)-1],
		"extra byte":          append(slices.Clone(good), 0),
		"block size 0":        {sigVersion, 0, 8, 0},
		"block size too big":  append(append([]byte{sigVersion}, uvarintBytes(MaxBlockSize+1)...), 8, 0),
		"strong len too low":  {sigVersion, 1, MinStrongLen - 1, 0},
		"strong len too high": {sigVersion, 1, MaxStrongLen + 1, 0},
		"overlong varint":     {sigVersion, 0x81, 0x00, 8, 0},
		"varint overflow":     {sigVersion, 1, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"too many blocks":     append([]byte{sigVersion, 1, 8}, uvarintBytes(MaxBlocks+1)...),
		"huge size":           append([]byte{sigVersion, 1, 8}, uvarintBytes(1<<62)...),
		"missing sums":        {sigVersion, 1, 8, 5},
	} {
		if s, err := UnmarshalSignature(b); !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("%s: got %v, %v; want ErrInvalidSignature", name, s, err)
		}
	}
	if _, err := UnmarshalSignature(good); err != nil {
		t.Fatalf("good encoding: %v", err)
	}
	empty, err := (&Signature{BlockSize: 700, StrongLen: 8}).AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := UnmarshalSignature(empty); err != nil || s.Size != 0 || len(s.Weak) != 0 {
		t.Fatalf("empty basis: %v, %v", s, err)
	}
}

func TestAppendBinaryRejectsInvalid(t *testing.T) {
	sig := mustSign(t, genMixed(24, 2000), 700)
	for name, s := range map[string]*Signature{
		"nil":          nil,
		"short weak":   {BlockSize: 700, StrongLen: 8, Size: 2000, Weak: sig.Weak[:2], Strong: sig.Strong},
		"short strong": {BlockSize: 700, StrongLen: 8, Size: 2000, Weak: sig.Weak, Strong: sig.Strong[:8]},
		"strong len":   {BlockSize: 700, StrongLen: 17, Size: 2000, Weak: sig.Weak, Strong: sig.Strong},
	} {
		if _, err := s.AppendBinary(nil); !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("%s: err = %v, want ErrInvalidSignature", name, err)
		}
	}
}

func uvarintBytes(v uint64) []byte {
	var b []byte
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}
