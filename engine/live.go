package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
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
//
// Production is live while Live writes to it, so:
//   - deletes wait until the source has been quiet for Settle and the
//     path is still gone (a rebuild that removes and regenerates a tree
//     never leaves a gap);
//   - with KeepExtras, only what was deleted in the source while
//     watching is deleted; what only the mirror had is kept;
//   - a file still open for writing is held back until it is closed, or
//     sent as it is every MaxHold while it never is;
//   - a path that failed is retried with backoff.
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
	// Settle is how long the source must be quiet before deletes are
	// applied; 0 applies them right after each batch.
	Settle time.Duration
	// Blind, if set, reports that changes to the source currently go
	// unseen (the watcher lost its root): deletes wait.
	Blind func() bool
	// EventDelay is the longest a change may take to reach the queue
	// (the watcher's maximum batching delay): a source that sent nothing
	// for Settle+EventDelay has been quiet for at least Settle.
	EventDelay time.Duration
	// MaxHold is the longest a file still open for writing is held back;
	// then what it holds is sent, and again every MaxHold. 0: never hold.
	MaxHold time.Duration
	// KeepExtras keeps what only the mirror has (Session.KeepExtras).
	KeepExtras bool
	// Permanent tells a dial error that cannot fix itself (a refused host
	// key, a refused login, an unusable directory): at the first
	// connection it ends Run with that error; later ones are retried.
	Permanent func(error) bool
	// Healthy is how long a connection must last before a loss resets
	// the reconnection backoff (0: DefaultHealthy); a mirror that drops
	// soon after each connect is redialled ever more slowly.
	Healthy time.Duration
	Log     *slog.Logger
	// Progress, if set, follows the first full sync (and only it).
	Progress Progress
	// OnBatch reports every applied batch and full sync.
	OnBatch func(BatchReport)
	// After runs after each applied batch or full sync that changed
	// something, with the changes (the --on-sync hook); its failure is
	// only logged.
	After func(ctx context.Context, m Mirror, items []Item)

	state string // last logged connection state, to log changes only
	// stateRetry is the retry delay last logged with it: the schedule
	// shows in the log as the backoff grows.
	stateRetry time.Duration
	items      []Item // changes of the batch being applied, for After and the report
	moreItems  int    // changes past those kept in items
	// hashes keeps source content hashes across reconciliations, so
	// each costs a metadata walk plus reading what changed.
	hashes fstree.HashCache
	sess   *Session
	// connected is set once the first full sync is done: later
	// connections catch up, and dial errors are retried whatever they are.
	connected bool

	quiet   time.Time            // when the source last changed, held files aside
	deletes map[string]bool      // deletes waiting for the source to settle
	refused time.Time            // quiet time at which the delete pass was last refused
	held    map[string]time.Time // files being written, since when
	// heldBefore remembers the files held once already (bounded).
	heldBefore map[string]bool
	holdPoll   time.Time // when held files were last looked at
	retry      map[string]*retryState
	refresh    []string // retried paths whose mirror side is listed again
	// sourceMissing is set while batches wait for the source directory
	// to come back.
	sourceMissing bool
	status        liveStatus // what Status returns
}

type retryState struct {
	attempts int
	due      time.Time
	msg      string
}

// BatchReport describes one applied batch (or full sync) of one mirror.
type BatchReport struct {
	Mirror  string
	Kind    string // "initial", "batch", "catch-up", "reconcile", "delete"
	Result  Result
	Latency time.Duration // from the first event of the batch to applied
	// Items are the changes applied (valid during the OnBatch call):
	// the first keptItems of them, and MoreItems tells how many more
	// there were, unless an After hook takes them all.
	Items     []Item
	MoreItems int
}

// keptItems is how many of a batch's items a watch keeps for its report
// when no hook needs them all.
const keptItems = 64

// DefaultHealthy is how long a connection must last before its loss
// counts as a fresh start: long enough to see through a mirror that
// fails right after its handshake (a broken agent, a full disk at the
// first write, a proxy that accepts and drops), short against the hours
// a healthy watch stays connected.
const DefaultHealthy = 30 * time.Second

