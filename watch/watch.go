package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/gosync/gosync/ignore"

	"github.com/gosync/gosync/engine/fstree"
)

// Change is one dirty path, relative to the root and slash-separated (""
// is the root). Subtree means that the state of everything at and below Path
// is uncertain and must be rescanned: after an event overflow, for a new or
// moved-in directory, after a lost watch, when the root comes back.
type Change struct {
	Path    string
	Subtree bool
}

// Batch is a debounced, coalesced set of changes.
type Batch struct {
	// Changes are sorted by path and deduplicated; no path below a
	// Subtree change is listed separately.
	Changes []Change
	// First is when the first event of the batch arrived, for latency
	// reporting.
	First time.Time
}

// Options configure a Watcher. The zero value is usable.
type Options struct {
	// Ignore decides which paths are left alone: ignored directories are
	// neither watched nor descended into, and events for ignored paths
	// are dropped. Nil ignores nothing.
	Ignore *ignore.Matcher
	// Debounce is the quiet window after the last event before a batch is
	// emitted. Default 20ms.
	Debounce time.Duration
	// MaxDelay caps how long after its first event a batch is emitted even
	// if events keep coming. Default 1s.
	MaxDelay time.Duration
	// MaxPaths is how many distinct paths a batch may hold; more collapse
	// into Change{Path: "", Subtree: true}. Default 10000.
	MaxPaths int
	// PollInterval is how often subtrees that could not be watched (the
	// watch limit was reached) are polled, and how often a vanished root is
	// looked for. Default 1s.
	PollInterval time.Duration
	// Logger receives warnings (watch limit, overflow, lost root). Nil
	// discards them.
	Logger *slog.Logger
}

// Events for gosync's own names (temporaries, the session lock: see
// fstree.Reserved) are always dropped.

// Watcher watches a directory tree. Create it with New, then call Run once.
// SetIgnore and Watches may be called from any goroutine.
type Watcher struct {
	root   string // absolute and clean
	prefix string // root with a trailing separator
	opt    Options
	log    *slog.Logger
	fsw    *fsnotify.Watcher

	rules     atomic.Pointer[ignore.Matcher]
	reload    chan struct{} // SetIgnore asks the loop to re-walk
	watches   atomic.Int64
	running   atomic.Bool
	closeOnce sync.Once
	hooks     hooks

	// Everything below belongs to the goroutine running New, then Run.
	dirs     map[string]*dir   // watched directories by relative path
	byID     map[devIno]string // the same, by inode
	ignored  map[string]bool   // ignored directories seen in watched ones
	failed   map[string]bool   // directories whose watch failed for another reason
	polled   map[string]*polledTree
	gen      uint64 // walk generation, to find watches a re-walk did not reach
	rootGone bool
	blind    atomic.Bool               // rootGone, for other goroutines
	warned   [descriptorLimit + 1]bool // the limit warnings logged
	pend     *pending
}

// hooks let tests reach code paths that a real system does not produce on
// demand.
type hooks struct {
	// addWatch replaces the call that adds one watch; add is the real one.
	addWatch func(add func(string) error, path string) error
	// errs is read like fsnotify's error channel.
	errs chan error
}

type devIno struct{ dev, ino uint64 }

// dir is a watched directory.
type dir struct {
	id   devIno
	gen  uint64
	kids map[string]bool // relative paths of watched subdirectories
}

// New watches root, which must be an existing directory, and every directory
// below it that opt.Ignore does not ignore. When it returns the watches are
// in place, so no change made afterwards is lost (Run reports it).
func New(root string, opt Options) (*Watcher, error) {
	return newWatcher(root, opt, hooks{})
}

func newWatcher(root string, opt Options, h hooks) (*Watcher, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("watch %s: not a directory", root)
	}
	if opt.Debounce <= 0 {
		opt.Debounce = 20 * time.Millisecond
	}
	if opt.MaxDelay <= 0 {
		opt.MaxDelay = time.Second
	}
	if opt.MaxPaths <= 0 {
		opt.MaxPaths = 10000
	}
	if opt.PollInterval <= 0 {
		opt.PollInterval = time.Second
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	w := &Watcher{
		root:    abs,
		prefix:  abs,
		opt:     opt,
		log:     log.With(slog.String("root", abs)),
		fsw:     fsw,
		reload:  make(chan struct{}, 1),
		hooks:   h,
		dirs:    make(map[string]*dir),
		byID:    make(map[devIno]string),
		ignored: make(map[string]bool),
		failed:  make(map[string]bool),
		polled:  make(map[string]*polledTree),
		pend:    newPending(opt.MaxPaths),
	}
	if !strings.HasSuffix(w.prefix, string(filepath.Separator)) {
		w.prefix += string(filepath.Separator)
	}
	w.rules.Store(opt.Ignore)
	if !w.rewatch() {
		fsw.Close()
		return nil, fmt.Errorf("watch %s: the directory vanished while it was being watched", root)
	}
	if _, ok := w.dirs[""]; !ok {
		fsw.Close()
		if w.polled[""] != nil && w.warned[descriptorLimit] {
			cur, help := descriptorLimitHelp()
			return nil, fmt.Errorf("watch %s: open file descriptor limit reached (open files limit = %s); %s", root, cur, help)
		}
		if w.polled[""] != nil {
			name, cur, help := watchLimitHelp()
			return nil, fmt.Errorf("watch %s: inotify watch limit reached (%s = %s); %s", root, name, cur, help)
		}
		return nil, fmt.Errorf("watch %s: cannot watch the directory", root)
	}
	return w, nil
}

