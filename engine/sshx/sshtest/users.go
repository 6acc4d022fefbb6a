//go:build linux

package sshtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// User is a login account that the harness made for a test
// (Options.User): a home directory, a group of its own, no password.
type User struct {
	Name     string
	UID, GID int // GID: the user's own group, made with it
	Home     string
}

// marker is the comment (GECOS) of accounts the harness makes: an account
// without it is someone's real one and is never used or removed.
const marker = "gosync sshtest"

// accountName is what useradd and groupadd accept everywhere, kept short.
var accountName = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,30}$`)

// needRoot skips a test that must create accounts or sudoers rules when
// it does not run as root; under CI=true (CI runs as root) it fails.
func needRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s needs root; CI runs the tests as root", what)
	}
	t.Skipf("%s needs root", what)
}

// hold takes a lock named name across goroutines and processes: an
// abstract unix socket, which only one listener can bind and which the
// kernel frees when its holder dies, so a killed test leaves nothing on
// disk and no stale lock. It waits up to wait.
func hold(t testing.TB, name string, wait time.Duration) io.Closer {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		l, err := net.Listen("unix", "@gosync-sshtest-"+name)
		if err == nil {
			return l
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("lock %s: %v", name, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock %s: still held by another test after %s", name, wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// accounts runs an account command (useradd, userdel, groupadd, ...)
// under a lock shared by all tests: the shadow tools refuse to run while
// another holds /etc/passwd.
func accounts(t testing.TB, args ...string) ([]byte, error) {
	t.Helper()
	l := hold(t, "accounts", 2*time.Minute)
	defer l.Close()
	return exec.Command(args[0], args[1:]...).CombinedOutput()
}

// addUser makes the login user name for one test, or takes over one a
// killed test left (it carries the marker), and removes it, its group
// and its home when the test ends, failed or not, after the cleanups
// registered later (the server's Stop, which ends its processes). Tests
// in any package that use the same name wait for each other.
func addUser(t testing.TB, name string) *User {
	t.Helper()
	needRoot(t, "a test user")
	if !accountName.MatchString(name) {
		t.Fatalf("sshtest user %q: want a short lower-case account name", name)
	}
	lock := hold(t, "user-"+name, 5*time.Minute)
	t.Cleanup(func() { lock.Close() })
	if u, err := user.Lookup(name); err == nil {
		if !strings.HasPrefix(gecos(name), marker) {
			t.Fatalf("user %s exists on this machine and was not made by sshtest: pick another name (uid %s)", name, u.Uid)
		}
		removeUser(t, name) // left by a killed test
	}
	removeSudoers(t, name)
	if out, err := accounts(t, "useradd", "--create-home", "--user-group", "--shell", "/bin/sh",
		"--password", "*", "--comment", marker, name); err != nil {
		t.Fatalf("useradd %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { removeUser(t, name); removeSudoers(t, name) })
	u, err := lookupUser(name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// gecos is the comment field of name in /etc/passwd.
func gecos(name string) string {
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 5 && f[0] == name {
			return f[4]
		}
	}
	return ""
}

// removeUser kills what still runs as the user (userdel refuses while a
// process does), then removes the account, its group and its home.
func removeUser(t testing.TB, name string) {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		return
	}
	uid, _ := strconv.Atoi(u.Uid)
	for range 50 {
		pids := processesOf(uid)
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		reap(pids)
	}
	if out, err := accounts(t, "userdel", "--remove", name); err != nil {
		// Exit 12: the home could not be removed, or (Debian) the mail
		// spool did not exist; the account is gone either way.
		if _, lerr := user.Lookup(name); lerr == nil {
			t.Errorf("userdel %s: %v: %s", name, err, out)
		}
	}
	os.Remove(filepath.Join("/run/sudo/ts", name)) // sudo's time stamp, if it made one
}

// processesOf lists the processes whose real uid is uid.
func processesOf(uid int) []int {
	var pids []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(d + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "Uid:" {
				if f[1] == strconv.Itoa(uid) {
					pids = append(pids, pid)
				}
				break
			}
		}
	}
	return pids
}

// AddGroup makes the group name for the test, with members as its
// supplementary members (a www-data-like group that the login user
// belongs to), and removes it when the test ends, failed or not. It
// returns the group's id. A group of that name must not exist: the
// harness never takes over or removes a group it did not make. Members
// see the group from their next login (each SSH connection is one).
func AddGroup(t testing.TB, name string, members ...string) int {
	t.Helper()
	needRoot(t, "a test group")
	if !accountName.MatchString(name) {
		t.Fatalf("sshtest group %q: want a short lower-case group name", name)
	}
	lock := hold(t, "group-"+name, 5*time.Minute)
	t.Cleanup(func() { lock.Close() })
	if g, err := user.LookupGroup(name); err == nil {
		t.Fatalf("group %s (gid %s) exists already; sshtest only makes new groups (groupdel %s if a killed test left it)", name, g.Gid, name)
	}
	if out, err := accounts(t, "groupadd", name); err != nil {
		t.Fatalf("groupadd %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := accounts(t, "groupdel", name); err != nil {
			t.Errorf("groupdel %s: %v: %s", name, err, out)
		}
	})
	for _, m := range members {
		if out, err := accounts(t, "usermod", "--append", "--groups", name, m); err != nil {
			t.Fatalf("add %s to group %s: %v: %s", m, name, err, out)
		}
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		t.Fatal(err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	return gid
}

// sudoersDir is where AllowSudo writes its rules (Debian's sudoers
// includes it with @includedir).
const sudoersDir = "/etc/sudoers.d"

// NeedSudo skips the test when sudo or visudo is missing, except under
// CI=true, where it fails (.ci/run installs sudo).
func NeedSudo(t testing.TB) {
	t.Helper()
	needRoot(t, "a sudoers rule")
	for _, p := range []string{"sudo", "visudo"} {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found; CI must install sudo (see .ci/run)", p)
			}
			t.Skipf("%s not found; install sudo to run this test", p)
		}
	}
}

// AllowSudo adds rule, a line of sudoers, for user name until the test
// ends, failed or not: checked with visudo -cf first, then written to a
// file of its own in /etc/sudoers.d (named after the user plus a random
// part, without a dot, which sudo would skip). The user must be one the
// harness made (Options.User): a killed test's rules for it are removed
// when the name is used again. remove takes the rule away earlier (sudo
// takes the last rule that matches, and files are read in name order,
// so a test that changes a rule must remove the old one).
func AllowSudo(t testing.TB, name, rule string) (remove func()) {
	t.Helper()
	NeedSudo(t)
	if !strings.HasPrefix(gecos(name), marker) {
		t.Fatalf("AllowSudo: %s is not a user made by sshtest", name)
	}
	tmp := filepath.Join(t.TempDir(), "sudoers")
	if err := os.WriteFile(tmp, []byte(rule+"\n"), 0o440); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("visudo", "-cf", tmp).CombinedOutput(); err != nil {
		t.Fatalf("visudo -cf rejects %q: %v: %s", rule, err, out)
	}
	var r [6]byte
	rand.Read(r[:])
	file := filepath.Join(sudoersDir, "gosync-sshtest-"+name+"-"+hex.EncodeToString(r[:]))
	// Written whole under a name sudo skips (it has a dot), then renamed:
	// sudo never reads half a rule.
	part := file + ".part"
	if err := os.WriteFile(part, []byte(rule+"\n"), 0o440); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(part, file); err != nil {
		os.Remove(part)
		t.Fatal(err)
	}
	var once sync.Once
	remove = func() {
		once.Do(func() {
			if err := os.Remove(file); err != nil {
				t.Errorf("remove the test's sudoers rule: %v", err)
			}
		})
	}
	t.Cleanup(remove)
	return remove
}

// removeSudoers removes the rules AllowSudo wrote for name.
func removeSudoers(t testing.TB, name string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(sudoersDir, "gosync-sshtest-"+name+"-*"))
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			t.Errorf("remove %s: %v", f, err)
		}
	}
}

// InstallProgram copies the executable src to a directory of its own
// that root owns (mode 755), as name, and returns its path: a program
// that a test user may run but not replace, such as the root-owned
// gosync a sudoers rule names. It is removed when the test ends.
func InstallProgram(t testing.TB, src, name string) string {
	t.Helper()
	dir := PublicDir(t)
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(dir, name)
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// PublicDir returns a new empty directory in the system's temporary
// directory, owned by the test's user (root in CI) with mode 755, which
// the login user can enter but not write: t.TempDir() is private to the
// test's user. Chown it to make it the login user's. It is removed, with
// what it holds, when the test ends.
func PublicDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gosync-sshtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// UserName returns prefix plus a random part: a user or group name that
// no other test, in this package or another, uses at the same time.
func UserName(prefix string) string {
	var r [4]byte
	rand.Read(r[:])
	return fmt.Sprintf("%s%s", prefix, hex.EncodeToString(r[:]))
}

// lookupUser describes an existing account.
func lookupUser(name string) (*User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("sshtest: login user: %w", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("sshtest: login user %s: %w", name, err)
	}
	return &User{Name: name, UID: uid, GID: gid, Home: u.HomeDir}, nil
}
