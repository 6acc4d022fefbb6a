//go:build linux

package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosync/gosync/engine/sshx"
	"github.com/gosync/gosync/engine/sshx/sshtest"
	"github.com/gosync/gosync/engine/treetest"
)

// sudoSetup is a server where sessions log in as a fresh non-root user,
// which may not write the web root: a root-owned directory outside any
// test directory. prog is the root-owned gosync that sudo runs (this
// test binary, which behaves as gosync under that name).
type sudoSetup struct {
	srv  *sshtest.Server
	user string
	prog string
	root string // the web root, /tmp/gosync-sshtest-*/www
}

func newSudoSetup(t *testing.T, opt sshtest.Options) sudoSetup {
	t.Helper()
	sshtest.NeedSudo(t)
	opt.User = sshtest.UserName("gsd")
	srv := sshtest.StartWith(t, opt)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	prog := sshtest.InstallProgram(t, exe, "gosync")
	root := filepath.Join(sshtest.PublicDir(t), "www")
	must(t, os.Mkdir(root, 0o755))
	return sudoSetup{srv: srv, user: srv.Login.Name, prog: prog, root: root}
}

// readmeRule is the sudoers line as README.md gives it, with this test's
// user, program and web root in place of deploy, /usr/local/bin/gosync
// and /var/www.
func (s sudoSetup) readmeRule() string {
	return s.user + " ALL=(root) NOPASSWD: " + s.prog + " agent --restrict --allow-owner " + s.root
}

// host is the server as errors name it.
func (s sudoSetup) host() string {
	return s.user + "@" + sshtest.Alias + " (127.0.0.1:" + strconv.Itoa(s.srv.Port) + ")"
}

func (s sudoSetup) sync(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return gosync(t, append([]string{"sync", "--remote-sudo", "--remote-gosync", s.prog}, args...)...)
}

// The README's sudoers line, end to end: a non-root SSH user that
// cannot write a root-owned web root mirrors into it through
// --remote-sudo, and the files get the source's owners and groups (the
// agent runs as root). The web root keeps its own owner and mode; setuid
// and setgid bits of files are stripped (the agent is --restrict; a
// directory keeps setgid) without being re-sent on the next run; DEST with a trailing slash matches the same
// rule; nothing is uploaded into the user's cache.
func TestSudoSyncIntoRootOwnedWebRoot(t *testing.T) {
	s := newSudoSetup(t, sshtest.Options{})
	gid := sshtest.AddGroup(t, sshtest.UserName("gsw"), s.user)
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "<h1>v1</h1>", "config.php": "<?php", "app/main.js": "x", "uploads/u.txt": "u"})
	must(t, os.Chown(filepath.Join(src, "config.php"), s.srv.Login.UID, gid))
	must(t, os.Chmod(filepath.Join(src, "config.php"), 0o640))
	must(t, os.Chown(filepath.Join(src, "app"), 4321, gid))
	must(t, os.Chown(filepath.Join(src, "app/main.js"), 4321, 4322))
	must(t, os.Chmod(filepath.Join(src, "uploads"), 0o775|os.ModeSetgid))

	// Without sudo the user cannot write there: that is the point.
	code, _, stderr := gosync(t, "sync", "--remote-gosync", s.prog, src, sshtest.Alias+":"+s.root)
	if code == 0 {
		t.Fatalf("the SSH user wrote the root-owned web root without sudo:\n%s", stderr)
	}

	if s.readmeRule() != sshx.SudoRule(s.user, s.prog, s.root) {
		t.Fatalf("the rule in the error messages\n%s\ndiffers from README's\n%s", sshx.SudoRule(s.user, s.prog, s.root), s.readmeRule())
	}
	sshtest.AllowSudo(t, s.user, s.readmeRule())
	code, stdout, stderr := s.sync(t, "--delete", src, sshtest.Alias+":"+s.root+"/")
	if code != 0 {
		t.Fatalf("sync through sudo: exit %d\n%s%s", code, stdout, stderr)
	}
	treetest.Equal(t, src, s.root, treetest.Options{SkipRootMeta: true, Ignore: []string{"uploads"}})
	for p, want := range map[string][3]uint32{
		"config.php":  {0o640, uint32(s.srv.Login.UID), uint32(gid)},
		"app":         {0o755, 4321, uint32(gid)},
		"app/main.js": {0o644, 4321, 4322},
		"uploads":     {0o2775, 0, 0}, // a directory keeps setgid under --restrict
		".":           {0o755, 0, 0},  // an existing root keeps its mode and owner
	} {
		perm, uid := mode(t, filepath.Join(s.root, p))
		g := groupOf(t, filepath.Join(s.root, p))
		if perm != want[0] || uid != want[1] || g != want[2] {
			t.Errorf("%s on the mirror: mode %o owner %d:%d, want %o %d:%d", p, perm, uid, g, want[0], want[1], want[2])
		}
	}
	code, stdout, stderr = s.sync(t, "-i", src, sshtest.Alias+":"+s.root)
	if code != 0 || !strings.Contains(stdout, "0 created, 0 updated, 0 metadata, 0 deleted") {
		t.Fatalf("second sync: exit %d, want nothing to do:\n%s%s", code, stdout, stderr)
	}
	if entries, err := os.ReadDir(s.srv.RemoteCache); err == nil && len(entries) > 0 {
		t.Errorf("the client uploaded into the user's cache: %v", entries)
	}
}

// groupOf is the group id of p.
func groupOf(t *testing.T, p string) uint32 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Gid
}

