package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	repo "github.com/gosync/gosync"
	"github.com/gosync/gosync/cmd/gosync/project"
)

// Flags about one run, not the project: refused in the file.
var commandLineOnly = map[string]bool{"dry-run": true, "itemize": true, "stats": true, "verbose": true,
	"log-format": true, "no-progress": true, "config": true}

// Flags naming a local file: relative to the project file in it.
var pathFlags = map[string]bool{"ssh-identity": true, "ssh-known-hosts": true, "ssh-config": true}

// shortFor maps the one-letter flags to their long names (pflag will
// know this itself).
var shortFor = map[string]string{"c": "checksum", "n": "dry-run", "i": "itemize", "S": "sparse", "v": "verbose"}

// opposites: a flag given on the command line overrides its opposite in
// the file too (--delete beats no-delete: true).
var opposites = map[string]string{"delete": "no-delete", "no-delete": "delete", "whole-file": "no-whole-file",
	"no-whole-file": "whole-file", "compress-level": "no-compress", "no-compress": "compress-level"}

// flagKinds tells the project loader what each long flag takes.
type flagKinds struct{ fs *flag.FlagSet }

func (k flagKinds) Kind(key string) project.Kind {
	f := k.fs.Lookup(key)
	switch {
	case f == nil || shortFor[key] != "":
		return project.Unknown
	case commandLineOnly[key]:
		return project.CommandLine
	case pathFlags[key]:
		return project.Path
	}
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case bool:
			return project.Bool
		case int:
			return project.Int
		case time.Duration:
			return project.Duration
		case string:
			return project.String
		}
	}
	return project.List // --exclude, --chmod
}

// allFlags is every flag a project file may set: sync's and watch's.
func allFlags() *flag.FlagSet {
	fs := flag.NewFlagSet("gosync.yaml", flag.ContinueOnError)
	new(syncFlags).register(fs)
	new(watchFlags).register(fs)
	return fs
}

// projectRuns decides whether a sync or watch runs from the project
// file, and if so returns the command lines to run, one per group of
// mirrors with the same settings (they share one scan and one watcher).
// It returns nil, nil for an ordinary SRC DEST... command line, and for
// one it cannot parse (parseCommand then says why).
//
// The file is used when no arguments are given (gosync.yaml found in
// the working directory or a parent, or --config FILE), or when every
// argument is the name of one of its mirrors. Flags given on the command
// line override the file's settings of the same key.
func projectRuns(name string, args []string, extra func(*flag.FlagSet)) ([][]string, error) {
	fs := flag.NewFlagSet("gosync "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f syncFlags
	f.register(fs)
	if extra != nil {
		extra(fs)
	}
	pos, flags, err := splitArgs(fs, args)
	if err != nil {
		return nil, nil
	}
	names := !slices.ContainsFunc(pos, func(s string) bool { return !project.IsName(s) })
	if f.config == "" && len(pos) > 0 && !names {
		return nil, nil
	}
	file, shown := f.config, f.config
	if file == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		if file, err = project.Find(wd); err != nil {
			return nil, fmt.Errorf("looking for %s: %w", project.FileName, err)
		}
		if file == "" {
			if len(pos) == 0 {
				return nil, usagef("%s needs SRC and at least one DEST, or a %s in this directory or a parent (gosync init writes one)", name, project.FileName)
			}
			return nil, nil
		}
		shown = file
		if rel, err := filepath.Rel(wd, file); err == nil && !strings.HasPrefix(rel, "..") {
			shown = rel
		}
	} else if !names {
		return nil, usagef("with --config, name mirrors of the project file or nothing, not SRC DEST (%s)", strings.Join(pos, " "))
	}
	p, err := project.Open(file, shown, f.config == "", flagKinds{allFlags()})
	if err != nil {
		if f.config == "" && len(pos) > 1 {
			return nil, nil // a file found above, and arguments that may well be SRC DEST
		}
		return nil, err
	}
	sel := p.Mirrors
	if len(pos) > 0 {
		sel = nil
		var missing []string
		for _, n := range pos {
			m, ok := p.Mirror(n)
			switch {
			case !ok:
				missing = append(missing, n)
			case !slices.ContainsFunc(sel, func(s project.Mirror) bool { return s.Name == n }):
				sel = append(sel, m)
			}
		}
		if len(missing) == len(pos) && f.config == "" && len(pos) > 1 {
			return nil, nil // SRC DEST that happen to look like names
		}
		if len(missing) > 0 {
			return nil, &project.Error{File: shown, Msg: fmt.Sprintf("no mirror named %s (its mirrors: %s)", strings.Join(missing, ", "), strings.Join(p.Names(), ", "))}
		}
	}

	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) {
		n := fl.Name
		if long := shortFor[n]; long != "" {
			n = long
		}
		set[n] = true
	})
	has := func(k string) bool { return fs.Lookup(k) != nil }
	skip := func(k string) bool { return set[k] || set[opposites[k]] }
	var runs [][]string
	group := map[string]int{}
	for _, m := range sel {
		fromFile := m.Args(has, skip)
		key := strings.Join(fromFile, "\x00")
		i, ok := group[key]
		if !ok {
			i = len(runs)
			group[key] = i
			// --config= : the run below is an ordinary SRC DEST one.
			run := append(append(fromFile, flags...), "--config=", "--", p.Source)
			runs = append(runs, run)
		}
		runs[i] = append(runs[i], m.Dest)
	}
	return runs, nil
}

