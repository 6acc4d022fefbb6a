package engine

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/ignore"
	"github.com/gosync/gosync/queue"
)

// Live keeps one mirror up to date with a watched source until its
// context ends: a full sync on every (re)connection, then the batches of
// its queue, a full content reconciliation every Reconcile, and
// reconnection with capped backoff when the mirror is lost. One Live per
// mirror, each in its own goroutine: a slow or unreachable mirror never
// delays the others.
type Live struct {
	Name      string
	Dial      func(ctx context.Context) (Mirror, error)
	Queue     *queue.Queue
	SourceDir string
	// Ignore holds the current rules; the caller swaps them when
	// .gosyncignore changes and queues a rescan of everything.
	Ignore    *atomic.Pointer[ignore.Matcher]
	Opt       Options
	Reconcile time.Duration // 0: never
	Log       *slog.Logger
	// OnBatch reports every applied batch and full sync.
	OnBatch func(BatchReport)
	// After runs after each applied batch that changed something, with
	// the changed paths (the --on-sync hook); its failure is only logged.
	After func(ctx context.Context, m Mirror, items []Item)

	state string // last logged connection state, to log changes only
	items []Item // changes of the batch being applied, for After
	// hashes keeps source content hashes across reconciliations, so
	// each costs a metadata walk plus reading what changed.
	hashes fstree.HashCache
}

// BatchReport describes one applied batch (or full sync) of one mirror.
type BatchReport struct {
	Mirror  string
	Kind    string // "initial", "batch", "catch-up", "reconcile"
	Result  Result
	Latency time.Duration // from the first event of the batch to applied
}

const (
	backoffMin = 250 * time.Millisecond
	backoffMax = 30 * time.Second
)

// Run works until ctx ends.
func (l *Live) Run(ctx context.Context) {
	backoff := backoffMin
	kind := "initial"
	for ctx.Err() == nil {
		m, err := l.Dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.setState("unreachable", slog.LevelError, slog.String("err", err.Error()), slog.Duration("retry_in", backoff))
			sleep(ctx, backoff)
			backoff = min(2*backoff, backoffMax)
			continue
		}
		err = l.serve(ctx, m, kind)
		m.Close()
		if ctx.Err() != nil {
			return
		}
		kind = "catch-up"
		if errors.Is(err, ErrMirrorLost) {
			l.setState("lost", slog.LevelError, slog.String("err", err.Error()))
			backoff = backoffMin
			sleep(ctx, backoff)
			continue
		}
		// Anything else (a refusal at the full sync): wait, then retry.
		l.setState("failed", slog.LevelError, slog.String("err", err.Error()), slog.Duration("retry_in", backoff))
		sleep(ctx, backoff)
		backoff = min(2*backoff, backoffMax)
	}
}

func (l *Live) setState(state string, level slog.Level, attrs ...slog.Attr) {
	if l.state == state && state != "failed" {
		return
	}
	l.state = state
	l.Log.LogAttrs(context.Background(), level, "mirror "+state, append([]slog.Attr{slog.String("mirror", l.Name)}, attrs...)...)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (l *Live) options() Options {
	opt := l.Opt
	opt.Ignore = l.Ignore.Load()
	opt.Logger = l.Log
	opt.OnItem = func(it Item) { l.items = append(l.items, it) }
	return opt
}

// full scans the source and compares everything.
func (l *Live) full(ctx context.Context, sess *Session, kind string, checksum bool) error {
	start := time.Now()
	opt := l.options()
	sess.opt = opt
	src, err := ScanSourceCached(ctx, l.SourceDir, opt.Ignore, checksum, &l.hashes)
	if err != nil {
		return err
	}
	for _, e := range src.Errors {
		l.Log.Warn("cannot read source path; not mirrored", slog.String("path", e.Path), slog.String("err", e.Msg))
	}
	res := sess.Full(ctx, src, checksum)
	src.Close()
	if res.Err != nil {
		return res.Err
	}
	l.report(BatchReport{Mirror: l.Name, Kind: kind, Result: res, Latency: time.Since(start)})
	return nil
}

// serve runs one connection: catch up, then batches until the mirror is
// lost or ctx ends.
func (l *Live) serve(ctx context.Context, m Mirror, kind string) error {
	sess := NewSession(m, l.options())
	// Everything queued so far is covered by the full sync that follows.
	l.Queue.TryTake()
	if err := l.full(ctx, sess, kind, false); err != nil {
		return err
	}
	l.setState("connected", slog.LevelInfo)

	var reconcile <-chan time.Time
	if l.Reconcile > 0 {
		t := time.NewTicker(l.Reconcile)
		defer t.Stop()
		reconcile = t.C
	}
	var deferred []queue.Path // a batch held back while the source is gone
	var deferredFirst time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-reconcile:
			if err := l.full(ctx, sess, "reconcile", true); err != nil {
				if errors.Is(err, ErrMirrorLost) || ctx.Err() != nil {
					return err
				}
				l.Log.Error("reconciliation failed", slog.String("mirror", l.Name), slog.String("err", err.Error()))
				continue
			}
		case <-l.Queue.Ready():
		}
		b, ok := l.Queue.TryTake()
		if !ok {
			continue
		}
		if len(deferred) > 0 {
			b.Paths = append(b.Paths, deferred...)
			if deferredFirst.Before(b.First) {
				b.First = deferredFirst
			}
			deferred = nil
		}
		sess.opt = l.options()
		// Opened per batch: a descriptor kept open would keep a removed
		// source directory alive and hide its removal from the watcher.
		src, err := OpenSource(l.SourceDir)
		if err != nil {
			deferred, deferredFirst = b.Paths, b.First
			l.Log.Warn("source directory is missing; waiting for it", slog.String("mirror", l.Name), slog.String("err", err.Error()))
			continue
		}
		l.items = l.items[:0]
		res := sess.Apply(ctx, src, b.Paths)
		src.Close()
		switch {
		case res.Err == nil:
		case errors.Is(res.Err, ErrMirrorLost):
			l.Queue.Requeue(b)
			return res.Err
		case errors.Is(res.Err, ErrSourceGone):
			deferred, deferredFirst = b.Paths, b.First
			l.Log.Warn("not applying deletes while the source is missing or empty", slog.String("mirror", l.Name), slog.String("source", l.SourceDir))
			continue
		case ctx.Err() != nil:
			return nil
		default:
			l.Log.Error("batch not applied", slog.String("mirror", l.Name), slog.String("err", res.Err.Error()))
			continue
		}
		l.report(BatchReport{Mirror: l.Name, Kind: "batch", Result: res, Latency: time.Since(b.First)})
		if l.After != nil && len(l.items) > 0 {
			l.After(ctx, m, l.items)
		}
	}
}

func (l *Live) report(r BatchReport) {
	for _, f := range r.Result.Failed {
		l.Log.Error("not mirrored", slog.String("mirror", r.Mirror), slog.String("path", f.Path), slog.String("err", f.Msg))
	}
	if l.OnBatch != nil {
		l.OnBatch(r)
	}
}