const (
	backoffMin = 250 * time.Millisecond
	backoffMax = 30 * time.Second
	// retryMin and retryMax bound the backoff for a path that failed.
	retryMin = time.Second
	retryMax = 2 * time.Minute
	// holdPoll is how often files held back while being written are
	// looked at again: the kernel tells no watcher when a file is closed.
	holdPoll = 200 * time.Millisecond
)

// Run works until ctx ends. It returns an error only when the first
// connection fails in a way Permanent says cannot fix itself, or when
// another session took the mirror over (ErrTakenOver): reconnecting
// would take it back, and two sources would take turns on one mirror.
func (l *Live) Run(ctx context.Context) error {
	backoff := backoffMin
	kind := "initial"
	l.deletes = map[string]bool{}
	l.held = map[string]time.Time{}
	l.heldBefore = map[string]bool{}
	l.retry = map[string]*retryState{}
	healthy := cmp.Or(l.Healthy, DefaultHealthy)
	l.publishState("connecting", 0, "")
	for ctx.Err() == nil {
		m, err := l.Dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !l.connected && l.Permanent != nil && l.Permanent(err) {
				return err
			}
			l.setState("unreachable", slog.LevelError, backoff, slog.String("err", err.Error()))
			sleep(ctx, backoff)
			backoff = min(2*backoff, backoffMax)
			continue
		}
		dialed := time.Now()
		// Ctrl-C ends a transfer in flight at once, not when it is done.
		stop := context.AfterFunc(ctx, func() { m.Close() })
		err = l.serve(ctx, m, kind)
		stop()
		m.Close()
		if ctx.Err() != nil {
			return nil
		}
		if l.connected {
			kind = "catch-up"
		}
		if errors.Is(err, ErrTakenOver) {
			l.setState("taken over", slog.LevelError, 0, slog.String("err", err.Error()))
			return err
		}
		if !l.connected && errors.Is(err, ErrBackupDir) {
			return err // a wrong --backup-dir does not fix itself
		}
		// Only a connection that lasted resets the backoff: one lost
		// right after its handshake is no sign the mirror is back.
		if time.Since(dialed) >= healthy {
			backoff = backoffMin
		}
		state := "failed" // a refusal at the full sync
		if errors.Is(err, ErrMirrorLost) {
			state = "lost"
		}
		l.setState(state, slog.LevelError, backoff, slog.String("err", err.Error()))
		sleep(ctx, backoff)
		backoff = min(2*backoff, backoffMax)
	}
	return nil
}

