package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/treetest"
	"github.com/gosync/gosync/ignore"
)

func TestNewRejectsMissingOrNonDirectoryRoot(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "file"), "x")
	for _, root := range []string{filepath.Join(dir, "missing"), filepath.Join(dir, "file")} {
		if w, err := New(root, Options{}); err == nil {
			w.Close()
			t.Errorf("New(%s): no error", root)
		}
	}
}

func TestRunTwice(t *testing.T) {
	w, err := New(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Run(ctx, make(chan Batch)); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := w.Run(context.Background(), make(chan Batch)); err == nil {
		t.Fatal("second Run: no error")
	}
}

func TestFileEvents(t *testing.T) {
	h := start(t, Options{}, hooks{}, func(root string) {
		write(t, filepath.Join(root, "a.txt"), "a")
		write(t, filepath.Join(root, "b.txt"), "b")
		write(t, filepath.Join(root, "c.txt"), "c")
	})

	write(t, h.path("a.txt"), "changed")
	h.waitFor(true, "a.txt")

	write(t, h.path("new.txt"), "new")
	h.waitFor(true, "new.txt")

	remove(t, h.path("b.txt"))
	h.waitFor(true, "b.txt")

	if runtime.GOOS == "windows" {
		return // chmod there only flips the read-only attribute; gosync sends no modes from Windows
	}
	if err := os.Chmod(h.path("c.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.waitFor(true, "c.txt")

	if err := os.Chmod(h.root, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, b := range h.waitFor(true, "") {
		for _, c := range b.Changes {
			if c.Path == "" && c.Subtree {
				t.Errorf("chmod of the root reported as a subtree: %v", b.Changes)
			}
		}
	}
}

func TestSymlinks(t *testing.T) {
	treetest.SkipUnderWine(t, "wine 8 reports no change for a created symlink")
	h := start(t, Options{}, hooks{}, func(root string) { mkdir(t, filepath.Join(root, "dir")) })
	before := h.w.Watches()
	if err := os.Symlink("nowhere", h.path("dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(h.path("dir"), h.path("todir")); err != nil {
		t.Fatal(err)
	}
	h.waitFor(true, "dangling", "todir")
	h.sync()
	if got := h.w.Watches(); got != before {
		t.Errorf("a symlink to a directory was followed: %d watches, want %d", got, before)
	}
}

func TestTempFilesOfGosyncDropped(t *testing.T) {
	h := start(t, Options{}, hooks{}, nil)
	tmp := fstree.TempName()
	write(t, h.path(tmp), "x")
	rename(t, h.path(tmp), h.path("final"))
	got := h.waitFor(true, "final")
	got = append(got, h.sync()...)
	for _, p := range paths(got) {
		if strings.HasPrefix(p, fstree.TempPrefix) {
			t.Errorf("temporary file reported: %v", paths(got))
		}
	}
}

// mkdir -p followed at once by writes deep inside: the watch of each new
// directory is added before it is listed, so the file is reported, by
// itself or by a subtree above it, and later writes there by their paths.
func TestMkdirPThenWriteInside(t *testing.T) {
	h := start(t, Options{}, hooks{}, nil)
	for i := range 20 {
		top := fmt.Sprintf("i%02d", i)
		mkdir(t, h.path(top+"/a/b/c"))
		write(t, h.path(top+"/a/b/c/f"), "x")
		h.waitFor(false, top+"/a/b/c/f")
		h.sync()
		write(t, h.path(top+"/a/b/c/g"), "y")
		h.waitFor(true, top+"/a/b/c/g")
	}
	if got, want := h.w.Watches(), 1+20*4; got != want {
		t.Errorf("Watches() = %d, want %d", got, want)
	}
}

func TestRenameDirectoryWithinTree(t *testing.T) {
	h := start(t, Options{}, hooks{}, func(root string) {
		mkdir(t, filepath.Join(root, "old/sub/deep"))
		write(t, filepath.Join(root, "old/sub/f"), "x")
	})
	rename(t, h.path("old"), h.path("new"))
	for _, b := range h.waitFor(true, "old", "new") {
		for _, c := range b.Changes {
			if c.Path == "new" && !c.Subtree {
				t.Errorf("moved directory not reported as a subtree: %v", b.Changes)
			}
		}
	}
	h.sync()

	write(t, h.path("new/sub/f"), "changed")
	write(t, h.path("new/sub/deep/g"), "new")
	got := h.waitFor(true, "new/sub/f", "new/sub/deep/g")
	got = append(got, h.sync()...)
	for _, p := range paths(got) {
		if p == "old" || strings.HasPrefix(p, "old/") {
			t.Errorf("event reported under the old name: %v", paths(got))
		}
	}
	if got := h.w.Watches(); got != 4 {
		t.Errorf("Watches() = %d, want 4", got)
	}
}

func TestMoveDirectoryIn(t *testing.T) {
	outside := t.TempDir()
	mkdir(t, filepath.Join(outside, "m/sub"))
	write(t, filepath.Join(outside, "m/sub/f"), "x")
	h := start(t, Options{}, hooks{}, nil)

	rename(t, filepath.Join(outside, "m"), h.path("m"))
	for _, b := range h.waitFor(true, "m") {
		if i := slices.IndexFunc(b.Changes, func(c Change) bool { return c.Path == "m" }); i >= 0 && !b.Changes[i].Subtree {
			t.Errorf("moved-in directory not reported as a subtree: %v", b.Changes)
		}
	}
	h.sync()
	write(t, h.path("m/sub/g"), "y")
	h.waitFor(true, "m/sub/g")
	if got := h.w.Watches(); got != 3 {
		t.Errorf("Watches() = %d, want 3", got)
	}
}

func TestMoveDirectoryOut(t *testing.T) {
	outside := t.TempDir()
	h := start(t, Options{}, hooks{}, func(root string) {
		mkdir(t, filepath.Join(root, "o/sub/deep"))
		write(t, filepath.Join(root, "o/sub/f"), "x")
	})
	if got := h.w.Watches(); got != 4 {
		t.Fatalf("Watches() = %d, want 4", got)
	}
	rename(t, h.path("o"), filepath.Join(outside, "o"))
	h.waitFor(true, "o")
	h.sync()
	eventually(t, "watches of the moved-out directory dropped", func() bool { return h.w.Watches() == 1 })

	// The moved directories keep their inodes; a watch left on them would
	// report these under the old names.
	write(t, filepath.Join(outside, "o/sub/f"), "changed")
	write(t, filepath.Join(outside, "o/sub/deep/new"), "new")
	for _, p := range paths(h.sync()) {
		if strings.HasPrefix(p, "o") {
			t.Errorf("change outside the tree reported: %q", p)
		}
	}
}

func TestRecursiveDelete(t *testing.T) {
	treetest.SkipUnderWine(t, "wine 8 deletes without POSIX semantics, so a directory with an open watch handle cannot be removed (Windows 10 and later can)")
	h := start(t, Options{}, hooks{}, func(root string) { fill(t, filepath.Join(root, "tree"), 10, 100) })
	if got := h.w.Watches(); got != 12 {
		t.Fatalf("Watches() = %d, want 12", got)
	}
	remove(t, h.path("tree"))
	h.waitFor(true, "tree")
	h.sync()
	eventually(t, "watches of the deleted tree dropped", func() bool { return h.w.Watches() == 1 })
}

func TestEditorSaves(t *testing.T) {
	styles := []struct {
		name string
		save func(t *testing.T, dir string)
		// temps that the default ignore rules drop
		dropped []string
	}{
		{"in place", func(t *testing.T, dir string) {
			f, err := os.OpenFile(filepath.Join(dir, "index.html"), os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("<h1>new</h1>")
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"temp and rename", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, ".index.html.tmp123"), "<h1>new</h1>")
			rename(t, filepath.Join(dir, ".index.html.tmp123"), filepath.Join(dir, "index.html"))
		}, nil},
		{"vim", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "4913"), "")
			remove(t, filepath.Join(dir, "4913"))
			rename(t, filepath.Join(dir, "index.html"), filepath.Join(dir, "index.html~"))
			write(t, filepath.Join(dir, "index.html"), "<h1>new</h1>")
			remove(t, filepath.Join(dir, "index.html~"))
		}, []string{"4913", "index.html~"}},
		{"jetbrains", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "index.html___jb_tmp___"), "<h1>new</h1>")
			rename(t, filepath.Join(dir, "index.html"), filepath.Join(dir, "index.html___jb_old___"))
			rename(t, filepath.Join(dir, "index.html___jb_tmp___"), filepath.Join(dir, "index.html"))
			remove(t, filepath.Join(dir, "index.html___jb_old___"))
		}, []string{"index.html___jb_tmp___", "index.html___jb_old___"}},
	}
	for _, s := range styles {
		t.Run(s.name, func(t *testing.T) {
			opt := Options{Ignore: ignore.New(ignore.Defaults())}
			h := start(t, opt, hooks{}, func(root string) {
				mkdir(t, filepath.Join(root, "site"))
				write(t, filepath.Join(root, "site/index.html"), "<h1>old</h1>")
			})
			s.save(t, h.path("site"))
			got := h.waitFor(true, "site/index.html")
			got = append(got, h.sync()...)
			for _, p := range paths(got) {
				if slices.Contains(s.dropped, strings.TrimPrefix(p, "site/")) {
					t.Errorf("ignored temporary reported: %v", paths(got))
				}
			}
		})
	}
}