// splitArgs parses args as parseInterspersed does and returns the
// positional arguments and the rest (the flags and their values, without
// a "--" that ended them).
func splitArgs(fs *flag.FlagSet, args []string) (pos, flags []string, err error) {
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, err
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), append(flags, args[:consumed-1]...), nil
		}
		flags = append(flags, args[:consumed]...)
		if len(rest) == 0 {
			return pos, flags, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// exitError is an exit code whose messages were printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// worse orders exit codes: an interruption, a usage error, a failure,
// then partial and vanished files.
func worse(a, b int) bool {
	rank := map[int]int{ExitOK: 0, ExitVanished: 1, ExitPartial: 2, ExitFatal: 3, ExitUsage: 4, ExitInterrupted: 5}
	return rank[a] > rank[b]
}

// runProject runs the command lines of projectRuns: one after the other
// (sync), or together until the first fails or ctx ends (watch). Each
// run's errors are printed as they would be alone; the exit code is the
// worst.
func runProject(ctx context.Context, runs [][]string, err error, together bool, stderr io.Writer, run func(context.Context, []string) error) error {
	if err != nil {
		return err
	}
	var mu sync.Mutex
	worst := ExitOK
	done := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if code := exitCode(err, stderr); worse(code, worst) {
			worst = code
		}
	}
	if !together {
		for _, args := range runs {
			done(run(ctx, args))
		}
	} else {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var wg sync.WaitGroup
		for _, args := range runs {
			wg.Go(func() {
				err := run(ctx, args)
				if err != nil && !errors.Is(err, context.Canceled) {
					cancel() // a watch that ended with an error ends them all
				}
				done(err)
			})
		}
		wg.Wait()
	}
	if worst == ExitOK {
		return nil
	}
	return exitError{worst}
}

// projectTemplate is what gosync init writes.
const projectTemplate = `# gosync project file. In this directory (or below it), "gosync watch" and
# "gosync sync" without arguments mirror SOURCE to every mirror listed here;
# "gosync watch NAME..." to those mirrors only. Keys are the long names of
# gosync's flags (see gosync watch -h); flags on the command line override
# them. Relative local paths are relative to this file's directory.

# The directory to mirror. Its .gosyncignore says what to leave out.
source: .

# Settings here apply to every mirror; a mirror's own settings override them.
# exclude: [node_modules/, "*.log"]
# reconcile: 10m

mirrors:
  # One entry per mirror: a name (letters, digits, . _ -), then its dest
  # and settings.
  preview:
    dest: ../preview            # a local directory, relative to this file
  # prod:
  #   dest: deploy@web1:/var/www/site
  #   delete: true              # also delete at the start what only the mirror has
  #   chmod: D2775,F664
  #   chown: deploy:www-data
  #   on-sync: systemctl --user reload php-fpm
  #   compress-level: 2
  #   delay-updates: true
  #   backup-dir: .backups
  #   max-delete: 100
`

func runInit(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gosync init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: gosync init\n\nWrites a commented %s and, unless there is one, a .gosyncignore (from .gosyncignore.example) in this directory.\n", project.FileName)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return usagef("init takes no arguments; it writes %s in the working directory", project.FileName)
	}
	if err := createNew(project.FileName, projectTemplate); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s; name your mirrors in it, then run gosync watch\n", project.FileName)
	const ignoreFile = ".gosyncignore"
	switch err := createNew(ignoreFile, repo.IgnoreExample); {
	case errors.Is(err, os.ErrExist):
		fmt.Fprintf(stdout, "kept the existing %s\n", ignoreFile)
	case err != nil:
		return err
	default:
		fmt.Fprintf(stdout, "wrote %s\n", ignoreFile)
	}
	return nil
}

// existsError is a file init does not overwrite.
type existsError struct{ name string }

func (e existsError) Error() string {
	return e.name + " already exists; not overwritten (remove it first to start afresh)"
}
func (e existsError) Is(target error) bool { return target == os.ErrExist }

// createNew writes a file that must not exist yet (O_EXCL: never over
// another, nor through a symlink).
func createNew(name, content string) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return existsError{name}
	}
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		os.Remove(name)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return err
	}
	return nil
}