// setState logs a change of the connection state, and while the mirror
// stays away, each longer retry delay (so the backoff's schedule shows,
// up to its cap, and then the log stays quiet).
func (l *Live) setState(state string, level slog.Level, retry time.Duration, attrs ...slog.Attr) {
	errText := ""
	for _, a := range attrs {
		if a.Key == "err" {
			errText = a.Value.String()
		}
	}
	l.publishState(state, retry, errText)
	if l.state == state && state != "failed" && retry <= l.stateRetry {
		return
	}
	l.state, l.stateRetry = state, retry
	head := []slog.Attr{slog.String("mirror", l.Name)}
	attrs = append(head, attrs...)
	if retry > 0 {
		attrs = append(attrs, slog.Duration("retry_in", retry))
	}
	l.Log.LogAttrs(context.Background(), level, "mirror "+state, attrs...)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// options are the options of the next batch or full sync.
func (l *Live) options(deferDeletes bool) Options {
	opt := l.Opt
	opt.Ignore = l.Ignore.Load()
	opt.Logger = l.Log
	opt.DeferDeletes = deferDeletes
	onItem := l.Opt.OnItem
	opt.OnItem = func(it Item) {
		// A full sync of a large tree changes millions of paths: only an
		// --on-sync command (After) needs them all, the report the first.
		if l.After != nil || len(l.items) < keptItems {
			l.items = append(l.items, it)
		} else {
			l.moreItems++
		}
		if onItem != nil {
			onItem(it)
		}
	}
	if l.MaxHold > 0 {
		opt.Writing = l.writing
	}
	return opt
}

// writing holds a file back while it is being written, up to MaxHold.
func (l *Live) writing(path string) WritingAction {
	if since, ok := l.held[path]; ok && time.Since(since) >= l.MaxHold {
		return SendPrefix
	}
	return Hold
}

// full scans the source and compares everything.
func (l *Live) full(ctx context.Context, kind string, checksum bool) error {
	start := time.Now()
	opt := l.options(true)
	if kind == "initial" {
		opt.Progress = l.Progress
	}
	l.sess.SetOptions(opt)
	l.items, l.moreItems = l.items[:0], 0
	// The source is walked in step with the mirror's listing: neither
	// tree is held whole, only what differs.
	res := l.sess.FullTree(ctx, SourceSpec{Dir: l.SourceDir, Ignore: opt.Ignore, Hash: checksum, Cache: &l.hashes, Done: func(src *Source) {
		for _, e := range src.Errors {
			l.Log.Warn("cannot read source path; not mirrored", slog.String("path", e.Path), slog.String("err", e.Msg))
		}
		if n := len(src.SkippedLinks); n > 0 && kind == "initial" {
			l.Log.Warn("skipping symlinks that cannot be read on this system", slog.Int("count", n),
				slog.String("paths", PathList(src.SkippedLinks, 5, nil)))
		}
	}})
	if res.Err != nil {
		return res.Err
	}
	if kind == "initial" && l.KeepExtras && len(res.Kept) > 0 {
		l.Log.Warn(fmt.Sprintf("kept %d %s that only the mirror has: %s; --delete removes them", len(res.Kept), plural(len(res.Kept), "entry", "entries"), PathList(res.Kept, 5, l.dirMark)),
			slog.String("mirror", l.Name))
	}
	for _, d := range res.Deferred {
		l.deletes[d] = true
	}
	l.after(res, nil, true)
	l.report(ctx, BatchReport{Mirror: l.Name, Kind: kind, Result: res, Latency: time.Since(start)})
	// A full sync's items (one per path at the start) and listings are
	// garbage now, and a watch then idles for hours: let go of them and
	// give their memory back to the system at once.
	l.items = nil
	if res.Stats.Scanned >= freeAfter {
		debug.FreeOSMemory()
	}
	return nil
}

// freeAfter is the size of a full sync (source entries) after which a
// watch returns the memory it used to the system at once rather than
// over minutes.
const freeAfter = 20000

// serve runs one connection: catch up, then batches until the mirror is
// lost or ctx ends.
func (l *Live) serve(ctx context.Context, m Mirror, kind string) error {
	if l.sess == nil {
		l.sess = NewSession(m, l.options(true))
		l.sess.KeepExtras = l.KeepExtras
	}
	if l.sess.Attach(m) {
		// Deletes seen in the source before are not the new mirror's.
		clear(l.deletes)
		l.Log.Warn("mirror directory is not the one synced before (replaced, or removed and made again); syncing it as at the start",
			slog.String("mirror", l.Name))
	}
	if holder, earlier := m.TookOver(); earlier {
		l.Log.Info("fenced the agent of an earlier connection, still running on the mirror host; it applies nothing more",
			slog.String("mirror", l.Name), slog.String("holder", holder))
	} else if holder != "" {
		l.Log.Warn("took this mirror over from another running gosync session; it stops at its next change",
			slog.String("mirror", l.Name), slog.String("holder", holder))
	}
	l.publish(func(s *MirrorStatus) { s.State = "syncing" })
	// Everything queued so far is covered by the full sync that follows.
	if _, ok := l.Queue.TryTake(); ok {
		l.quiet = time.Now()
	}
	if err := l.full(ctx, kind, false); err != nil {
		return err
	}
	l.quiet = time.Now() // deletes the full sync found wait like any other
	l.connected = true
	l.setState("connected", slog.LevelInfo, 0)

	var reconcile <-chan time.Time
	if l.Reconcile > 0 {
		t := time.NewTicker(l.Reconcile)
		defer t.Stop()
		reconcile = t.C
		l.publish(func(s *MirrorStatus) { s.NextReconcile = time.Now().Add(l.Reconcile) })
	}
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	var deferred []queue.Path // a batch held back while the source is gone
	var deferredFirst time.Time
	for {
		l.publish(nil)
		wake.Reset(time.Until(l.nextWake()))
		var paths []queue.Path
		first := time.Now()
		kind := "batch"
		select {
		case <-ctx.Done():
			return nil
		case <-m.Lost():
			// Noticed while idle (a keepalive gave up): reconnect now,
			// so the next change does not wait for a dead link.
			if err := m.Err(); err != nil && !errors.Is(err, ErrMirrorLost) {
				return fmt.Errorf("%w: %w", ErrMirrorLost, err)
			} else if err != nil {
				return err
			}
			return ErrMirrorLost
		case tick := <-reconcile:
			l.publish(func(s *MirrorStatus) { s.NextReconcile = tick.Add(l.Reconcile) })
			if err := l.full(ctx, "reconcile", true); err != nil {
				if errors.Is(err, ErrMirrorLost) || ctx.Err() != nil {
					return err
				}
				l.Log.Error("reconciliation failed", slog.String("mirror", l.Name), slog.String("err", err.Error()))
			}
			continue
		case <-l.Queue.Ready():
			b, ok := l.Queue.TryTake()
			if !ok {
				continue
			}
			paths, first = b.Paths, b.First
			if l.changesSettled(paths) {
				l.quiet = time.Now()
			}
		case <-wake.C:
			first = time.Now() // internal work: report how long it took
			paths, kind = l.duePaths()
			if len(paths) == 0 {
				continue
			}
		}
		if len(deferred) > 0 && kind == "batch" {
			paths = append(paths, deferred...)
			if deferredFirst.Before(first) {
				first = deferredFirst
			}
			deferred = nil
		}
		err := l.apply(ctx, m, paths, first, kind)
		switch {
		case err == nil:
		case errors.Is(err, ErrMirrorLost):
			l.Queue.Requeue(queue.Batch{Paths: paths, First: first})
			return err
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrSourceGone) && kind != "delete":
			deferred, deferredFirst = paths, first
			l.Log.Warn("source directory is missing; waiting for it", slog.String("mirror", l.Name), slog.String("err", err.Error()))
		}
		l.sourceMissing = len(deferred) > 0
	}
}