// SetIgnore replaces the ignore rules, say after .gosyncignore changed. The
// watcher then re-walks the tree, watching directories that are no longer
// ignored and dropping the watches of those that now are, and reports
// Change{Path: "", Subtree: true}. That change is the watcher's own doing:
// a caller that reloads the rules when it sees the root rescanned must not
// reload again because of it.
func (w *Watcher) SetIgnore(m *ignore.Matcher) {
	w.rules.Store(m)
	select {
	case w.reload <- struct{}{}:
	default: // a re-walk is already due; it will see m
	}
}

// rootPoll is how often a vanished root is looked for.
const rootPoll = 50 * time.Millisecond

// Blind reports whether the root is gone, so that changes to it go
// unseen until it is back and rescanned: nothing may be taken for
// settled meanwhile.
func (w *Watcher) Blind() bool { return w.blind.Load() }

// Watches returns the number of directories watched.
func (w *Watcher) Watches() int { return int(w.watches.Load()) }

// Close releases the watcher's resources. Run does it when it returns; call
// Close only for a Watcher that Run will not be called on.
func (w *Watcher) Close() error {
	var err error
	w.closeOnce.Do(func() {
		err = w.fsw.Close()
		w.watches.Store(0)
	})
	return err
}

// Run reports changes on out until ctx ends, then closes the watcher and
// returns nil. It never blocks on out for long: while the receiver is busy,
// new changes are merged into the batch it will get next. Run may be called
// once.
func (w *Watcher) Run(ctx context.Context, out chan<- Batch) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("watch: Run called twice")
	}
	defer w.Close()

	flush := time.NewTimer(time.Hour)
	flush.Stop()
	defer flush.Stop()
	var flushAt time.Time // when flush fires; zero: stopped
	poll := time.NewTimer(time.Hour)
	poll.Stop()
	defer poll.Stop()
	var pollArmed bool

	var ready *Batch // emitted, waiting for the receiver
	for {
		var flushC, pollC <-chan time.Time
		if !w.pend.empty() {
			at := w.pend.due(w.opt.Debounce, w.opt.MaxDelay)
			if ready != nil {
				// The receiver is busy: merge into its batch only
				// once in a while, not after every quiet window.
				at = w.pend.first.Add(w.opt.MaxDelay)
			}
			if !at.Equal(flushAt) {
				flush.Reset(time.Until(at))
				flushAt = at
			}
			flushC = flush.C
		} else if !flushAt.IsZero() {
			flush.Stop()
			flushAt = time.Time{}
		}
		if w.rootGone || len(w.polled) > 0 {
			if !pollArmed {
				every := w.opt.PollInterval
				if w.rootGone {
					// A rebuild recreates the root within moments; what
					// it writes meanwhile is seen by no watch.
					every = min(every, rootPoll)
				}
				poll.Reset(every)
				pollArmed = true
			}
			pollC = poll.C
		} else if pollArmed {
			poll.Stop()
			pollArmed = false
		}
		var outC chan<- Batch
		var b Batch
		if ready != nil {
			outC, b = out, *ready
		}

		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return errors.New("watch: watcher closed")
			}
			w.event(ev)
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return errors.New("watch: watcher closed")
			}
			w.lost(err)
		case err := <-w.hooks.errs:
			w.lost(err)
		case <-w.reload:
			w.note(Change{Path: "", Subtree: true})
			if !w.rootGone && !w.rewatch() {
				w.rootLost()
			}
		case <-flushC:
			flushAt = time.Time{}
			if ready != nil {
				w.pend.putBack(*ready)
			}
			b := w.pend.take()
			ready = &b
		case outC <- b:
			ready = nil
			flushAt = time.Time{} // due again by the usual rule
		case <-pollC:
			pollArmed = false
			if w.rootGone {
				w.rootBack()
			} else {
				w.pollAll()
			}
		}
	}
}

// note adds a change to the batch being built.
func (w *Watcher) note(c Change) { w.pend.add(c, time.Now()) }

// lost handles an error from the event source: an overflow means events
// were dropped, and any other error may mean the same, so rescan it all.
func (w *Watcher) lost(err error) {
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		w.log.Warn("the kernel's event queue overflowed and events were lost; rescanning the whole tree", slog.Any("err", err))
	} else {
		w.log.Warn("file system watch error; rescanning the whole tree", slog.Any("err", err))
	}
	w.note(Change{Path: "", Subtree: true})
	if !w.rootGone && !w.rewatch() {
		w.rootLost()
	}
}

