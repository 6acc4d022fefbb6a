package engine

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/gosync/gosync/engine/fstree"
)

// The packed picture answers as a map of entries would, whatever the mix
// of sets, deletes, subtree deletes, bulk sets and merges.
func TestPictureMatchesMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "a.txt", "a0", "b", "b/c", "é", "z z"}
	randPath := func() string {
		n := 1 + r.IntN(3)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = names[r.IntN(len(names))]
		}
		return strings.Join(parts, "/")
	}
	randEntry := func(path string) fstree.Entry {
		e := fstree.Entry{Path: path, Kind: fstree.Kind(1 + r.IntN(4)), Perm: uint32(r.IntN(07777)), Size: r.Int64N(1 << 40),
			Mtime: fstree.Time{Sec: r.Int64(), Nsec: int32(r.IntN(1e9))}, Uid: r.Uint32(), Gid: r.Uint32(),
			Dev: r.Uint64(), Ino: r.Uint64(), CtimeNs: r.Int64(), NoPerm: r.IntN(2) == 0}
		if e.Kind == fstree.Symlink {
			e.Target = randPath() + fmt.Sprint(r.IntN(10))
		}
		if e.Kind == fstree.File && r.IntN(2) == 0 { // only files have content hashes
			e.HasHash = true
			e.Hash[r.IntN(fstree.HashSize)] = byte(r.Uint32())
		}
		return e
	}
	below := func(k, dir string) bool { return dir == "" || strings.HasPrefix(k, dir+"/") }
	for round := range 40 {
		p, want := newPicture(), map[string]fstree.Entry{}
		for op := range 200 {
			path := randPath()
			switch x := r.IntN(20); {
			case x < 10:
				e := randEntry(path)
				p.set(e)
				want[path] = e
			case x < 14:
				p.del(path)
				delete(want, path)
			case x < 15:
				dir := path
				if r.IntN(10) == 0 {
					dir = ""
				}
				p.delBelow(dir)
				for k := range want {
					if below(k, dir) {
						delete(want, k)
					}
				}
			case x < 17:
				batch := map[string]fstree.Entry{}
				// Half the batches come after every path so far (a
				// large sync's later parts): appended, not merged.
				after := r.IntN(2) == 0
				for range r.IntN(40) {
					path := randPath()
					if after {
						path = fmt.Sprintf("\xff%05d/%s", round*1000+op, path)
					}
					e := randEntry(path)
					batch[e.Path] = e
				}
				sorted := slices.SortedFunc(maps.Values(batch), func(a, b fstree.Entry) int { return comparePaths(a.Path, b.Path) })
				p.setSorted(len(sorted)*r.IntN(2)*100000, func(yield func(fstree.Entry)) {
					for _, e := range sorted {
						yield(e)
					}
				})
				maps.Copy(want, batch)
			case x < 18:
				p.merge()
			default:
				dir := path
				var got []string
				p.each(dir, func(e fstree.Entry) {
					if w, ok := want[e.Path]; !ok || w != e {
						t.Fatalf("round %d op %d: each(%q) gave %+v, want %+v", round, op, dir, e, w)
					}
					got = append(got, e.Path)
				})
				var exp []string
				for k := range want {
					if below(k, dir) {
						exp = append(exp, k)
					}
				}
				slices.SortFunc(exp, comparePaths)
				if !slices.Equal(got, exp) {
					t.Fatalf("round %d op %d: each(%q) = %q, want %q", round, op, dir, got, exp)
				}
			}
			if p.len() != len(want) {
				t.Fatalf("round %d op %d: len %d, want %d", round, op, p.len(), len(want))
			}
			for k, w := range want {
				if e, ok := p.get(k); !ok || e != w || !p.has(k) {
					t.Fatalf("round %d op %d: get(%q) = %+v %v, want %+v", round, op, k, e, ok, w)
				}
			}
			if _, ok := p.get(path); ok != (want[path].Kind != 0) {
				t.Fatalf("round %d op %d: get(%q) found %v", round, op, path, ok)
			}
		}
	}
}

