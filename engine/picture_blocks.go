package engine

import (
	"sort"
	"unsafe"
)

// A picture's records and names are kept in blocks, so a picture that
// grows (a watch's initial sync of a million files appends a million
// records) never copies what it holds into an array twice its size: the
// old array and the new one were both live at the peak, on top of the
// collector's headroom.
const (
	recBlock   = 4096 // records a block holds (256 KiB)
	arenaShift = 20
	arenaBlock = 1 << arenaShift // bytes of names a block holds
)

// recList is a list of records in blocks of recBlock; every block but
// the last is full.
type recList struct {
	blocks [][]picRec
	n      int
}

func (l *recList) len() int { return l.n }

func (l *recList) at(i int) *picRec { return &l.blocks[i/recBlock][i%recBlock] }

func (l *recList) add(r picRec) {
	if l.n%recBlock == 0 {
		l.blocks = append(l.blocks, nil)
	}
	b := &l.blocks[len(l.blocks)-1]
	*b = append(*b, r)
	l.n++
}

// search is a binary search: the first index whose record cmp does not
// place before the target (cmp < 0), and whether cmp is 0 there.
func (l *recList) search(cmp func(*picRec) int) (int, bool) {
	i := sort.Search(l.n, func(i int) bool { return cmp(l.at(i)) >= 0 })
	return i, i < l.n && cmp(l.at(i)) == 0
}

// trimLast lets go of the spare capacity of the last of blocks (all
// others are full).
func trimLast[T any](blocks [][]T) {
	if len(blocks) > 0 {
		b := &blocks[len(blocks)-1]
		if cap(*b) > len(*b)+len(*b)/8 {
			*b = append([]T(nil), *b...)
		}
	}
}

// arena holds strings in blocks of arenaBlock bytes; a string never
// spans two blocks (a longer one has a block of its own). A string's
// offset is its block's index << arenaShift plus its place in it.
type arena struct {
	blocks [][]byte
	n      int // bytes held
}

func (a *arena) size() int { return a.n }

func (a *arena) put(s string) (off int) {
	if len(a.blocks) == 0 || len(a.blocks[len(a.blocks)-1])+len(s) > arenaBlock {
		a.blocks = append(a.blocks, make([]byte, 0, max(len(s), min(arenaBlock, max(a.n, 4<<10)))))
	}
	b := &a.blocks[len(a.blocks)-1]
	off = (len(a.blocks)-1)<<arenaShift | len(*b)
	*b = append(*b, s...)
	a.n += len(s)
	return off
}

func (a *arena) str(off, n int) string {
	return unsafe.String(&a.blocks[off>>arenaShift][off&(1<<arenaShift-1)], n)
}
