//go:build linux

package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosync/gosync/engine/sshx/sshtest"
)

// TestWindowsClientUnderWine runs the Windows build of gosync under wine
// against the real sshd: the source side as it runs on Windows (path
// forms, walk, read, hash, ReadDirectoryChangesW through fsnotify) sends
// to a Linux agent. .ci/wine-setup prepares a wine prefix and names it in
// GOSYNC_WINE_PREFIX; without it the test skips, and fails in CI.
func TestWindowsClientUnderWine(t *testing.T) {
	prefix := os.Getenv("GOSYNC_WINE_PREFIX")
	wine, err := exec.LookPath("wine64")
	if err != nil {
		wine, err = exec.LookPath("/usr/lib/wine/wine64")
	}
	if prefix == "" || err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("wine is not set up: CI must run .ci/wine-setup and export GOSYNC_WINE_PREFIX (see .ci/run)")
		}
		t.Skip("wine not set up: run `. .ci/wine-setup` to run the Windows client under wine")
	}
	// Build first: sshtest.Start moves HOME, and with it Go's caches.
	tb := time.Now()
	exe := filepath.Join(t.TempDir(), "gosync.exe")
	build := exec.Command("go", "build", "-o", exe, "./cmd/gosync")
	build.Dir = filepath.Join("..", "..", "..")
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the Windows client: %v\n%s", err, out)
	}
	t.Logf("built the Windows client in %v", time.Since(tb))
	srv := sshtest.Start(t)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}

	src := t.TempDir()
	files := map[string]string{}
	for d := range 20 {
		for f := range 25 {
			files[fmt.Sprintf("d%02d/sub/f%02d.html", d, f)] = fmt.Sprintf("<p>%d %d</p>\r\n", d, f)
		}
	}
	files["crlf.txt"] = "line one\r\nline two\r\n" // bytes go as they are: no line-ending conversion
	files["run.sh"] = "#!/bin/sh\n"
	for p, c := range files {
		full := filepath.Join(src, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "www")
	dest := fmt.Sprintf("ssh://%s@127.0.0.1:%d%s", me.Username, srv.Port, dst)
	// The agent is this test binary, which testscript.Main makes behave as
	// gosync when it runs under that name.
	agentBin := filepath.Join(t.TempDir(), "gosync")
	if err := os.Symlink(os.Args[0], agentBin); err != nil {
		t.Fatal(err)
	}
	winPath := func(p string) string { return `Z:` + strings.ReplaceAll(p, "/", `\`) }
	common := []string{"--ssh-identity", winPath(srv.UserKey), "--ssh-known-hosts", winPath(srv.KnownHosts),
		"--remote-gosync", agentBin, "--no-progress"}

	runWine := func(ctx context.Context, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, wine, append([]string{exe}, args...)...)
		cmd.Env = append(os.Environ(), "WINEPREFIX="+prefix, "WINEDEBUG=-all")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = 5 * time.Second
		return cmd
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	sync := runWine(ctx, append([]string{"sync", "--stats"}, append(common, winPath(src), dest)...)...)
	sync.Stdout, sync.Stderr = &out, &out
	t0 := time.Now()
	if err := sync.Run(); err != nil {
		t.Fatalf("gosync.exe sync: %v\n%s", err, out.String())
	}
	checkMirror := func(want map[string]string) error {
		for p, c := range want {
			full := filepath.Join(dst, p)
			got, err := os.ReadFile(full)
			if err != nil {
				return err
			}
			if string(got) != c {
				return fmt.Errorf("%s = %q, want %q", p, got, c)
			}
			fi, err := os.Stat(full)
			if err != nil {
				return err
			}
			// Windows has no permission bits: files go as 0644 (the
			// source's 0755 above is what Linux made, wine reports 0666).
			if fi.Mode().Perm() != 0o644 {
				return fmt.Errorf("%s has mode %v, want 0644", p, fi.Mode().Perm())
			}
		}
		return nil
	}
	t.Logf("synced in %v", time.Since(t0))
	if err := checkMirror(files); err != nil {
		t.Fatalf("after sync: %v\n%s", err, out.String())
	}
	if fi, err := os.Stat(filepath.Join(dst, "d00")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("directory d00 on the mirror: %v %v, want 0755", fi.Mode(), err)
	}

	// watch: the initial pass, then an editor's save, a new directory and
	// a delete, each seen through ReadDirectoryChangesW.
	var log syncBuffer
	w := runWine(ctx, append([]string{"watch"}, append(common, winPath(src), dest)...)...)
	w.Stdout, w.Stderr = &log, &log
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Wait() }()
	defer func() {
		syscall.Kill(-w.Process.Pid, syscall.SIGKILL)
		<-done
	}()
	waitWine := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			select {
			case err := <-done:
				t.Fatalf("%s: gosync.exe watch exited: %v\n%s", what, err, log.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: timed out\n%s", what, log.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitWine("mirror connected", func() bool { return strings.Contains(log.String(), "mirror connected") })

	t.Logf("watch connected at %v", time.Since(t0))
	tmp := filepath.Join(src, "d01", "sub", ".f00.html.swp")
	os.WriteFile(tmp, []byte("<p>saved</p>\r\n"), 0o644)
	if err := os.Rename(tmp, filepath.Join(src, "d01", "sub", "f00.html")); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(src, "new", "deep"), 0o755)
	os.WriteFile(filepath.Join(src, "new", "deep", "n.css"), []byte("body{}"), 0o644)
	os.Remove(filepath.Join(src, "d02", "sub", "f03.html"))
	want := map[string]string{"d01/sub/f00.html": "<p>saved</p>\r\n", "new/deep/n.css": "body{}"}
	waitWine("save and new directory on the mirror", func() bool { return checkMirror(want) == nil })
	waitWine("delete on the mirror", func() bool { return !exists(filepath.Join(dst, "d02", "sub", "f03.html")) })
	t.Logf("changes mirrored at %v", time.Since(t0))
	if err := checkMirror(map[string]string{"d02/sub/f04.html": files["d02/sub/f04.html"]}); err != nil {
		t.Errorf("a neighbour of the deleted file: %v", err)
	}
}
