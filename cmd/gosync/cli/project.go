package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	repo "github.com/gosync/gosync"
	"github.com/gosync/gosync/cmd/gosync/project"
	"github.com/spf13/pflag"
)

// Flags about one run, not the project: refused in the file.
var commandLineOnly = map[string]bool{"dry-run": true, "itemize": true, "stats": true, "verbose": true,
	"log-format": true, "no-progress": true, "config": true, "mirror-name": true}

// Flags naming a local file: relative to the project file in it.
var pathFlags = map[string]bool{"ssh-identity": true, "ssh-known-hosts": true, "ssh-config": true}

// opposites: a flag given on the command line overrides its opposite in
// the file too (--delete beats no-delete: true).
var opposites = map[string]string{"delete": "no-delete", "no-delete": "delete", "whole-file": "no-whole-file",
	"no-whole-file": "whole-file", "compress-level": "no-compress", "no-compress": "compress-level"}

// flagKinds tells the project loader what each long flag takes.
type flagKinds struct{ fs *pflag.FlagSet }

func (k flagKinds) Kind(key string) project.Kind {
	f := k.fs.Lookup(key) // long names only: a key "n" is unknown
	switch {
	case f == nil:
		return project.Unknown
	case commandLineOnly[key]:
		return project.CommandLine
	case pathFlags[key]:
		return project.Path
	}
	switch f.Value.Type() {
	case "bool":
		return project.Bool
	case "int":
		return project.Int
	case "duration":
		return project.Duration
	case "string":
		return project.String
	}
	return project.List // --exclude, --chmod
}

// allFlags is every flag a project file may set: sync's and watch's.
func allFlags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("gosync.yaml", pflag.ContinueOnError)
	new(syncFlags).register(fs, false)
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
func projectRuns(name string, args []string, extra func(*pflag.FlagSet)) ([][]string, error) {
	var f syncFlags
	fs := newFlagSet(name, func(fs *pflag.FlagSet) {
		f.register(fs, name == "watch")
		if extra != nil {
			extra(fs)
		}
	})
	pos, flags, err := splitArgs(fs, args)
	if err != nil || fs.Changed("help") {
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

	has := func(k string) bool { return fs.Lookup(k) != nil }
	skip := func(k string) bool { return fs.Changed(k) || fs.Changed(opposites[k]) }
	var runs, dests [][]string
	group := map[string]int{}
	for _, m := range sel {
		fromFile := m.Args(has, skip)
		key := strings.Join(fromFile, "\x00")
		i, ok := group[key]
		if !ok {
			i = len(runs)
			group[key] = i
			// --config= : the run below is an ordinary SRC DEST one.
			runs = append(runs, append(append(fromFile, flags...), "--config="))
			dests = append(dests, nil)
		}
		// Each mirror is shown by its name in the file and its DEST.
		runs[i] = append(runs[i], "--mirror-name="+m.Name)
		dests[i] = append(dests[i], m.Dest)
	}
	for i := range runs {
		runs[i] = append(append(runs[i], "--", p.Source), dests[i]...)
	}
	return runs, nil
}

// splitArgs parses args and returns the positional arguments and the
// flags, each as --name=value (so a value that starts with a dash stays
// a value when they are parsed again).
func splitArgs(fs *pflag.FlagSet, args []string) (pos, flags []string, err error) {
	err = fs.ParseAll(args, func(fl *pflag.Flag, value string) error {
		flags = append(flags, "--"+fl.Name+"="+value)
		return fs.Set(fl.Name, value)
	})
	return fs.Args(), flags, err
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
func runProject(ctx context.Context, name string, runs [][]string, err error, together bool, stderr io.Writer, run func(context.Context, []string) error) error {
	if err != nil {
		return err
	}
	var mu sync.Mutex
	worst := ExitOK
	done := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if code := exitCode(inCommand(name, err), stderr); worse(code, worst) {
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

func runInit(_ context.Context, args []string, _ io.Reader, stdout, _ io.Writer) error {
	_, pos, err := parseFlags("init", args, stdout, nil)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
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
