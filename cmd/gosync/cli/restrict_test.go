//go:build linux

package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosync/gosync/engine/sshx/sshtest"
	"github.com/gosync/gosync/engine/treetest"
)

// restrictedServer starts sshd with the client's key forced to
// `gosync agent FLAGS ROOT`, as the README's authorized_keys line has it;
// gosync on the server's PATH is this test binary.
func restrictedServer(t *testing.T, flags string) (srv *sshtest.Server, root string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(exe, filepath.Join(bin, "gosync")); err != nil {
		t.Fatal(err)
	}
	srv = sshtest.StartWith(t, sshtest.Options{PathPrefix: bin})
	root = filepath.Join(t.TempDir(), "www")
	srv.AuthorizeKey(t, `restrict,command="gosync agent `+flags+` `+root+`"`)
	return srv, root
}

// noUpload fails if the client uploaded or cached an agent on the server.
func noUpload(t *testing.T, srv *sshtest.Server) {
	t.Helper()
	for _, dir := range []string{srv.RemoteCache, filepath.Join(srv.RemoteHome, ".cache")} {
		if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 || err != nil && !os.IsNotExist(err) {
			t.Errorf("the client uploaded to %s: %v %v", dir, entries, err)
		}
	}
}

func mode(t *testing.T, p string) (perm, uid uint32) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Mode & 0o7777, st.Uid
}

// The restricted agent as an authorized_keys forced command, end to end:
// the client recognises it on its first session and syncs through it
// without probing or uploading anything; a file's setuid and setgid
// bits do not land (a directory keeps setgid), owners are not changed, another directory is refused, and
// --on-sync is refused before anything runs.
func TestSSHRestrictedForcedCommand(t *testing.T) {
	srv, root := restrictedServer(t, "--restrict")
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "v1", "tool": "#!/bin/sh\n", "shared/a.txt": "a"})
	asRoot := os.Geteuid() == 0
	if asRoot {
		must(t, os.Chown(filepath.Join(src, "tool"), 4321, 4321)) // before chmod: chown clears setuid
	}
	must(t, os.Chmod(filepath.Join(src, "tool"), 0o755|os.ModeSetuid))
	must(t, os.Chmod(filepath.Join(src, "shared"), 0o775|os.ModeSetgid))
	if perm, _ := mode(t, filepath.Join(src, "tool")); perm != 0o4755 {
		t.Fatalf("source tool: mode %o, want 4755", perm)
	}
	code, _, stderr := gosync(t, "sync", "--delete", src, sshtest.Alias+":"+root)
	if code != 0 {
		t.Fatalf("sync through the forced command: exit %d: %s", code, stderr)
	}
	treetest.Equal(t, src, root, treetest.Options{Ignore: []string{"tool", "shared"}})
	if b, err := os.ReadFile(filepath.Join(root, "shared/a.txt")); err != nil || string(b) != "a" {
		t.Fatalf("shared/a.txt: %q %v", b, err)
	}
	if perm, uid := mode(t, filepath.Join(root, "tool")); perm != 0o755 || asRoot && uid != 0 {
		t.Errorf("tool on the mirror: mode %o owner %d, want 755 and the agent's own (0)", perm, uid)
	}
	if perm, _ := mode(t, filepath.Join(root, "shared")); perm != 0o2775 {
		t.Errorf("shared on the mirror: mode %o, want 2775 (a directory keeps setgid)", perm)
	}
	noUpload(t, srv)

	// HOST: alone names the forced root too; a second run changes nothing.
	code, stdout, stderr := gosync(t, "sync", src, sshtest.Alias+":")
	if code != 0 || !strings.Contains(stdout, "0 created, 0 updated, 0 metadata, 0 deleted") {
		t.Fatalf("sync to HOST: exit %d, stdout %q: %s", code, stdout, stderr)
	}

	other := filepath.Join(t.TempDir(), "other")
	code, _, stderr = gosync(t, "sync", src, sshtest.Alias+":"+other)
	if code != ExitFatal || !strings.Contains(stderr, "serves only "+root) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("sync to another path: exit %d, stderr %q; want one line naming %s", code, stderr, root)
	}
	if _, err := os.Lstat(other); err == nil {
		t.Fatal("the other path was created")
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errb syncBuffer
	code = MainContext(ctx, []string{"watch", "--on-sync", "touch ran", src, sshtest.Alias + ":" + root}, strings.NewReader(""), &errb, &errb)
	if code != ExitFatal || !strings.Contains(errb.String(), "--allow-run") {
		t.Fatalf("watch --on-sync: exit %d, want %d and advice naming --allow-run:\n%s", code, ExitFatal, errb.String())
	}
	if _, err := os.Lstat(filepath.Join(root, "ran")); err == nil {
		t.Fatal("the hook ran")
	}
	noUpload(t, srv)
}

// With --allow-run in the forced command, --on-sync runs, with the
// changed paths NUL-terminated on its input.
func TestSSHRestrictedAllowRun(t *testing.T) {
	srv, root := restrictedServer(t, "--restrict --allow-run")
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "v1"})
	record := filepath.Join(t.TempDir(), "record")
	log := watching(t, "--on-sync", "cat >> "+record, src, sshtest.Alias+":"+root)
	converge(t, src, root, log, "initial sync")
	write(t, filepath.Join(src, "index.html"), "v2")
	waitFor(t, log, func() bool {
		b, _ := os.ReadFile(record)
		return strings.Contains(string(b), "index.html\x00")
	}, "on-sync command ran")
	noUpload(t, srv)
}