// watch --remote-sudo: the initial sync and a saved change land as root.
func TestSudoWatch(t *testing.T) {
	s := newSudoSetup(t, sshtest.Options{})
	sshtest.AllowSudo(t, s.user, s.readmeRule())
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "v1"})
	must(t, os.Chown(filepath.Join(src, "index.html"), 4321, 4322))
	log := watching(t, "--remote-sudo", "--remote-gosync", s.prog, src, sshtest.Alias+":"+s.root)
	converge(t, src, filepath.Join(s.root), log, "initial sync")
	write(t, filepath.Join(src, "new.html"), "new")
	must(t, os.Chown(filepath.Join(src, "new.html"), 4321, 4322))
	converge(t, src, s.root, log, "a new file")
	if _, uid := mode(t, filepath.Join(s.root, "new.html")); uid != 4321 {
		t.Errorf("new.html owner %d, want 4321", uid)
	}
}

// oneLine fails unless stderr is one line that holds every part.
func oneLine(t *testing.T, what string, code int, stderr string, parts ...string) {
	t.Helper()
	t.Logf("%s: %s", what, stderr)
	if code != ExitFatal || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("%s: exit %d, want %d and one line:\n%s", what, code, ExitFatal, stderr)
	}
	for _, p := range parts {
		if !strings.Contains(stderr, p) {
			t.Errorf("%s: the error does not say %q:\n%s", what, p, stderr)
		}
	}
}

// sudo -n asking for a password, for a user not in sudoers and for a
// rule without NOPASSWD, is one line naming the host and the sudoers
// line to add; adding the line it names, as it is written there, makes
// the next sync work.
func TestSudoPasswordRequired(t *testing.T) {
	s := newSudoSetup(t, sshtest.Options{})
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "v1"})
	dest := sshtest.Alias + ":" + s.root
	host := s.host()

	code, _, stderr := s.sync(t, src, dest)
	oneLine(t, "not in sudoers", code, stderr, "sudo on "+host+" asks for a password", s.readmeRule(), "visudo")

	// A rule for the command, but with a password: only sudo's listing
	// tells it apart when the user has a password-less rule too.
	withPassword := sshtest.AllowSudo(t, s.user, s.user+" ALL=(root) "+s.prog+" agent --restrict --allow-owner "+s.root+"\n"+s.user+" ALL=(root) NOPASSWD: /usr/bin/id")
	code, _, stderr = s.sync(t, src, dest)
	oneLine(t, "rule with a password", code, stderr, "only with a password", "NOPASSWD", s.readmeRule())

	line := regexp.MustCompile(`"visudo -f /etc/sudoers.d/gosync": (.*)$`).FindStringSubmatch(strings.TrimSpace(stderr))
	if line == nil {
		t.Fatalf("no sudoers line in %q", stderr)
	}
	withPassword() // sudo takes the last rule that matches
	sshtest.AllowSudo(t, s.user, line[1])
	if code, _, stderr := s.sync(t, src, dest); code != 0 {
		t.Fatalf("sync after adding the line the error gave: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(s.root, "index.html")); err != nil {
		t.Fatal(err)
	}
}

// A user whose password-less rules name other commands (another web
// root, the unrestricted agent) is told that this one is not allowed.
func TestSudoCommandNotAllowed(t *testing.T) {
	s := newSudoSetup(t, sshtest.Options{})
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "v1"})
	sshtest.AllowSudo(t, s.user, s.user+" ALL=(root) NOPASSWD: "+s.prog+" agent --restrict --allow-owner /srv/other, "+s.prog+" agent "+s.root)
	start := time.Now()
	code, _, stderr := s.sync(t, src, sshtest.Alias+":"+s.root)
	oneLine(t, "not allowed", code, stderr, "sudo on "+s.host()+" does not let "+s.user+" run", s.readmeRule())
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the refusal took %s", d)
	}
	if entries, _ := os.ReadDir(s.root); len(entries) != 0 {
		t.Errorf("something was written: %v", entries)
	}
}

// No sudo on the server, and no gosync where --remote-gosync says: one
// line each, naming the host and what to install.
func TestSudoMissing(t *testing.T) {
	t.Run("no sudo", func(t *testing.T) {
		empty := sshtest.PublicDir(t)
		s := newSudoSetup(t, sshtest.Options{PathPrefix: empty, NoStandardPath: true})
		src := t.TempDir()
		code, _, stderr := s.sync(t, src, sshtest.Alias+":"+s.root)
		oneLine(t, "no sudo", code, stderr, s.host()+" has no sudo", "apt-get install sudo", s.readmeRule())
	})
	t.Run("no program", func(t *testing.T) {
		s := newSudoSetup(t, sshtest.Options{})
		src := t.TempDir()
		missing := filepath.Join(filepath.Dir(s.prog), "missing", "gosync")
		// sudo looks for the program after the user is allowed to run
		// it: without a rule it only asks for a password.
		sshtest.AllowSudo(t, s.user, sshx.SudoRule(s.user, missing, s.root))
		code, _, stderr := gosync(t, "sync", "--remote-sudo", "--remote-gosync", missing, src, sshtest.Alias+":"+s.root)
		oneLine(t, "no program", code, stderr, "sudo on "+s.host()+": there is no "+missing, "install -o root")
	})
}

// sudo resets the environment: the agent's HOME is root's, so /root is
// refused as a mirror (a dry run: nothing would be written even if it
// were not), while the SSH user's own HOME plays no part.
func TestSudoAgentHomeIsRoots(t *testing.T) {
	s := newSudoSetup(t, sshtest.Options{})
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "v1"})
	sshtest.AllowSudo(t, s.user, sshx.SudoRule(s.user, s.prog, "/root"))
	code, _, stderr := s.sync(t, "-n", src, sshtest.Alias+":/root")
	oneLine(t, "root's home", code, stderr, "it contains the home directory /root")
}
