//go:build !windows

package engine_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/ident"
	"github.com/gosync/gosync/engine/treetest"
	"github.com/gosync/gosync/engine/wire"
	"github.com/gosync/gosync/engine/wire/wiretest"
	"github.com/zeebo/blake3"
)

// dialWriter connects a session that takes the mirror's lock, as every
// non-dry-run sync and watch does.
func dialWriter(t *testing.T, dst string) *engine.Client {
	t.Helper()
	m, err := engine.DialLocal(context.Background(), dst, dst, engine.ClientOptions{Create: true, Lock: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func mkdir(t *testing.T, m engine.Mirror, path string) error {
	t.Helper()
	if err := m.Writer().Mkdir(path, wire.Meta{Perm: 0o755}); err != nil {
		return err
	}
	errs, err := m.Barrier(context.Background())
	if err == nil && len(errs) > 0 {
		t.Fatalf("mkdir %s: %v", path, errs)
	}
	return err
}

// A newer session takes the mirror over; the older one's writes, even a
// file it had started before, are refused after that, and it is told
// why.
func TestTakeoverFencesOlderSession(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "www")
	old := dialWriter(t, dst)
	must(t, mkdir(t, old, "before"))
	content := []byte("stale content from before the takeover")
	w := old.Writer()
	must(t, w.BeginFile("index.html", int64(len(content)), wire.Meta{Perm: 0o644}, 0))
	must(t, w.Data(content))

	newer := dialWriter(t, dst)
	if holder, _ := newer.TookOver(); !strings.Contains(holder, "agent pid") {
		t.Errorf("the newer session was not told it took over a live one: holder %q", holder)
	}
	must(t, w.EndFile(fstree.Hash(blake3.Sum256(content))))
	_, err := old.Barrier(context.Background())
	if !errors.Is(err, engine.ErrTakenOver) || !errors.Is(err, engine.ErrMirrorLost) {
		t.Fatalf("older session after takeover: %v, want ErrTakenOver", err)
	}
	if !strings.Contains(err.Error(), "took over this mirror") {
		t.Errorf("message: %v", err)
	}
	if err := mkdir(t, old, "after"); err == nil {
		t.Fatal("the older session still writes")
	}
	if exists(filepath.Join(dst, "index.html")) || exists(filepath.Join(dst, "after")) {
		t.Fatal("the older session changed the mirror after the takeover")
	}
	if tmp := treetest.Temporaries(t, dst, fstree.TempPrefix); len(tmp) > 0 {
		t.Errorf("temporaries left: %v", tmp)
	}
	must(t, mkdir(t, newer, "mine"))
	entries, _, err := newer.Scan(context.Background(), "", false)
	must(t, err)
	for _, e := range entries {
		if strings.HasPrefix(e.Path, fstree.TempPrefix) {
			t.Errorf("scan listed %s", e.Path)
		}
	}
	if !exists(filepath.Join(dst, fstree.LockName)) {
		t.Error("the lock is gone after a scan")
	}
	newer.Close()
	if exists(filepath.Join(dst, fstree.LockName)) {
		t.Error("the lock stayed after the session ended")
	}
}

// A lock nobody holds (its agent crashed) is taken over without a word.
func TestStaleLockTakenOverSilently(t *testing.T) {
	dst := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dst, fstree.LockName), []byte("gosync session dead, agent pid 1\n"), 0o600))
	m := dialWriter(t, dst)
	if holder, _ := m.TookOver(); holder != "" {
		t.Errorf("a dead session's lock was reported as a live holder: %q", holder)
	}
	must(t, mkdir(t, m, "d"))
}

