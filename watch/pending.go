package watch

import (
	"slices"
	"strings"
	"time"
)

// pending collects the changes of the batch being built. Its size is bounded
// by max: past that many distinct paths it becomes "the whole tree".
type pending struct {
	max   int
	paths map[string]bool // path → subtree
	all   bool            // Change{"", true} absorbs everything
	first time.Time       // first event of the batch
	last  time.Time       // latest event, for the quiet window
}

func newPending(max int) *pending {
	return &pending{max: max, paths: make(map[string]bool)}
}

func (p *pending) empty() bool { return !p.all && len(p.paths) == 0 }

func (p *pending) add(c Change, at time.Time) {
	if p.empty() {
		p.first = at
	}
	if at.After(p.last) {
		p.last = at
	}
	if p.all {
		return
	}
	if c.Path == "" && c.Subtree {
		p.collapse()
		return
	}
	p.paths[c.Path] = p.paths[c.Path] || c.Subtree
	if len(p.paths) > p.max {
		p.collapse()
	}
}

func (p *pending) collapse() {
	p.all = true
	p.paths = make(map[string]bool) // release what a big batch grew
}

// due returns when the batch should be emitted: after a quiet window, and
// never later than maxDelay after its first event.
func (p *pending) due(quiet, maxDelay time.Duration) time.Time {
	d := p.last.Add(quiet)
	if m := p.first.Add(maxDelay); m.Before(d) {
		d = m
	}
	return d
}

// take returns the batch and leaves p empty.
func (p *pending) take() Batch {
	b := Batch{First: p.first}
	if p.all {
		b.Changes = []Change{{Path: "", Subtree: true}}
	} else {
		b.Changes = make([]Change, 0, len(p.paths))
		for path, sub := range p.paths {
			if !p.underSubtree(path) {
				b.Changes = append(b.Changes, Change{Path: path, Subtree: sub})
			}
		}
		slices.SortFunc(b.Changes, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
	}
	p.all = false
	if len(p.paths) > 1024 {
		p.paths = make(map[string]bool)
	} else {
		clear(p.paths)
	}
	p.first, p.last = time.Time{}, time.Time{}
	return b
}

// underSubtree reports whether a parent of path is pending as a subtree.
func (p *pending) underSubtree(path string) bool {
	for i := len(path) - 1; i > 0; i-- {
		if path[i] == '/' && p.paths[path[:i]] {
			return true
		}
	}
	return false
}

// putBack merges an unsent batch into p, so that a consumer that is not
// reading gets one up-to-date batch rather than a queue of stale ones.
func (p *pending) putBack(b Batch) {
	first, wasEmpty := p.first, p.empty()
	for _, c := range b.Changes {
		p.add(c, b.First)
	}
	p.first = b.First
	if !wasEmpty && first.Before(b.First) {
		p.first = first
	}
}
