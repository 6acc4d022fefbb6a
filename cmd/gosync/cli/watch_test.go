//go:build linux

// Linux only: it needs a real sshd started by engine/sshx/sshtest, setpriv,
// Pdeathsig or Unix signals, which the CI machine (Linux) has.

package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosync/gosync/engine/sshx/sshtest"
	"github.com/gosync/gosync/engine/treetest"
)

// watching runs `gosync watch` until the test ends and returns its log.
func watching(t *testing.T, args ...string) *syncBuffer { return watchingTB(t, args...) }

func watchingTB(t testing.TB, args ...string) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var errb syncBuffer
	done := make(chan int)
	go func() {
		done <- MainContext(ctx, append([]string{"watch", "--log-format", "text"}, args...), strings.NewReader(""), &errb, &errb) // -i lines go to the log too
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("watch exited %d:\n%s", code, errb.String())
			}
		case <-time.After(5 * time.Second):
			t.Errorf("watch did not stop within 5 s of the signal")
		}
	})
	return &errb
}

// converge waits until dst is identical to src.
func converge(t *testing.T, src, dst string, log *syncBuffer, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var diffs []string
	for time.Now().Before(deadline) {
		var err error
		diffs, err = treetest.Diff(src, dst, treetest.Options{})
		if err == nil && len(diffs) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: mirror did not converge: %v\nlog:\n%s", what, diffs, log.String())
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func watchScenarios(t *testing.T, dest func(dir string) string) {
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "v1", "css/site.css": "body{}", "old/a.txt": "a", "old/b/c.txt": "c"})
	dst := filepath.Join(t.TempDir(), "www")
	log := watching(t, "--reconcile", "0", src, dest(dst))
	converge(t, src, dst, log, "initial sync")

	steps := []struct {
		name string
		do   func()
	}{
		{"write in place", func() {
			f, err := os.OpenFile(filepath.Join(src, "index.html"), os.O_WRONLY|os.O_TRUNC, 0)
			must(t, err)
			f.WriteString("v2 written in place")
			f.Close()
		}},
		{"temp then rename", func() {
			write(t, filepath.Join(src, ".index.html.tmp123"), "v3 via rename")
			must(t, os.Rename(filepath.Join(src, ".index.html.tmp123"), filepath.Join(src, "index.html")))
		}},
		{"vim backup dance", func() {
			p := filepath.Join(src, "index.html")
			write(t, filepath.Join(src, "4913"), "")
			must(t, os.Remove(filepath.Join(src, "4913")))
			must(t, os.Rename(p, p+"~"))
			write(t, p, "v4 by vim")
			must(t, os.Remove(p+"~"))
		}},
		{"jetbrains safe write", func() {
			p := filepath.Join(src, "css/site.css")
			write(t, p+"___jb_tmp___", "body{color:red}")
			must(t, os.Rename(p, p+"___jb_old___"))
			must(t, os.Rename(p+"___jb_tmp___", p))
			must(t, os.Remove(p+"___jb_old___"))
		}},
		{"two same-size saves in a row", func() {
			p := filepath.Join(src, "index.html")
			write(t, p, "AAAA")
			write(t, p, "BBBB")
		}},
		{"mkdir -p then write deep", func() {
			write(t, filepath.Join(src, "n/o/p/q.txt"), "deep")
			write(t, filepath.Join(src, "n/o/r.txt"), "r")
		}},
		{"directory move", func() { must(t, os.Rename(filepath.Join(src, "n"), filepath.Join(src, "moved"))) }},
		{"recursive delete", func() { must(t, os.RemoveAll(filepath.Join(src, "old"))) }},
		{"chmod", func() { must(t, os.Chmod(filepath.Join(src, "moved/o/r.txt"), 0o600)) }},
		{"symlinks", func() {
			must(t, os.Symlink("index.html", filepath.Join(src, "home.html")))
			must(t, os.Symlink("/nonexistent", filepath.Join(src, "dangling")))
		}},
		{"move in from outside", func() {
			outside := filepath.Join(t.TempDir(), "pkg")
			treetest.Write(t, outside, map[string]string{"x.js": "x", "y/z.js": "z"})
			must(t, os.Rename(outside, filepath.Join(src, "pkg")))
		}},
		{"burst of 5000 files", func() {
			for i := range 5000 {
				write(t, filepath.Join(src, fmt.Sprintf("burst/d%02d/f%04d.txt", i%50, i)), fmt.Sprint("file ", i))
			}
		}},
	}
	for _, st := range steps {
		st.do()
		converge(t, src, dst, log, st.name)
	}
	// Editor temporaries never reached the mirror.
	for _, tmp := range []string{"index.html~", "4913", "css/site.css___jb_tmp___", "css/site.css___jb_old___"} {
		if _, err := os.Lstat(filepath.Join(dst, tmp)); err == nil {
			t.Errorf("temporary %s is on the mirror", tmp)
		}
	}
}

