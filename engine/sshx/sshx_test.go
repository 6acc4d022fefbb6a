//go:build linux

package sshx_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/endpoint"
	"github.com/gosync/gosync/engine/mirrortest"
	"github.com/gosync/gosync/engine/sshx"
	"github.com/gosync/gosync/engine/sshx/sshtest"
	"github.com/gosync/gosync/engine/treetest"
	"github.com/gosync/gosync/engine/wire"
)

func TestMain(m *testing.M) {
	sshtest.AgentMain()
	os.Exit(m.Run())
}

func self(t *testing.T) sshx.Binary {
	t.Helper()
	bin, err := sshx.SelfBinary(wire.Version)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func dialer(t *testing.T, opt sshx.Options) mirrortest.Dial {
	bin := self(t)
	return func(t *testing.T, dir string, copt engine.ClientOptions) engine.Mirror {
		ep := endpoint.Endpoint{Raw: sshtest.Alias + ":" + dir, Host: sshtest.Alias, Path: dir}
		m, err := sshx.DialMirror(context.Background(), ep, opt, bin, copt)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
}

func TestSSHMirror(t *testing.T) {
	sshtest.Start(t)
	mirrortest.Run(t, dialer(t, sshx.Options{}))
}

func TestAgentUploadedOnceThenReused(t *testing.T) {
	srv := sshtest.Start(t)
	bin := self(t)
	cached := filepath.Join(srv.RemoteCache, "gosync", bin.Hash[:16], "gosync")
	if _, err := os.Stat(cached); err == nil {
		t.Fatal("agent cached before first contact")
	}
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"a.txt": "a"})
	dst := filepath.Join(t.TempDir(), "dst")
	sync := func() {
		t.Helper()
		m := dialer(t, sshx.Options{})(t, dst, engine.ClientOptions{Create: true})
		defer m.Close()
		s, err := engine.ScanSource(context.Background(), src, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if r := engine.Sync(context.Background(), s, m, engine.Options{MaxDelete: -1}); r.Err != nil || len(r.Failed) > 0 {
			t.Fatalf("sync: %v %v", r.Err, r.Failed)
		}
	}
	sync()
	fi, err := os.Stat(cached)
	if err != nil {
		t.Fatalf("agent not uploaded to the cache: %v", err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("uploaded agent mode %v", fi.Mode())
	}
	// Private to the user: nobody else can swap the agent it runs.
	if di, err := os.Stat(filepath.Dir(cached)); err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("cache directory: %v %v", di.Mode(), err)
	}
	// Mark the cached copy: a second upload would replace the file.
	before := fi.ModTime()
	sync()
	fi2, _ := os.Stat(cached)
	if !fi2.ModTime().Equal(before) {
		t.Fatal("agent uploaded again instead of reused")
	}
	treetest.Equal(t, src, dst, treetest.Options{})
}

// dialErr connects to the test server, expecting a failure.
func dialErr(t *testing.T, opt sshx.Options) error {
	t.Helper()
	return dialAlias(t, sshtest.Alias, opt)
}

func TestUnknownHostKeyRefused(t *testing.T) {
	srv := sshtest.Start(t)
	os.Remove(srv.KnownHosts)
	err := dialErr(t, sshx.Options{})
	if !errors.Is(err, sshx.ErrHostKey) || !strings.Contains(err.Error(), "unknown host key ssh-ed25519 SHA256:") || !strings.Contains(err.Error(), "--accept-new-host-key") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(srv.RemoteCache); err == nil {
		t.Fatal("something was written to a host whose key was refused")
	}
	// Accepting records the key; the next connection checks against it.
	ep := endpoint.Endpoint{Raw: "x", Host: sshtest.Alias, Path: t.TempDir()}
	m, err := sshx.DialMirror(context.Background(), ep, sshx.Options{AcceptNew: true}, self(t), engine.ClientOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	kh, _ := os.ReadFile(srv.KnownHosts)
	if !strings.Contains(string(kh), "[127.0.0.1]:") {
		t.Fatalf("known_hosts = %q", kh)
	}
}

func TestChangedHostKeyRefused(t *testing.T) {
	srv := sshtest.Start(t)
	other := sshtest.NewKey(t, filepath.Join(t.TempDir(), "other"))
	line := "[127.0.0.1]:" + strings.TrimPrefix(srv.Addr(), "127.0.0.1:") + " " + string(sshMarshal(other))
	if err := os.WriteFile(srv.KnownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	// Even with accept-new, a changed key is refused.
	err := dialErr(t, sshx.Options{AcceptNew: true})
	if !errors.Is(err, sshx.ErrHostKey) || !strings.Contains(err.Error(), "HOST KEY CHANGED") || !strings.Contains(err.Error(), "ssh-keygen -R") {
		t.Fatalf("err = %v", err)
	}
}

func TestWrongUserKeyRefused(t *testing.T) {
	sshtest.Start(t)
	wrong := filepath.Join(t.TempDir(), "wrong")
	sshtest.NewKey(t, wrong)
	err := dialErr(t, sshx.Options{Identity: wrong})
	if !errors.Is(err, sshx.ErrAuth) || !strings.Contains(err.Error(), "tried key "+wrong) {
		t.Fatalf("err = %v", err)
	}
}

func TestProxyJump(t *testing.T) {
	srv := sshtest.Start(t)
	// Reach the target through the same sshd acting as jump host, with a
	// host name only the jump host can resolve for us.
	srv.AppendConfig(t, `
Host behind-jump
  HostName 127.0.0.1
  Port `+strings.TrimPrefix(srv.Addr(), "127.0.0.1:")+`
  ProxyJump `+sshtest.Alias+`
  IdentityFile ~/.ssh/id_ed25519
  StrictHostKeyChecking yes
`)
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"x/y.txt": "through the jump"})
	dst := filepath.Join(t.TempDir(), "dst")
	ep := endpoint.Endpoint{Raw: "behind-jump:" + dst, Host: "behind-jump", Path: dst}
	m, err := sshx.DialMirror(context.Background(), ep, sshx.Options{}, self(t), engine.ClientOptions{Create: true, Compress: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, _ := engine.ScanSource(context.Background(), src, nil, false)
	defer s.Close()
	if r := engine.Sync(context.Background(), s, m, engine.Options{MaxDelete: -1}); r.Err != nil {
		t.Fatal(r.Err)
	}
	treetest.Equal(t, src, dst, treetest.Options{})
}

func TestConnectionRefused(t *testing.T) {
	srv := sshtest.Start(t)
	srv.Kill()
	err := dialErr(t, sshx.Options{})
	if !strings.Contains(err.Error(), "connection refused at 127.0.0.1") {
		t.Fatalf("err = %v", err)
	}
}
