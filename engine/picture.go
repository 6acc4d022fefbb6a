package engine

import (
	"math"
	"slices"
	"strings"

	"github.com/gosync/gosync/engine/fstree"
)

// picture is what a session knows a mirror holds, path by path. A watch
// keeps one per mirror for as long as it runs, so it is packed: fixed-size
// records without pointers (the garbage collector never scans them), sorted
// in walk order (comparePaths), with paths and symlink targets in a byte
// arena (records and arena in blocks: picture_blocks.go), content hashes
// and owners in side tables. That is 56 bytes a record and its path in
// the arena (about 80 bytes an entry in a tree of short names) where a
// map of fstree.Entry took about 200, and a subtree is a range found by
// binary search, not a pass over every entry.
//
// Changes to known paths are made in place (a deleted record is marked
// dead); new paths wait in a small map that is merged into the records
// once it holds a sixteenth of them or a subtree is asked for, so keeping
// the picture costs amortised O(log n) a change.
type picture struct {
	recs   recList
	arena  arena
	hashes []fstree.Hash
	added  map[string]fstree.Entry // paths not in recs
	dead   int                     // dead records in recs
	waste  int                     // arena bytes no record refers to
	// devs are the devices entries are on, devIndex their indexes in it.
	devs     []uint64
	devIndex map[uint64]uint16
	// owners are the owner and group pairs of entries (uid<<32 | gid),
	// ownerIndex their indexes in it: a tree has few.
	owners     []uint64
	ownerIndex map[uint64]uint32
}

// picRec is one entry of a picture's sorted records: 56 bytes, no
// pointers.
type picRec struct {
	name  span // the path, then a symlink's target (tlen bytes)
	size  int64
	sec   int64
	ino   uint64
	ctime int64
	nsec  int32
	owner uint32 // index in owners
	// hash is a file's 1 + index in hashes (0: none), a symlink's target
	// length (tlen): a symlink has no content hash.
	hash uint32
	dev  uint16 // index in devs; noDev: not kept (nor the inode)
	mode uint16 // permission bits, noPerm, kind and dead (modeKind...)
}

// The bits of picRec.mode above the 12 permission bits.
const (
	modeNoPerm    = 1 << 12 // fstree.Entry.NoPerm
	modeKindShift = 13      // two bits: the kind less one (File..Other)
	modeDead      = 1 << 15 // deleted; the rest stays, for the path
)

func (r *picRec) kind() fstree.Kind { return fstree.Kind(r.mode>>modeKindShift&3) + 1 }
func (r *picRec) dead() bool        { return r.mode&modeDead != 0 }
func (r *picRec) kill()             { r.mode |= modeDead }

// tlen is the length of a symlink's target at the end of name.
func (r *picRec) tlen() int {
	if r.kind() == fstree.Symlink {
		return int(r.hash)
	}
	return 0
}

// hashSlot is a file's 1 + index in hashes, 0 if it has none.
func (r *picRec) hashSlot() uint32 {
	if r.kind() == fstree.Symlink {
		return 0
	}
	return r.hash
}

// noDev marks a record whose device (one of more than 65,535 in one
// tree) is not kept: its inode is forgotten too, so it is never taken
// for the source of a rename.
const noDev = 1<<16 - 1

// span is a string in the arena: offset in the high 40 bits, length in
// the low 24.
type span uint64

func newPicture() *picture { return &picture{added: map[string]fstree.Entry{}} }

func (p *picture) path(r *picRec) string {
	return p.str(r.name - span(r.tlen()))
}

func (p *picture) target(r *picRec) string {
	t := r.tlen()
	if t == 0 {
		return ""
	}
	n := p.str(r.name)
	return n[len(n)-t:]
}

func (p *picture) devOf(dev uint64) uint16 {
	return intern(&p.devs, &p.devIndex, dev, noDev)
}

func (p *picture) ownerOf(uid, gid uint32) uint32 {
	return intern(&p.owners, &p.ownerIndex, uint64(uid)<<32|uint64(gid), math.MaxUint32)
}

// intern returns v's index in *list, adding it if it is new and the list
// holds fewer than full values (full: the list is full, v is not kept).
func intern[I uint16 | uint32](list *[]uint64, index *map[uint64]I, v uint64, full I) I {
	if i, ok := (*index)[v]; ok {
		return i
	}
	if len(*list) == int(full) {
		return full
	}
	if *index == nil {
		*index = map[uint64]I{}
	}
	*list = append(*list, v)
	i := I(len(*list) - 1)
	(*index)[v] = i
	return i
}