// changesSettled reports whether a batch holds a change other than to
// files held back while being written: those do not keep the source
// from being quiet, or a log written forever would hold deletes forever.
func (l *Live) changesSettled(paths []queue.Path) bool {
	for _, p := range paths {
		if _, ok := l.held[p.Rel]; !ok || p.Subtree {
			return true
		}
	}
	return false
}

// nextWake is when the loop has internal work: the delete pass, a look at
// held files, or a retry.
func (l *Live) nextWake() time.Time {
	next := time.Now().Add(time.Hour)
	if l.deletesDue() {
		next = l.quiet.Add(l.Settle + l.EventDelay)
	} else if len(l.deletes) > 0 && l.Blind != nil && l.Blind() {
		next = time.Now().Add(holdPoll) // look again; the rescan after it resets quiet
	}
	if len(l.held) > 0 {
		if t := l.holdPoll.Add(holdPoll); t.Before(next) {
			next = t
		}
	}
	for _, r := range l.retry {
		if r.due.Before(next) {
			next = r.due
		}
	}
	return next
}

// deletesDue reports whether deletes wait for the source to settle: not
// while the source directory is missing (a rebuild in progress), nor
// while changes are queued, nor after a refusal until the source changes.
func (l *Live) deletesDue() bool {
	return len(l.deletes) > 0 && !l.quiet.Equal(l.refused) && !l.sourceMissing && l.Queue.Len() == 0 && (l.Blind == nil || !l.Blind())
}

// duePaths returns the internal work that is due: the delete pass once
// the source has settled (it has priority: it must see the source as it
// is after the quiet window), else held files and retries.
func (l *Live) duePaths() ([]queue.Path, string) {
	now := time.Now()
	if l.deletesDue() && !now.Before(l.quiet.Add(l.Settle+l.EventDelay)) {
		paths := make([]queue.Path, 0, len(l.deletes))
		for k := range l.deletes {
			// As a subtree: a directory the source has again may still
			// have old entries below it that it no longer has.
			paths = append(paths, queue.Path{Rel: k, Subtree: true})
		}
		return paths, "delete"
	}
	var paths []queue.Path
	if len(l.held) > 0 && !now.Before(l.holdPoll.Add(holdPoll)) {
		l.holdPoll = now
		for k := range l.held {
			paths = append(paths, queue.Path{Rel: k})
		}
	}
	l.refresh = l.refresh[:0]
	for k, r := range l.retry {
		if !now.Before(r.due) {
			paths = append(paths, queue.Path{Rel: k})
			l.refresh = append(l.refresh, k)
			// Due again later unless it succeeds now, whatever stops
			// this attempt (a missing source, a lost mirror).
			r.due = now.Add(retryDelay(r.attempts))
		}
	}
	return coalesce(paths), "batch"
}

