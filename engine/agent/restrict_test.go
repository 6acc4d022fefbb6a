//go:build !windows

package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/wire"
)

// open runs Serve with opt over real pipes (a greeting must not wait for
// the client to read), sends hello and returns the client's end, the
// greeting (nil if none) and the answer.
func open(t *testing.T, opt Options, hello wire.Hello) (c *wire.Conn, greeting, answer *wire.Hello) {
	t.Helper()
	ar, cw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cr, aw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Serve(ctx, ar, aw, opt)
		aw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		cw.Close()
		cr.Close()
		<-done
		ar.Close()
	})
	c = wire.NewConn(cr, cw)
	hello.Version = wire.Version
	if err := c.WriteMsg(&hello); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	for answer == nil {
		m, err := c.ReadMsg()
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		h := m.(*wire.Hello)
		if h.Flags&wire.FlagGreeting != 0 {
			if greeting != nil {
				t.Fatal("two greetings")
			}
			greeting = h
			continue
		}
		answer = h
	}
	return c, greeting, answer
}

// A restricted agent greets before it reads anything and says what it
// is; an unrestricted one started by the client does not greet.
func TestRestrictedGreets(t *testing.T) {
	root := t.TempDir()
	_, g, a := open(t, Options{Root: root, Restriction: Restriction{Restrict: true}}, wire.Hello{})
	if g == nil || g.Flags&wire.FlagRestricted == 0 || g.Flags&wire.FlagAllowRun != 0 || g.Flags&wire.FlagRoot != 0 {
		t.Fatalf("greeting %+v: want FlagRestricted, no FlagAllowRun, no FlagRoot", g)
	}
	if a.Err != "" || a.Flags&wire.FlagRestricted == 0 {
		t.Fatalf("answer %+v", a)
	}
	_, g, _ = open(t, Options{Root: root, Restriction: Restriction{Restrict: true, AllowRun: true, Forced: true}}, wire.Hello{})
	if g == nil || g.Flags&(wire.FlagAllowRun|wire.FlagForced) != wire.FlagAllowRun|wire.FlagForced {
		t.Fatalf("greeting %+v: want FlagAllowRun and FlagForced", g)
	}
	if _, g, _ = open(t, Options{Root: root}, wire.Hello{}); g != nil {
		t.Fatalf("an agent started by the client greeted: %+v", g)
	}
}