// A git checkout writes thousands of files at once: a handful of batches,
// not thousands, and together they report every file.
func TestBurstIsBatched(t *testing.T) {
	const files = 5000
	h := start(t, Options{}, hooks{}, func(root string) {
		for d := range 10 {
			mkdir(t, filepath.Join(root, fmt.Sprintf("d%d", d)))
		}
	})
	var want []string
	for i := range files {
		p := fmt.Sprintf("d%d/f%04d", i%10, i)
		want = append(want, p)
		write(t, h.path(p), "x")
	}
	got := h.waitFor(false, want...)
	t.Logf("%d files in %d batches", files, len(got))
	if len(got) > 10 {
		t.Errorf("%d files written in a burst came in %d batches", files, len(got))
	}
}

func TestTooManyPathsCollapseToRoot(t *testing.T) {
	h := start(t, Options{MaxPaths: 100, Debounce: 200 * time.Millisecond, MaxDelay: 5 * time.Second}, hooks{}, nil)
	for i := range 300 {
		write(t, h.path(fmt.Sprintf("f%03d", i)), "x")
	}
	for _, b := range h.waitFor(true, "") {
		if len(b.Changes) > 100 {
			t.Errorf("batch of %d changes, MaxPaths is 100", len(b.Changes))
		}
	}
}

