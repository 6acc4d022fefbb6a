package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosync/gosync/cmd/gosync/status"
	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/agent"
	"github.com/gosync/gosync/engine/endpoint"
	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/ident"
	"github.com/gosync/gosync/engine/perm"
	"github.com/gosync/gosync/engine/sshx"
	"github.com/gosync/gosync/engine/wire"
	"github.com/gosync/gosync/ignore"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

type syncFlags struct {
	mirrorNames   []string
	delete        bool
	maxDelete     int
	checksum      bool
	dryRun        bool
	itemize       bool
	stats         bool
	verbose       bool
	wholeFile     bool
	noWholeFile   bool
	sparse        bool
	excludes      stringList
	compressLevel int
	noCompress    bool
	logFormat     string
	allowEmpty    bool
	noProgress    bool
	delayUpdates  bool
	backupDir     string
	ssh           sshx.Options
	chmod         chmodFlag
	chownText     string
	chown         perm.Chown
	numericIDs    bool
	config        string // read by projectRuns

	// Not flags: SRC as written and where it is, so a mirror found on
	// the same machine inside it (or containing it) is refused.
	sourceName string
	source     ident.Place
	// noCreate: the mirror directory is not created (rollback).
	noCreate bool
}

// stringList collects a repeatable flag's values (--exclude).
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
func (s *stringList) Type() string       { return "stringArray" }

// chmodFlag collects --chmod values (repeatable, as rsync's).
type chmodFlag struct{ c perm.Chmod }

func (c *chmodFlag) String() string     { return c.c.String() }
func (c *chmodFlag) Set(v string) error { return c.c.Add(v, umask()) }
func (c *chmodFlag) Type() string       { return "chmod" }

// levelFlag is --compress-level: -1 until given, for the default depends
// on the mirror (its help says which; pflag prints no "(default -1)").
type levelFlag int

func (l *levelFlag) String() string {
	if *l < 0 {
		return ""
	}
	return strconv.Itoa(int(*l))
}

func (l *levelFlag) Set(v string) error {
	n, err := strconv.Atoi(v)
	*l = levelFlag(n)
	return err
}

func (l *levelFlag) Type() string { return "int" }

