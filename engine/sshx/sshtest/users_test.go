//go:build linux

package sshtest

import (
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// runAs runs cmd in a new SSH session on s as its configured user.
func runAs(t *testing.T, s *Server, name, cmd string) string {
	t.Helper()
	key, err := os.ReadFile(s.UserKey)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", s.Addr(), &ssh.ClientConfig{
		User:            name,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(s.HostKey),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		t.Fatalf("log in as %s: %v", name, err)
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var stderr bytes.Buffer
	sess.Stderr = &stderr
	out, err := sess.Output(cmd)
	if err != nil {
		t.Fatalf("%s as %s: %v: %s", cmd, name, err, stderr.Bytes())
	}
	return strings.TrimSpace(string(out))
}

// failingEnv makes the test binary run TestUserCleanupAfterFailure's
// helper: it makes a user, a group and a sudoers rule, then fails.
const failingEnv = "GOSYNC_SSHTEST_FAILING_USER"

// A test logs in as a user the harness made, with its own group, a
// second group it was added to, its home and its cache; the client's
// configuration names it, and root cannot log in with the key.
func TestLoginAsTestUser(t *testing.T) {
	name := UserName("gst")
	group := UserName("gsw")
	t.Run("session", func(t *testing.T) {
		s := StartWith(t, Options{User: name})
		if s.Login == nil || s.Login.Name != name || s.Login.UID == 0 {
			t.Fatalf("Login = %+v", s.Login)
		}
		gid := AddGroup(t, group, name)
		got := runAs(t, s, name, `id -u; id -G; echo "$HOME"; pwd`)
		want := strings.Join([]string{strconv.Itoa(s.Login.UID), strconv.Itoa(s.Login.GID) + " " + strconv.Itoa(gid), s.Login.Home, s.Login.Home}, "\n")
		if got != want {
			t.Fatalf("session as %s:\n%s\nwant\n%s", name, got, want)
		}
		if s.RemoteHome != s.Login.Home || s.RemoteCache != filepath.Join(s.Login.Home, ".cache") {
			t.Errorf("RemoteHome %s RemoteCache %s", s.RemoteHome, s.RemoteCache)
		}
		if u := currentUser(t); u != name {
			t.Errorf("the client config logs in as %s, want %s", u, name)
		}
		AllowSudo(t, name, name+" ALL=(root) NOPASSWD: /usr/bin/id -u")
		if got := runAs(t, s, name, `sudo -n /usr/bin/id -u`); got != "0" {
			t.Errorf("sudo -n id -u as %s: %q, want 0", name, got)
		}
		if _, err := ssh.Dial("tcp", s.Addr(), &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			b, _ := os.ReadFile(s.UserKey)
			k, err := ssh.ParsePrivateKey(b)
			return []ssh.Signer{k}, err
		})}, HostKeyCallback: ssh.FixedHostKey(s.HostKey), Timeout: 10 * time.Second}); err == nil {
			t.Error("root logged in with the test user's key")
		}
	})
	gone(t, name, group)
}

// gone fails if the user, the group, the home or a sudoers rule of the
// harness is still there.
func gone(t *testing.T, name, group string) {
	t.Helper()
	if _, err := user.Lookup(name); err == nil {
		t.Errorf("user %s still exists", name)
	}
	if _, err := user.LookupGroup(name); err == nil {
		t.Errorf("group %s still exists", name)
	}
	if _, err := user.LookupGroup(group); err == nil {
		t.Errorf("group %s still exists", group)
	}
	if _, err := os.Stat(filepath.Join("/home", name)); err == nil {
		t.Errorf("home of %s still exists", name)
	}
	if files, _ := filepath.Glob(filepath.Join(sudoersDir, "gosync-sshtest-"+name+"*")); len(files) > 0 {
		t.Errorf("sudoers rules left: %v", files)
	}
}

// What a failing test made is removed all the same: the user (with a
// session still running), its group, the extra group, the sudoers rule.
func TestUserCleanupAfterFailure(t *testing.T) {
	if os.Getenv(failingEnv) != "" {
		return // the helper below runs in the child
	}
	needRoot(t, "a test user")
	NeedSudo(t)
	name, group := UserName("gst"), UserName("gsw")
	cmd := exec.Command(os.Args[0], "-test.run=^TestFailingUserHelper$", "-test.v")
	cmd.Env = append(os.Environ(), failingEnv+"="+name+" "+group)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--- FAIL: TestFailingUserHelper") || !strings.Contains(string(out), "made everything") {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	gone(t, name, group)
}

func TestFailingUserHelper(t *testing.T) {
	names := strings.Fields(os.Getenv(failingEnv))
	if len(names) != 2 {
		t.Skip("runs only as TestUserCleanupAfterFailure's helper")
	}
	s := StartWith(t, Options{User: names[0]})
	AddGroup(t, names[1], names[0])
	AllowSudo(t, names[0], names[0]+" ALL=(root) NOPASSWD: /bin/true")
	runAs(t, s, names[0], "sleep 600 </dev/null >/dev/null 2>&1 & echo started")
	t.Log("made everything")
	t.Fatal("failing on purpose")
}

// Two tests asking for the same user name take turns: the second gets
// it only once the first has removed the account, so neither sees the
// other's.
func TestSameUserNameTakesTurns(t *testing.T) {
	needRoot(t, "a test user")
	name := UserName("gst")
	first, second := make(chan struct{}), make(chan struct{})
	var firstCleaning atomic.Bool
	t.Run("group", func(t *testing.T) {
		t.Run("a", func(t *testing.T) {
			t.Parallel()
			u := addUser(t, name)
			// Runs before addUser's cleanups (removal, then the lock).
			t.Cleanup(func() { firstCleaning.Store(true) })
			mine := filepath.Join(u.Home, "first-test-was-here")
			if err := os.WriteFile(mine, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			close(first)
			// Give the second test time to take the user over if
			// nothing stopped it (no assertion on time: a slow machine
			// can only hide a missing lock, never fail a working one).
			<-second
			time.Sleep(time.Second)
			if _, err := os.Stat(mine); err != nil {
				t.Errorf("the second test took user %s over while the first held it: %v", name, err)
			}
		})
		t.Run("b", func(t *testing.T) {
			t.Parallel()
			<-first
			close(second)
			addUser(t, name)
			if !firstCleaning.Load() {
				t.Errorf("the second test got user %s while the first still held it", name)
			}
		})
	})
	gone(t, name, UserName("none"))
}