// The policy filter: whatever the client sends, a restricted agent
// applies no setuid bit, no setgid or sticky bit to a file (a
// directory keeps those two), changes no owner, and runs
// no command.
func TestRestrictedStripsAndRefuses(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "tool"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, _, _ := open(t, Options{Root: root, Restriction: Restriction{Restrict: true, AllowOwner: false}}, wire.Hello{})
	owner := wire.Meta{Owner: true, Uid: 4321, Gid: 4321, Mtime: fstree.TimeFromNs(1e18)}
	m1, m2 := owner, owner
	m1.Perm, m2.Perm = 0o6755, 0o4755
	msgs := []wire.Msg{
		&wire.Mkdir{ID: 1, Path: "shared", Meta: wire.Meta{Perm: 0o7777, Owner: true, Uid: 4321, Gid: 4321}},
		&wire.SetMeta{ID: 2, Path: "tool", Kind: fstree.File, Meta: m1},
		&wire.Symlink{ID: 3, Path: "link", Target: "tool", Meta: m2},
		&wire.Run{ID: 4, Cmd: "touch ran"},
		&wire.Barrier{ID: 5},
	}
	for _, m := range msgs {
		if err := c.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	var run *wire.RunDone
	for {
		m, err := c.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		switch m := m.(type) {
		case *wire.RunDone:
			run = m
		case *wire.Error:
			t.Errorf("operation %d on %s failed: %s", m.ID, m.Path, m.Msg)
		}
		if _, ok := m.(*wire.Done); ok {
			break
		}
	}
	if run == nil || run.Code != -1 || !strings.Contains(run.Output, "--allow-run") {
		t.Errorf("run answer %+v, want a refusal naming --allow-run", run)
	}
	if _, err := os.Lstat(filepath.Join(root, "ran")); err == nil {
		t.Error("the refused command ran")
	}
	for name, want := range map[string]uint32{"shared": 0o3777, "tool": 0o755} {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(root, name), &st); err != nil {
			t.Fatal(err)
		}
		if got := uint32(st.Mode) & 0o7777; got != want {
			t.Errorf("%s: mode %o, want %o", name, got, want)
		}
		if st.Uid == 4321 || st.Gid == 4321 {
			t.Errorf("%s: owner changed to %d:%d", name, st.Uid, st.Gid)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(root, "link"), &st); err != nil || st.Uid == 4321 {
		t.Errorf("link: %v, owner %d", err, st.Uid)
	}
}

// As root with --allow-owner the agent says it sets owners and does.
func TestRestrictedAllowOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("owners are set only by an agent running as root")
	}
	root := t.TempDir()
	c, _, a := open(t, Options{Root: root, Restriction: Restriction{Restrict: true, AllowOwner: true}}, wire.Hello{})
	if a.Flags&wire.FlagRoot == 0 {
		t.Fatalf("answer %+v: want FlagRoot", a)
	}
	c.WriteMsg(&wire.Mkdir{ID: 1, Path: "d", Meta: wire.Meta{Perm: 0o6755, Owner: true, Uid: 4321, Gid: 4321}})
	c.WriteMsg(&wire.Barrier{ID: 2})
	c.Flush()
	if m, err := c.ReadMsg(); err != nil {
		t.Fatal(err)
	} else if _, ok := m.(*wire.Done); !ok {
		t.Fatalf("got %#v", m)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(root, "d"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 4321 || st.Mode&0o7777 != 0o2755 {
		t.Fatalf("owner %d mode %o, want 4321 and 2755 (setuid stripped)", st.Uid, st.Mode&0o7777)
	}
}

// The root is the server's: the client may name it, or nothing; any
// other directory is refused at the handshake, whether the agent is
// restricted or only forced.
func TestFixedRootMapping(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Chdir(home) // where sshd starts a session
	root := filepath.Join(home, "www")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "www-link")
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	for _, r := range []Restriction{{Restrict: true}, {Forced: true}} {
		for asked, ok := range map[string]bool{
			"": true, ".": true, root: true, root + "/": true, "~/www": true, "www": true, link: true,
			"~/other": false, "/var/www": false, home: false, "www/sub": false, root + "/..": false,
		} {
			_, _, a := open(t, Options{Root: root, Restriction: r}, wire.Hello{Root: asked})
			if ok && a.Err != "" {
				t.Errorf("%+v: asked for %q: refused: %s", r, asked, a.Err)
			}
			if !ok && !strings.Contains(a.Err, "serves only "+root) {
				t.Errorf("%+v: asked for %q: answer %q, want a refusal naming %s", r, asked, a.Err, root)
			}
		}
	}
	// An agent started by the client serves the root it was given.
	if _, _, a := open(t, Options{Root: root}, wire.Hello{Root: "/var/www"}); a.Err != "" {
		t.Fatalf("unrestricted agent: %s", a.Err)
	}
}

// A restricted root that holds the agent user's home would let the
// client rewrite its authorized_keys: refused.
func TestRestrictedRootAroundHome(t *testing.T) {
	top := t.TempDir()
	t.Setenv("HOME", filepath.Join(top, "home", "deploy"))
	_, _, a := open(t, Options{Root: filepath.Join(top, "home"), Restriction: Restriction{Restrict: true}}, wire.Hello{})
	if !strings.Contains(a.Err, "contains the home directory") {
		t.Fatalf("answer %q, want a refusal", a.Err)
	}
}

func TestParseArgs(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "SSH_ORIGINAL_COMMAND" {
				return v
			}
			return ""
		}
	}
	root, r, err := ParseArgs([]string{"--restrict", "--allow-run", "/srv/www"}, env("sh -c probe"))
	if err != nil || root != "/srv/www" || r != (Restriction{Restrict: true, AllowRun: true, Forced: true}) {
		t.Fatalf("got %q %+v %v", root, r, err)
	}
	if root, r, err := ParseArgs([]string{"--", "-odd"}, env("")); err != nil || root != "-odd" || r != (Restriction{}) {
		t.Fatalf("got %q %+v %v", root, r, err)
	}
	for _, bad := range [][]string{{}, {"--restrict"}, {"--allow-run", "/x"}, {"--restrict", "--allow-owner", "--no-owner", "/x"}, {"--bogus", "/x"}, {"/a", "/b"}} {
		if _, _, err := ParseArgs(bad, env("")); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