// coalesce drops duplicates and paths below a subtree path, as a batch
// from the queue has them.
func coalesce(paths []queue.Path) []queue.Path {
	slices.SortFunc(paths, func(a, b queue.Path) int { return strings.Compare(a.Rel, b.Rel) })
	out := paths[:0]
	for _, p := range paths {
		if n := len(out); n > 0 && out[n-1].Rel == p.Rel {
			out[n-1].Subtree = out[n-1].Subtree || p.Subtree
			continue
		}
		out = append(out, p)
	}
	return out
}

// apply syncs the paths of one batch (kind "delete": the delete pass).
func (l *Live) apply(ctx context.Context, m Mirror, paths []queue.Path, first time.Time, kind string) error {
	l.sess.SetOptions(l.options(kind != "delete"))
	// Opened per batch: a descriptor kept open would keep a removed
	// source directory alive and hide its removal from the watcher.
	src, err := OpenSource(l.SourceDir)
	if err != nil {
		if kind == "delete" {
			// Removed since it settled: its return is a change, and the
			// deletes wait for the source to settle again after it.
			l.refused = l.quiet
		}
		return fmt.Errorf("%w: %w", ErrSourceGone, err)
	}
	if len(l.refresh) > 0 {
		// What failed may have been fixed by hand, or failed halfway:
		// look at the mirror there again rather than trust the picture.
		err := l.sess.Refresh(ctx, l.refresh)
		l.refresh = l.refresh[:0]
		if err != nil {
			src.Close()
			return err
		}
	}
	l.items, l.moreItems = l.items[:0], 0
	res := l.sess.Apply(ctx, src, paths)
	src.Close()
	switch {
	case res.Err == nil:
	case errors.Is(res.Err, ErrMirrorLost) || ctx.Err() != nil:
		return res.Err
	case kind == "delete":
		l.refuseDeletes(res.Err)
		return res.Err
	case errors.Is(res.Err, ErrSourceGone):
		return res.Err
	default:
		l.Log.Error("batch not applied; retrying", slog.String("mirror", l.Name), slog.String("err", res.Err.Error()))
		for _, p := range paths {
			l.failed(p.Rel, res.Err.Error(), false)
		}
		return res.Err
	}
	if kind == "delete" {
		clear(l.deletes)
		l.refused = time.Time{}
	}
	for _, d := range res.Deferred {
		l.deletes[d] = true
	}
	l.after(res, paths, false)
	l.report(ctx, BatchReport{Mirror: l.Name, Kind: kind, Result: res, Latency: time.Since(first)})
	return nil
}

// refuseDeletes logs why the delete pass did not run (--max-delete, an
// empty source) once, and keeps the deletes until the source changes.
func (l *Live) refuseDeletes(err error) {
	if !l.refused.IsZero() && l.refused.Equal(l.quiet) {
		return
	}
	l.refused = l.quiet
	names := make([]string, 0, len(l.deletes))
	for k := range l.deletes {
		names = append(names, k)
	}
	slices.Sort(names)
	l.Log.Error("deletes held back; they wait until the source changes, or restart with other flags",
		slog.String("mirror", l.Name), slog.String("err", err.Error()),
		slog.Int("paths", len(names)), slog.String("would_delete", PathList(names, 5, nil)))
}