// The root path renamed away and made again, removed, or a symlink to
// a release switched to another one: the session stops at its next
// change instead of writing into the old directory.
func TestRootReplacedStopsSession(t *testing.T) {
	for _, how := range []string{"replaced", "removed", "switched"} {
		t.Run(how, func(t *testing.T) {
			base := t.TempDir()
			dst := filepath.Join(base, "www")
			old := dst + ".old"
			if how == "switched" {
				must(t, os.Mkdir(filepath.Join(base, "release-1"), 0o755))
				must(t, os.Symlink("release-1", dst))
				old = filepath.Join(base, "release-1")
			}
			m := dialWriter(t, dst)
			must(t, mkdir(t, m, "before"))
			switch how {
			case "switched": // ln -sfn release-2 www
				must(t, os.Mkdir(filepath.Join(base, "release-2"), 0o755))
				must(t, os.Symlink("release-2", dst+".new"))
				must(t, os.Rename(dst+".new", dst))
			case "replaced":
				must(t, os.Rename(dst, old))
				must(t, os.Mkdir(dst, 0o755))
			case "removed":
				must(t, os.Rename(dst, old))
			}
			want := map[string]string{"replaced": "was replaced", "switched": "was replaced", "removed": "was removed"}[how]
			err := mkdir(t, m, "after")
			if !errors.Is(err, engine.ErrMirrorLost) || errors.Is(err, engine.ErrTakenOver) || !strings.Contains(err.Error(), want) {
				t.Fatalf("write after the root was %s: %v", how, err)
			}
			if exists(filepath.Join(old, "after")) || exists(filepath.Join(dst, "after")) {
				t.Fatal("written after the root was " + how)
			}
			// A new connection serves the directory the path names now.
			again := dialWriter(t, dst)
			if ident.Relate(again.Place(), m.Place()) != ident.Apart {
				t.Fatal("the new connection reports the old directory")
			}
			must(t, mkdir(t, again, "after"))
			if !exists(filepath.Join(dst, "after")) {
				t.Fatal("new connection did not write into the new root")
			}
		})
	}
}

// A root replaced while watching is a new mirror: the session forgets
// its picture, so the catch-up keeps what the new directory has (as a
// start would) instead of deleting what the source deleted before.
func TestSessionAttachReplacedRoot(t *testing.T) {
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"a.txt": "a", "gone.txt": "g"})
	dst := filepath.Join(t.TempDir(), "www")
	sess := engine.NewSession(dialWriter(t, dst), engine.Options{Delete: true, MaxDelete: -1})
	sess.KeepExtras = true
	ok(t, sess.Full(context.Background(), scan(t, src), false))
	must(t, os.Remove(filepath.Join(src, "gone.txt")))

	must(t, os.Rename(dst, dst+".old"))
	treetest.Write(t, dst, map[string]string{"gone.txt": "the new release has it", "uploads/u.txt": "u"})
	if !sess.Attach(dialWriter(t, dst)) {
		t.Fatal("Attach did not see the replaced root")
	}
	ok(t, sess.Full(context.Background(), scan(t, src), false))
	for _, p := range []string{"a.txt", "gone.txt", "uploads/u.txt"} {
		if !exists(filepath.Join(dst, p)) {
			t.Errorf("%s missing from the new root", p)
		}
	}
	if sess.Attach(dialWriter(t, dst)) {
		t.Error("a reconnection to the same root was taken for a replaced one")
	}
}

