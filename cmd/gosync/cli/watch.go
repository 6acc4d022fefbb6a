package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosync/gosync/cmd/gosync/status"
	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/sshx"
	"github.com/gosync/gosync/ignore"
	"github.com/gosync/gosync/queue"
	"github.com/gosync/gosync/watch"
	"github.com/spf13/pflag"
)

type watchFlags struct {
	noDelete  bool
	debounce  time.Duration
	maxDelay  time.Duration
	reconcile time.Duration
	settle    time.Duration
	maxHold   time.Duration
	onSync    string
	metrics   string
}

// register adds watch's own flags.
func (w *watchFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&w.noDelete, "no-delete", false, "never delete anything on the mirrors")
	fs.DurationVar(&w.debounce, "debounce", 10*time.Millisecond, "quiet `time` after the last change before a batch ships")
	fs.DurationVar(&w.maxDelay, "max-delay", time.Second, "longest `time` a change waits while changes keep coming; at least --debounce (--debounce alone raises it, --max-delay alone lowers --debounce)")
	fs.DurationVar(&w.reconcile, "reconcile", 5*time.Minute, "compare everything by content every `interval` (0: never)")
	fs.DurationVar(&w.settle, "settle", 2*time.Second, "deletes wait until SRC has been quiet for this `time` (0: at once)")
	fs.DurationVar(&w.maxHold, "max-hold", 30*time.Second, "a file still open for writing waits at most this `time`, then what it holds is sent (0: never wait)")
	fs.StringVar(&w.metrics, "metrics", "", "serve Prometheus metrics on `host:port`/metrics (off by default)")
	fs.StringVar(&w.onSync, "on-sync", "", "run `command` on each mirror's host after each applied change, changed paths on its stdin, each ended by a NUL byte")
}

// delays checks --debounce and --max-delay: a change cannot wait less
// than the quiet time. The one given alone moves the other's default
// (--debounce 2s raises --max-delay to 2s; --max-delay 5ms lowers
// --debounce to 5ms); both given and inconsistent is an error naming the
// one to change.
func (w *watchFlags) delays(changed func(string) bool) error {
	if w.debounce < 0 || w.maxDelay < 0 {
		return usagef("--debounce and --max-delay must not be negative")
	}
	if w.maxDelay >= w.debounce {
		return nil
	}
	switch {
	case changed("max-delay") && !changed("debounce"):
		w.debounce = w.maxDelay
		return nil
	case changed("max-delay"):
		return usagef("--max-delay %s is shorter than --debounce %s: raise --max-delay to %s or more, or lower --debounce", w.maxDelay, w.debounce, w.debounce)
	}
	w.maxDelay = w.debounce
	return nil
}

func runWatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if runs, err := projectRuns("watch", args, new(watchFlags).register); err != nil || runs != nil {
		return runProject(ctx, "watch", runs, err, true, stderr, func(ctx context.Context, args []string) error { return runWatch(ctx, args, stdin, stdout, stderr) })
	}
	var w watchFlags
	c, err := parseCommand("watch", args, stdout, stderr, w.register)
	if err != nil {
		return err
	}
	if err := w.delays(c.changed); err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		// A watch's heap is mostly its pictures of the mirrors, which
		// hold no pointers: the collector does not scan them, so
		// collecting at a quarter more than the live heap rather than
		// half costs next to nothing (a million-file initial sync: 83
		// against 84 s of CPU) and lowers the peak (157 -> 150 MB).
		debug.SetGCPercent(25)
	}
	f, log := c.f, c.log
	if f.delete && w.noDelete {
		return usagef("--delete and --no-delete exclude each other")
	}
	if f.ssh.RemoteSudo && w.onSync != "" {
		return usagef("--on-sync cannot be used with --remote-sudo: the command would run as root, so the sudoers rule would give the SSH user a root shell; " +
			"the agent started through sudo is restricted and runs no commands")
	}
	if w.reconcile < 0 || w.settle < 0 || w.maxHold < 0 {
		return usagef("--reconcile, --settle and --max-hold must not be negative")
	}
	opt := engine.Options{
		Delete:           !w.noDelete,
		MaxDelete:        f.maxDelete,
		WholeFile:        f.wholeFile,
		Sparse:           f.sparse,
		AllowEmptySource: f.allowEmpty,
		DryRun:           f.dryRun,
		DelayUpdates:     f.delayUpdates,
		BackupDir:        f.backupDir,
	}
	f.owners(&opt)
	multi := len(c.dests) > 1
	var outMu sync.Mutex
	if f.itemize || f.dryRun {
		items := c.progress.writer(stdout)
		opt.OnItem = func(it engine.Item) {
			outMu.Lock()
			defer outMu.Unlock()
			fmt.Fprintln(items, formatItem(it, multi))
		}
	}
	if f.dryRun {
		return watchDryRun(ctx, c, opt, !f.delete, stdout, stderr)
	}
	var metricsL net.Listener
	if w.metrics != "" {
		if metricsL, err = status.ListenMetrics(w.metrics); err != nil {
			return err
		}
		defer metricsL.Close()
	}
	var rules atomic.Pointer[ignore.Matcher]
	rules.Store(c.matcher)

	// Watch first, so nothing that changes during the initial sync is lost.
	watcher, err := watch.New(c.src, watch.Options{Ignore: c.matcher, Debounce: w.debounce, MaxDelay: w.maxDelay, Logger: log})
	if err != nil {
		return err
	}
	log.Info("watching", slog.String("source", c.src), slog.Int("directories", watcher.Watches()), slog.Int("mirrors", len(c.dests)))

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	queues := make([]*queue.Queue, len(c.dests))
	lives := make([]*engine.Live, len(c.dests))
	metrics := status.NewMetrics(mirrorStatuses(lives))
	var wg sync.WaitGroup
	var starts []func()
	for i, d := range c.dests {
		queues[i] = queue.New(10000)
		o := opt
		if !d.Remote() && !f.noWholeFile {
			o.WholeFile = true
		}
		pr := c.progress.mirror(d.Raw) // the initial sync's
		live := &engine.Live{
			Name: d.Raw,
			Dial: func(ctx context.Context) (engine.Mirror, error) {
				m, err := dialMirror(ctx, d, f, log)
				if err != nil {
					return nil, err
				}
				if w.onSync != "" && !m.RunsCommands() {
					m.Close()
					return nil, fmt.Errorf("%s: --on-sync: %w", d.Raw, engine.ErrRunRefused)
				}
				if err := engine.CheckOwners(ctx, m, o); err != nil {
					m.Close()
					return nil, err
				}
				return m, nil
			},
			Queue:      queues[i],
			SourceDir:  c.src,
			Ignore:     &rules,
			Opt:        o,
			Reconcile:  w.reconcile,
			Settle:     w.settle,
			EventDelay: w.maxDelay,
			Blind:      watcher.Blind,
			MaxHold:    w.maxHold,
			KeepExtras: !f.delete,
			Permanent: func(err error) bool {
				return errors.Is(err, engine.ErrRunRefused) || errors.Is(err, engine.ErrOwnerRefused) || sshx.Permanent(err)
			},
			Log: log,
			OnBatch: func(r engine.BatchReport) {
				if r.Kind == "initial" {
					pr.done()
				}
				logBatch(log, r)
				metrics.ObserveBatch(r)
				if r.Kind != "batch" && r.Kind != "delete" {
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
		if pr != nil {
			live.Progress = pr
		}
		lives[i] = live
		starts = append(starts, func() {
			wg.Go(func() {
				err := live.Run(ctx)
				pr.done()
				if err != nil {
					if !strings.Contains(err.Error(), d.Raw) {
						err = fmt.Errorf("%s: %w", d.Raw, err)
					}
					cancel(err)
				}
			})
		})
	}
	// The status socket answers before any mirror starts, so a watch is
	// listed from its first moment (connecting, initial sync), not only
	// once some initial sync is done.
	statusServer(ctx, &wg, c.src, lives, metricsL, metrics, log)
	for _, start := range starts {
		start()
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
				warnSkippedRules(log, m)
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
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err // a mirror that cannot work at all, e.g. a refused host key
	}
	if werr != nil && !errors.Is(werr, context.Canceled) {
		return werr
	}
	log.Info("stopped")
	return nil
}

// watchDryRun shows what the start of a watch would do to each mirror,
// with watch's delete rules, and changes nothing.
func watchDryRun(ctx context.Context, c *command, opt engine.Options, keepExtras bool, stdout, stderr io.Writer) error {
	src, err := engine.ScanSource(ctx, c.src, c.matcher, false)
	if err != nil {
		return err
	}
	defer src.Close()
	opt.Ignore, opt.Logger = c.matcher, c.log
	failed := false
	for _, d := range c.dests {
		o := opt
		if !d.Remote() && !c.f.noWholeFile {
			o.WholeFile = true
		}
		m, err := dialMirror(ctx, d, c.f, c.log)
		if err != nil {
			fmt.Fprintf(stderr, "gosync: %s\n", mirrorError(engine.Result{Mirror: d.Raw, Err: err}))
			failed = true
			continue
		}
		sess := engine.NewSession(m, o)
		sess.KeepExtras = keepExtras
		res := sess.Full(ctx, src, false)
		m.Close()
		if res.Err != nil {
			fmt.Fprintf(stderr, "gosync: %s\n", mirrorError(res))
			failed = true
			continue
		}
		if n := len(res.Kept); n > 0 && opt.Delete {
			fmt.Fprintf(stdout, "kept %d %s that only %s has: %s; --delete removes them\n", n, map[bool]string{true: "entry", false: "entries"}[n == 1], d.Raw, engine.PathList(res.Kept, len(res.Kept), nil))
		}
		fmt.Fprintln(stdout, summary(res, true))
	}
	if failed {
		return errReported
	}
	return ctx.Err()
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
	if (r.Kind == "batch" || r.Kind == "delete") && changed == 0 && s.Deleted == 0 && len(r.Result.Failed) == 0 {
		return // events that changed nothing on the mirror (temporaries, ignored paths)
	}
	attrs := []slog.Attr{
		slog.String("mirror", r.Mirror),
		slog.Int("changed", changed),
		slog.Int("deleted", s.Deleted),
		slog.Any("sent", byteCount(s.Sent)),
		slog.Int64("ms", r.Latency.Milliseconds()),
	}
	if len(r.Items) > 0 {
		attrs = append(attrs, slog.String("paths", itemPaths(r.Items, r.MoreItems, 3)))
	}
	if n := len(r.Result.Deferred); n > 0 {
		attrs = append(attrs, slog.Int("deletes_waiting", n))
	}
	if n := len(r.Result.Held); n > 0 {
		attrs = append(attrs, slog.Int("held", n))
	}
	log.LogAttrs(context.Background(), slog.LevelInfo, r.Kind, attrs...)
}

// itemPaths names the first n changed paths, then how many more.
func itemPaths(items []engine.Item, more, n int) string {
	paths := make([]string, 0, n)
	for _, it := range items[:min(len(items), n)] {
		paths = append(paths, cmp.Or(it.Path, "."))
	}
	s := engine.PathList(paths, n, nil)
	if rest := len(items) + more - len(paths); rest > 0 {
		s += fmt.Sprintf(" and %d more", rest)
	}
	return s
}

// runOnSync runs the --on-sync command on the mirror's host with the
// changed paths on its standard input, each ended by a NUL byte (a name
// may hold a newline; `xargs -0` and `read -d ”` split them). A failure
// is logged, never fatal.
func runOnSync(ctx context.Context, log *slog.Logger, m engine.Mirror, cmd string, items []engine.Item) {
	var stdin []byte
	for _, it := range items {
		stdin = append(stdin, it.Path...)
		stdin = append(stdin, 0)
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
