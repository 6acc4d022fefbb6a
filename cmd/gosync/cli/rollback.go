package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/endpoint"
)

// runRollback puts the newest backup of each DEST back (see
// engine.Client.Rollback). It takes the mirror's session lock, so a
// watch still running on the mirror stops instead of sending its
// source's version again.
func runRollback(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var f syncFlags
	_, pos, err := parseFlags("rollback", args, stdout, f.registerRollback)
	if err != nil {
		return err
	}
	f.compressLevel = -1
	f.noCreate = true
	if len(pos) == 0 {
		return usagef("rollback needs at least one DEST")
	}
	if f.backupDir == "" {
		return usagef("rollback needs --backup-dir DIR, as given to sync or watch")
	}
	if f.backupDir, err = checkBackupDir(f.backupDir); err != nil {
		return err
	}
	level := slog.LevelInfo
	if f.verbose {
		level = slog.LevelDebug
	}
	log, err := newLogger(stderr, f.logFormat, level)
	if err != nil {
		return err
	}
	var dests []endpoint.Endpoint
	for _, d := range pos {
		e, err := endpoint.Parse(d)
		if err != nil {
			return usagef("%v", err)
		}
		dests = append(dests, e)
	}
	if err := checkRemoteSudo(f.ssh, dests); err != nil {
		return err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	failed := false
	for _, d := range dests {
		wg.Go(func() {
			lines, err := rollbackOne(ctx, d, f, log, len(dests) > 1)
			mu.Lock()
			defer mu.Unlock()
			for _, l := range lines {
				fmt.Fprintln(stdout, l)
			}
			if err != nil {
				failed = true
				if ctx.Err() == nil {
					fmt.Fprintf(stderr, "gosync: %s\n", engine.Printable(err.Error()))
				}
			}
		})
	}
	wg.Wait()
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case failed:
		return errReported
	}
	return nil
}

// rollbackOne rolls one mirror back and returns its output lines.
func rollbackOne(ctx context.Context, d endpoint.Endpoint, f syncFlags, log *slog.Logger, multi bool) ([]string, error) {
	m, err := dialMirror(ctx, d, f, log)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	stop := context.AfterFunc(ctx, func() { m.Close() })
	defer stop()
	if m.Missing() {
		return nil, fmt.Errorf("%s: the mirror directory does not exist; nothing to roll back", d.Raw)
	}
	res, err := m.Rollback(ctx, f.backupDir, f.dryRun)
	if err != nil {
		return nil, fmt.Errorf("%s: rollback: %w", d.Raw, err)
	}
	if res.Already {
		return []string{fmt.Sprintf("nothing to roll back on %s: the newest backup in %s (%s) was rolled back already", d.Raw, f.backupDir, res.Stamp)}, nil
	}
	var lines []string
	restored, removed := 0, 0
	for _, it := range res.Items {
		what := "restored"
		if it.Removed {
			what = "removed"
			removed++
		} else {
			restored++
		}
		if f.itemize {
			line := fmt.Sprintf("%-8s %-7s %s", what, it.Kind, quotePath(it.Path))
			if multi {
				line = d.Raw + ": " + line
			}
			lines = append(lines, line)
		}
	}
	verb := "rolled back"
	if f.dryRun {
		verb = "dry run: would roll back"
	}
	lines = append(lines, fmt.Sprintf("%s %s to backup %s: %d restored, %d removed", verb, d.Raw, res.Stamp, restored, removed))
	if res.Err != "" {
		if res.Stamp == "" {
			return lines[:len(lines)-1], fmt.Errorf("%s: %s", d.Raw, res.Err)
		}
		return lines, fmt.Errorf("%s: rollback of backup %s incomplete (run it again once fixed): %s", d.Raw, res.Stamp, res.Err)
	}
	return lines, nil
}