func TestWatchLocal(t *testing.T) {
	watchScenarios(t, func(dir string) string { return dir })
}

func TestWatchSSH(t *testing.T) {
	sshtest.Start(t)
	watchScenarios(t, func(dir string) string { return sshtest.Alias + ":" + dir })
}

// Editing .gosyncignore while watching takes effect without a restart.
func TestWatchIgnoreFileEdit(t *testing.T) {
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"a.log": "log", "keep.txt": "k", ".gosyncignore": "*.log\n"})
	dst := filepath.Join(t.TempDir(), "www")
	log := watching(t, src, dst)
	waitFor(t, log, func() bool { return exists(filepath.Join(dst, "keep.txt")) }, "initial sync")
	if exists(filepath.Join(dst, "a.log")) {
		t.Fatal("ignored file mirrored")
	}
	write(t, filepath.Join(src, ".gosyncignore"), "# nothing ignored now\n")
	waitFor(t, log, func() bool { return exists(filepath.Join(dst, "a.log")) }, "un-ignored file mirrored")
	write(t, filepath.Join(src, ".gosyncignore"), "keep.txt\n")
	write(t, filepath.Join(src, "new.log"), "n")
	waitFor(t, log, func() bool { return exists(filepath.Join(dst, "new.log")) }, "new file mirrored")
	if !exists(filepath.Join(dst, "keep.txt")) {
		t.Fatal("a newly ignored path was deleted from the mirror")
	}
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func waitTB(t testing.TB, log *syncBuffer, cond func() bool) { waitFor(t, log, cond, "wait") }

func waitFor(t testing.TB, log *syncBuffer, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: timed out\nlog:\n%s", what, log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SRC removed while watching (a build tool recreating it) never wipes the
// mirror; once SRC is back, the mirror follows it.
func TestWatchSourceRemovedAndRecreated(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "site")
	treetest.Write(t, src, map[string]string{"index.html": "v1", "a/b.txt": "b"})
	dst := filepath.Join(t.TempDir(), "www")
	log := watching(t, src, dst)
	converge(t, src, dst, log, "initial sync")
	must(t, os.RemoveAll(src))
	time.Sleep(300 * time.Millisecond) // let the watcher see the empty state: nothing may go
	if !exists(filepath.Join(dst, "index.html")) || !exists(filepath.Join(dst, "a/b.txt")) {
		t.Fatalf("mirror wiped after SRC was removed\nlog:\n%s", log.String())
	}
	treetest.Write(t, src, map[string]string{"index.html": "v2 rebuilt", "c.txt": "c"})
	converge(t, src, dst, log, "after SRC was recreated")
}

// The SSH connection killed mid-watch: changes made meanwhile arrive
// after the reconnect.
func TestWatchSSHReconnect(t *testing.T) {
	sshtest.Start(t)
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "v1"})
	dst := filepath.Join(t.TempDir(), "www")
	log := watching(t, src, sshtest.Alias+":"+dst)
	converge(t, src, dst, log, "initial sync")
	if killAgents(t, dst) == 0 {
		t.Fatal("no agent process found to kill")
	}
	write(t, filepath.Join(src, "index.html"), "v2 while disconnected")
	write(t, filepath.Join(src, "new.txt"), "new")
	converge(t, src, dst, log, "after reconnect")
	if !strings.Contains(log.String(), "mirror lost") {
		t.Errorf("the lost connection was not logged:\n%s", log.String())
	}
}

// --on-sync runs on the mirror's host after each applied batch with the
// changed paths on its stdin, each ended by a NUL: a name may hold a
// newline.
func TestWatchOnSync(t *testing.T) {
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "v1"})
	dst := filepath.Join(t.TempDir(), "www")
	record := filepath.Join(t.TempDir(), "record")
	log := watching(t, "--on-sync", "cat >> "+record+"; pwd >> "+record, src, dst)
	converge(t, src, dst, log, "initial sync")
	write(t, filepath.Join(src, "index.html"), "v2")
	real, _ := filepath.EvalSymlinks(dst)
	waitFor(t, log, func() bool {
		b, _ := os.ReadFile(record)
		return strings.Contains(string(b), "index.html\x00"+real+"\n")
	}, "on-sync command ran")
	write(t, filepath.Join(src, "two\nlines.txt"), "x")
	waitFor(t, log, func() bool {
		b, _ := os.ReadFile(record)
		// Alone in its batch, or after index.html in the same one.
		return strings.Contains(string(b), "\ntwo\nlines.txt\x00"+real+"\n") || strings.Contains(string(b), "\x00two\nlines.txt\x00"+real+"\n")
	}, "on-sync command got the name with a newline, NUL-terminated")
}

