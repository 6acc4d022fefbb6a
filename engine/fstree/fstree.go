// Package fstree describes and walks directory trees without following
// symbolic links: the source tree on the client and the mirror tree inside
// the agent are listed by the same code, so both sides agree on what an
// entry is. It owns the Entry type, the walk, and content hashing; it knows
// nothing of the wire, of ignore rules (callers pass a Skip function) or of
// how a plan is made from two listings.
package fstree

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
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
	// The fields are ordered so that the struct has no padding: listings
	// of millions of entries are held in memory.
	Path   string // relative, slash-separated; "" is the root itself
	Target string // symlink target, raw bytes
	Size   int64  // regular files only
	Mtime  Time   // modification time

	// Identity of the inode on this machine, for hash caches; never sent.
	Dev, Ino uint64
	CtimeNs  int64

	Perm uint32 // permission bits including setuid, setgid and sticky (07777)
	Uid  uint32
	Gid  uint32
	Kind Kind
	// NoPerm: the source system has no Unix permission bits (Windows), Perm
	// is a default and a mirror's executable bits are to be kept.
	NoPerm  bool
	HasHash bool
	Hash    Hash
}

// TempPrefix starts gosync's own names: the temporaries the agent writes
// beside their targets (TempPrefix, 32 lowercase hex digits of a random
// number, tempSuffix) and the session lock (LockName). Only those exact
// names are gosync's (Reserved): walks skip them on both sides, so they
// are never mirrored, compared or deleted as user data, and a leftover
// temporary is removed by the next full scan. Any other name, one that
// merely starts like them included, is the user's.
const TempPrefix = ".~gosync-"

const tempSuffix = ".tmp"

// LockName is the session lock in a mirror's root (see package agent): a
// reserved name, but not a temporary; the agent never removes another
// session's lock as a leftover.
const LockName = TempPrefix + "lock"

// ErrReservedName is what a source walk reports for a file whose name is
// one of gosync's own: it cannot be mirrored.
var ErrReservedName = errors.New("the name has the form of gosync's temporaries or session lock (" + TempPrefix + "...); not mirrored: rename it")

// TempName returns a new temporary's name.
func TempName() string {
	var b [16]byte
	rand.Read(b[:])
	return TempPrefix + hex.EncodeToString(b[:]) + tempSuffix
}

// IsTemp tells whether name is a temporary's (see TempName).
func IsTemp(name string) bool {
	if len(name) != len(TempPrefix)+32+len(tempSuffix) || !strings.HasPrefix(name, TempPrefix) || !strings.HasSuffix(name, tempSuffix) {
		return false
	}
	for _, c := range name[len(TempPrefix) : len(TempPrefix)+32] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Reserved tells whether name is one of gosync's own: a temporary or the
// session lock.
func Reserved(name string) bool { return name == LockName || IsTemp(name) }

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