// after updates held files and retries from a result: held files are
// held since now if they were not already, the rest of the paths are
// no longer held; failed paths are retried with backoff, the others no
// longer. whole is a full sync covering every path.
func (l *Live) after(res Result, paths []queue.Path, whole bool) {
	covered := func(k string) bool {
		if whole {
			return true
		}
		for _, p := range paths {
			if k == p.Rel || p.Subtree && (p.Rel == "" || strings.HasPrefix(k, p.Rel+"/")) {
				return true
			}
		}
		return false
	}
	heldNow := map[string]bool{}
	now := time.Now()
	for _, h := range res.Held {
		heldNow[h] = true
		if _, ok := l.held[h]; !ok {
			l.held[h] = now
			// A log written for ever is held again after each send:
			// say so once.
			level := slog.LevelInfo
			if l.heldBefore[h] {
				level = slog.LevelDebug
			}
			if len(l.heldBefore) < 10000 {
				l.heldBefore[h] = true
			}
			l.Log.LogAttrs(context.Background(), level, "waiting for a file that is still being written", slog.String("mirror", l.Name), slog.String("path", h), slog.Duration("max_hold", l.MaxHold))
		}
	}
	if len(l.held) > 0 && l.holdPoll.IsZero() {
		l.holdPoll = now
	}
	for k := range l.held {
		if !heldNow[k] && covered(k) {
			delete(l.held, k)
		}
	}
	for _, sp := range res.Special {
		l.Log.Warn("skipping special file (FIFO, socket or device)", slog.String("mirror", l.Name), slog.String("path", sp))
	}
	failedNow := map[string]bool{}
	full, others := SplitNoSpace(res.Failed)
	for _, f := range others {
		failedNow[f.Path] = true
		l.failed(f.Path, f.Reason(), false)
	}
	// A full disk fails every path of a batch alike: one line.
	for _, f := range full {
		failedNow[f.Path] = true
		l.failed(f.Path, f.Reason(), true)
	}
	if len(full) > 0 {
		l.Log.Error("mirror out of space (disk full or quota); not mirrored, will retry", slog.String("mirror", l.Name),
			slog.Int("paths", len(full)), slog.String("first", full[0].Error()), slog.Duration("retry_in", time.Until(l.retry[full[0].Path].due).Round(time.Second)))
	}
	if n := len(res.Vanished); n > 0 {
		l.Log.Debug("vanished from the source before they could be sent", slog.String("mirror", l.Name), slog.String("paths", PathList(res.Vanished, 5, nil)))
	}
	for k := range l.retry {
		if !failedNow[k] && covered(k) {
			delete(l.retry, k)
		}
	}
}

// failed schedules a retry of a path with backoff, and logs it unless
// quiet (the caller logs one line for many).
func (l *Live) failed(path, msg string, quiet bool) {
	r := l.retry[path]
	if r == nil {
		r = &retryState{}
		l.retry[path] = r
	}
	r.attempts++
	l.publish(func(s *MirrorStatus) { s.PathFailures++ })
	delay := retryDelay(r.attempts)
	r.due = time.Now().Add(delay)
	level := slog.LevelDebug
	if !quiet && (r.attempts == 1 || msg != r.msg) {
		level = slog.LevelError
	}
	r.msg = msg
	l.Log.LogAttrs(context.Background(), level, "not mirrored; will retry", slog.String("mirror", l.Name), slog.String("path", path),
		slog.String("err", msg), slog.Duration("retry_in", delay))
}

// retryDelay is the backoff before the next attempt after n failures.
func retryDelay(n int) time.Duration {
	if n >= 8 {
		return retryMax
	}
	return min(retryMin<<max(n-1, 0), retryMax)
}

func (l *Live) report(ctx context.Context, r BatchReport) {
	r.Items, r.MoreItems = l.items, l.moreItems
	// OnBatch (the log line, the latency histogram) before the status
	// counters: whoever sees a batch counted also finds it observed.
	if l.OnBatch != nil {
		l.OnBatch(r)
	}
	l.publishReport(r)
	if l.After != nil && len(l.items) > 0 && !l.Opt.DryRun {
		l.After(ctx, l.sess.m, l.items)
	}
}

// PathList shows up to n paths for a log line, then how many more there
// are; a path with control characters is quoted, so a name cannot forge
// terminal output. mark, if set, is appended to a path (a "/" for
// directories).
func PathList(paths []string, n int, mark func(string) string) string {
	var b strings.Builder
	for i, p := range paths {
		if i == n {
			fmt.Fprintf(&b, " and %d more", len(paths)-n)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(QuotePath(p))
		if mark != nil {
			b.WriteString(mark(p))
		}
	}
	return b.String()
}

// dirMark marks directories of the mirror picture with a slash.
func (l *Live) dirMark(p string) string {
	if e, ok := l.sess.state.get(p); ok && e.Kind == fstree.Dir {
		return "/"
	}
	return ""
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
