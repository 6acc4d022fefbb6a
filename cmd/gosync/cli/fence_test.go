//go:build linux

// Linux only: it needs a real sshd started by engine/sshx/sshtest and
// Pdeathsig, which the CI machine (Linux) has.

package cli

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/sshx/sshtest"
	"github.com/gosync/gosync/engine/treetest"
)

// convergeBut waits until dst holds src, leaving the paths in keep (user
// data on the mirror) out of the comparison; they must exist.
func convergeBut(t *testing.T, src, dst string, log *syncBuffer, what string, keep ...string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var diffs []string
	var err error
	for time.Now().Before(deadline) {
		diffs, err = treetest.Diff(src, dst, treetest.Options{Ignore: keep})
		if err == nil && len(diffs) == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || len(diffs) > 0 {
		t.Fatalf("%s: mirror did not converge: %v %v\nlog:\n%s", what, err, diffs, log.String())
	}
	for _, k := range keep {
		if !exists(filepath.Join(dst, k)) {
			t.Fatalf("%s: %s was deleted from the mirror\nlog:\n%s", what, k, log.String())
		}
	}
}

// The mirror directory replaced while watching (how deploy scripts swap
// releases), then removed: the agent notices at the next change that its
// root path names another directory, the session reconnects to the path
// and syncs the new directory as at the start: nothing goes into the old
// one, and what only the new one has is kept.
func rootReplacedScenario(t *testing.T, dest func(string) string) {
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "v1", "a/b.txt": "b"})
	dst := filepath.Join(t.TempDir(), "www")
	log := watching(t, "--reconcile", "0", src, dest(dst))
	converge(t, src, dst, log, "initial sync")

	must(t, os.Rename(dst, dst+".old"))
	treetest.Write(t, dst, map[string]string{"uploads/u.txt": "a user's upload in the new release"})
	write(t, filepath.Join(src, "index.html"), "v2 after the swap")
	convergeBut(t, src, dst, log, "after the root was replaced", "uploads")
	for _, want := range []string{"was replaced", "syncing it as at the start"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dst+".old", "index.html")); string(b) != "v1" {
		t.Errorf("the old directory was written to after the swap: %q", b)
	}

	must(t, os.RemoveAll(dst))
	write(t, filepath.Join(src, "c.txt"), "after the removal")
	converge(t, src, dst, log, "after the root was removed")
	if !strings.Contains(log.String(), "was removed") {
		t.Errorf("log lacks the removal:\n%s", log.String())
	}
}

func TestWatchRootReplacedLocal(t *testing.T) {
	rootReplacedScenario(t, func(dir string) string { return dir })
}

func TestWatchRootReplacedSSH(t *testing.T) {
	sshtest.Start(t)
	rootReplacedScenario(t, func(dir string) string { return sshtest.Alias + ":" + dir })
}

// process is a gosync command running as its own process: the test
// binary, which testscript's TestMain put on PATH as gosync.
type process struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	code int
}

