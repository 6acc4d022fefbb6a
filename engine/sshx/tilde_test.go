//go:build linux

package sshx_test

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/endpoint"
	"github.com/gosync/gosync/engine/sshx"
	"github.com/gosync/gosync/engine/sshx/sshtest"
	"github.com/gosync/gosync/engine/treetest"
)

// The agent command built for a root, run on the test sshd with
// /bin/echo standing in for gosync, shows what the remote shell made of
// the root: ~ expanded there, everything else literal.
func TestTildeExpandedByRemoteShell(t *testing.T) {
	srv := sshtest.Start(t)
	c, err := sshx.Dial(context.Background(), sshtest.Alias, sshx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "injected")
	tests := []struct{ root, want string }{
		{"~", srv.RemoteHome},
		{"~/", srv.RemoteHome + "/"},
		{"~/www", srv.RemoteHome + "/www"},
		{"~" + me.Username + "/www", me.HomeDir + "/www"},
		{"~/a b/it's/*/$(touch " + marker + ")/`touch " + marker + "`/$HOME", srv.RemoteHome + "/a b/it's/*/$(touch " + marker + ")/`touch " + marker + "`/$HOME"},
		{"~/x;touch " + marker, srv.RemoteHome + "/x;touch " + marker},
		{"www/~x", "www/~x"},
		{"/srv/it's", "/srv/it's"},
	}
	for _, tt := range tests {
		cmd, err := sshx.AgentCommand(self(t), tt.root, "/bin/echo")
		if err != nil {
			t.Fatalf("%q: %v", tt.root, err)
		}
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		out, err := sess.Output(cmd)
		sess.Close()
		if err != nil {
			t.Fatalf("%q: %s: %v", tt.root, cmd, err)
		}
		if got := strings.TrimSuffix(string(out), "\n"); got != "agent "+tt.want {
			t.Errorf("root %q: remote got %q, want %q", tt.root, got, "agent "+tt.want)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a command in the remote path was executed")
	}
}

// An unknown ~user fails with a message, instead of an agent serving a
// directory literally named ~user; a name a shell could read as syntax
// never reaches the host.
func TestTildeUnknownOrInvalidUser(t *testing.T) {
	sshtest.Start(t)
	ep := endpoint.Endpoint{Raw: sshtest.Alias + ":~gosync-no-such-user/www", Host: sshtest.Alias, Path: "~gosync-no-such-user/www"}
	_, err := sshx.DialMirror(context.Background(), ep, sshx.Options{}, self(t), engine.ClientOptions{Create: true})
	if !errors.Is(err, sshx.ErrAgent) || !strings.Contains(err.Error(), "cannot expand ~gosync-no-such-user on the remote host") {
		t.Fatalf("err = %v", err)
	}
	if !sshx.Permanent(err) {
		t.Fatalf("Permanent(%v) = false", err)
	}
	ep = endpoint.Endpoint{Raw: "x", Host: sshtest.Alias, Path: "~$(id)/www"}
	_, err = sshx.DialMirror(context.Background(), ep, sshx.Options{}, self(t), engine.ClientOptions{Create: true})
	if !errors.Is(err, sshx.ErrRemotePath) || !sshx.Permanent(err) {
		t.Fatalf("err = %v", err)
	}
}

// gosync sync to host:~/www fills www in the remote user's home.
func TestTildeMirror(t *testing.T) {
	srv := sshtest.Start(t)
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "home", "a/b.txt": "b"})
	ep, err := endpoint.Parse(sshtest.Alias + ":~/www")
	if err != nil {
		t.Fatal(err)
	}
	m, err := sshx.DialMirror(context.Background(), ep, sshx.Options{}, self(t), engine.ClientOptions{Create: true})
	if err != nil {
		t.Fatal(err)
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
	treetest.Equal(t, src, filepath.Join(srv.RemoteHome, "www"), treetest.Options{})
}
