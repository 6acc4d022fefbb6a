// Package queue holds, for one mirror, the paths that changed and have not
// been applied yet. It coalesces them (a path is listed once, a subtree
// rescan absorbs the paths below it, too many paths collapse into one
// rescan of everything), so memory stays bounded however long a mirror is
// down, and it hands them out as batches. It knows nothing of where paths
// come from or how they are applied.
package queue

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// Path is one dirty path of a batch; Subtree means everything at and
// below it must be compared ("" is the root).
type Path struct {
	Rel     string
	Subtree bool
}

// Batch is what a mirror must bring up to date.
type Batch struct {
	Paths []Path    // in walk order; none below a Subtree path
	First time.Time // when the oldest change in it happened
}

// All reports whether the batch is a rescan of the whole tree.
func (b Batch) All() bool { return len(b.Paths) == 1 && b.Paths[0].Rel == "" && b.Paths[0].Subtree }

// Queue coalesces pending paths for one mirror. It is safe for concurrent
// use: the watcher adds while the mirror's goroutine takes.
type Queue struct {
	mu      sync.Mutex
	pending map[string]bool // path -> subtree
	first   time.Time
	max     int
	ready   chan struct{} // has a value when pending is not empty
}

// New returns a queue that collapses into a full rescan past max paths.
func New(max int) *Queue {
	if max <= 0 {
		max = 10000
	}
	return &Queue{pending: map[string]bool{}, max: max, ready: make(chan struct{}, 1)}
}

// Add merges paths into the pending set; first is when they changed.
func (q *Queue) Add(paths []Path, first time.Time) {
	if len(paths) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.first.IsZero() || first.Before(q.first) {
		q.first = first
	}
	for _, p := range paths {
		q.addLocked(p)
	}
	if len(q.pending) > q.max {
		clear(q.pending)
		q.pending[""] = true
	}
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *Queue) addLocked(p Path) {
	for dir := p.Rel; ; dir = parent(dir) {
		if q.pending[dir] {
			return // a pending subtree at or above covers it
		}
		if dir == "" {
			break
		}
	}
	if p.Subtree {
		prefix := p.Rel + "/"
		for k := range q.pending {
			if p.Rel == "" || strings.HasPrefix(k, prefix) {
				delete(q.pending, k)
			}
		}
		q.pending[p.Rel] = true
		return
	}
	q.pending[p.Rel] = false
}

func parent(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

// Len reports how many paths are pending.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// Take waits until something is pending and returns all of it.
func (q *Queue) Take(ctx context.Context) (Batch, error) {
	for {
		if b, ok := q.TryTake(); ok {
			return b, nil
		}
		select {
		case <-q.ready:
		case <-ctx.Done():
			return Batch{}, ctx.Err()
		}
	}
}

// Requeue puts a batch that could not be applied back, merged with
// whatever arrived meanwhile.
func (q *Queue) Requeue(b Batch) { q.Add(b.Paths, b.First) }

// Ready has a value when paths may be pending; use it with TryTake to
// wait for work and other events at once.
func (q *Queue) Ready() <-chan struct{} { return q.ready }

// TryTake returns the pending paths, if any, without waiting.
func (q *Queue) TryTake() (Batch, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		return Batch{}, false
	}
	b := Batch{First: q.first, Paths: make([]Path, 0, len(q.pending))}
	for k, sub := range q.pending {
		b.Paths = append(b.Paths, Path{Rel: k, Subtree: sub})
	}
	clear(q.pending)
	q.first = time.Time{}
	slices.SortFunc(b.Paths, func(a, b Path) int { return strings.Compare(a.Rel, b.Rel) })
	return b, true
}
