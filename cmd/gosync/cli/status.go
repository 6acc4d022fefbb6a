package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/gosync/gosync/cmd/gosync/status"
	"github.com/gosync/gosync/engine"
	"github.com/spf13/pflag"
)

// statusFlags are gosync status's flags.
type statusFlags struct {
	json    bool
	refresh bool
}

func (f *statusFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.json, "json", false, "print JSON for scripts: a list of watches; times in RFC 3339, sizes and durations as numbers")
	fs.BoolVarP(&f.refresh, "watch", "w", false, "show it again every second until interrupted (with --json: one JSON list a line)")
}

func runStatus(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var f statusFlags
	_, pos, err := parseFlags("status", args, stdout, f.register)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("status takes no arguments, not %q", pos[0])
	}
	dir, err := status.Dir()
	if err != nil {
		return err
	}
	clear := f.refresh && !f.json && isTerminal(stdout)
	for {
		qs := status.List(ctx, dir)
		if ctx.Err() != nil {
			// Interrupted while asking: what did not answer was cut
			// off, not dead. Ctrl-C is how -w ends.
			if f.refresh {
				return nil
			}
			return ctx.Err()
		}
		if clear {
			fmt.Fprint(stdout, "\x1b[H\x1b[2J")
		}
		if f.json {
			watches := make([]status.Watch, 0, len(qs))
			for _, q := range qs {
				w := q.Watch
				if q.Err != nil {
					w = status.Watch{Socket: q.Socket, Error: q.Err.Error()}
				}
				watches = append(watches, w)
			}
			b, err := json.Marshal(watches)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s\n", b)
		} else {
			status.Render(stdout, qs, time.Now())
		}
		if !f.refresh {
			return nil
		}
		if !clear && !f.json {
			fmt.Fprintln(stdout)
		}
		select {
		case <-ctx.Done():
			return nil // Ctrl-C is how -w ends
		case <-time.After(time.Second):
		}
	}
}

// statusServer serves a watch's state on its status socket and, with
// --metrics, for Prometheus, until ctx ends; wg waits for both. Neither
// is needed to mirror: a status socket that cannot be made is a warning.
func statusServer(ctx context.Context, wg *sync.WaitGroup, src string, lives []*engine.Live, metrics net.Listener, m *status.Metrics, log *slog.Logger) {
	started := time.Now()
	snapshot := func() status.Watch {
		w := status.Watch{Source: src, PID: os.Getpid(), Started: started, UptimeSeconds: time.Since(started).Seconds(), Version: BuildID()}
		for _, l := range lives {
			w.Mirrors = append(w.Mirrors, status.FromEngine(l.Status()))
		}
		return w
	}
	if dir, err := status.Dir(); err != nil {
		log.Warn("no status socket; gosync status will not see this watch", slog.String("err", err.Error()))
	} else if srv, err := status.Listen(dir, snapshot, log); err != nil {
		log.Warn("no status socket; gosync status will not see this watch", slog.String("err", err.Error()))
	} else {
		log.Debug("status socket", slog.String("path", srv.Path()))
		wg.Go(func() { srv.Serve(ctx) })
	}
	if metrics != nil {
		log.Info("serving metrics", slog.String("url", "http://"+metrics.Addr().String()+"/metrics"))
		wg.Go(func() { m.Serve(ctx, metrics, log) })
	}
}

// mirrorStatuses snapshots every mirror, for metrics.
func mirrorStatuses(lives []*engine.Live) func() []engine.MirrorStatus {
	return func() []engine.MirrorStatus {
		out := make([]engine.MirrorStatus, len(lives))
		for i, l := range lives {
			out[i] = l.Status()
		}
		return out
	}
}