// register adds the flags of sync, or of watch: watch compares by size
// and mtime as it goes and by content at --reconcile, and prints no
// totals, so --checksum and --stats would do nothing there.
func (f *syncFlags) register(fs *pflag.FlagSet, watch bool) {
	fs.Var(&f.chmod, "chmod", "change the permissions of what is mirrored, in rsync's `CHMOD` syntax (D2775,F664 or Du=rwx,Dg=rx,Fu=rw,Fg=r or u+rwX,g+rX; repeatable)")
	fs.StringVar(&f.chownText, "chown", "", "give what is mirrored this owner and group, `USER:GROUP`, USER or :GROUP, names resolved on the mirror's host")
	fs.BoolVar(&f.numericIDs, "numeric-ids", false, "keep the source's numeric owner and group ids instead of mapping their names on the mirror's host")
	fs.BoolVar(&f.delete, "delete", false, "remove entries from DEST that SRC does not have (ignored paths are kept)")
	fs.IntVar(&f.maxDelete, "max-delete", -1, "refuse the whole sync of a mirror if it would delete more than `N` entries (-1: no limit)")
	if !watch {
		fs.BoolVarP(&f.checksum, "checksum", "c", false, "compare files by content hash, not size and mtime")
		fs.BoolVar(&f.stats, "stats", false, "print totals per mirror")
	}
	fs.BoolVarP(&f.dryRun, "dry-run", "n", false, "show what would change, change nothing")
	fs.BoolVarP(&f.itemize, "itemize", "i", false, "print one line per change")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "log more")
	fs.BoolVar(&f.wholeFile, "whole-file", false, "send changed files whole, never as deltas (default for local mirrors)")
	fs.BoolVar(&f.noWholeFile, "no-whole-file", false, "send deltas to local mirrors too")
	fs.BoolVarP(&f.sparse, "sparse", "S", false, "keep holes as holes: neither read, sent nor written where the system tells where data is; runs of zeros become holes on the mirror (rsync's -S)")
	fs.Var(&f.excludes, "exclude", "ignore paths matching `PATTERN` (gitignore syntax; repeatable)")
	f.compressLevel = -1
	fs.Var((*levelFlag)(&f.compressLevel), "compress-level", "zstd level `N` (1-4) for the mirror stream, 0 for none (default 1 for SSH mirrors, 0 for local ones)")
	fs.BoolVar(&f.noCompress, "no-compress", false, "do not compress the mirror stream")
	f.registerSSH(fs, "")
	fs.StringVar(&f.logFormat, "log-format", "auto", "log `format`: auto, text or json")
	fs.BoolVar(&f.allowEmpty, "allow-empty-source", false, "with --delete, let an empty SRC empty the mirrors")
	fs.BoolVar(&f.noProgress, "no-progress", false, "show no progress while file data is sent (by default: live lines on a terminal, a log line every 5 s elsewhere)")
	fs.BoolVar(&f.delayUpdates, "delay-updates", false, "stage a run's (a watch batch's) new and changed files on the mirror and rename them into place together at its end")
	fs.StringVar(&f.config, "config", "", "the project `file` to use instead of gosync.yaml in this directory or a parent (when no SRC DEST are given)")
	fs.StringVar(&f.backupDir, "backup-dir", "", "move the files a run replaces or deletes into `DIR`/<timestamp>/ on the mirror (relative to DEST unless absolute), for gosync rollback")
	// A project run's mirror names, one per DEST in order: how its logs,
	// progress and status name the mirrors. Set by projectRuns only.
	fs.StringArrayVar(&f.mirrorNames, "mirror-name", nil, "")
	fs.MarkHidden("mirror-name")
}

// registerSSH adds the flags about reaching remote mirrors; sudoNote ends
// --remote-sudo's help.
func (f *syncFlags) registerSSH(fs *pflag.FlagSet, sudoNote string) {
	fs.IntVar(&f.ssh.Port, "ssh-port", 0, "SSH `port` for every remote DEST (default: ssh_config, then 22)")
	fs.StringVar(&f.ssh.User, "ssh-user", "", "SSH `user` for remote DESTs without user@")
	fs.StringVar(&f.ssh.Identity, "ssh-identity", "", "private key `file` to authenticate with (besides ssh-agent)")
	fs.StringVar(&f.ssh.KnownHosts, "ssh-known-hosts", "", "known_hosts `file` to check host keys against")
	fs.StringVar(&f.ssh.ConfigFile, "ssh-config", "", "ssh config `file` instead of ~/.ssh/config")
	fs.BoolVar(&f.ssh.AcceptNew, "accept-new-host-key", false, "accept and record the key of a host seen for the first time (a changed key is still refused)")
	fs.StringVar(&f.ssh.RemoteGosync, "remote-gosync", "", "`path` of gosync on the remote hosts; nothing is looked up or uploaded")
	fs.BoolVar(&f.ssh.RemoteSudo, "remote-sudo", false, "run the remote agent as root with sudo -n"+sudoNote+" (needs --remote-gosync and a sudoers rule; see README)")
}

// registerRollback adds rollback's flags.
func (f *syncFlags) registerRollback(fs *pflag.FlagSet) {
	fs.StringVar(&f.backupDir, "backup-dir", "", "the `DIR` given to sync or watch with --backup-dir (required)")
	fs.BoolVarP(&f.itemize, "itemize", "i", false, "print one line per path put back or removed")
	fs.BoolVarP(&f.dryRun, "dry-run", "n", false, "show what would be put back, change nothing")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "log more")
	fs.StringVar(&f.logFormat, "log-format", "auto", "log `format`: auto, text or json")
	f.registerSSH(fs, ", as sync and watch did")
}

