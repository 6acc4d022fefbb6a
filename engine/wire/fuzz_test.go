package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzDecode feeds arbitrary payloads to every message decoder. Whatever
// decodes must re-encode to a message that decodes and encodes to the
// same bytes.
func FuzzDecode(f *testing.F) {
	for _, m := range sampleMsgs() {
		f.Add(uint8(m.Type()), encode(m))
	}
	f.Fuzz(func(t *testing.T, typ uint8, payload []byte) {
		m, err := Decode(Type(typ), payload)
		if err != nil {
			return
		}
		b := encode(m)
		again, err := Decode(Type(typ), b)
		if err != nil {
			t.Fatalf("re-decode of %#v: %v", m, err)
		}
		if b2 := encode(again); !bytes.Equal(b, b2) {
			t.Fatalf("round trip changed %#v to %#v", m, again)
		}
	})
}

// FuzzReadMsg feeds arbitrary streams to the framing layer, plain and
// zstd-compressed: it must return errors, never panic or allocate past
// its limits.
func FuzzReadMsg(f *testing.F) {
	var buf bytes.Buffer
	w := NewConn(nil, &buf)
	for _, m := range sampleMsgs() {
		w.WriteMsg(m)
	}
	w.Flush()
	f.Add(buf.Bytes(), false)
	f.Add([]byte{byte(TFileData), 0xff, 0xff, 0xff, 0xff, 0x0f}, false)
	var zbuf bytes.Buffer
	zw := NewConn(nil, &zbuf)
	zw.StartCompression(1)
	for _, m := range sampleMsgs() {
		zw.WriteMsg(m)
	}
	zw.Flush()
	f.Add(zbuf.Bytes(), true)
	f.Fuzz(func(t *testing.T, stream []byte, compressed bool) {
		c := NewConn(bytes.NewReader(stream), io.Discard)
		if compressed {
			if err := c.StartCompression(1); err != nil {
				t.Fatal(err)
			}
		}
		defer c.Close()
		for i := 0; i < 1000; i++ {
			if _, err := c.ReadMsg(); err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, ErrFrame) || errors.Is(err, io.ErrUnexpectedEOF) {
					return
				}
				if compressed {
					return // zstd reports its own corruption errors
				}
				t.Fatalf("unexpected error kind: %v", err)
			}
		}
	})
}

// FuzzLooksLikeHello checks the probe-output test against the real
// decoder: whatever stream ReadMsg reads a Hello from first, LooksLikeHello
// accepts from its first HelloPrefix bytes, and it never panics.
func FuzzLooksLikeHello(f *testing.F) {
	for _, m := range sampleMsgs() {
		var buf bytes.Buffer
		w := NewConn(nil, &buf)
		w.WriteMsg(m)
		w.Flush()
		f.Add(buf.Bytes())
	}
	f.Add([]byte("gosync-start cached\n"))
	f.Add([]byte{byte(THello), 0x80})
	f.Fuzz(func(t *testing.T, stream []byte) {
		prefix := stream[:min(len(stream), HelloPrefix)]
		looks := LooksLikeHello(prefix)
		m, err := NewConn(bytes.NewReader(stream), io.Discard).ReadMsg()
		if _, ok := m.(*Hello); ok && err == nil && !looks {
			t.Fatalf("ReadMsg found a Hello in %q, LooksLikeHello did not", stream)
		}
	})
}
