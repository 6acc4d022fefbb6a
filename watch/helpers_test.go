package watch

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// patience bounds every wait for something the watcher must do; it is
// generous so that the tests pass on a loaded machine.
const patience = 10 * time.Second

// harness runs a Watcher on a temporary tree and reads its batches.
type harness struct {
	t       *testing.T
	root    string
	w       *Watcher
	out     chan Batch
	logs    *logBuffer
	barrier int
}

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start builds a tree with setup, watches it with opt and h, and runs the
// watcher until the test ends.
func start(t *testing.T, opt Options, h hooks, setup func(root string)) *harness {
	t.Helper()
	root := t.TempDir()
	if setup != nil {
		setup(root)
	}
	logs := &logBuffer{}
	opt.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opt.PollInterval == 0 {
		opt.PollInterval = 20 * time.Millisecond
	}
	w, err := newWatcher(root, opt, h)
	if err != nil {
		t.Fatal(err)
	}
	hs := &harness{t: t, root: root, w: w, out: make(chan Batch), logs: logs}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, hs.out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(patience):
			t.Errorf("Run did not return after its context ended")
		}
		if t.Failed() {
			t.Logf("watcher log:\n%s", logs.String())
		}
	})
	return hs
}

func (h *harness) path(rel string) string {
	return filepath.Join(h.root, filepath.FromSlash(rel))
}

// checkBatch checks what every batch must be: sorted, deduplicated, nothing
// listed below a subtree.
func checkBatch(t *testing.T, b Batch) {
	t.Helper()
	if len(b.Changes) == 0 {
		t.Errorf("empty batch")
	}
	if b.First.IsZero() {
		t.Errorf("batch without First: %v", b.Changes)
	}
	subtrees := make(map[string]bool)
	for i, c := range b.Changes {
		if i > 0 && b.Changes[i-1].Path >= c.Path {
			t.Errorf("batch not sorted or has duplicates at %q", c.Path)
		}
		if c.Subtree {
			subtrees[c.Path] = true
		}
	}
	for _, c := range b.Changes {
		if c.Path != "" && subtrees[""] {
			t.Errorf("%q listed beside the root subtree", c.Path)
		}
		for i := range len(c.Path) {
			if c.Path[i] == '/' && subtrees[c.Path[:i]] {
				t.Errorf("%q listed below subtree %q", c.Path, c.Path[:i])
			}
		}
	}
}

// covers reports whether c reports path: exactly, or (unless exact) by a
// subtree above it.
func covers(c Change, path string, exact bool) bool {
	if c.Path == path {
		return true
	}
	return !exact && c.Subtree && (c.Path == "" || strings.HasPrefix(path, c.Path+"/"))
}

// waitFor reads batches until each path has been reported (exactly, or
// also by a subtree above it) and returns the batches read.
func (h *harness) waitFor(exact bool, paths ...string) []Batch {
	h.t.Helper()
	missing := make(map[string]bool, len(paths))
	for _, p := range paths {
		missing[p] = true
	}
	var got []Batch
	timeout := time.NewTimer(patience)
	defer timeout.Stop()
	for len(missing) > 0 {
		select {
		case b := <-h.out:
			checkBatch(h.t, b)
			got = append(got, b)
			for _, c := range b.Changes {
				if c.Subtree && c.Path == "" && !exact {
					clear(missing)
				}
				delete(missing, c.Path)
				if c.Subtree && !exact {
					for p := range missing {
						if covers(c, p, false) {
							delete(missing, p)
						}
					}
				}
			}
		case <-timeout.C:
			h.t.Fatalf("not reported within %v: %q; batches read: %v", patience, slices.Sorted(maps.Keys(missing)), got)
		}
	}
	return got
}

// sync writes a new file and waits until it is reported. Every event that
// happened before it has then been reported: the kernel queues events in
// order. It returns the batches read.
func (h *harness) sync() []Batch {
	h.t.Helper()
	h.barrier++
	name := fmt.Sprintf("zz-barrier-%d", h.barrier)
	write(h.t, h.path(name), "")
	return h.waitFor(true, name)
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, patience)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func paths(batches []Batch) []string {
	var ps []string
	for _, b := range batches {
		for _, c := range b.Changes {
			ps = append(ps, c.Path)
		}
	}
	return ps
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
}

// fill creates dirs directories of files files each under dir.
func fill(t *testing.T, dir string, dirs, files int) {
	t.Helper()
	for d := range dirs {
		sub := filepath.Join(dir, fmt.Sprintf("d%03d", d))
		mkdir(t, sub)
		for f := range files {
			write(t, filepath.Join(sub, fmt.Sprintf("f%04d", f)), "x")
		}
	}
}