// checkBackupDir cleans --backup-dir: an absolute path stays as it is,
// a relative one must stay inside the mirror.
func checkBackupDir(dir string) (string, error) {
	if dir == "" || path.IsAbs(dir) {
		return dir, nil
	}
	rel := path.Clean(dir)
	if rel == "." || rel == ".." || strings.HasPrefix(rel, "../") || wire.ValidPath(rel) != nil {
		return "", usagef("--backup-dir %s: a relative DIR must lie inside the mirror (it is relative to DEST); give an absolute path for one outside", dir)
	}
	return rel, nil
}

// owners sets --chmod, --chown and --numeric-ids in opt.
func (f *syncFlags) owners(opt *engine.Options) {
	if !f.chmod.c.Empty() {
		opt.Chmod = &f.chmod.c
	}
	opt.Chown, opt.NumericIDs = f.chown, f.numericIDs
}

// command is what sync and watch share after parsing.
type command struct {
	f       syncFlags
	log     *slog.Logger
	src     string
	dests   []endpoint.Endpoint
	matcher *ignore.Matcher
	// progress shows how far each mirror's sync got (nil methods when off).
	progress *progressOut
	// changed reports whether a flag was given on the command line.
	changed func(name string) bool
}

// parseCommand parses the flags both commands take, plus extra ones.
func parseCommand(name string, args []string, stdout, stderr io.Writer, extra func(*pflag.FlagSet)) (*command, error) {
	c := &command{}
	f := &c.f
	fs, pos, err := parseFlags(name, args, stdout, func(fs *pflag.FlagSet) {
		f.register(fs, name == "watch")
		if extra != nil {
			extra(fs)
		}
	})
	if err != nil {
		return nil, err
	}
	c.changed = fs.Changed
	if len(pos) < 2 {
		return nil, usagef("%s needs SRC and at least one DEST", name)
	}
	if f.wholeFile && f.noWholeFile {
		return nil, usagef("--whole-file and --no-whole-file exclude each other")
	}
	if f.compressLevel < -1 || f.compressLevel > 4 {
		return nil, usagef("--compress-level must be 0 to 4, not %d", f.compressLevel)
	}
	if f.chownText != "" {
		if f.chown, err = perm.ParseChown(f.chownText); err != nil {
			return nil, usagef("%v", err)
		}
	}
	if f.ssh.Port < 0 || f.ssh.Port > 65535 {
		return nil, usagef("--ssh-port must be 1 to 65535, not %d", f.ssh.Port)
	}
	if f.backupDir, err = checkBackupDir(f.backupDir); err != nil {
		return nil, err
	}
	level := slog.LevelInfo
	if f.verbose {
		level = slog.LevelDebug
	}
	c.progress = newProgressOut(progressModeFor(*f, stderr), stderr, f.logFormat == "json")
	// On a terminal with bars, log lines are printed above them.
	if c.log, err = newLogger(c.progress.writer(stderr), f.logFormat, level); err != nil {
		return nil, err
	}
	c.progress.log = c.log
	c.src = pos[0]
	f.sourceName = c.src
	f.source, _ = ident.Locate(c.src) // unknown if unusable: the scan says why
	for _, d := range pos[1:] {
		e, err := endpoint.Parse(d)
		if err != nil {
			return nil, usagef("%v", err)
		}
		if !e.Remote() {
			if err := checkLocalDest(c.src, e.Path); err != nil {
				return nil, err
			}
		}
		c.dests = append(c.dests, e)
	}
	if len(f.mirrorNames) > 0 {
		if len(f.mirrorNames) != len(c.dests) {
			return nil, usagef("%d mirror names for %d DESTs", len(f.mirrorNames), len(c.dests))
		}
		for i := range c.dests {
			c.dests[i].Raw = f.mirrorNames[i] + " (" + c.dests[i].Raw + ")"
		}
	}
	if err := checkRemoteSudo(f.ssh, c.dests); err != nil {
		return nil, err
	}
	c.matcher, err = ignore.Load(c.src, f.excludes)
	if err != nil {
		var pe *ignore.PatternError
		if errors.As(err, &pe) && pe.File == "--exclude" {
			return nil, usagef("%v", err)
		}
		return nil, err
	}
	warnSkippedRules(c.log, c.matcher)
	return c, nil
}

