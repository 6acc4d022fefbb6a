package cli

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/ignore"
	"github.com/gosync/gosync/queue"
	"github.com/gosync/gosync/watch"
)

type watchFlags struct {
	noDelete  bool
	debounce  time.Duration
	maxDelay  time.Duration
	reconcile time.Duration
	onSync    string
}

func runWatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var w watchFlags
	c, err := parseCommand("watch", "Mirrors the contents of SRC into each DEST, then keeps every DEST up to date\nuntil interrupted. Deletes propagate unless --no-delete.", args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&w.noDelete, "no-delete", false, "keep entries on the mirrors that SRC no longer has")
		fs.DurationVar(&w.debounce, "debounce", 10*time.Millisecond, "quiet `time` after the last change before a batch ships")
		fs.DurationVar(&w.maxDelay, "max-delay", time.Second, "longest `time` a change waits while changes keep coming")
		fs.DurationVar(&w.reconcile, "reconcile", 5*time.Minute, "compare everything by content every `interval` (0: never)")
		fs.StringVar(&w.onSync, "on-sync", "", "run `command` on each mirror's host after each applied batch, changed paths on its stdin")
	})
	if err != nil {
		return err
	}
	f, log := c.f, c.log
	if f.dryRun {
		return usagef("watch has no --dry-run; use 'gosync sync -n'")
	}
	if f.delete && w.noDelete {
		return usagef("--delete and --no-delete exclude each other")
	}
	if w.debounce < 0 || w.maxDelay < w.debounce || w.reconcile < 0 {
		return usagef("need 0 <= --debounce <= --max-delay and --reconcile >= 0")
	}
	var rules atomic.Pointer[ignore.Matcher]
	rules.Store(c.matcher)

	// Watch first, so nothing that changes during the initial sync is lost.
	watcher, err := watch.New(c.src, watch.Options{Ignore: c.matcher, Debounce: w.debounce, MaxDelay: w.maxDelay, Logger: log})
	if err != nil {
		return err
	}
	log.Info("watching", slog.String("source", c.src), slog.Int("directories", watcher.Watches()), slog.Int("mirrors", len(c.dests)))

	opt := engine.Options{
		Delete:           !w.noDelete,
		MaxDelete:        f.maxDelete,
		WholeFile:        f.wholeFile,
		AllowEmptySource: f.allowEmpty,
	}
	queues := make([]*queue.Queue, len(c.dests))
	var wg sync.WaitGroup
	for i, d := range c.dests {
		queues[i] = queue.New(10000)
		o := opt
		if !d.Remote() && !f.noWholeFile {
			o.WholeFile = true
		}
		live := &engine.Live{
			Name:      d.Raw,
			Dial:      func(ctx context.Context) (engine.Mirror, error) { return dialMirror(ctx, d, f, log) },
			Queue:     queues[i],
			SourceDir: c.src,
			Ignore:    &rules,
			Opt:       o,
			Reconcile: w.reconcile,
			Log:       log,
			OnBatch: func(r engine.BatchReport) {
				logBatch(log, r)
				if r.Kind != "batch" {
					// A full comparison leaves tree-sized garbage; hand it
					// back now rather than idle with it for minutes.
					debug.FreeOSMemory()
				}
			},
		}
		if w.onSync != "" {
			cmd := w.onSync
			live.After = func(ctx context.Context, m engine.Mirror, items []engine.Item) { runOnSync(ctx, log, m, cmd, items) }
		}
		wg.Go(func() { live.Run(ctx) })
	}

	batches := make(chan watch.Batch, 1)
	var werr error
	wg.Go(func() {
		werr = watcher.Run(ctx, batches)
		close(batches)
	})
	for b := range batches {
		paths := make([]queue.Path, 0, len(b.Changes))
		reload := false
		for _, ch := range b.Changes {
			paths = append(paths, queue.Path{Rel: ch.Path, Subtree: ch.Subtree})
			if ch.Path == ignore.FileName || ch.Path == "" && ch.Subtree {
				reload = true
			}
		}
		if reload {
			if m, err := ignore.Load(c.src, f.excludes); err != nil {
				log.Error("ignore rules not reloaded; keeping the previous ones", slog.String("err", err.Error()))
			} else if !sameRules(m, rules.Load()) {
				rules.Store(m)
				watcher.SetIgnore(m)
				paths = []queue.Path{{Rel: "", Subtree: true}}
			}
		}
		for _, q := range queues {
			q.Add(paths, b.First)
		}
	}
	wg.Wait()
	if werr != nil && !errors.Is(werr, context.Canceled) {
		return werr
	}
	log.Info("stopped")
	return nil
}

// sameRules reports whether two matchers hold the same rules, so a
// rescan that did not change .gosyncignore causes no reload (SetIgnore
// itself reports a rescan of everything).
func sameRules(a, b *ignore.Matcher) bool {
	ra, rb := a.Rules(), b.Rules()
	if len(ra) != len(rb) {
		return false
	}
	for i := range ra {
		if ra[i].String() != rb[i].String() {
			return false
		}
	}
	return true
}

func logBatch(log *slog.Logger, r engine.BatchReport) {
	s := r.Result.Stats
	changed := s.Created + s.Updated + s.MetaOnly + s.Renamed
	if r.Kind == "batch" && changed == 0 && s.Deleted == 0 && len(r.Result.Failed) == 0 {
		return // events that changed nothing on the mirror (temporaries, ignored paths)
	}
	log.Info(r.Kind,
		slog.String("mirror", r.Mirror),
		slog.Int("changed", changed),
		slog.Int("deleted", s.Deleted),
		slog.String("sent", humanBytes(s.Sent)),
		slog.Int64("ms", r.Latency.Milliseconds()),
	)
}

// runOnSync runs the --on-sync command on the mirror's host with the
// changed paths, one per line, on its standard input. A failure is
// logged, never fatal.
func runOnSync(ctx context.Context, log *slog.Logger, m engine.Mirror, cmd string, items []engine.Item) {
	var stdin []byte
	for _, it := range items {
		stdin = append(stdin, it.Path...)
		stdin = append(stdin, '\n')
	}
	code, out, err := m.Run(ctx, cmd, stdin)
	switch {
	case err != nil:
		log.Warn("on-sync command not run", slog.String("mirror", m.Name()), slog.String("err", err.Error()))
	case code != 0:
		log.Warn("on-sync command failed", slog.String("mirror", m.Name()), slog.Int("exit", code), slog.String("output", lastLines(out, 5)))
	default:
		log.Debug("on-sync command done", slog.String("mirror", m.Name()), slog.String("output", lastLines(out, 5)))
	}
}

func lastLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			n--
			if n == 0 {
				return s[i+1:]
			}
		}
	}
	return s
}