func (p *picture) str(s span) string {
	n := int(s & (1<<24 - 1))
	if n == 0 {
		return ""
	}
	return p.arena.str(int(s>>24), n)
}

func (p *picture) put(s string) span {
	if s == "" {
		return 0
	}
	return span(p.arena.put(s))<<24 | span(len(s))
}

// find returns the index of path's live record.
func (p *picture) find(path string) (int, bool) {
	i, ok := p.recs.search(func(r *picRec) int { return comparePaths(p.path(r), path) })
	if ok && p.recs.at(i).dead() {
		return i, false
	}
	return i, ok
}

func (p *picture) entry(r *picRec) fstree.Entry {
	o := p.owners[r.owner]
	e := fstree.Entry{Path: strings.Clone(p.path(r)), Kind: r.kind(), Perm: uint32(r.mode & 0o7777), Size: r.size,
		Mtime: fstree.Time{Sec: r.sec, Nsec: r.nsec}, Uid: uint32(o >> 32), Gid: uint32(o), Target: strings.Clone(p.target(r)),
		NoPerm: r.mode&modeNoPerm != 0, Ino: r.ino, CtimeNs: r.ctime}
	if r.dev != noDev {
		e.Dev = p.devs[r.dev]
	}
	if h := r.hashSlot(); h != 0 {
		e.Hash, e.HasHash = p.hashes[h-1], true
	}
	return e
}

// fill sets r from e (and brings a dead record back). A new record (no
// name yet) gets e's path. Only a file keeps a content hash.
func (p *picture) fill(r *picRec, e *fstree.Entry) {
	// The name and hash slot are read with r's old kind.
	slot := r.hashSlot()
	switch {
	case r.name == 0:
		r.name = p.put(e.Path + e.Target)
	case e.Target != p.target(r):
		p.waste += len(p.str(r.name))
		r.name = p.put(e.Path + e.Target)
	}
	r.mode = uint16(e.Perm&0o7777) | uint16(e.Kind-1)&3<<modeKindShift
	if e.NoPerm {
		r.mode |= modeNoPerm
	}
	r.size, r.sec, r.nsec, r.ino, r.ctime = e.Size, e.Mtime.Sec, e.Mtime.Nsec, e.Ino, e.CtimeNs
	r.owner = p.ownerOf(e.Uid, e.Gid)
	if r.dev = p.devOf(e.Dev); r.dev == noDev {
		r.ino = 0
	}
	switch {
	case e.Kind == fstree.Symlink:
		r.hash = uint32(len(e.Target))
	case !e.HasHash:
		r.hash = 0
	case slot != 0:
		p.hashes[slot-1] = e.Hash
		r.hash = slot
	default:
		p.hashes = append(p.hashes, e.Hash)
		r.hash = uint32(len(p.hashes))
	}
}

// appendSorted adds e after every record: a picture built in walk order.
func (p *picture) appendSorted(e fstree.Entry) {
	var r picRec
	p.fill(&r, &e)
	p.recs.add(r)
}

// len is the number of entries.
func (p *picture) len() int { return p.recs.len() - p.dead + len(p.added) }

func (p *picture) get(path string) (fstree.Entry, bool) {
	if e, ok := p.added[path]; ok {
		return e, true
	}
	if i, ok := p.find(path); ok {
		e := p.entry(p.recs.at(i))
		e.Path = path
		return e, true
	}
	return fstree.Entry{}, false
}

func (p *picture) has(path string) bool {
	if _, ok := p.added[path]; ok {
		return true
	}
	_, ok := p.find(path)
	return ok
}

func (p *picture) set(e fstree.Entry) {
	if i, ok := p.find(e.Path); ok {
		p.fill(p.recs.at(i), &e)
		return
	} else if i < p.recs.len() && p.path(p.recs.at(i)) == e.Path {
		p.fill(p.recs.at(i), &e) // a dead record comes back
		p.dead--
		return
	}
	p.added[e.Path] = e
	if len(p.added) > max(4096, p.recs.len()/16) || p.waste > max(1<<20, p.arena.size()/2) {
		p.merge()
	}
}