// Reconciliation repairs drift the watcher cannot see: a hand edit on
// the mirror that keeps size and mtime, and a file deleted on the mirror.
func TestWatchReconcileRepairsDrift(t *testing.T) {
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "original", "a/b.txt": "b"})
	dst := filepath.Join(t.TempDir(), "www")
	log := watching(t, "--reconcile", "300ms", src, dst)
	converge(t, src, dst, log, "initial sync")
	p := filepath.Join(dst, "index.html")
	fi, err := os.Stat(p)
	must(t, err)
	write(t, p, "HACKED!!")
	must(t, os.Chtimes(p, fi.ModTime(), fi.ModTime()))
	must(t, os.Remove(filepath.Join(dst, "a/b.txt")))
	converge(t, src, dst, log, "after reconciliation")
	// And again: later reconciliations (hash caches warm) still see edits.
	fi, _ = os.Stat(p)
	write(t, p, "HACKED!2")
	must(t, os.Chtimes(p, fi.ModTime(), fi.ModTime()))
	converge(t, src, dst, log, "after a second reconciliation")
}

// An editor's swap file is ignored, but creating and removing it changes
// its directory's mtime: the mirror's directory follows without waiting
// for a reconciliation (here: none within the test).
func TestWatchIgnoredFilesKeepDirMtimes(t *testing.T) {
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{".gosyncignore": "*.swp\n", "d/page.html": "v1", "top.html": "t"})
	dst := filepath.Join(t.TempDir(), "www")
	log := watching(t, src, dst)
	converge(t, src, dst, log, "initial sync")
	for _, dir := range []string{"d", ""} {
		swp := filepath.Join(src, dir, ".page.html.swp")
		write(t, swp, "swap")
		time.Sleep(20 * time.Millisecond)
		if dir == "d" {
			write(t, filepath.Join(src, "d/page.html"), "v2") // in place: d's mtime does not move
		}
		time.Sleep(20 * time.Millisecond)
		if err := os.Remove(swp); err != nil {
			t.Fatal(err)
		}
		converge(t, src, dst, log, "swap file in "+dir+"/ came and went")
	}
}

// A file or directory made right after another was removed often gets
// the removed one's inode (ext4 hands it out again at once), and npm, tar
// and cp -p give it an old mtime. The watch sends it as new, not as a
// rename of the old one: the mirror never shows the old content under
// the new name, and with --no-delete the old directory's children do
// not appear in the new one.
func TestWatchInodeReuseIsNotRename(t *testing.T) {
	npm := time.Date(1985, 10, 26, 8, 15, 0, 0, time.UTC)
	stamp := func(p string) { must(t, os.Chtimes(p, npm, npm)) }
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"a1.js": "old\n", "old/c1.js": "one", "old/c2.js": "two"})
	for _, p := range []string{"a1.js", "old/c1.js", "old/c2.js", "old"} {
		stamp(filepath.Join(src, p))
	}
	dst := filepath.Join(t.TempDir(), "www")
	log := watching(t, "--no-delete", src, dst)
	converge(t, src, dst, log, "initial sync")

	must(t, os.Remove(filepath.Join(src, "a1.js")))
	write(t, filepath.Join(src, "b1.js"), "new\n")
	stamp(filepath.Join(src, "b1.js"))
	waitFor(t, log, func() bool {
		b, err := os.ReadFile(filepath.Join(dst, "b1.js"))
		return err == nil && string(b) == "new\n"
	}, "b1.js with its own content on the mirror")

	must(t, os.RemoveAll(filepath.Join(src, "old")))
	must(t, os.Mkdir(filepath.Join(src, "new"), 0o755))
	write(t, filepath.Join(src, "new/n.js"), "n")
	stamp(filepath.Join(src, "new/n.js"))
	stamp(filepath.Join(src, "new"))
	waitFor(t, log, func() bool { return exists(filepath.Join(dst, "new/n.js")) }, "new/n.js on the mirror")
	time.Sleep(200 * time.Millisecond) // a later batch must not move anything either
	for _, p := range []string{"new/c1.js", "new/c2.js", "a1.js", "old/c1.js"} {
		want := strings.HasPrefix(p, "old/") || p == "a1.js" // --no-delete keeps them where they were
		if exists(filepath.Join(dst, p)) != want {
			t.Errorf("%s on the mirror: %v, want %v\nlog:\n%s", p, !want, want, log.String())
		}
	}
}
