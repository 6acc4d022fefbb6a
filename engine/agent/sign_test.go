//go:build !windows

package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/gosync/gosync/engine/delta"
	"github.com/gosync/gosync/engine/wire"
)

// A signature whose block size or range the client chose is bounded: a
// range outside the file or blocks so small that there would be more of
// them than the limit are refused; a valid range is signed alone.
func TestSignatureRequestsBounded(t *testing.T) {
	root := t.TempDir()
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	if err := os.WriteFile(filepath.Join(root, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := serve(t, root, 0)
	ask := func(m *wire.SigReq) *wire.Sig {
		t.Helper()
		if err := c.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		for {
			got, err := c.ReadMsg()
			if err != nil {
				t.Fatal(err)
			}
			if s, ok := got.(*wire.Sig); ok {
				return s
			}
		}
	}
	size := int64(len(data))
	for _, m := range []*wire.SigReq{
		{ID: 1, Path: "f", Size: size, BlockSize: 8},
		{ID: 2, Path: "f", Size: size, BlockSize: delta.MaxBlockSize + 8},
		{ID: 3, Path: "f", Size: size, BlockSize: 1024, Off: size - 10, Len: 11},
		{ID: 4, Path: "f", Size: size, BlockSize: 1024, Off: size + 1, Len: 1},
	} {
		if s := ask(m); s.Err == "" {
			t.Errorf("%+v was signed", m)
		}
	}
	s := ask(&wire.SigReq{ID: 5, Path: "f", Size: size, BlockSize: 1024, Off: 100, Len: 5000})
	if s.Err != "" {
		t.Fatal(s.Err)
	}
	sig, err := delta.UnmarshalSignature(s.Sig)
	if err != nil {
		t.Fatal(err)
	}
	want, err := delta.SignWith(t.Context(), bytes.NewReader(data[100:5100]), 5000, 1024, delta.StrongLenFor(size, 1024))
	if err != nil {
		t.Fatal(err)
	}
	if sig.Size != 5000 || sig.BlockSize != 1024 || !bytes.Equal(sig.Strong, want.Strong) {
		t.Fatalf("range signature: %d bytes in blocks of %d", sig.Size, sig.BlockSize)
	}
}