func runSync(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if runs, err := projectRuns("sync", args, nil); err != nil || runs != nil {
		return runProject(ctx, "sync", runs, err, false, stderr, func(ctx context.Context, args []string) error { return runSync(ctx, args, stdin, stdout, stderr) })
	}
	c, err := parseCommand("sync", args, stdout, stderr, nil)
	if err != nil {
		return err
	}
	f, log, src, dests, matcher := c.f, c.log, c.src, c.dests, c.matcher
	// Each mirror walks the source in step with its own listing (the
	// trees are never held whole); what a walk skipped is told once.
	var told sync.Once
	var unread atomic.Bool
	spec := engine.SourceSpec{Dir: src, Ignore: matcher, Hash: f.checksum, Done: func(source *engine.Source) {
		if len(source.Errors) > 0 {
			unread.Store(true)
		}
		told.Do(func() {
			for _, p := range source.Special {
				log.Warn("skipping special file (FIFO, socket or device)", slog.String("path", p))
			}
			if n := len(source.SkippedLinks); n > 0 {
				// One line, not one per link: a Windows tree can hold many.
				log.Warn("skipping symlinks that cannot be read on this system", slog.Int("count", n),
					slog.String("paths", engine.PathList(source.SkippedLinks, 5, nil)))
			}
			for _, e := range source.Errors {
				log.Error("cannot read source path; not mirrored", slog.String("path", filepath.Join(src, e.Path)), slog.String("err", e.Msg))
			}
		})
	}}

	opt := engine.Options{
		Delete:           f.delete,
		MaxDelete:        f.maxDelete,
		Checksum:         f.checksum,
		DryRun:           f.dryRun,
		WholeFile:        f.wholeFile,
		Sparse:           f.sparse,
		AllowEmptySource: f.allowEmpty,
		Ignore:           matcher,
		Logger:           log,
		DelayUpdates:     f.delayUpdates,
		BackupDir:        f.backupDir,
	}
	f.owners(&opt)
	var outMu sync.Mutex
	if f.itemize || f.dryRun && f.verbose {
		multi := len(dests) > 1
		items := c.progress.writer(stdout)
		opt.OnItem = func(it engine.Item) {
			outMu.Lock()
			defer outMu.Unlock()
			fmt.Fprintln(items, formatItem(it, multi))
		}
	}

	// SRC is checked before anything is created on a mirror. An SSH
	// mirror takes a quarter of a second or more to reach: the source is
	// walked meanwhile (the walk's open is the check), and the first
	// mirror to be listed takes the walk over (any other walks the
	// source itself).
	if slices.ContainsFunc(dests, endpoint.Endpoint.Remote) {
		pre, err := engine.StartPrewalk(ctx, spec)
		if err != nil {
			return err
		}
		defer pre.Close()
		spec.Pre = pre
	} else {
		probe, err := engine.OpenSource(src)
		if err != nil {
			return err
		}
		probe.Close()
	}
	results := make([]engine.Result, len(dests))
	var wg sync.WaitGroup
	for i, d := range dests {
		o := opt
		if !d.Remote() && !f.noWholeFile {
			o.WholeFile = true // reading the old copy costs as much as writing the new one
		}
		pr := c.progress.mirror(d.Raw)
		if pr != nil {
			o.Progress = pr
		}
		wg.Go(func() {
			defer pr.done() // before the summary lines
			results[i] = syncOne(ctx, spec, d, o, f, log)
		})
	}
	wg.Wait()
	for _, r := range results {
		if errors.Is(r.Err, engine.ErrSource) && ctx.Err() == nil {
			return r.Err // the source, not a mirror: said once
		}
	}
	out := report(ctx, log, stdout, stderr, results, f)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case out.failed:
		return errReported
	case out.partial || unread.Load():
		return errPartial
	case out.vanished:
		return errVanished
	}
	return nil
}

