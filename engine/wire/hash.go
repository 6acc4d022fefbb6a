package wire

import (
	"encoding/binary"

	"github.com/zeebo/blake3"

	"github.com/gosync/gosync/engine/fstree"
)

// FileHash is the hash a FileEnd carries: what both ends compute over a
// file's bytes in the order they are sent. A file sent without holes
// hashes to its plain content hash (fstree.NewHasher). Once a hole comes,
// the file is hashed as a list of runs, each a tag, its length and, for
// data, the content hash of the run: a hole of 20 GiB then costs a few
// bytes of hashing instead of 20 GiB of zeros, and the two ends still
// agree on every byte, since both split the file where the holes were
// sent.
type FileHash struct {
	run   *blake3.Hasher // the data run since the last hole
	runN  int64
	list  *blake3.Hasher // nil until the first hole
	holeN int64          // a hole not yet added to list (adjacent holes merge)
}

// NewFileHash returns a FileHash for one file.
func NewFileHash() *FileHash { return &FileHash{run: fstree.NewHasher()} }

// Reset readies h for another file.
func (h *FileHash) Reset() {
	h.run.Reset()
	h.runN, h.holeN = 0, 0
	if h.list != nil {
		h.list.Reset()
		h.list = nil
	}
}

// Write adds data bytes.
func (h *FileHash) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	h.flushHole()
	h.run.Write(p)
	h.runN += int64(len(p))
	return len(p), nil
}

// Hole adds n zero bytes sent as a hole.
func (h *FileHash) Hole(n int64) {
	if n <= 0 {
		return
	}
	if h.list == nil {
		h.list = blake3.New()
	}
	h.flushRun()
	h.holeN += n
}

const (
	runData = 'd'
	runHole = 'h'
)

func (h *FileHash) flushRun() {
	if h.runN == 0 {
		return
	}
	var rec [1 + 8 + fstree.HashSize]byte
	rec[0] = runData
	binary.LittleEndian.PutUint64(rec[1:], uint64(h.runN))
	h.run.Sum(rec[9:9])
	h.list.Write(rec[:])
	h.run.Reset()
	h.runN = 0
}

func (h *FileHash) flushHole() {
	if h.holeN == 0 {
		return
	}
	var rec [1 + 8]byte
	rec[0] = runHole
	binary.LittleEndian.PutUint64(rec[1:], uint64(h.holeN))
	h.list.Write(rec[:])
	h.holeN = 0
}

// Sum returns the hash of everything added.
func (h *FileHash) Sum() fstree.Hash {
	var sum fstree.Hash
	if h.list == nil {
		h.run.Sum(sum[:0])
		return sum
	}
	h.flushRun()
	h.flushHole()
	h.list.Sum(sum[:0])
	return sum
}