func TestSlowReceiverGetsMergedBatch(t *testing.T) {
	h := start(t, Options{Debounce: time.Millisecond}, hooks{}, nil)
	// Nobody reads while these happen; the watcher keeps merging them.
	var want []string
	for i := range 50 {
		p := fmt.Sprintf("f%02d", i)
		want = append(want, p)
		write(t, h.path(p), "x")
	}
	got := h.waitFor(true, want...)
	if len(got) > 10 {
		t.Errorf("%d batches for 50 files while the receiver was away", len(got))
	}
}

func TestIgnoredDirectoryNotWatched(t *testing.T) {
	rules, err := ignore.Parse(".gosyncignore", strings.NewReader("node_modules/\n*.log\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, Options{Ignore: ignore.New(rules)}, hooks{}, func(root string) {
		mkdir(t, filepath.Join(root, "node_modules/pkg/lib"))
		mkdir(t, filepath.Join(root, "src"))
	})
	if got := h.w.Watches(); got != 2 {
		t.Fatalf("Watches() = %d, want 2 (root and src)", got)
	}
	write(t, h.path("node_modules/pkg/x.js"), "x")
	mkdir(t, h.path("src/node_modules/y"))
	write(t, h.path("src/node_modules/y/z.js"), "x")
	write(t, h.path("src/debug.log"), "x")
	if err := os.Chmod(h.path("node_modules"), 0o700); err != nil {
		t.Fatal(err)
	}
	remove(t, h.path("node_modules"))
	write(t, h.path("src/app.js"), "x")
	got := h.waitFor(true, "src/app.js")
	got = append(got, h.sync()...)
	for _, p := range paths(got) {
		if strings.Contains(p, "node_modules") || strings.HasSuffix(p, ".log") {
			t.Errorf("ignored path reported: %q", p)
		}
	}
	if got := h.w.Watches(); got != 2 {
		t.Errorf("Watches() = %d, want 2", got)
	}
}