// A mirror on this machine that is its source, lies inside it or
// contains it is refused with the message the path check gives, and
// nothing is created in the source.
func TestMirrorOverlappingSourceRefused(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "site")
	treetest.Write(t, src, map[string]string{"index.html": "i", "sub/": ""})
	place, err := ident.Locate(src)
	must(t, err)
	fi, err := os.Stat(src)
	must(t, err)
	srcTime := fi.ModTime()
	for _, tt := range []struct {
		dst, want string
	}{
		{filepath.Join(src, "m"), "the destination is inside the source"},
		{filepath.Join(src, "sub", "deeper", "m"), "the destination is inside the source"},
		{filepath.Join(src, "sub"), "the destination is inside the source"},
		{src, "into itself"},
		{base, "the destination contains the source"},
	} {
		for _, dry := range []bool{false, true} {
			_, err := engine.DialLocal(context.Background(), "host:"+tt.dst, tt.dst,
				engine.ClientOptions{Create: !dry, Lock: !dry, Source: place, SourceName: "./site"}, nil)
			var oe *engine.OverlapError
			if !errors.As(err, &oe) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "refusing to sync ./site into") {
				t.Errorf("%s (dry run %v): %v, want a refusal: %s", tt.dst, dry, err, tt.want)
			}
		}
	}
	for _, p := range []string{filepath.Join(src, "m"), filepath.Join(src, "sub", "deeper")} {
		if exists(p) {
			t.Errorf("%s was created in the source", p)
		}
	}
	if fi, err := os.Stat(src); err != nil || fi.ModTime() != srcTime {
		t.Error("a refused session changed the source directory")
	}
	// Beside the source, made in a directory around it: not refused.
	for _, other := range []string{filepath.Join(base, "www"), filepath.Join(base, "new", "www"), filepath.Join(t.TempDir(), "www")} {
		for _, dry := range []bool{true, false} {
			m, err := engine.DialLocal(context.Background(), other, other, engine.ClientOptions{Create: !dry, Lock: !dry, Source: place, SourceName: "./site"}, nil)
			if err != nil {
				t.Fatalf("a mirror beside the source was refused: %v", err)
			}
			if m.Missing() == !dry {
				t.Errorf("%s (dry run %v): missing %v", other, dry, m.Missing())
			}
			m.Close()
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// Another user of the mirror host puts a FIFO, a symlink or a directory
// where the lock goes: taking the lock neither hangs nor follows the
// link; a directory there is a clear refusal.
func TestLockNameOccupied(t *testing.T) {
	for _, what := range []string{"fifo", "symlink", "dir"} {
		t.Run(what, func(t *testing.T) {
			dst := t.TempDir()
			lock := filepath.Join(dst, fstree.LockName)
			outside := filepath.Join(t.TempDir(), "target")
			must(t, os.WriteFile(outside, []byte("keep"), 0o644))
			switch what {
			case "fifo":
				must(t, syscall.Mkfifo(lock, 0o666))
			case "symlink":
				must(t, os.Symlink(outside, lock))
			case "dir":
				must(t, os.Mkdir(lock, 0o755))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			m, err := engine.DialLocal(ctx, dst, dst, engine.ClientOptions{Create: true, Lock: true}, nil)
			if what == "dir" {
				if err == nil || !strings.Contains(err.Error(), "take the session lock "+fstree.LockName+" in "+dst) {
					t.Fatalf("a directory at the lock name: %v", err)
				}
				return
			}
			must(t, err)
			defer m.Close()
			if holder, _ := m.TookOver(); holder != "" {
				t.Errorf("holder %q", holder)
			}
			must(t, mkdir(t, m, "d"))
			if b, _ := os.ReadFile(outside); string(b) != "keep" {
				t.Errorf("the file the symlink pointed to was changed: %q", b)
			}
			if fi, err := os.Lstat(lock); err != nil || !fi.Mode().IsRegular() {
				t.Errorf("lock is not our regular file: %v %v", fi, err)
			}
		})
	}
}

// A crafted agent's Stop ends the session at once, even while nothing
// waits (Lost fires), and its text reaches the user escaped.
func TestCraftedStopEscapedAndEndsSession(t *testing.T) {
	for _, code := range []int{wire.StopReconnect, wire.StopTakenOver} {
		c, _ := dialPeer(t, engine.ClientOptions{}, func(p *wiretest.Peer, conn *wire.Conn) error {
			if err := conn.WriteMsg(&wire.Stop{Code: code, Msg: "\x1b[2J\x1b]0;owned\x07 gone"}); err != nil {
				return err
			}
			if err := conn.Flush(); err != nil {
				return err
			}
			return p.Hold()
		})
		select {
		case <-c.Lost():
		case <-time.After(hung):
			t.Fatal("an idle session did not end at a Stop")
		}
		err := c.Err()
		if !errors.Is(err, engine.ErrMirrorLost) || errors.Is(err, engine.ErrTakenOver) != (code == wire.StopTakenOver) {
			t.Fatalf("Stop code %d: %v", code, err)
		}
		if strings.ContainsAny(err.Error(), "\x1b\x07") || !strings.Contains(err.Error(), `\x1b[2J`) {
			t.Errorf("control characters reached the message: %q", err.Error())
		}
	}
}
