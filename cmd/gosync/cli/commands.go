package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// subcommand is one entry of the command table: what dispatch runs, what
// gosync help lists and shows, and what completion offers.
type subcommand struct {
	name    string
	summary string // one line, for gosync help's list
	usage   []string
	about   string
	// flags registers the command's flags (on fresh values: for help and
	// completion; its run function registers the same ones on its own).
	flags func(*pflag.FlagSet)
	args  argKind
	run   func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// argKind is what a command's positional arguments are, for completion.
type argKind int

const (
	noArgs      argKind = iota
	pathArgs            // files and directories
	mirrorArgs          // SRC DEST... or mirror names of gosync.yaml
	commandArgs         // a command name (help)
	shellArgs           // a shell name (completion)
)

// commands is the command table. It is a function, not a variable: the
// run functions look their own entry up.
func commands() []subcommand {
	return []subcommand{
		{name: "sync", summary: "mirror the contents of SRC into each DEST once",
			usage: []string{"sync [flags] SRC DEST...", "sync [flags] [NAME...]"},
			about: `Mirrors the contents of SRC into each DEST once. Without SRC DEST, or with
names of mirrors, the mirrors of gosync.yaml (here or in a parent directory,
or --config FILE). DEST is a local path, [user@]host:path or
ssh://[user@]host[:port]/path; SRC's contents go into DEST, with or without
a trailing slash.`,
			flags: func(fs *pflag.FlagSet) { new(syncFlags).register(fs, false) },
			args:  mirrorArgs, run: runSync},
		{name: "watch", summary: "mirror, then keep every DEST up to date until interrupted",
			usage: []string{"watch [flags] SRC DEST...", "watch [flags] [NAME...]"},
			about: `Mirrors the contents of SRC into each DEST, then keeps every DEST up to date
until interrupted. What is deleted in SRC while watching is deleted on the
mirrors once SRC has been quiet for --settle; what only a mirror had at the
start is kept (--delete removes it too, --no-delete keeps everything).
With -n, shows what the start would do and exits. Without SRC DEST, or with
names of mirrors, the mirrors of gosync.yaml.`,
			flags: func(fs *pflag.FlagSet) { new(syncFlags).register(fs, true); new(watchFlags).register(fs) },
			args:  mirrorArgs, run: runWatch},
		{name: "status", summary: "show the running watches and their mirrors",
			usage: []string{"status [--json] [-w]"},
			about: `Shows every running gosync watch of this user: its source, pid and
uptime, and per mirror whether it is connected and since when, the last
batch applied, the paths pending and failed, the bytes sent and the next
reconciliation. No watch running is not an error.`,
			flags: func(fs *pflag.FlagSet) { new(statusFlags).register(fs) },
			run:   runStatus},
		{name: "init", summary: "write a commented gosync.yaml and a .gosyncignore here",
			usage: []string{"init"},
			about: `Writes a commented gosync.yaml and, unless there is one, a .gosyncignore
(from .gosyncignore.example) in this directory.`,
			run: runInit},
		{name: "rollback", summary: "put back what the last run (or watch batch) replaced, deleted or created",
			usage: []string{"rollback --backup-dir DIR [flags] DEST..."},
			about: `Puts the newest backup in DIR on each DEST back: the files it saved return to
their paths and the files that run created are moved into DIR/<timestamp>.undone/.
A watch running on DEST stops (rollback takes the mirror over); fix the source first.`,
			flags: func(fs *pflag.FlagSet) { new(syncFlags).registerRollback(fs) },
			args:  pathArgs, run: runRollback},
		{name: "agent", summary: "serve a mirror on stdin/stdout (started by gosync itself, or as an authorized_keys forced command)",
			usage: []string{"agent [--restrict [--allow-run] [--allow-owner]] [--no-owner] ROOT"},
			about: `Serves the mirror ROOT on stdin and stdout. gosync starts it itself over SSH;
with --restrict it is the command of an authorized_keys line (see README).`,
			flags: registerAgent,
			args:  pathArgs, run: runAgent},
		{name: "version", summary: "print the version, the protocol and the Go version",
			usage: []string{"version"},
			run:   runVersion},
		{name: "completion", summary: "print a shell completion script (bash, zsh or fish)",
			usage: []string{"completion bash|zsh|fish"},
			about: `Prints a script that completes gosync's commands, their flags, file names
and the mirror names of gosync.yaml. For example:
  bash: source <(gosync completion bash)   (or save it in ~/.local/share/bash-completion/completions/gosync)
  zsh:  gosync completion zsh > "${fpath[1]}/_gosync"
  fish: gosync completion fish > ~/.config/fish/completions/gosync.fish`,
			flags: func(fs *pflag.FlagSet) { registerCompletion(fs, new(bool)) },
			args:  shellArgs, run: runCompletion},
		{name: "help", summary: "show this help, or a command's",
			usage: []string{"help [COMMAND]"},
			args:  commandArgs, run: runHelp},
	}
}

// lookup returns the table entry of a command.
func lookup(name string) (subcommand, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return subcommand{}, false
}

func mustLookup(name string) subcommand {
	c, ok := lookup(name)
	if !ok {
		panic("no command " + name)
	}
	return c
}

// errHelpShown ends a command whose help was asked for and printed.
var errHelpShown = errors.New("help shown")

// newFlagSet is the flag set of a command: GNU syntax (-ni, --flag=value
// and --flag value, flags anywhere, "--" ends them), errors returned and
// printed by exitCode, help printed by printHelp.
func newFlagSet(name string, register func(*pflag.FlagSet)) *pflag.FlagSet {
	fs := pflag.NewFlagSet("gosync "+name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if register != nil {
		register(fs)
	}
	fs.BoolP("help", "h", false, "show this help")
	return fs
}

// parseFlags parses a command's arguments with the flags register adds
// and returns the flag set and the positional arguments. With -h or
// --help it prints the command's help to stdout and returns errHelpShown.
func parseFlags(name string, args []string, stdout io.Writer, register func(*pflag.FlagSet)) (*pflag.FlagSet, []string, error) {
	fs := newFlagSet(name, register)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			printHelp(stdout, mustLookup(name), fs)
			return nil, nil, errHelpShown
		}
		return nil, nil, flagError(fs, args, err)
	}
	if h, _ := fs.GetBool("help"); h {
		printHelp(stdout, mustLookup(name), fs)
		return nil, nil, errHelpShown
	}
	return fs, fs.Args(), nil
}

