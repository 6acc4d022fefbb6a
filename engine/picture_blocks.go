package engine

import "unsafe"

// A picture's records and names are kept in blocks, so a picture that
// grows (a watch's initial sync of a million files appends a million
// records) never copies what it holds into an array twice its size: the
// old array and the new one were both live at the peak, on top of the
// collector's headroom.
const (
	recBlock   = 4096    // records a block holds (256 KiB)
	arenaBlock = 1 << 20 // bytes of names a block holds
	arenaShift = 20
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
	lo, hi := 0, l.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if cmp(l.at(m)) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < l.n && cmp(l.at(lo)) == 0
}

// trim lets go of the last block's spare capacity.
func (l *recList) trim() {
	if len(l.blocks) > 0 {
		b := &l.blocks[len(l.blocks)-1]
		if cap(*b) > len(*b)+len(*b)/8 {
			*b = append([]picRec(nil), *b...)
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

// trim lets go of the last block's spare capacity.
func (a *arena) trim() {
	if len(a.blocks) > 0 {
		b := &a.blocks[len(a.blocks)-1]
		if cap(*b) > len(*b)+len(*b)/8 {
			*b = append([]byte(nil), *b...)
		}
	}
}
