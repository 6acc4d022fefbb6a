//go:build linux

package sshx_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/endpoint"
	"github.com/gosync/gosync/engine/sshx"
	"github.com/gosync/gosync/engine/sshx/agents"
	"github.com/gosync/gosync/engine/sshx/sshtest"
	"github.com/gosync/gosync/engine/treetest"
	"github.com/gosync/gosync/engine/wire"
)

// syncWith mirrors a one-file tree to a fresh directory on the test
// server with bin as the client's agent set.
func syncWith(t *testing.T, bin sshx.Binary) error {
	t.Helper()
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"a.txt": "a"})
	dst := filepath.Join(t.TempDir(), "new", "dst")
	ep := endpoint.Endpoint{Raw: sshtest.Alias + ":" + dst, Host: sshtest.Alias, Path: dst}
	m, err := sshx.DialMirror(context.Background(), ep, sshx.Options{}, bin, engine.ClientOptions{Create: true})
	if err != nil {
		return err
	}
	defer m.Close()
	s, err := engine.ScanSource(context.Background(), src, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r := engine.Sync(context.Background(), s, m, engine.Options{MaxDelete: -1}); r.Err != nil || len(r.Failed) > 0 {
		t.Fatalf("sync: %v %v", r.Err, r.Failed)
	}
	treetest.Equal(t, src, dst, treetest.Options{})
	// The cache is private, the mirror is not: the agent must run with
	// the session's umask, not the upload's, or the parents it creates
	// for a new mirror directory would shut out the web server.
	mask := syscall.Umask(0o022)
	syscall.Umask(mask)
	if fi, err := os.Stat(filepath.Dir(dst)); err != nil || fi.Mode().Perm() != 0o755&^os.FileMode(mask) {
		t.Fatalf("parent of the mirror directory created with mode %v (umask %#o), err %v", fi.Mode().Perm(), mask, err)
	}
	return nil
}

// binDir makes a directory of executables for the remote PATH: name to
// shell script body, or to "->target" for a symlink.
func binDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if target, ok := strings.CutPrefix(body, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fakeUname answers -s, -m and -sm as a host of another platform would.
func fakeUname(kernel, machine string) string {
	return fmt.Sprintf(`case "$*" in -s) echo %s;; -m) echo %s;; *) echo "%s %s";; esac`, kernel, machine, kernel, machine)
}

func cachedAgent(srv *sshtest.Server, hash string) string {
	return filepath.Join(srv.RemoteCache, "gosync", hash[:16], "gosync")
}

// A gosync in PATH is used only when its protocol number is exactly the
// client's: "protocol 20" is not protocol 2.
func TestAgentInPathNeedsExactProtocol(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := self(t)
	wrong := binDir(t, map[string]string{"gosync": fmt.Sprintf("echo 'gosync v9 protocol %d0'; exit 0", wire.Version)})
	srv := sshtest.StartWith(t, sshtest.Options{PathPrefix: wrong})
	if err := syncWith(t, bin); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cachedAgent(srv, bin.Hash)); err != nil {
		t.Fatalf("a gosync of protocol %d0 was taken for protocol %d: nothing uploaded (%v)", wire.Version, wire.Version, err)
	}

	right := binDir(t, map[string]string{"gosync": "->" + exe}) // the test binary answers as gosync (sshtest.AgentMain)
	srv = sshtest.StartWith(t, sshtest.Options{PathPrefix: right})
	if err := syncWith(t, bin); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(srv.RemoteCache, "gosync")); err == nil {
		t.Fatal("uploaded an agent although the gosync in PATH speaks the same protocol")
	}
}

// The cached agent is checked every time it is started: a changed file
// is never run, but replaced by a fresh upload.
func TestCachedAgentVerifiedWhenStarted(t *testing.T) {
	srv := sshtest.Start(t)
	bin := self(t)
	if err := syncWith(t, bin); err != nil {
		t.Fatal(err)
	}
	cached := cachedAgent(srv, bin.Hash)
	marker := filepath.Join(t.TempDir(), "ran")
	// Replaced by rename, as anyone swapping it would: the agent of the
	// first sync may still be running, and a running file cannot be written.
	fake := cached + ".fake"
	if err := os.WriteFile(fake, []byte("#!/bin/sh\ntouch "+marker+"\nexit 1\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(fake, cached); err != nil {
		t.Fatal(err)
	}
	if err := syncWith(t, bin); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a cached agent that no longer matches its hash was run")
	}
	if got := sha256File(t, cached); got != bin.Hash {
		t.Fatalf("cached agent not replaced: hash %s", got)
	}
}