// outcome is the worst of what happened to the mirrors.
type outcome struct {
	failed   bool // a mirror could not be synced
	partial  bool // paths were not mirrored
	vanished bool // source files were deleted before they could be sent
}

// report prints what happened to each mirror: files that vanished from
// the source as one warning, a full disk as one line with the count, any
// other failed path on a line of its own, then the mirror's summary or
// why it failed.
func report(ctx context.Context, log *slog.Logger, stdout, stderr io.Writer, results []engine.Result, f syncFlags) outcome {
	var out outcome
	special := map[string]bool{} // once, not once per mirror
	for _, r := range results {
		for _, sp := range r.Special {
			if !special[sp] {
				special[sp] = true
				log.Warn("skipping special file (FIFO, socket or device)", slog.String("path", sp))
			}
		}
		if n := len(r.Vanished); n > 0 {
			out.vanished = true
			log.Warn(fmt.Sprintf("%d %s vanished from the source before %s could be sent", n, plural(n, "file", "files"), plural(n, "it", "they")),
				slog.String("mirror", r.Mirror), slog.String("paths", engine.PathList(r.Vanished, 5, nil)))
		}
		full, others := engine.SplitNoSpace(r.Failed)
		for _, fe := range others {
			log.Error("not mirrored", slog.String("mirror", r.Mirror), slog.String("path", fe.Path), slog.String("err", fe.Reason()))
			out.partial = true
		}
		if n := len(full); n > 0 {
			out.partial = true
			for _, fe := range full {
				log.Debug("not mirrored", slog.String("mirror", r.Mirror), slog.String("path", fe.Path), slog.String("err", fe.Reason()))
			}
			log.Error(fmt.Sprintf("mirror out of space (disk full or quota): %d %s not mirrored; stopped sending to it; free space there and run again", n, plural(n, "path", "paths")),
				slog.String("mirror", r.Mirror), slog.String("first", full[0].Error()))
		}
		if r.Err != nil {
			out.failed = true
			if errors.Is(r.Err, context.Canceled) || ctx.Err() != nil {
				continue // interrupted: one line says so, not one per mirror
			}
			fmt.Fprintf(stderr, "gosync: %s\n", mirrorError(r))
			continue
		}
		if f.stats {
			printStats(stdout, r, f.dryRun)
		} else {
			fmt.Fprintln(stdout, summary(r, f.dryRun))
		}
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// mirrorError is the line that says why a mirror failed, escaped: the
// error may quote the mirror or its host.
func mirrorError(r engine.Result) string {
	msg := r.Err.Error()
	if !strings.Contains(msg, r.Mirror) {
		msg = r.Mirror + ": " + msg
	}
	return engine.Printable(msg)
}

func syncOne(ctx context.Context, src engine.SourceSpec, d endpoint.Endpoint, opt engine.Options, f syncFlags, log *slog.Logger) engine.Result {
	m, err := dialMirror(ctx, d, f, log)
	if err != nil {
		return engine.Result{Mirror: d.Raw, Err: err}
	}
	defer m.Close()
	// Ctrl-C ends a transfer in flight at once: closing the connection
	// fails the blocked write, and the agent removes its temporary.
	stop := context.AfterFunc(ctx, func() { m.Close() })
	defer stop()
	return engine.SyncTree(ctx, src, m, opt)
}

// dialMirror connects to a local or remote mirror.
func dialMirror(ctx context.Context, d endpoint.Endpoint, f syncFlags, log *slog.Logger) (*engine.Client, error) {
	copt := engine.ClientOptions{Compress: f.compressLevel, Create: !f.dryRun && !f.noCreate, Lock: !f.dryRun, BuildID: BuildID(),
		Sparse: f.sparse, Source: f.source, SourceName: f.sourceName}
	if copt.Compress < 0 {
		copt.Compress = 0
		if d.Remote() {
			copt.Compress = 1
		}
	}
	if f.noCompress {
		copt.Compress = 0
	}
	if !d.Remote() {
		return engine.DialLocal(ctx, d.Raw, d.Path, copt, log.With(slog.String("mirror", d.Raw)))
	}
	opt := f.ssh
	opt.Passphrase = askPassphrase
	if opt.NeedsBinary() {
		// The start script names the executable by its hash: take
		// it while SSH connects (DialMirrorWith waits for it then).
		go selfBinary()
	}
	m, err := sshx.DialMirrorWith(ctx, d, opt, selfBinary, copt)
	if err == nil && (m.Forced() || m.Restricted()) {
		log.Debug("the mirror's agent is fixed by the server", slog.String("mirror", d.Raw), slog.Bool("forced_command", m.Forced()),
			slog.Bool("restricted", m.Restricted()), slog.Bool("runs_commands", m.RunsCommands()), slog.Bool("sets_owners", m.SetsOwner()))
	}
	return m, err
}

// selfBinary hashes the running executable once per process.
var selfBinary = sync.OnceValues(func() (sshx.Binary, error) { return sshx.SelfBinary(wire.Version) })

// passphraseMu keeps concurrent mirrors from prompting at once.
var passphraseMu sync.Mutex

// askPassphrase reads a key's passphrase from the terminal, if there is one.
func askPassphrase(keyFile string) ([]byte, error) {
	passphraseMu.Lock()
	defer passphraseMu.Unlock()
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("encrypted key and no terminal to ask its passphrase; load it into ssh-agent")
	}
	defer tty.Close()
	fmt.Fprintf(tty, "Enter passphrase for key %s: ", keyFile)
	pass, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	return pass, err
}

// checkRemoteSudo refuses --remote-sudo where it cannot work, before
// anything is dialled: without a root-owned gosync to run, with a remote
// path that a sudoers rule cannot name exactly, or with no remote DEST
// at all (local DESTs are written as the user running gosync).
func checkRemoteSudo(o sshx.Options, dests []endpoint.Endpoint) error {
	if !o.RemoteSudo {
		return nil
	}
	remote := false
	for _, d := range dests {
		if !d.Remote() {
			continue
		}
		remote = true
		if _, err := sshx.SudoRoot(o.RemoteGosync, d.Path); errors.Is(err, sshx.ErrSudoProgram) {
			return usagef("%v", err)
		} else if err != nil {
			return usagef("%s: %v", d.Raw, err)
		}
	}
	if !remote {
		return usagef("--remote-sudo applies to remote DESTs, and none is remote; run gosync itself as root to write a local mirror as root")
	}
	return nil
}

// checkLocalDest refuses destinations that would destroy data: the source
// itself, a directory inside the source (it would mirror itself forever)
// or one containing it (--delete would remove the source).
func checkLocalDest(src, dst string) error {
	s, err := realPath(src)
	if err != nil {
		return nil // ScanSource reports a bad SRC with more context
	}
	d, err := realPath(dst)
	if err != nil {
		return fmt.Errorf("destination %s: %w", dst, err)
	}
	switch {
	case s == d:
		return &engine.OverlapError{Source: src, Dest: dst, Rel: ident.Same}
	case strings.HasPrefix(d, s+string(filepath.Separator)):
		return &engine.OverlapError{Source: src, Dest: dst, Rel: ident.Inside}
	case strings.HasPrefix(s, d+string(filepath.Separator)) || d == string(filepath.Separator):
		return &engine.OverlapError{Source: src, Dest: dst, Rel: ident.Contains}
	}
	return nil
}

// realPath resolves symlinks in the longest existing prefix of p, so a
// destination that does not exist yet is still compared correctly.
func realPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	rest := ""
	for cur := abs; ; cur = filepath.Dir(cur) {
		r, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(r, rest), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if cur == filepath.Dir(cur) {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
	}
}

func formatItem(it engine.Item, multi bool) string {
	var b strings.Builder
	if multi {
		b.WriteString(it.Mirror)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "%-8s %-7s %s", it.Action, it.Kind, quotePath(it.Path))
	switch {
	case it.Action == engine.Renamed:
		b.WriteString(" <- " + quotePath(it.Target))
	case it.Kind == fstree.Symlink && it.Action != engine.Deleted && it.Action != engine.MetaSet:
		b.WriteString(" -> " + quotePath(it.Target))
	case it.Kind == fstree.File && (it.Action == engine.Created || it.Action == engine.Updated):
		fmt.Fprintf(&b, "  literal=%d matched=%d", it.Literal, it.Matched)
	case it.Action == engine.Deleted && it.Count > 1:
		fmt.Fprintf(&b, "  (%d entries)", it.Count)
	}
	return b.String()
}

// quotePath keeps one line per item whatever bytes a name holds.
func quotePath(p string) string {
	if p == "" {
		return "."
	}
	return engine.QuotePath(p)
}

func summary(r engine.Result, dry bool) string {
	s := r.Stats
	if dry {
		// Nothing was sent: say what would be, as the real run counts it.
		return fmt.Sprintf("dry run %s: %d created, %d updated, %d metadata, %d deleted, would send %s of file data (%s reused from the mirror)",
			r.Mirror, s.Created, s.Updated, s.MetaOnly, s.Deleted, humanBytes(s.Literal), humanBytes(s.Matched))
	}
	return fmt.Sprintf("synced %s: %d created, %d updated, %d metadata, %d deleted, %s sent in %s",
		r.Mirror, s.Created, s.Updated, s.MetaOnly, s.Deleted, humanBytes(s.Sent), s.Duration.Round(time.Millisecond))
}

func printStats(w io.Writer, r engine.Result, dry bool) {
	s := r.Stats
	fmt.Fprintf(w, "mirror %s%s\n", r.Mirror, map[bool]string{true: " (dry run)"}[dry])
	rows := []struct {
		k string
		v any
	}{
		{"files scanned", s.Scanned},
		{"created", s.Created},
		{"updated", s.Updated},
		{"metadata only", s.MetaOnly},
		{"deleted", s.Deleted},
		{"failed", len(r.Failed)},
		{"bytes literal", s.Literal},
		{"bytes matched", s.Matched},
		{map[bool]string{false: "bytes sent (stream)", true: "bytes sent (none)"}[dry], map[bool]any{false: s.Sent, true: "-"}[dry]},
		{"time", s.Duration.Round(time.Millisecond)},
	}
	for _, row := range rows {
		fmt.Fprintf(w, "  %-20s %v\n", row.k, row.v)
	}
}

func humanBytes(n int64) string { return status.Bytes(n) }

func serveAgent(ctx context.Context, root string, restrict agent.Restriction, stdin io.Reader, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	err := agent.Serve(ctx, stdin, stdout, agent.Options{Root: root, BuildID: BuildID(), Logger: log, Restriction: restrict, WalkHelpers: runtime.GOMAXPROCS(0) - 1})
	if err != nil {
		return err
	}
	return nil
}

// warnSkippedRules logs the ignore-file lines that were left out.
func warnSkippedRules(log *slog.Logger, m *ignore.Matcher) {
	for _, w := range m.Skipped {
		log.Warn("ignore file line left out", slog.String("why", w))
	}
}
