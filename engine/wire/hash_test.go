package wire

import (
	"bytes"
	"testing"

	"github.com/gosync/gosync/engine/fstree"
)

func TestFileHash(t *testing.T) {
	content := []byte("some data, then zeros")
	plain := fstree.NewHasher()
	plain.Write(content)
	var want fstree.Hash
	plain.Sum(want[:0])

	h := NewFileHash()
	h.Write(content[:4])
	h.Write(content[4:])
	if h.Sum() != want {
		t.Errorf("a file without holes must hash to its content hash")
	}

	sum := func(steps ...any) fstree.Hash {
		h.Reset()
		for _, s := range steps {
			switch s := s.(type) {
			case string:
				h.Write([]byte(s))
			case int:
				h.Hole(int64(s))
			}
		}
		return h.Sum()
	}
	base := sum("ab", 4096, "cd")
	same := map[string]fstree.Hash{
		"split writes":   sum("a", "b", 4096, "c", "d"),
		"adjacent holes": sum("ab", 1000, 3096, "cd"),
		"empty hole":     sum("ab", 0, 4096, "cd"),
	}
	for name, got := range same {
		if got != base {
			t.Errorf("%s: hash differs", name)
		}
	}
	other := map[string]fstree.Hash{
		"zeros as data":      sum("ab", string(make([]byte, 4096)), "cd"),
		"hole moved":         sum("a", 4096, "bcd"),
		"hole longer":        sum("ab", 4097, "cd"),
		"no hole":            sum("abcd"),
		"trailing hole":      sum("ab", 4096, "cd", 1),
		"data like a record": sum("ab" + string(bytes.Repeat([]byte{'h'}, 9)) + "cd"),
	}
	for name, got := range other {
		if got == base {
			t.Errorf("%s: same hash as another file", name)
		}
	}
}
