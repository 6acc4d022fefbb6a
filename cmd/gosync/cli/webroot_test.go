//go:build linux

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/sshx/sshtest"
	"github.com/gosync/gosync/engine/treetest"
)

// webSite is a small site whose files have modes and groups a developer's
// machine gives them (0600 secrets, 0700 directories, the user's own
// group), which a deploy must not carry onto the server as they are.
func webSite(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{
		"index.html":     "<h1>v1</h1>",
		"css/site.css":   "body{}",
		"config.php":     "<?php $db='secret';",
		"img/logo.svg":   "<svg/>",
		"js/app/main.js": "main()",
	})
	must(t, os.Chmod(filepath.Join(src, "config.php"), 0o600))
	must(t, os.Chmod(filepath.Join(src, "js"), 0o700))
	return src
}

// sameContent checks that every file below src has its content at the
// same path below dst (modes differ on purpose).
func sameContent(t *testing.T, src, dst string) {
	t.Helper()
	filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		a, _ := os.ReadFile(p)
		if b, err := os.ReadFile(filepath.Join(dst, rel)); err != nil || string(a) != string(b) {
			t.Errorf("%s on the mirror: %q %v, want %q", rel, b, err, a)
		}
		return nil
	})
}

// checkWebModes checks that every entry below root has mode dir or file
// and group gid; the root itself is checked by the caller.
func checkWebModes(t *testing.T, root string, dir, file, gid uint32, skip string) {
	t.Helper()
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		// The session lock may outlive the client by a moment, and go
		// between the listing and its lstat.
		if fstree.Reserved(filepath.Base(p)) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		if rel == skip || strings.HasPrefix(rel, skip+"/") {
			return filepath.SkipDir
		}
		want := file
		if fi.IsDir() {
			want = dir
		}
		perm, _ := mode(t, p)
		if g := groupOf(t, p); perm != want || g != gid {
			t.Errorf("%s on the mirror: mode %o group %d, want %o and %d", rel, perm, g, want, gid)
		}
		return nil
	})
}