// A cache directory others could write to, or that someone else owns,
// is refused: nothing in it is run, nothing is uploaded into it.
func TestUnsafeAgentCacheRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the cache directory to another user")
	}
	srv := sshtest.Start(t)
	bin := self(t)
	if err := syncWith(t, bin); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(cachedAgent(srv, bin.Hash))
	for _, tt := range []struct {
		name  string
		spoil func() error
		want  string
	}{
		{"group-writable", func() error { return os.Chmod(dir, 0o770) }, "group or others can write it"},
		{"world-writable parent", func() error { return os.Chmod(filepath.Dir(dir), 0o777) }, "group or others can write it"},
		{"other owner", func() error { return os.Chown(dir, 4242, 4242) }, "owned by uid 4242"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.spoil(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				os.Chmod(dir, 0o700)
				os.Chmod(filepath.Dir(dir), 0o700)
				os.Chown(dir, 0, 0)
			}()
			err := syncWith(t, bin)
			if !errors.Is(err, sshx.ErrAgent) || !strings.Contains(err.Error(), tt.want) || !sshx.Permanent(err) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// A host without any SHA-256 tool gets no unverified agent: the upload
// fails with what to install.
func TestNoHashToolIsAnError(t *testing.T) {
	tools := map[string]string{}
	for _, name := range []string{"uname", "ls", "id", "mkdir", "cat", "chmod", "mv", "rm", "head"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Skipf("%s not found", name)
		}
		tools[name] = "->" + p
	}
	srv := sshtest.StartWith(t, sshtest.Options{PathPrefix: binDir(t, tools), NoStandardPath: true})
	bin := self(t)
	err := syncWith(t, bin)
	if !errors.Is(err, sshx.ErrAgent) || !strings.Contains(err.Error(), "no sha256sum, shasum or sha256; install coreutils") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(cachedAgent(srv, bin.Hash)); err == nil {
		t.Fatal("an unverified agent was left in the cache")
	}
}

// A host of a platform the client has no agent for gets an error that
// names the command making one.
func TestNoAgentForPlatformNamesTheFix(t *testing.T) {
	sshtest.StartWith(t, sshtest.Options{PathPrefix: binDir(t, map[string]string{"uname": fakeUname("Linux", "riscv64")})})
	err := syncWith(t, self(t))
	if !errors.Is(err, sshx.ErrAgent) || !sshx.Permanent(err) ||
		!strings.Contains(err.Error(), "linux/riscv64") || !strings.Contains(err.Error(), "go run ./cmd/gosync-dist -o dist") ||
		!strings.Contains(err.Error(), "--remote-gosync") {
		t.Fatalf("err = %v", err)
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	a, err := agents.FromFile("", "", path)
	if err != nil {
		t.Fatal(err)
	}
	return a.Hash
}

// An upload leaves at most KeepAgents agents in the host's cache: the
// new one and the newest others. Entries that are not agent directories
// (other names, symlinks) are left alone, and nothing behind a symlink
// is touched.
func TestUploadPrunesOldAgents(t *testing.T) {
	srv := sshtest.Start(t)
	bin := self(t)
	cache := filepath.Join(srv.RemoteCache, "gosync")
	if err := os.MkdirAll(cache, 0o700); err != nil {
		t.Fatal(err)
	}
	old := []string{"0000000000000001", "0000000000000002", "0000000000000003", "0000000000000004"}
	now := time.Now()
	for i, name := range old {
		treetest.Write(t, filepath.Join(cache, name), map[string]string{"gosync": "old agent"})
		mt := now.Add(-time.Duration(len(old)-i) * time.Hour) // 0001 oldest
		if err := os.Chtimes(filepath.Join(cache, name), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	outside := t.TempDir()
	treetest.Write(t, outside, map[string]string{"precious": "x"})
	link := filepath.Join(cache, "00000000000000ff")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(cache, "not-an-agent")
	treetest.Write(t, other, map[string]string{"f": "x"})
	oldest := now.Add(-10 * time.Hour)
	if err := os.Chtimes(other, oldest, oldest); err != nil {
		t.Fatal(err)
	}

	if err := syncWith(t, bin); err != nil {
		t.Fatal(err)
	}
	exists := func(p string) bool { _, err := os.Lstat(p); return err == nil }
	if !exists(cachedAgent(srv, bin.Hash)) {
		t.Fatal("the uploaded agent is not in the cache")
	}
	for i, name := range old {
		want := i >= len(old)-(sshx.KeepAgents-1) // the newest ones besides the new agent
		if got := exists(filepath.Join(cache, name)); got != want {
			t.Errorf("old agent directory %s (age %dh): present %v, want %v", name, len(old)-i, got, want)
		}
	}
	if !exists(link) || !exists(filepath.Join(outside, "precious")) {
		t.Error("a symlink in the cache, or what it points to, was removed")
	}
	if !exists(filepath.Join(other, "f")) {
		t.Error("an entry not named like an agent directory was removed")
	}
	// The agent just uploaded is started from the cache by the next
	// session, and a second upload prunes nothing more.
	if err := syncWith(t, bin); err != nil {
		t.Fatal(err)
	}
	if !exists(cachedAgent(srv, bin.Hash)) {
		t.Fatal("the agent in use was removed")
	}
}
