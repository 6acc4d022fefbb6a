package engine_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/treetest"
	"github.com/gosync/gosync/engine/wire"
	"github.com/gosync/gosync/ignore"
	"github.com/gosync/gosync/queue"
)

// A mirror whose disk fills up reports ENOSPC for the file that did not
// fit, and the sync stops sending file data to it: the other files fail
// as not sent instead of crossing the link for nothing.
func TestFullDiskStopsSending(t *testing.T) {
	dst := filepath.Join(treetest.SmallDisk(t, "1m"), "www")
	src := t.TempDir()
	files := map[string]string{}
	chunk := strings.Repeat("x", 256<<10)
	for i := range 40 { // 10 MiB for a 1 MiB disk
		files[fmt.Sprintf("f%03d.bin", i)] = chunk
	}
	treetest.Write(t, src, files)
	s, err := engine.ScanSource(context.Background(), src, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := engine.DialLocal(context.Background(), dst, dst, engine.ClientOptions{Create: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r := engine.Sync(context.Background(), s, m, engine.Options{MaxDelete: -1, WholeFile: true})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	full, others := engine.SplitNoSpace(r.Failed)
	if len(others) != 0 || len(full) < 30 || full[0].Code != wire.CodeNoSpace || full[0].Op != "write" {
		t.Fatalf("failures: %d for space (first %+v), others %v", len(full), full[0], others)
	}
	if !strings.Contains(full[0].Error(), ": write: ") {
		t.Errorf("error does not name its operation: %s", full[0].Error())
	}
	t.Logf("sent %d bytes, %d paths not written", r.Stats.Sent, len(full))
	if sent := r.Stats.Sent; sent > 5<<20 {
		t.Errorf("sent %d bytes to a full 1 MiB mirror: it should stop sending", sent)
	}
}

// In watch mode a full disk is one line per batch too, and every path is
// retried.
func TestLiveFullDiskOneLine(t *testing.T) {
	dst := filepath.Join(treetest.SmallDisk(t, "1m"), "www")
	rec := &logRecorder{}
	l := &engine.Live{Name: dst, Log: slog.New(rec), Queue: queue.New(100), Ignore: new(atomic.Pointer[ignore.Matcher])}
	l.SourceDir = t.TempDir()
	files := map[string]string{}
	for i := range 40 {
		files[fmt.Sprintf("f%03d.bin", i)] = strings.Repeat("x", 256<<10)
	}
	treetest.Write(t, l.SourceDir, files)
	l.Dial = func(ctx context.Context) (engine.Mirror, error) {
		return engine.DialLocal(ctx, dst, dst, engine.ClientOptions{Create: true}, nil)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitFor(t, "the full-disk line", func() bool {
		return len(rec.attrs("mirror out of space (disk full or quota); not mirrored, will retry", "paths")) > 0
	})
	if got := rec.attrs("mirror out of space (disk full or quota); not mirrored, will retry", "paths"); got[0].Int64() < 30 {
		t.Errorf("paths = %v, want the count of files not written", got[0])
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, r := range rec.recs {
		if r.Message == "not mirrored; will retry" && r.Level >= slog.LevelInfo {
			t.Errorf("a per-path line for a full disk at level %s", r.Level)
			break
		}
	}
}