func startGosync(t *testing.T, args ...string) *process {
	t.Helper()
	bin, err := exec.LookPath("gosync")
	if err != nil {
		t.Fatal(err)
	}
	p := &process{out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, p.cmd.Start())
	go func() {
		err := p.cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.code = ee.ExitCode()
		} else if err != nil {
			p.code = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Two gosync watch processes on one mirror: the second takes it over and
// says so; the first is refused at its next change, leaves the mirror
// alone and exits 1 with a message naming the session that took over.
func takeoverScenario(t *testing.T, dest func(string) string) {
	srcA, srcB := t.TempDir(), t.TempDir()
	treetest.Write(t, srcA, map[string]string{"index.html": "A", "a.txt": "a"})
	treetest.Write(t, srcB, map[string]string{"index.html": "BB", "b.txt": "b"})
	dst := filepath.Join(t.TempDir(), "www")
	a := startGosync(t, "watch", "--log-format", "text", "--reconcile", "0", srcA, dest(dst))
	converge(t, srcA, dst, a.out, "first watch")

	b := startGosync(t, "watch", "--log-format", "text", "--reconcile", "0", "--delete", srcB, dest(dst))
	converge(t, srcB, dst, b.out, "second watch took over")
	if !strings.Contains(b.out.String(), "took this mirror over from another running gosync session") {
		t.Errorf("the second watch did not say it took over:\n%s", b.out.String())
	}

	write(t, filepath.Join(srcA, "index.html"), "A2 from the fenced watch")
	waitFor(t, a.out, a.exited, "first watch stops after the takeover")
	if a.code != ExitFatal || !strings.Contains(a.out.String(), "another gosync session took over this mirror") {
		t.Errorf("first watch exited %d:\n%s", a.code, a.out.String())
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "index.html")); string(b) != "BB" {
		t.Errorf("the fenced watch wrote %q after the takeover", b)
	}
	write(t, filepath.Join(srcB, "index.html"), "B2 later")
	converge(t, srcB, dst, b.out, "second watch goes on")
	if !exists(filepath.Join(dst, fstree.LockName)) {
		t.Error("no session lock while the second watch runs")
	}
}

func TestWatchTakeoverLocal(t *testing.T) {
	takeoverScenario(t, func(dir string) string { return dir })
}

func TestWatchTakeoverSSH(t *testing.T) {
	sshtest.Start(t)
	takeoverScenario(t, func(dir string) string { return sshtest.Alias + ":" + dir })
}

// Over SSH to this very machine, a mirror inside its source (it would
// grow for ever), the source itself, or a directory containing it, is
// refused with the message of the local case, and nothing is created.
func TestSSHMirrorOverlappingSourceRefused(t *testing.T) {
	sshtest.Start(t)
	base := t.TempDir()
	src := filepath.Join(base, "site")
	treetest.Write(t, src, map[string]string{"index.html": "i"})
	for _, tt := range []struct{ dst, want string }{
		{filepath.Join(src, "m"), "the destination is inside the source"},
		{src, "into itself"},
		{base, "the destination contains the source"},
	} {
		code, _, stderr := gosync(t, "sync", "--delete", src, sshtest.Alias+":"+tt.dst)
		if code != ExitFatal || !strings.Contains(stderr, "refusing to sync "+src+" into") || !strings.Contains(stderr, tt.want) {
			t.Errorf("sync into %s: exit %d: %s", tt.dst, code, stderr)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out syncBuffer
	code := MainContext(ctx, []string{"watch", src, sshtest.Alias + ":" + filepath.Join(src, "m")}, strings.NewReader(""), &out, &out)
	if ctx.Err() != nil || code != ExitFatal || !strings.Contains(out.String(), "the destination is inside the source") {
		t.Errorf("watch into the source: exit %d (%v): %s", code, ctx.Err(), out.String())
	}
	entries, _ := os.ReadDir(src)
	if len(entries) != 1 {
		t.Errorf("the source holds more than it had: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(base, "index.html")); err == nil {
		t.Error("the refused sync into the parent wrote there")
	}
}

// agentsServing counts the agent processes serving dir on this host.
func agentsServing(dir string) int {
	n := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) >= 3 && args[1] == "agent" && args[2] == dir {
			n++
		}
	}
	return n
}

// The stale session of issue 10: a link hangs while a batch is in
// flight, keepalives give up, watch reconnects and the new session
// catches up and goes on; then the old link comes back and the old batch
// reaches the old agent, still alive on the server. Fenced by the new
// session's lock, it applies nothing and exits.
func TestWatchStaleSessionFenced(t *testing.T) {
	srv := sshtest.Start(t)
	proxy := srv.ViaProxy(t, "flaky", "  ServerAliveInterval 1\n  ServerAliveCountMax 2\n")
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "v1"})
	dst := filepath.Join(t.TempDir(), "www")
	// Whole files: the stuck batch holds the file itself, not a request
	// for its signature that must be answered first.
	log := watching(t, "--reconcile", "0", "--whole-file", src, "flaky:"+dst)
	converge(t, src, dst, log, "initial sync")

	proxy.FreezeOpen()
	write(t, filepath.Join(src, "index.html"), "v2, the batch stuck in the old link")
	waitFor(t, log, func() bool { return strings.Contains(log.String(), "fenced the agent of an earlier connection") }, "reconnected, old agent fenced")
	converge(t, src, dst, log, "caught up on the new connection")
	write(t, filepath.Join(src, "index.html"), "v3, after the catch-up")
	converge(t, src, dst, log, "a change after the catch-up")
	if n := agentsServing(dst); n < 2 {
		t.Fatalf("%d agents serve the mirror, want the old one and the new one", n)
	}

	proxy.Thaw() // the old batch reaches the old agent
	waitFor(t, log, func() bool { return agentsServing(dst) == 1 }, "the old agent ends")
	if b, _ := os.ReadFile(filepath.Join(dst, "index.html")); string(b) != "v3, after the catch-up" {
		t.Fatalf("the old agent applied its batch after the takeover: index.html is %q\nlog:\n%s", b, log.String())
	}
	write(t, filepath.Join(src, "new.txt"), "the new session still works")
	converge(t, src, dst, log, "after the old link came back")
}

// With no change in the source, the next reconciliation notices the
// replaced root and fills the new directory.
func TestWatchRootReplacedNoticedAtReconcile(t *testing.T) {
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "v1", "a/b.txt": "b"})
	dst := filepath.Join(t.TempDir(), "www")
	log := watching(t, "--reconcile", "300ms", src, dst)
	converge(t, src, dst, log, "initial sync")
	must(t, os.Rename(dst, dst+".old"))
	must(t, os.Mkdir(dst, 0o755))
	converge(t, src, dst, log, "after a reconciliation")
	if !strings.Contains(log.String(), "was replaced") {
		t.Errorf("log lacks the replaced root:\n%s", log.String())
	}
}
