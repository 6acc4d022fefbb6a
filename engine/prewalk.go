package engine

import (
	"context"
	"sync"

	"github.com/gosync/gosync/engine/fstree"
)

// walk is a walk of the source on a goroutine of its own, handing its
// entries over in batches of streamBatch through c (closed at its end).
type walk struct {
	src    *Source
	c      chan []fstree.Entry
	end    chan error // the walk's error, sent once after c is closed
	cancel context.CancelFunc

	waited, closed sync.Once
	err            error
}

// startWalk starts walking src as spec says, up to depth batches ahead
// of whoever takes them.
func startWalk(ctx context.Context, src *Source, spec SourceSpec, depth int) *walk {
	wctx, cancel := context.WithCancel(ctx)
	w := &walk{src: src, c: make(chan []fstree.Entry, depth), end: make(chan error, 1), cancel: cancel}
	go func() {
		defer close(w.c)
		batch := make([]fstree.Entry, 0, streamBatch)
		send := func() error {
			select {
			case w.c <- batch:
				batch = make([]fstree.Entry, 0, streamBatch)
				return nil
			case <-wctx.Done():
				return wctx.Err()
			}
		}
		err := src.walk(wctx, spec.Ignore, spec.Hash, spec.Cache, func(e *fstree.Entry) error {
			batch = append(batch, *e)
			if len(batch) == streamBatch {
				return send()
			}
			return nil
		})
		if err == nil && len(batch) > 0 {
			err = send()
		}
		w.end <- err
	}()
	return w
}

// wait returns the walk's error; c must have been read to its end.
func (w *walk) wait() error {
	w.waited.Do(func() { w.err = <-w.end })
	return w.err
}

// stop ends the walk wherever it is, drops the batches it had not handed
// over, closes the source and returns the walk's error. It may be called
// more than once.
func (w *walk) stop() error {
	w.cancel()
	for range w.c {
	}
	err := w.wait()
	w.closed.Do(func() { w.src.Close() })
	return err
}

// Prewalk is a walk of the source started before its mirror is reached:
// an SSH connection takes a quarter of a second or more (a no-op sync of
// 100,000 files over SSH on loopback took about 0.95 s, of which 0.25 s
// was the connection), and the walk gets that far ahead, up to
// prewalkDepth batches. The first full sync whose SourceSpec.Pre names
// it takes it over; other mirrors walk the source themselves. The spec
// it was started with must be the one the sync is given.
type Prewalk struct {
	mu sync.Mutex
	w  *walk
}

// prewalkDepth bounds what a prewalk holds before a sync takes it: 64
// batches, 65,536 entries, about 10 MB (an entry and its path).
var prewalkDepth = 64

// StartPrewalk opens the source spec names (failing as OpenSource does)
// and starts walking it. Close it once the syncs are done.
func StartPrewalk(ctx context.Context, spec SourceSpec) (*Prewalk, error) {
	src, err := OpenSource(spec.Dir)
	if err != nil {
		return nil, err
	}
	return &Prewalk{w: startWalk(ctx, src, spec, prewalkDepth)}, nil
}

// take hands the walk over once; nil after that, or for a nil p.
func (p *Prewalk) take() *walk {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.w
	p.w = nil
	return w
}

// Close ends the walk if no sync took it (its mirror could not be
// reached, or it does not stream its listing).
func (p *Prewalk) Close() {
	if w := p.take(); w != nil {
		w.stop()
	}
}
