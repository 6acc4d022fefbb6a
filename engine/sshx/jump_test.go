//go:build linux

package sshx_test

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gosync/gosync/engine/sshx"
	"github.com/gosync/gosync/engine/sshx/sshtest"
)

// twoHops starts a jump host and a target host, both real sshd, and an
// ssh config reaching the target through the jump host that names no
// key and no known_hosts file: only the command line's apply. HOME is
// empty, so the defaults (~/.ssh/id_*, ~/.ssh/known_hosts) hold nothing.
func twoHops(t *testing.T) (jump, target *sshtest.Server, key, config string) {
	t.Helper()
	jump = sshtest.Start(t)
	sshd, err := sshtest.FindSSHD()
	if err != nil {
		t.Fatal(err)
	}
	target, err = sshtest.Launch(sshd, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(target.Stop)
	t.Setenv("HOME", t.TempDir())
	key = filepath.Join(t.TempDir(), "id")
	pub := sshMarshal(sshtest.NewKey(t, key))
	for _, s := range []*sshtest.Server{jump, target} {
		f, err := os.OpenFile(filepath.Join(s.Dir, "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(pub)
		f.Close()
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	config = filepath.Join(t.TempDir(), "config")
	text := "Host jumphost\n  HostName 127.0.0.1\n  Port " + strconv.Itoa(jump.Port) + "\n  User " + u.Username + "\n" +
		"Host target\n  HostName 127.0.0.1\n  Port " + strconv.Itoa(target.Port) + "\n  User " + u.Username + "\n  ProxyJump jumphost\n"
	if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return jump, target, key, config
}

func hostLine(s *sshtest.Server) string {
	return "[127.0.0.1]:" + strconv.Itoa(s.Port) + " " + string(sshMarshal(s.HostKey))
}

// The jump host is checked against --ssh-known-hosts and authenticated
// with --ssh-identity, like the target.
func TestProxyJumpTakesCommandLineKeys(t *testing.T) {
	jump, target, key, config := twoHops(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(hostLine(jump)+hostLine(target)), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := sshx.Dial(context.Background(), "target", sshx.Options{ConfigFile: config, Identity: key, KnownHosts: kh})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// --accept-new-host-key records the jump host's key too, in the
// --ssh-known-hosts file; the next connection checks against it.
func TestProxyJumpAcceptsNewHostKeys(t *testing.T) {
	jump, target, key, config := twoHops(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	opt := sshx.Options{ConfigFile: config, Identity: key, KnownHosts: kh, AcceptNew: true}
	c, err := sshx.Dial(context.Background(), "target", opt)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	b, _ := os.ReadFile(kh)
	for _, s := range []*sshtest.Server{jump, target} {
		if !strings.Contains(string(b), "[127.0.0.1]:"+strconv.Itoa(s.Port)+" ") {
			t.Errorf("key of 127.0.0.1:%d not recorded in %s: %q", s.Port, kh, b)
		}
	}
	// Without acceptance, what was recorded is enough.
	opt.AcceptNew = false
	c, err = sshx.Dial(context.Background(), "target", opt)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