// The README's "Deploying into a web root", end to end over SSH as a
// non-root deploy user that belongs to a www-data-like group: the web
// root is the group's 2775 directory; --chown :GROUP and --chmod give
// every file the group and group-readable modes whatever the developer's
// machine had; a second run sends nothing; --delay-updates and
// --backup-dir keep what a deploy replaced or deleted, and rollback puts
// it back; a group the user is not in is refused before anything is
// written.
func TestDeployIntoWebRootAsDeployUser(t *testing.T) {
	srv := sshtest.StartWith(t, sshtest.Options{User: sshtest.UserName("gwd")})
	wwwName := sshtest.UserName("gww")
	www := sshtest.AddGroup(t, wwwName, srv.Login.Name)
	otherName := sshtest.UserName("gwo")
	sshtest.AddGroup(t, otherName)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	prog := sshtest.InstallProgram(t, exe, "gosync")
	web := filepath.Join(sshtest.PublicDir(t), "www")
	must(t, os.Mkdir(web, 0o755))
	must(t, os.Chown(web, srv.Login.UID, www))
	must(t, os.Chmod(web, 0o775|os.ModeSetgid))
	dest := sshtest.Alias + ":" + web
	src := webSite(t)

	deploy := []string{"sync", "--remote-gosync", prog, "--delete", "--chown", ":" + wwwName,
		"--chmod", "D2775,Fu=rw,Fg=r,Fo=", "--delay-updates", "--backup-dir", ".backups"}
	run := func(what string, args ...string) string {
		t.Helper()
		code, stdout, stderr := gosync(t, append(append([]string{}, deploy...), args...)...)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", what, code, stdout, stderr)
		}
		return stdout
	}
	run("first deploy", src, dest)
	sameContent(t, src, web)
	checkWebModes(t, web, 0o2775, 0o640, uint32(www), ".backups")
	if perm, uid := mode(t, web); perm != 0o2775 || uid != uint32(srv.Login.UID) || groupOf(t, web) != uint32(www) {
		t.Errorf("the web root became mode %o owner %d group %d; it must keep 2775 and its owner and group", perm, uid, groupOf(t, web))
	}
	if out := run("second deploy", "-i", src, dest); !strings.Contains(out, "0 created, 0 updated, 0 metadata, 0 deleted") {
		t.Fatalf("second deploy changed something:\n%s", out)
	}

	// A bad deploy: a page changed, a stylesheet deleted, a page added.
	write(t, filepath.Join(src, "index.html"), "<h1>broken</h1>")
	must(t, os.Remove(filepath.Join(src, "css/site.css")))
	write(t, filepath.Join(src, "oops.html"), "oops")
	run("bad deploy", src, dest)
	if b, _ := os.ReadFile(filepath.Join(web, "index.html")); string(b) != "<h1>broken</h1>" {
		t.Fatalf("index.html after the bad deploy: %q", b)
	}
	stamps, _ := filepath.Glob(filepath.Join(web, ".backups", "2*"))
	var saved []string
	for _, s := range stamps {
		if fi, err := os.Stat(s); err == nil && fi.IsDir() {
			saved = append(saved, s)
		}
	}
	// One backup per run: the first deploy's (what it created) and the
	// bad one's; stamps sort by time.
	if len(saved) != 2 {
		t.Fatalf("want two backups (one per deploy that changed something), have %v", stamps)
	}
	if b, _ := os.ReadFile(filepath.Join(saved[1], "index.html")); string(b) != "<h1>v1</h1>" {
		t.Errorf("backup of index.html: %q, want the replaced version", b)
	}

	code, stdout, stderr := gosync(t, "rollback", "--remote-gosync", prog, "--backup-dir", ".backups", "-i", dest)
	if code != 0 {
		t.Fatalf("rollback: exit %d\n%s%s", code, stdout, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(web, "index.html")); string(b) != "<h1>v1</h1>" {
		t.Errorf("index.html after rollback: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(web, "css/site.css")); string(b) != "body{}" {
		t.Errorf("css/site.css after rollback: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(web, "oops.html")); !os.IsNotExist(err) {
		t.Errorf("oops.html, created by the bad deploy, is still there after rollback (%v)", err)
	}
	checkWebModes(t, web, 0o2775, 0o640, uint32(www), ".backups")

	// A group the deploy user is not in cannot be given: refused in one
	// line naming it, and nothing is written.
	write(t, filepath.Join(src, "index.html"), "<h1>v3</h1>")
	code, stdout, stderr = gosync(t, "sync", "--remote-gosync", prog, "--chown", ":"+otherName, src, dest)
	if code == 0 || !strings.Contains(stderr, otherName) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("--chown to a group the user is not in: exit %d, want one line naming %s:\n%s%s", code, otherName, stdout, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(web, "index.html")); string(b) != "<h1>v1</h1>" {
		t.Errorf("the refused sync wrote index.html: %q", b)
	}
}

// The same deploy into a root-owned web root through --remote-sudo: the
// files get the web server's owner and group by name (--chown), and
// rollback goes through the same sudoers line.
func TestDeployIntoWebRootThroughSudo(t *testing.T) {
	s := newSudoSetup(t, sshtest.Options{})
	sshtest.AllowSudo(t, s.user, s.readmeRule())
	wwwName := sshtest.UserName("gws")
	www := sshtest.AddGroup(t, wwwName)
	dest := sshtest.Alias + ":" + s.root
	src := webSite(t)

	deploy := []string{"--delete", "--chown", s.user + ":" + wwwName, "--chmod", "D2775,Fu=rw,Fg=r,Fo=",
		"--delay-updates", "--backup-dir", ".backups"}
	code, stdout, stderr := s.sync(t, append(deploy, src, dest)...)
	if code != 0 {
		t.Fatalf("deploy through sudo: exit %d\n%s%s", code, stdout, stderr)
	}
	sameContent(t, src, s.root)
	checkWebModes(t, s.root, 0o2775, 0o640, uint32(www), ".backups")
	if _, uid := mode(t, filepath.Join(s.root, "config.php")); uid != uint32(s.srv.Login.UID) {
		t.Errorf("config.php owner %d, want %s (%d)", uid, s.user, s.srv.Login.UID)
	}
	if perm, uid := mode(t, s.root); perm != 0o755 || uid != 0 {
		t.Errorf("the root-owned web root became mode %o owner %d", perm, uid)
	}
	code, stdout, _ = s.sync(t, append(append([]string{"-i"}, deploy...), src, dest)...)
	if code != 0 || !strings.Contains(stdout, "0 created, 0 updated, 0 metadata, 0 deleted") {
		t.Fatalf("second deploy through sudo: exit %d, want nothing to do:\n%s", code, stdout)
	}

	write(t, filepath.Join(src, "index.html"), "<h1>broken</h1>")
	if code, stdout, stderr = s.sync(t, append(deploy, src, dest)...); code != 0 {
		t.Fatalf("bad deploy: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = gosync(t, "rollback", "--remote-sudo", "--remote-gosync", s.prog, "--backup-dir", ".backups", dest)
	if code != 0 {
		t.Fatalf("rollback through sudo: exit %d\n%s%s", code, stdout, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(s.root, "index.html")); string(b) != "<h1>v1</h1>" {
		t.Errorf("index.html after rollback: %q", b)
	}
	if perm, uid := mode(t, filepath.Join(s.root, "index.html")); perm != 0o640 || uid != uint32(s.srv.Login.UID) || groupOf(t, filepath.Join(s.root, "index.html")) != uint32(www) {
		t.Errorf("index.html after rollback: mode %o owner %d group %d", perm, uid, groupOf(t, filepath.Join(s.root, "index.html")))
	}
}