// rel maps an event's name to a path relative to the root.
func (w *Watcher) rel(name string) (string, bool) {
	if name == w.root {
		return "", true
	}
	r, ok := strings.CutPrefix(name, w.prefix)
	if !ok || r == "" {
		return "", false
	}
	return filepath.ToSlash(r), true
}

// abs maps a relative path to the file system.
func (w *Watcher) abs(rel string) string {
	if rel == "" {
		return w.root
	}
	return w.prefix + filepath.FromSlash(rel)
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func parent(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return ""
}

func base(rel string) string { return rel[strings.LastIndexByte(rel, '/')+1:] }

// event turns one fsnotify event into changes.
func (w *Watcher) event(ev fsnotify.Event) {
	rel, ok := w.rel(ev.Name)
	if !ok {
		w.log.Debug("event outside the root", slog.String("name", ev.Name))
		return
	}
	if w.rootGone {
		return // queued before the root went; the rescan on its return covers it
	}
	if rel == "" {
		switch {
		case ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename):
			w.rootLost()
		case ev.Has(fsnotify.Chmod):
			w.note(Change{Path: ""})
		}
		return
	}
	if fstree.Reserved(base(rel)) {
		return
	}
	if w.dirs[parent(rel)] == nil {
		// Every event comes through the watch of rel's directory. If that
		// is not watched any more, the event came through a watch dropped
		// a moment ago: on Windows and with kqueue a directory renamed out
		// of the tree goes on reporting under its old name until the
		// removal of its watch takes effect.
		w.log.Debug("event through a dropped watch", slog.String("path", rel))
		return
	}
	rules := w.rules.Load()
	switch {
	case ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename):
		isDir, known := w.kind(rel)
		w.forget(rel, isDir, known)
		if known && rules.Ignored(rel, isDir) || !known && rules.Ignored(rel, false) && rules.Ignored(rel, true) {
			w.note(Change{Path: parent(rel)}) // not mirrored, but its directory's mtime moved
			return
		}
		w.note(Change{Path: rel})
	case ev.Has(fsnotify.Create):
		if w.appeared(rel, rules) {
			w.note(Change{Path: parent(rel)}) // not mirrored, but its directory's mtime moved
		}
	case ev.Has(fsnotify.Write):
		if !rules.Ignored(rel, false) {
			w.note(Change{Path: rel})
		}
	case ev.Has(fsnotify.Chmod):
		if _, ok := w.dirs[rel]; ok {
			w.note(Change{Path: rel})
			return
		}
		w.appeared(rel, rules)
	}
}

// kind tells what rel was before it went: a directory if the watcher knew
// it as one, a file if its parent is watched (every directory in a watched
// directory is known), else unknown.
func (w *Watcher) kind(rel string) (isDir, known bool) {
	if w.dirs[rel] != nil || w.polled[rel] != nil || w.ignored[rel] || w.failed[rel] {
		return true, true
	}
	if w.dirs[parent(rel)] != nil {
		return false, true
	}
	return false, false
}

// appeared handles a path that was created, moved in or whose metadata
// changed. A directory that is not watched yet is watched, then listed, and
// reported as a subtree. It tells whether rel is ignored.
func (w *Watcher) appeared(rel string, rules *ignore.Matcher) (ignored bool) {
	fi, err := os.Lstat(w.abs(rel))
	if err != nil {
		// Gone already: the event that removed or renamed it follows
		// and reports it.
		return false
	}
	if !fi.IsDir() {
		if rules.Ignored(rel, false) {
			return true
		}
		w.note(Change{Path: rel})
		return false
	}
	if rules.Ignored(rel, true) {
		w.ignored[rel] = true
		return true
	}
	if w.dirs[parent(rel)] == nil {
		// Its parent is not watched (polled, ignored, or itself gone):
		// whoever handles the parent handles this one.
		w.note(Change{Path: rel, Subtree: true})
		return false
	}
	w.watchTree(rel, fileID(fi), false)
	w.note(Change{Path: rel, Subtree: true})
	return false
}

// rootLost handles the root being removed or renamed away: report it, drop
// every watch, and wait for a directory to appear at the root path again.
func (w *Watcher) rootLost() {
	w.note(Change{Path: "", Subtree: true})
	if w.rootGone {
		return
	}
	w.rootGone = true
	w.blind.Store(true)
	w.unwatchAll()
	w.log.Warn("the source directory is gone; waiting for it to come back", slog.Duration("poll", w.opt.PollInterval))
	w.rootBack()
}

// rootBack looks for the root; if it is a directory again, it is watched
// and reported.
func (w *Watcher) rootBack() {
	if !w.rewatch() {
		w.unwatchAll()
		return
	}
	w.rootGone = false
	w.blind.Store(false)
	w.note(Change{Path: "", Subtree: true})
	w.log.Info("the source directory is back; rescanning it")
}
