// Package cli is the gosync command line: flags, wiring of the engine and
// its mirrors, human and machine output, exit codes. Nothing in it is
// needed to mirror a tree; everything in it is about talking to the user.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/gosync/gosync/cmd/gosync/project"
	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/agent"
	"github.com/gosync/gosync/engine/wire"
	"github.com/lmittmann/tint"
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

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

const usageText = `gosync keeps mirrors of a directory up to date.

Usage:
  gosync sync [flags] SRC DEST...    mirror the contents of SRC into each DEST once
  gosync watch [flags] SRC DEST...   mirror, then keep every DEST up to date until interrupted
  gosync sync|watch [flags] [NAME...]
                                     the same for the mirrors of gosync.yaml (here or in a parent
                                     directory, or --config FILE): all, or those NAMEs
  gosync init                        write a commented gosync.yaml and a .gosyncignore here
  gosync rollback --backup-dir DIR [-i] [-n] DEST...
                                     put back what the last run (or watch batch) replaced, deleted or created
  gosync status [--json] [-w]        show the running watches and their mirrors
  gosync agent ROOT                  serve a mirror on stdin/stdout (started by gosync itself)
  gosync agent --restrict [--allow-run] [--allow-owner] ROOT
                                     the same as an authorized_keys forced command (see README)
  gosync version

DEST is a local path, [user@]host:path or ssh://[user@]host[:port]/path.
SRC's contents go into DEST, with or without a trailing slash.
Run 'gosync sync -h' for the flags.
`

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
		fmt.Fprint(stderr, usageText)
		return ExitUsage
	}
	var err error
	switch args[0] {
	case "sync":
		err = runSync(ctx, args[1:], stdout, stderr)
	case "watch":
		err = runWatch(ctx, args[1:], stdout, stderr)
	case "status":
		err = runStatus(ctx, args[1:], stdout, stderr)
	case "init":
		err = runInit(args[1:], stdout, stderr)
	case "rollback":
		err = runRollback(ctx, args[1:], stdout, stderr)
	case "agent":
		err = runAgent(ctx, args[1:], stdin, stdout, stderr)
	case "version", "--version":
		// "protocol N" is how a client finds out whether a gosync in the
		// remote PATH can serve as its agent.
		fmt.Fprintf(stdout, "gosync %s protocol %d\n", BuildID(), wire.Version)
		return ExitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usageText)
		return ExitOK
	default:
		err = usagef("unknown command %q (want sync, watch, status, init, rollback or agent)", args[0])
	}
	return exitCode(err, stderr)
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
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &pe):
		fmt.Fprintf(stderr, "gosync: %s\n", engine.Printable(pe.Error())) // one line: file:line: what
		return ExitUsage
	case errors.As(err, &xe):
		return xe.code
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "gosync: %s\nRun 'gosync help' for usage.\n", ue.msg)
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

// BuildID names this binary's build (wire.BuildID): client and agent
// report it in the handshake.
func BuildID() string { return wire.BuildID() }

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

// parseInterspersed lets flags come before, between and after the
// positional arguments, as rsync users type them; "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// flag stops at "--" (consumed) or at the first non-flag.
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func runAgent(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	root, restrict, err := agent.ParseArgs(args, os.Getenv)
	if err != nil {
		return usagef("%s (the agent is started by gosync, or by sshd as the command of an authorized_keys line)", err)
	}
	return serveAgent(ctx, root, restrict, stdin, stdout, stderr)
}
