// Command gosync-agent is the remote end of gosync alone: the slim
// executable a release build embeds for every server platform and uploads
// when a host has no gosync. It answers the two commands the client
// sends to an uploaded agent, `version` and `agent ROOT`, and leaves out
// everything only a client needs (SSH, the watcher, progress bars), which
// makes it less than half the size of cmd/gosync (see README.md,
// "Release build").
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/gosync/gosync/engine/agent"
	"github.com/gosync/gosync/engine/wire"
)

func main() {
	if len(os.Args) == 2 && (os.Args[1] == "version" || os.Args[1] == "--version") {
		// Same form as `gosync version`: the client matches "protocol N".
		fmt.Printf("gosync-agent %s protocol %d\n", wire.BuildID(), wire.Version)
		return
	}
	if len(os.Args) < 2 || os.Args[1] != "agent" {
		fmt.Fprintln(os.Stderr, "usage: gosync-agent agent [--restrict [--allow-run] [--allow-owner]] [--no-owner] ROOT (the agent is started by gosync, or by sshd as a forced command)")
		os.Exit(2)
	}
	root, restrict, err := agent.ParseArgs(os.Args[2:], os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gosync-agent:", err)
		os.Exit(2)
	}
	// The SSH session ending closes stdin, which ends Serve; a hangup or
	// terminate from sshd cancels it too, so temporaries are removed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := agent.Serve(ctx, os.Stdin, os.Stdout, agent.Options{Root: root, BuildID: wire.BuildID(), Logger: log, Restriction: restrict, WalkHelpers: runtime.GOMAXPROCS(0) - 1}); err != nil {
		fmt.Fprintln(os.Stderr, "gosync agent:", strings.TrimSpace(err.Error()))
		os.Exit(1)
	}
}
