package cli

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/wire"
	"github.com/gosync/gosync/engine/wire/wiretest"
)

// hostile is what a crafted mirror puts in every string it sends: a
// terminal title (OSC ... BEL), a screen clear, a C1 CSI and a carriage
// return that would overwrite the line.
const hostile = "\x1b]0;pwned\x07\x1b[2J\u009b31m\rfake"

// noTerminalControl fails the test if out holds a byte a terminal would
// act on.
func noTerminalControl(t *testing.T, what, out string) {
	t.Helper()
	for _, bad := range []string{"\x1b", "\x07", "\u009b", "\r"} {
		if strings.Contains(out, bad) {
			t.Errorf("%s holds %q:\n%s", what, bad, out)
		}
	}
	if !strings.Contains(out, `\x1b`) {
		t.Errorf("%s does not show the escaped string:\n%s", what, out)
	}
}

// Strings from a crafted mirror (a path it lists, an error and its path,
// a hook's output) reach the log and stderr escaped, in text and JSON.
func TestPeerStringsEscapedInOutput(t *testing.T) {
	p := wiretest.Start(t, func(p *wiretest.Peer, conn *wire.Conn) error {
		m, err := wiretest.Next(conn, wire.TScan)
		if err != nil {
			return err
		}
		id := m.(*wire.Scan).ID
		if err := wiretest.Send(conn,
			&wire.Entries{ID: id, Entries: []fstree.Entry{{Path: "x" + hostile, Kind: fstree.File, Size: 1, Perm: 0o644}}},
			&wire.Error{ID: id, Path: "y" + hostile, Code: wire.CodeOther, Msg: "denied " + hostile},
			&wire.ScanEnd{ID: id}); err != nil {
			return err
		}
		for {
			m, err := wiretest.Next(conn, wire.TBarrier, wire.TRun)
			if err != nil {
				return nil
			}
			switch m := m.(type) {
			case *wire.Barrier:
				err = wiretest.Send(conn, &wire.Done{ID: m.ID})
			case *wire.Run:
				err = wiretest.Send(conn, &wire.RunDone{ID: m.ID, Code: 1, Output: "hook says " + hostile + "\n"})
			}
			if err != nil {
				return err
			}
		}
	})
	ctx := context.Background()
	c, err := engine.NewClient(ctx, "peer:/srv/www", p.R, p.W, p.Transport, engine.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	src, err := engine.ScanSource(ctx, t.TempDir(), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	r := engine.Sync(ctx, src, c, engine.Options{MaxDelete: -1})
	if r.Err != nil || len(r.Failed) != 1 || len(r.Kept) != 1 {
		t.Fatalf("sync: %v, failed %v, kept %q", r.Err, r.Failed, r.Kept)
	}
	for _, format := range []string{"text", "json"} {
		var logs, stdout, stderr bytes.Buffer
		log, err := newLogger(&logs, format, slog.LevelDebug)
		if err != nil {
			t.Fatal(err)
		}
		report(ctx, log, &stdout, &stderr, []engine.Result{r}, syncFlags{})
		log.Warn("kept", slog.String("paths", engine.PathList(r.Kept, 5, nil)), slog.Any("err", fmt.Errorf("wrapped: %s", r.Kept[0])))
		runOnSync(ctx, log, c, "true", []engine.Item{{Path: "a"}})
		exitCode(fmt.Errorf("mirror said %s", hostile), &stderr)
		noTerminalControl(t, format+" log", logs.String())
		noTerminalControl(t, "stderr", stderr.String())
		if !strings.Contains(logs.String(), "hook says") || !strings.Contains(logs.String(), "not mirrored") {
			t.Errorf("%s log misses the hook output or the failure:\n%s", format, logs.String())
		}
	}
}

// Files that vanished from the source are one warning per mirror and exit
// code 24, as rsync's "some files vanished before they could be
// transferred"; other failures still make it 23.
func TestVanishedFilesExitCode24(t *testing.T) {
	var logs, stdout, stderr bytes.Buffer
	log, _ := newLogger(&logs, "text", slog.LevelInfo)
	vanished := make([]string, 1111)
	for i := range vanished {
		vanished[i] = fmt.Sprintf("tmp/cache-%d", i)
	}
	out := report(context.Background(), log, &stdout, &stderr, []engine.Result{{Mirror: "/srv/www", Vanished: vanished}}, syncFlags{})
	if !out.vanished || out.partial || out.failed {
		t.Fatalf("outcome %+v", out)
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 || !strings.Contains(logs.String(), "WRN 1111 files vanished from the source") {
		t.Errorf("want one warning line, got %d:\n%s", n, logs.String())
	}
	if code := exitCode(errVanished, &stderr); code != 24 {
		t.Errorf("exit code %d, want 24", code)
	}
	out = report(context.Background(), log, &stdout, &stderr, []engine.Result{{Mirror: "/srv/www", Vanished: vanished[:1],
		Failed: []engine.OpError{{Path: "a", Op: "read source", Msg: "permission denied"}}}}, syncFlags{})
	if !out.partial {
		t.Errorf("a real failure beside vanished files must give exit code 23")
	}
	if !strings.Contains(logs.String(), "err=\"read source: permission denied\"") {
		t.Errorf("the failure does not name its operation:\n%s", logs.String())
	}
}
