//go:build linux

// Linux only: it needs a real sshd started by engine/sshx/sshtest, setpriv,
// Pdeathsig or Unix signals, which the CI machine (Linux) has.

package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosync/gosync/engine/endpoint"
	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/sshx"
	"github.com/gosync/gosync/engine/sshx/sshtest"
	"github.com/gosync/gosync/engine/treetest"
)

func TestSSHSyncEditsDeletes(t *testing.T) {
	sshtest.Start(t)
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "v1", "a/b.txt": "b", "old.txt": "old", "link": "-> index.html"})
	dst := filepath.Join(t.TempDir(), "www")
	remote := sshtest.Alias + ":" + dst
	if code, _, stderr := gosync(t, "sync", src, remote); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	treetest.Equal(t, src, dst, treetest.Options{})

	treetest.Write(t, src, map[string]string{"index.html": "v2 is longer", "new/c.txt": "c"})
	os.Remove(filepath.Join(src, "old.txt"))
	code, stdout, stderr := gosync(t, "sync", "--delete", "-i", src, remote)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"updated  file    index.html", "created  file    new/c.txt", "deleted  file    old.txt"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("itemized output lacks %q:\n%s", want, stdout)
		}
	}
	treetest.Equal(t, src, dst, treetest.Options{})
}

func TestSSHUnreachableMirrorDoesNotStopOthers(t *testing.T) {
	srv := sshtest.Start(t)
	srv.AppendConfig(t, "\nHost nowhere\n  HostName 127.0.0.1\n  Port 1\n")
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"f": "f"})
	good := filepath.Join(t.TempDir(), "good")
	local := filepath.Join(t.TempDir(), "local")
	code, _, stderr := gosync(t, "sync", src, "nowhere:/srv/x", sshtest.Alias+":"+good, local)
	if code != ExitFatal {
		t.Fatalf("exit %d, want %d", code, ExitFatal)
	}
	if !strings.Contains(stderr, "gosync: nowhere:/srv/x:") || !strings.Contains(stderr, "connection refused at 127.0.0.1:1") {
		t.Fatalf("stderr = %q", stderr)
	}
	if strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("want one error line, got:\n%s", stderr)
	}
	treetest.Equal(t, src, good, treetest.Options{})
	treetest.Equal(t, src, local, treetest.Options{})
}

func TestSSHUnknownHostNothingWritten(t *testing.T) {
	srv := sshtest.Start(t)
	os.Remove(srv.KnownHosts)
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"f": "f"})
	dst := filepath.Join(t.TempDir(), "www")
	code, _, stderr := gosync(t, "sync", src, sshtest.Alias+":"+dst)
	if code != ExitFatal || !strings.Contains(stderr, "unknown host key ssh-ed25519 SHA256:") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(dst); err == nil {
		t.Fatal("mirror written although the host key was refused")
	}
	if code, _, stderr := gosync(t, "sync", "--accept-new-host-key", src, sshtest.Alias+":"+dst); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	treetest.Equal(t, src, dst, treetest.Options{})
}

// Killing the remote agent in the middle of a large transfer fails the
// run, leaves nothing half-written in place, and the next run completes.
func TestSSHConnectionLostMidTransfer(t *testing.T) {
	sshtest.Start(t)
	src := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 16<<20/16) // 16 MiB
	for i := 0; i < 8; i++ {
		big[i*1000003%len(big)] ^= 0xff
	}
	if err := os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	treetest.Write(t, src, map[string]string{"small.txt": "s"})
	dst := filepath.Join(t.TempDir(), "www")
	// An old version is in place: it must stay whole until replaced.
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dst, "big.bin"), []byte("old version"), 0o644)

	// Buffered: the run may end in the same pass that kills the agent,
	// and then nobody is left to receive before the final read below.
	done := make(chan int, 1)
	go func() {
		code, _, _ := gosync(t, "sync", "--compress-level", "0", src, sshtest.Alias+":"+dst)
		done <- code
	}()
	killed, finished := false, false
	code := 0
	deadline := time.Now().Add(20 * time.Second)
	for !killed && !finished && time.Now().Before(deadline) {
		if len(treetest.Temporaries(t, dst, fstree.TempPrefix)) > 0 {
			killed = killAgents(t, dst) > 0
		}
		select {
		case code = <-done:
			finished = true
		default:
			time.Sleep(time.Millisecond)
		}
	}
	if finished && (!killed || code == 0) {
		// The kill, if any, hit an agent that had already done its work.
		t.Skipf("transfer finished (exit %d) before it could be interrupted", code)
	}
	if !killed {
		t.Fatal("never saw the transfer in progress")
	}
	if !finished {
		code = <-done
	}
	if code != ExitFatal {
		t.Fatalf("interrupted run exited %d, want %d", code, ExitFatal)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "big.bin")); string(b) != "old version" && !bytes.Equal(b, big) {
		t.Fatalf("big.bin is half-written (%d bytes)", len(b))
	}
	if code, _, stderr := gosync(t, "sync", src, sshtest.Alias+":"+dst); code != 0 {
		t.Fatalf("second run exit %d: %s", code, stderr)
	}
	treetest.Equal(t, src, dst, treetest.Options{SkipRootMeta: true})
	if tmp := treetest.Temporaries(t, dst, fstree.TempPrefix); len(tmp) != 0 {
		t.Fatalf("temporaries left: %v", tmp)
	}
}

// killAgents kills remote agent processes serving dir.
func killAgents(t *testing.T, dir string) int {
	n := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) >= 3 && args[1] == "agent" && args[2] == dir {
			var pid int
			if _, err := fmtSscanPid(p, &pid); err == nil {
				if proc, err := os.FindProcess(pid); err == nil && proc.Kill() == nil {
					n++
				}
			}
		}
	}
	return n
}

// The watch loop decides between giving up and retrying with
// sshx.Permanent on what dialMirror returns: its wrapping must keep the
// cause visible.
func TestSSHDialErrorsStayClassifiable(t *testing.T) {
	srv := sshtest.Start(t)
	srv.AppendConfig(t, "\nHost nowhere\n  HostName 127.0.0.1\n  Port 1\n")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dial := func(dest string) error {
		t.Helper()
		d, err := endpoint.Parse(dest)
		if err != nil {
			t.Fatal(err)
		}
		m, err := dialMirror(context.Background(), d, syncFlags{compressLevel: -1}, log)
		if err == nil {
			m.Close()
			t.Fatalf("dial %s succeeded", dest)
		}
		return err
	}
	if err := dial("nowhere:/srv/x"); sshx.Permanent(err) {
		t.Errorf("refused connection taken for permanent: %v", err)
	}
	os.Remove(srv.KnownHosts)
	if err := dial(sshtest.Alias + ":" + t.TempDir()); !errors.Is(err, sshx.ErrHostKey) || !sshx.Permanent(err) {
		t.Errorf("unknown host key not permanent: %v", err)
	}
}