func TestSetIgnore(t *testing.T) {
	rules, err := ignore.Parse(".gosyncignore", strings.NewReader("node_modules/\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, Options{Ignore: ignore.New(rules)}, hooks{}, func(root string) {
		mkdir(t, filepath.Join(root, "node_modules/pkg/lib"))
		mkdir(t, filepath.Join(root, "src"))
	})

	h.w.SetIgnore(nil)
	for _, b := range h.waitFor(true, "") {
		if i := slices.IndexFunc(b.Changes, func(c Change) bool { return c.Path == "" }); i >= 0 && !b.Changes[i].Subtree {
			t.Errorf("SetIgnore not reported as a root subtree: %v", b.Changes)
		}
	}
	eventually(t, "node_modules watched", func() bool { return h.w.Watches() == 5 })
	write(t, h.path("node_modules/pkg/lib/x.js"), "x")
	h.waitFor(true, "node_modules/pkg/lib/x.js")

	rules, err = ignore.Parse(".gosyncignore", strings.NewReader("/src\n"))
	if err != nil {
		t.Fatal(err)
	}
	h.w.SetIgnore(ignore.New(rules))
	h.waitFor(true, "")
	eventually(t, "src unwatched", func() bool { return h.w.Watches() == 4 })
	write(t, h.path("src/a"), "x")
	for _, p := range paths(h.sync()) {
		if strings.HasPrefix(p, "src") {
			t.Errorf("ignored path reported: %q", p)
		}
	}
}

// At the watch limit the rest of the tree is polled: changes there are still
// reported, and the user is told how to raise the limit, once.
func TestWatchLimitFallsBackToPolling(t *testing.T) {
	var allowed atomic.Int64
	allowed.Store(2)
	limit := hooks{addWatch: func(add func(string) error, path string) error {
		if allowed.Add(-1) < 0 {
			return fmt.Errorf("add watch %s: %w", path, syscall.ENOSPC)
		}
		return add(path)
	}}
	h := start(t, Options{}, limit, func(root string) {
		mkdir(t, filepath.Join(root, "a"))
		mkdir(t, filepath.Join(root, "b/c"))
		mkdir(t, filepath.Join(root, "d"))
		write(t, filepath.Join(root, "b/c/f"), "x")
	})
	if got := h.w.Watches(); got != 2 {
		t.Fatalf("Watches() = %d, want 2", got)
	}

	write(t, h.path("b/c/f"), "changed")
	h.waitFor(true, "b/c/f")
	write(t, h.path("d/new"), "x")
	h.waitFor(true, "d/new")

	// A directory created in a watched one cannot be watched either.
	mkdir(t, h.path("a/new"))
	h.waitFor(false, "a/new")
	write(t, h.path("a/new/f"), "x")
	h.waitFor(true, "a/new/f")

	logs := h.logs.String()
	if n := strings.Count(logs, "watch limit reached"); n != 1 {
		t.Errorf("watch limit warning logged %d times, want once:\n%s", n, logs)
	}
	advice := []string{"max_user_watches = ", "sudo sysctl fs.inotify.max_user_watches=524288", "/etc/sysctl.d/"}
	if runtime.GOOS != "linux" {
		advice = nil // the limit is Linux's; elsewhere it is injected here only to test the fallback
	}
	for _, want := range advice {
		if !strings.Contains(logs, want) {
			t.Errorf("warning does not mention %q:\n%s", want, logs)
		}
	}

	// The limit is raised: polling ends, the subtrees are watched.
	allowed.Store(1 << 20)
	eventually(t, "polled subtrees watched again", func() bool { return h.w.Watches() == 6 })
	h.sync()
	write(t, h.path("b/c/g"), "x")
	h.waitFor(true, "b/c/g")
}