// Past 65,535 devices in one picture, an entry's device and inode are
// not kept: it can no longer be taken for the source of a rename.
func TestPictureManyDevices(t *testing.T) {
	p := newPicture()
	for i := range noDev + 1 {
		p.set(fstree.Entry{Path: fmt.Sprintf("f%06d", i), Kind: fstree.File, Dev: uint64(i + 1), Ino: 7})
	}
	p.merge()
	if e, _ := p.get("f000000"); e.Dev != 1 || e.Ino != 7 {
		t.Errorf("first device: dev %d ino %d, want 1 7", e.Dev, e.Ino)
	}
	if e, _ := p.get(fmt.Sprintf("f%06d", noDev-1)); e.Dev != noDev || e.Ino != 7 {
		t.Errorf("last device kept: dev %d ino %d, want %d 7", e.Dev, e.Ino, noDev)
	}
	if e, ok := p.get(fmt.Sprintf("f%06d", noDev)); !ok || e.Dev != 0 || e.Ino != 0 {
		t.Errorf("one device too many: dev %d ino %d (found %v), want 0 0", e.Dev, e.Ino, ok)
	}
}

// A picture past one block of records and of names (picture_blocks.go):
// records and paths on both sides of block edges read back right, after
// appends in walk order, changes in place, additions and a merge.
func TestPictureBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	pad := strings.Repeat("p", 250)
	n := 3*recBlock + 17 // about 3.2 MiB of paths: four name blocks
	entry := func(i int) fstree.Entry {
		return fstree.Entry{Path: fmt.Sprintf("d%03d/%s%07d", i%97, pad, i), Kind: fstree.File, Size: int64(i), Ino: uint64(i + 1)}
	}
	want := map[string]fstree.Entry{}
	var sorted []fstree.Entry
	for i := range n {
		e := entry(i)
		want[e.Path] = e
		sorted = append(sorted, e)
	}
	slices.SortFunc(sorted, func(a, b fstree.Entry) int { return comparePaths(a.Path, b.Path) })
	p := newPicture()
	p.setSorted(len(sorted), func(yield func(fstree.Entry)) {
		for _, e := range sorted {
			yield(e)
		}
	})
	if len(p.recs.blocks) < 4 || len(p.arena.blocks) < 3 {
		t.Fatalf("%d record blocks and %d name blocks: the test does not cross block edges", len(p.recs.blocks), len(p.arena.blocks))
	}
	check := func(stage string) {
		t.Helper()
		if p.len() != len(want) {
			t.Fatalf("%s: len %d, want %d", stage, p.len(), len(want))
		}
		for k, w := range want {
			if e, ok := p.get(k); !ok || e != w {
				t.Fatalf("%s: get(%q) = %+v %v, want %+v", stage, k, e, ok, w)
			}
		}
		prev := ""
		count := 0
		p.each("", func(e fstree.Entry) {
			if count > 0 && comparePaths(prev, e.Path) >= 0 {
				t.Fatalf("%s: %q after %q", stage, e.Path, prev)
			}
			prev = e.Path
			count++
		})
		if count != len(want) {
			t.Fatalf("%s: each gave %d entries, want %d", stage, count, len(want))
		}
	}
	check("appended")
	for range 2000 {
		i := r.IntN(2 * n)
		e := entry(i)
		switch r.IntN(3) {
		case 0:
			e.Size = -1
			e.Target = ""
			p.set(e)
			want[e.Path] = e
		case 1:
			p.del(e.Path)
			delete(want, e.Path)
		default:
			e.Kind, e.Target = fstree.Symlink, strings.Repeat("t", r.IntN(300))
			p.set(e)
			want[e.Path] = e
		}
	}
	check("changed")
	p.merge()
	check("merged")
	p.trim()
	check("trimmed")
}

// A record is 56 bytes: a million-file watch keeps a million of them.
func TestPictureRecordSize(t *testing.T) {
	if n := unsafe.Sizeof(picRec{}); n != 56 {
		t.Fatalf("picRec is %d bytes, want 56", n)
	}
}
