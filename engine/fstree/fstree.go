// Package fstree describes and walks directory trees without following
// symbolic links: the source tree on the client and the mirror tree inside
// the agent are listed by the same code, so both sides agree on what an
// entry is. It owns the Entry type, the walk, and content hashing; it knows
// nothing of the wire, of ignore rules (callers pass a Skip function) or of
// how a plan is made from two listings.
package fstree

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/zeebo/blake3"
)

// Kind is the type of a tree entry. Only these are mirrored; anything else
// (FIFOs, sockets, devices) is reported as Other and skipped by callers.
type Kind uint8

const (
	File    Kind = 1
	Dir     Kind = 2
	Symlink Kind = 3
	Other   Kind = 4
)

func (k Kind) String() string {
	switch k {
	case File:
		return "file"
	case Dir:
		return "dir"
	case Symlink:
		return "symlink"
	case Other:
		return "special"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ErrNotRegular: a path listed as a regular file is something else when
// opened (a FIFO, socket or device put in its place). It was not opened
// for I/O, so it never blocks; callers skip it as they skip special files.
var ErrNotRegular = errors.New("no longer a regular file (a FIFO, socket, device or directory is in its place)")

// HashSize is the length of a content hash (BLAKE3-256).
const HashSize = 32

// Hash is a whole-file content hash.
type Hash [HashSize]byte

// Entry is one path of a tree with the metadata gosync mirrors.
type Entry struct {
	Path    string // relative, slash-separated; "" is the root itself
	Kind    Kind
	Perm    uint32 // permission bits including setuid, setgid and sticky (07777)
	Size    int64  // regular files only
	MtimeNs int64  // modification time, nanoseconds since the Unix epoch
	Uid     uint32
	Gid     uint32
	Target  string // symlink target, raw bytes
	HasHash bool
	Hash    Hash
	// NoPerm: the source system has no Unix permission bits (Windows), Perm
	// is a default and a mirror's executable bits are to be kept.
	NoPerm bool

	// Identity of the inode on this machine, for hash caches; never sent.
	Dev, Ino uint64
	CtimeNs  int64
}

// TempPrefix starts the name of every temporary file the agent writes beside
// its target. Walks skip such names on both sides, so a temporary is never
// mirrored, compared or deleted as user data.
const TempPrefix = ".gosync-tmp-"

var bufPool = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// HashReader returns the BLAKE3-256 hash of everything r yields.
func HashReader(r io.Reader) (Hash, int64, error) {
	h := blake3.New()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	n, err := io.CopyBuffer(h, r, *bp)
	var sum Hash
	if err != nil {
		return sum, n, err
	}
	h.Sum(sum[:0])
	return sum, n, nil
}

// NewHasher returns a streaming BLAKE3-256 hasher whose Sum matches HashReader.
func NewHasher() *blake3.Hasher { return blake3.New() }

func displayPath(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}