// kqueue (macOS, BSD) runs out of descriptors, not watches: EMFILE from
// adding a watch falls back to polling as the inotify limit does, and the
// warning, once, says how to raise the open-files limit.
func TestDescriptorLimitFallsBackToPolling(t *testing.T) {
	var allowed atomic.Int64
	allowed.Store(1)
	limit := hooks{addWatch: func(add func(string) error, path string) error {
		if allowed.Add(-1) < 0 {
			return fmt.Errorf("add watch %s: %w", path, syscall.EMFILE)
		}
		return add(path)
	}}
	h := start(t, Options{}, limit, func(root string) {
		mkdir(t, filepath.Join(root, "a/b"))
		mkdir(t, filepath.Join(root, "c"))
		write(t, filepath.Join(root, "a/b/f"), "x")
	})
	if got := h.w.Watches(); got != 1 {
		t.Fatalf("Watches() = %d, want 1", got)
	}
	write(t, h.path("a/b/f"), "changed")
	h.waitFor(true, "a/b/f")
	write(t, h.path("c/new"), "x")
	h.waitFor(true, "c/new")

	logs := h.logs.String()
	if n := strings.Count(logs, "descriptor limit reached"); n != 1 {
		t.Errorf("descriptor limit warning logged %d times, want once:\n%s", n, logs)
	}
	for _, want := range []string{"open files limit = ", "ulimit -n", "launchctl limit maxfiles"} {
		if !strings.Contains(logs, want) {
			t.Errorf("warning does not mention %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "inotify") {
		t.Errorf("a descriptor limit reported as an inotify one:\n%s", logs)
	}

	allowed.Store(1 << 20)
	eventually(t, "polled subtrees watched again", func() bool { return h.w.Watches() == 4 })
	h.sync()
	write(t, h.path("a/b/g"), "x")
	h.waitFor(true, "a/b/g")
}

func TestRootRemovedAndRecreated(t *testing.T) {
	treetest.SkipUnderWine(t, "wine 8 deletes without POSIX semantics, so a directory with an open watch handle cannot be removed (Windows 10 and later can)")
	h := start(t, Options{}, hooks{}, func(root string) { fill(t, root, 3, 3) })
	remove(t, h.root)
	h.waitFor(true, "")
	eventually(t, "watches dropped", func() bool { return h.w.Watches() == 0 })

	mkdir(t, h.path("d000"))
	h.waitFor(true, "")
	h.sync()
	write(t, h.path("d000/f"), "x")
	h.waitFor(true, "d000/f")
	if got := h.w.Watches(); got != 2 {
		t.Errorf("Watches() = %d, want 2", got)
	}
}

func TestRootRenamedAwayAndBack(t *testing.T) {
	treetest.SkipUnderWine(t, "wine 8 reports nothing when a watched root is renamed away and back")
	h := start(t, Options{}, hooks{}, func(root string) { mkdir(t, filepath.Join(root, "sub")) })
	away := h.root + ".away"
	rename(t, h.root, away)
	t.Cleanup(func() { os.RemoveAll(away) })
	h.waitFor(true, "")
	eventually(t, "watches dropped", func() bool { return h.w.Watches() == 0 })
	write(t, filepath.Join(away, "sub/ignored-meanwhile"), "x")

	rename(t, away, h.root)
	h.waitFor(true, "")
	eventually(t, "watched again", func() bool { return h.w.Watches() == 2 })
	write(t, h.path("sub/f"), "x")
	h.waitFor(true, "sub/f")
}

func TestOverflowRescansEverything(t *testing.T) {
	errs := make(chan error)
	h := start(t, Options{}, hooks{errs: errs}, func(root string) { mkdir(t, filepath.Join(root, "sub")) })
	errs <- fmt.Errorf("read: %w", fsnotify.ErrEventOverflow)
	for _, b := range h.waitFor(true, "") {
		if !slices.Equal(b.Changes, []Change{{Path: "", Subtree: true}}) {
			t.Errorf("overflow batch = %v, want only the root subtree", b.Changes)
		}
	}
	if !strings.Contains(h.logs.String(), "overflow") {
		t.Errorf("overflow not logged:\n%s", h.logs.String())
	}
	errs <- errors.New("some other watch error")
	h.waitFor(true, "")
	write(t, h.path("sub/f"), "x")
	h.waitFor(true, "sub/f")
	if got := h.w.Watches(); got != 2 {
		t.Errorf("Watches() = %d, want 2", got)
	}
}

func TestPendingCoalesces(t *testing.T) {
	at := time.Unix(100, 0)
	for _, tc := range []struct {
		name string
		max  int
		in   []Change
		want []Change
	}{
		{"dedup and sort", 10,
			[]Change{{Path: "b"}, {Path: "a"}, {Path: "b"}},
			[]Change{{Path: "a"}, {Path: "b"}}},
		{"subtree absorbs below, not siblings", 10,
			[]Change{{Path: "a/b/c"}, {Path: "a-b"}, {Path: "a", Subtree: true}, {Path: "a/x"}, {Path: "ab"}},
			[]Change{{Path: "a", Subtree: true}, {Path: "a-b"}, {Path: "ab"}}},
		{"subtree wins over plain", 10,
			[]Change{{Path: "d"}, {Path: "d", Subtree: true}, {Path: "d"}},
			[]Change{{Path: "d", Subtree: true}}},
		{"root chmod is not a subtree", 10,
			[]Change{{Path: ""}, {Path: "x"}},
			[]Change{{Path: ""}, {Path: "x"}}},
		{"root subtree absorbs all", 10,
			[]Change{{Path: "x"}, {Path: "", Subtree: true}, {Path: "y"}},
			[]Change{{Path: "", Subtree: true}}},
		{"too many paths", 3,
			[]Change{{Path: "a"}, {Path: "b"}, {Path: "c"}, {Path: "d"}},
			[]Change{{Path: "", Subtree: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPending(tc.max)
			for i, c := range tc.in {
				p.add(c, at.Add(time.Duration(i)*time.Millisecond))
			}
			b := p.take()
			if !slices.Equal(b.Changes, tc.want) {
				t.Errorf("got %v, want %v", b.Changes, tc.want)
			}
			if !b.First.Equal(at) {
				t.Errorf("First = %v, want %v", b.First, at)
			}
			if !p.empty() {
				t.Errorf("not empty after take")
			}
		})
	}
}

func TestPendingDue(t *testing.T) {
	p := newPending(10)
	t0 := time.Unix(100, 0)
	p.add(Change{Path: "a"}, t0)
	if got := p.due(20*time.Millisecond, time.Second); !got.Equal(t0.Add(20 * time.Millisecond)) {
		t.Errorf("due = %v after one event", got)
	}
	p.add(Change{Path: "a"}, t0.Add(995*time.Millisecond))
	if got := p.due(20*time.Millisecond, time.Second); !got.Equal(t0.Add(time.Second)) {
		t.Errorf("due = %v, want capped at MaxDelay", got)
	}
	old := Batch{Changes: []Change{{Path: "z"}}, First: t0.Add(-time.Second)}
	p.putBack(old)
	b := p.take()
	if !slices.Equal(b.Changes, []Change{{Path: "a"}, {Path: "z"}}) || !b.First.Equal(old.First) {
		t.Errorf("merged batch = %v first %v", b.Changes, b.First)
	}
}