// flagError turns pflag's error into one line a user can act on.
func flagError(fs *pflag.FlagSet, args []string, err error) error {
	// The standard flag package took -delete for --delete: say so
	// rather than report the letters it splits into.
	for _, a := range args {
		if a == "--" {
			break
		}
		if name, ok := strings.CutPrefix(a, "-"); ok && len(name) > 1 && !strings.HasPrefix(name, "-") {
			name, _, _ = strings.Cut(name, "=")
			if fs.Lookup(name) != nil {
				return usagef("%s: long flags take two dashes: -%s", a, a)
			}
		}
	}
	var ive *pflag.InvalidValueError
	if errors.As(err, &ive) {
		want := map[string]string{"int": "a whole number", "duration": "a duration such as 500ms, 2s or 5m", "bool": "true or false"}[ive.GetFlag().Value.Type()]
		if want == "" {
			want = errors.Unwrap(err).Error()
		}
		return usagef("--%s %s: want %s", ive.GetFlag().Name, ive.GetValue(), want)
	}
	return usagef("%v", err)
}

// printHelp prints a command's help: its usage lines, what it does and
// its flags with their short forms.
func printHelp(w io.Writer, c subcommand, fs *pflag.FlagSet) {
	for i, u := range c.usage {
		prefix := "Usage: "
		if i > 0 {
			prefix = "       "
		}
		fmt.Fprintf(w, "%sgosync %s\n", prefix, u)
	}
	if c.about != "" {
		fmt.Fprintf(w, "\n%s\n", c.about)
	} else {
		fmt.Fprintf(w, "\n%s.\n", strings.ToUpper(c.summary[:1])+c.summary[1:])
	}
	if fs != nil && fs.HasAvailableFlags() {
		fmt.Fprintf(w, "\nFlags:\n%s", flagUsages(fs, 100))
	}
}

// flagUsages lists the flags as GNU tools do: "-n, --dry-run", a value's
// name after the long one, the default where it is not the zero value,
// the help wrapped to width columns. (pflag's FlagUsages writes
// "[=true|false]" after every switch.)
func flagUsages(fs *pflag.FlagSet, width int) string {
	type row struct{ left, help string }
	var rows []row
	col := 0
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		left := "      --" + f.Name
		if f.Shorthand != "" {
			left = "  -" + f.Shorthand + ", --" + f.Name
		}
		arg, help := pflag.UnquoteUsage(f)
		if f.Value.Type() != "bool" {
			left += " " + strings.ToUpper(arg)
		}
		switch f.DefValue {
		case "", "0", "0s", "false", "[]":
		default:
			help += " (default " + f.DefValue + ")"
		}
		rows = append(rows, row{left, help})
		col = max(col, len(left))
	})
	col = min(col, 32) + 3
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r.left)
		if len(r.left) >= col {
			b.WriteString("\n" + strings.Repeat(" ", col))
		} else {
			b.WriteString(strings.Repeat(" ", col-len(r.left)))
		}
		line := 0 // help characters on this output line
		for _, word := range strings.Fields(r.help) {
			switch {
			case line == 0:
			case col+line+1+len(word) > width:
				b.WriteString("\n" + strings.Repeat(" ", col))
				line = 0
			default:
				b.WriteString(" ")
				line++
			}
			b.WriteString(word)
			line += len(word)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// printUsage prints the general help: every command with its summary.
func printUsage(w io.Writer) {
	fmt.Fprint(w, "gosync keeps mirrors of a directory up to date.\n\nUsage:\n  gosync COMMAND [flags] [ARGS]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
DEST is a local path, [user@]host:path or ssh://[user@]host[:port]/path.
SRC's contents go into DEST, with or without a trailing slash.
Run 'gosync help COMMAND' or 'gosync COMMAND --help' for its usage and flags.
`)
}

// runHelp is gosync help [COMMAND].
func runHelp(_ context.Context, args []string, _ io.Reader, stdout, _ io.Writer) error {
	_, pos, err := parseFlags("help", args, stdout, nil)
	switch {
	case err != nil:
		return err
	case len(pos) == 0:
		printUsage(stdout)
		return nil
	case len(pos) > 1:
		return usagef("help takes one command name, not %q", strings.Join(pos, " "))
	}
	c, ok := lookup(pos[0])
	if !ok {
		return usagef("no help for %q: there is no such command (want %s)", pos[0], commandNames())
	}
	printHelp(stdout, c, newFlagSet(c.name, c.flags))
	return nil
}

// commandNames lists the commands for an error message.
func commandNames() string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// runNoFlags parses the arguments of a command that takes no flags (but
// -h) and no arguments.
func runNoFlags(name string, args []string, stdout io.Writer) error {
	_, pos, err := parseFlags(name, args, stdout, nil)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("%s takes no arguments, not %q", name, pos[0])
	}
	return nil
}