// setSorted sets the n entries each yields, in walk order without
// repeats: one by one when they are few, else in one merge. Entries that
// come after every record (a large sync's later parts) are appended
// without a merge.
func (p *picture) setSorted(n int, each func(yield func(fstree.Entry))) {
	few := n < max(4096, p.recs.len()/16)
	if !few && (len(p.added) > 0 || p.dead > 0) {
		p.merge()
	}
	var rest []fstree.Entry
	each(func(e fstree.Entry) {
		if p.recs.len() == 0 || comparePaths(p.path(p.recs.at(p.recs.len()-1)), e.Path) < 0 {
			if _, ok := p.added[e.Path]; !ok {
				p.appendSorted(e)
				return
			}
		}
		if few {
			p.set(e)
		} else {
			rest = append(rest, e)
		}
	})
	if len(rest) == 0 {
		return
	}
	q := &picture{added: map[string]fstree.Entry{}}
	i := 0
	for _, e := range rest {
		for ; i < p.recs.len(); i++ {
			c := comparePaths(p.path(p.recs.at(i)), e.Path)
			if c > 0 {
				break
			}
			if c < 0 {
				q.keep(p, p.recs.at(i))
			}
		}
		var r picRec
		q.fill(&r, &e)
		q.recs.add(r)
	}
	for ; i < p.recs.len(); i++ {
		q.keep(p, p.recs.at(i))
	}
	*p = *q
	p.trim()
}

// trim lets go of the spare capacity of the records and the arena: a
// watch keeps its picture for hours.
func (p *picture) trim() {
	trimLast(p.arena.blocks)
	trimLast(p.recs.blocks)
}

// keep appends r, a record of from, to p.
func (p *picture) keep(from *picture, r *picRec) {
	n := *r
	n.name = p.put(from.str(r.name))
	if r.dev != noDev {
		n.dev = p.devOf(from.devs[r.dev])
	}
	o := from.owners[r.owner]
	n.owner = p.ownerOf(uint32(o>>32), uint32(o))
	if h := r.hashSlot(); h != 0 {
		p.hashes = append(p.hashes, from.hashes[h-1])
		n.hash = uint32(len(p.hashes))
	}
	p.recs.add(n)
}

func (p *picture) del(path string) {
	if _, ok := p.added[path]; ok {
		delete(p.added, path)
		return
	}
	if i, ok := p.find(path); ok {
		p.recs.at(i).kill()
		p.dead++
	}
}

// below returns the range of records strictly below dir ("": all), after
// merging what was added.
func (p *picture) below(dir string) (int, int) {
	if len(p.added) > 0 {
		p.merge()
	}
	if dir == "" {
		return 0, p.recs.len()
	}
	prefix := dir + "/"
	lo, _ := p.recs.search(func(r *picRec) int {
		if c := comparePaths(p.path(r), dir); c != 0 {
			return c
		}
		return -1 // dir itself comes before its range
	})
	hi := lo
	for hi < p.recs.len() && strings.HasPrefix(p.path(p.recs.at(hi)), prefix) {
		hi++
	}
	return lo, hi
}

// each calls fn for every entry strictly below dir ("": every entry).
func (p *picture) each(dir string, fn func(e fstree.Entry)) {
	lo, hi := p.below(dir)
	for i := lo; i < hi; i++ {
		if !p.recs.at(i).dead() {
			fn(p.entry(p.recs.at(i)))
		}
	}
}

// delBelow forgets every entry strictly below dir ("": every entry).
func (p *picture) delBelow(dir string) {
	lo, hi := p.below(dir)
	for i := lo; i < hi; i++ {
		if !p.recs.at(i).dead() {
			p.recs.at(i).kill()
			p.dead++
		}
	}
	if p.dead > 4096 && p.dead > p.recs.len()/4 {
		p.merge()
	}
}

// merge folds the added entries into the sorted records and drops dead
// ones, rewriting the arena and hash table without what is no longer
// referenced.
func (p *picture) merge() {
	add := make([]fstree.Entry, 0, len(p.added))
	for _, e := range p.added {
		add = append(add, e)
	}
	slices.SortFunc(add, func(a, b fstree.Entry) int { return comparePaths(a.Path, b.Path) })
	q := &picture{added: map[string]fstree.Entry{}}
	insert := func(e *fstree.Entry) {
		var r picRec
		q.fill(&r, e)
		q.recs.add(r)
	}
	i, j := 0, 0
	for i < p.recs.len() || j < len(add) {
		switch {
		case i < p.recs.len() && p.recs.at(i).dead():
			i++
		case j == len(add) || i < p.recs.len() && comparePaths(p.path(p.recs.at(i)), add[j].Path) < 0:
			q.keep(p, p.recs.at(i))
			i++
		default:
			insert(&add[j])
			j++
		}
	}
	*p = *q
}
