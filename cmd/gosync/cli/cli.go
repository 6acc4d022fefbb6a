// Package cli is the gosync command line: flags, wiring of the engine and
// its mirrors, human and machine output, exit codes. Nothing in it is
// needed to mirror a tree; everything in it is about talking to the user.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/gosync/gosync/cmd/gosync/project"
	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/agent"
	"github.com/lmittmann/tint"
	"github.com/spf13/pflag"
)

// Exit codes, documented in README.md.
const (
	ExitOK          = 0
	ExitFatal       = 1   // nothing or not everything could be done: a mirror failed, a refusal
	ExitUsage       = 2   // bad flags or arguments
	ExitPartial     = 23  // every mirror synced, but some paths could not be (rsync's code)
	ExitVanished    = 24  // every mirror synced, but source files vanished before they could be sent (rsync's code)
	ExitInterrupted = 130 // sync interrupted, or a second SIGINT/SIGTERM: 128 + SIGINT, as shells report it
)

// usageError is a mistake in the command line; cmd, when known, names
// the command whose help the hint points to.
type usageError struct{ msg, cmd string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// inCommand makes the hint of a usage error of command name point to its
// help.
func inCommand(name string, err error) error {
	var ue *usageError
	if errors.As(err, &ue) && ue.cmd == "" && name != "help" {
		ue.cmd = name
	}
	return err
}

// Main runs the command line and returns the exit code. The first SIGINT
// or SIGTERM ends it in order (temporaries removed, sessions closed); a
// second one exits at once with ExitInterrupted.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := notifyInterrupt(context.Background(), stderr, os.Exit, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return MainContext(ctx, args, stdin, stdout, stderr)
}

// notifyInterrupt returns a context that the first of sigs cancels; the
// second calls exit(ExitInterrupted), for a user who will not wait for a
// mirror that is slow to let go. stop ends the watch on signals.
func notifyInterrupt(parent context.Context, stderr io.Writer, exit func(int), sigs ...os.Signal) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, sigs...)
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			select {
			case <-quit:
				return
			case <-ch:
			}
			if n > 0 {
				fmt.Fprintln(stderr, "gosync: interrupted again, exiting now")
				exit(ExitInterrupted)
				return
			}
			cancel()
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(quit)
		<-done
		cancel()
	}
}

// MainContext is Main ending when ctx does (tests cancel it instead of
// sending signals).
func MainContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return ExitUsage
	}
	name := args[0]
	switch name {
	case "-h", "--help":
		name = "help"
	case "--version":
		name = "version"
	}
	c, ok := lookup(name)
	if !ok {
		fmt.Fprintf(stderr, "gosync: unknown command %q (want %s)\nRun 'gosync help' for usage.\n", engine.Printable(name), commandNames())
		return ExitUsage
	}
	return exitCode(inCommand(c.name, c.run(ctx, args[1:], stdin, stdout, stderr)), stderr)
}

// errPartial reports that some paths were not mirrored; they have been
// reported already.
var errPartial = errors.New("some paths were not mirrored")

// errVanished reports that source files were deleted between the
// listing and their sending; they have been reported already.
var errVanished = errors.New("some files vanished before they could be transferred")

// errReported is a failure whose message was already printed.
var errReported = errors.New("failed")

func exitCode(err error, stderr io.Writer) int {
	var ue *usageError
	var pe *project.Error
	var xe exitError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, errHelpShown):
		return ExitOK
	case errors.As(err, &pe):
		fmt.Fprintf(stderr, "gosync: %s\n", engine.Printable(pe.Error())) // one line: file:line: what
		return ExitUsage
	case errors.As(err, &xe):
		return xe.code
	case errors.As(err, &ue):
		hint := "gosync help"
		if ue.cmd != "" {
			hint = "gosync " + ue.cmd + " --help"
		}
		fmt.Fprintf(stderr, "gosync: %s\nRun '%s' for usage.\n", engine.Printable(ue.msg), hint)
		return ExitUsage
	case errors.Is(err, errPartial):
		return ExitPartial
	case errors.Is(err, errVanished):
		return ExitVanished
	case errors.Is(err, errReported):
		return ExitFatal
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "gosync: interrupted")
		return ExitInterrupted
	default:
		fmt.Fprintf(stderr, "gosync: %s\n", engine.Printable(err.Error()))
		return ExitFatal
	}
}

// newLogger picks the handler once, here: tint on a terminal, plain tint
// without colour elsewhere, priority-prefixed lines without times into
// systemd's journal, JSON when asked.
func newLogger(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	switch format {
	case "json":
		return slog.New(escaping{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})}), nil
	case "text", "auto", "":
		if format != "text" && isJournal(w) {
			return slog.New(escaping{newJournalHandler(w, func(w io.Writer) slog.Handler {
				return tint.NewHandler(w, &tint.Options{Level: level, NoColor: true, ReplaceAttr: noTime})
			})}), nil
		}
		color := false
		if format != "text" {
			color = isTerminal(w)
		}
		return slog.New(escaping{tint.NewHandler(w, &tint.Options{Level: level, TimeFormat: "15:04:05.000", NoColor: !color})}), nil
	}
	return nil, usagef("--log-format must be auto, text or json, not %q", format)
}

// registerAgent lists the agent's flags for help and completion; they
// are parsed by agent.ParseArgs, which an authorized_keys line reaches
// without this package.
func registerAgent(fs *pflag.FlagSet) {
	fs.Bool("restrict", false, "serve ROOT only, run no commands, set no owners, strip setuid/setgid/sticky bits")
	fs.Bool("allow-run", false, "with --restrict: run --on-sync commands")
	fs.Bool("allow-owner", false, "with --restrict, as root: set the owners the client sends")
	fs.Bool("no-owner", false, "never change owners")
}

func runAgent(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		printHelp(stdout, mustLookup("agent"), newFlagSet("agent", registerAgent))
		return errHelpShown
	}
	root, restrict, err := agent.ParseArgs(args, os.Getenv)
	if err != nil {
		return usagef("%s (the agent is started by gosync, or by sshd as the command of an authorized_keys line)", err)
	}
	return serveAgent(ctx, root, restrict, stdin, stdout, stderr)
}
