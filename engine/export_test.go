package engine

// SetScopePart sets how many source entries a streamed full sync's scope
// holds before it runs as a plan of its own, and returns the old value.
func SetScopePart(n int) int {
	old := scopePart
	scopePart = n
	return old
}

// SetPrewalkDepth sets how many batches a prewalk holds before a sync
// takes it, and returns the old value.
func SetPrewalkDepth(n int) int {
	old := prewalkDepth
	prewalkDepth = n
	return old
}

// PrewalkState tells how many batches a prewalk holds, whether its walk
// has ended, and whether a sync has taken it.
func PrewalkState(p *Prewalk) (held int, ended, taken bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.w == nil {
		return 0, false, true
	}
	return len(p.w.c), len(p.w.end) > 0, false
}
