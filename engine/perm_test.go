package engine

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/perm"
)

// A Windows source has no permission bits: files go as 0644 and
// directories as 0755, keeping the executable bits of the mirror's copy.
func TestPermWithoutSourceBits(t *testing.T) {
	p := &plan{}
	file := func(perm uint32, noPerm bool) *fstree.Entry {
		return &fstree.Entry{Kind: fstree.File, Perm: perm, NoPerm: noPerm}
	}
	tests := []struct {
		name string
		s, d *fstree.Entry
		want uint32
	}{
		{"unix source wins", file(0o600, false), file(0o755, false), 0o600},
		{"new file", file(0o644, true), nil, 0o644},
		{"mirror copy executable", file(0o644, true), file(0o750, false), 0o754},
		{"mirror copy plain", file(0o644, true), file(0o600, false), 0o644},
		{"mirror has a directory there", file(0o644, true), &fstree.Entry{Kind: fstree.Dir, Perm: 0o755}, 0o644},
		{"directory", &fstree.Entry{Kind: fstree.Dir, Perm: 0o755, NoPerm: true}, &fstree.Entry{Kind: fstree.Dir, Perm: 0o700}, 0o755},
	}
	for _, tt := range tests {
		if got := p.perm(tt.s, tt.d); got != tt.want {
			t.Errorf("%s: perm = %o, want %o", tt.name, got, tt.want)
		}
	}
}

// With --chmod, a source without permission bits gets its 0644 and 0755
// changed by --chmod and nothing of the mirror's copy: the result is
// then a fixed value, so the next run finds nothing to change.
func TestPermWithoutSourceBitsChmod(t *testing.T) {
	ch, err := perm.Parse("u+x,g+X", 0o022)
	if err != nil {
		t.Fatal(err)
	}
	p := &plan{opt: Options{Chmod: ch}}
	s := &fstree.Entry{Kind: fstree.File, Perm: 0o644, NoPerm: true}
	first := p.perm(s, &fstree.Entry{Kind: fstree.File, Perm: 0o750})
	if first != 0o744 {
		t.Fatalf("perm = %o, want 0744", first)
	}
	if again := p.perm(s, &fstree.Entry{Kind: fstree.File, Perm: first}); again != first {
		t.Fatalf("second run: perm = %o, first %o", again, first)
	}
}

// The source's names are looked up once per id, even by concurrent
// syncs, and a look-up slower than lookupWait leaves the id unnamed for
// the life of the process: a slow name service neither holds a sync up
// nor changes a mapping half-way through a watch.
func TestNameCacheOncePerID(t *testing.T) {
	defer func(w time.Duration) { lookupWait = w }(lookupWait)
	lookupWait = 50 * time.Millisecond
	c := &nameCache{users: map[uint32]*lookup{}, groups: map[uint32]*lookup{}}
	var calls atomic.Int32
	release := make(chan struct{})
	defer close(release)
	slow := func(string) (string, error) { calls.Add(1); <-release; return "late", nil }
	fast := func(id string) (string, error) { calls.Add(1); return "user" + id, nil }

	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n, ok := c.get(c.users, 7, slow); ok {
				t.Errorf("slow look-up gave %q", n)
			}
		}()
	}
	wg.Wait()
	if n, ok := c.get(c.users, 7, fast); ok || calls.Load() != 1 {
		t.Errorf("after a timed-out look-up: %q %v, %d look-ups", n, ok, calls.Load())
	}
	lookupWait = time.Minute // a loaded machine must not time the fast look-up out
	for range 3 {
		if n, ok := c.get(c.groups, 8, fast); !ok || n != "user8" {
			t.Errorf("group 8: %q %v", n, ok)
		}
	}
	if calls.Load() != 2 {
		t.Errorf("%d look-ups, want 2", calls.Load())
	}
}
