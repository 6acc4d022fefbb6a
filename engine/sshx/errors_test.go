//go:build linux

package sshx_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/endpoint"
	"github.com/gosync/gosync/engine/sshx"
	"github.com/gosync/gosync/engine/sshx/sshtest"
)

// known_hosts holds the key under the HostKeyAlias, as OpenSSH looks it
// up and records it: not under host and port.
func TestHostKeyAlias(t *testing.T) {
	srv := sshtest.Start(t)
	srv.AppendConfig(t, "\nHost aliased\n  HostName 127.0.0.1\n  Port "+port(srv)+"\n  IdentityFile "+srv.UserKey+
		"\n  UserKnownHostsFile "+srv.KnownHosts+"\n  HostKeyAlias web-cluster\n  StrictHostKeyChecking yes\n")
	hostKey := string(ssh.MarshalAuthorizedKey(srv.HostKey))
	writeKH := func(content string) {
		t.Helper()
		if err := os.WriteFile(srv.KnownHosts, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	writeKH("web-cluster " + hostKey)
	dialOK(t, "aliased", sshx.Options{})

	// The key under host and port does not count once an alias is set.
	writeKH("[127.0.0.1]:" + port(srv) + " " + hostKey)
	err := dialAlias(t, "aliased", sshx.Options{})
	if !errors.Is(err, sshx.ErrHostKey) || !strings.Contains(err.Error(), "unknown host key") || !strings.Contains(err.Error(), "HostKeyAlias web-cluster") {
		t.Fatalf("err = %v", err)
	}

	other := sshtest.NewKey(t, filepath.Join(t.TempDir(), "other"))
	writeKH("web-cluster " + string(ssh.MarshalAuthorizedKey(other)))
	err = dialAlias(t, "aliased", sshx.Options{AcceptNew: true})
	if !errors.Is(err, sshx.ErrHostKey) || !strings.Contains(err.Error(), "HOST KEY CHANGED") || !strings.Contains(err.Error(), "ssh-keygen -R web-cluster ") {
		t.Fatalf("err = %v", err)
	}

	// accept-new records the key under the alias.
	writeKH("")
	dialOK(t, "aliased", sshx.Options{AcceptNew: true})
	kh, _ := os.ReadFile(srv.KnownHosts)
	if !strings.HasPrefix(string(kh), "web-cluster ssh-ed25519 ") || strings.Contains(string(kh), "127.0.0.1") {
		t.Fatalf("known_hosts = %q", kh)
	}
	dialOK(t, "aliased", sshx.Options{})
}

// Permanent tells the failures that need the user from those that pass,
// on errors from real dials, also once wrapped as callers wrap them.
func TestPermanent(t *testing.T) {
	srv := sshtest.Start(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := refused.Addr().(*net.TCPAddr)
	refused.Close()
	srv.AppendConfig(t, fmt.Sprintf(`
Host refused
  HostName 127.0.0.1
  Port %d
Host silent
  HostName 127.0.0.1
  Port %d
  ConnectTimeout 1
Host ghost
  HostName no-such-host.invalid
Host badport
  Port 99999
`, refusedAddr.Port, silent.Addr().(*net.TCPAddr).Port))
	wrong := filepath.Join(t.TempDir(), "wrong")
	sshtest.NewKey(t, wrong)
	other := sshtest.NewKey(t, filepath.Join(t.TempDir(), "other"))
	knownHosts, _ := os.ReadFile(srv.KnownHosts)

	tests := []struct {
		name      string
		setup     func()
		host      string
		path      string
		opt       sshx.Options
		permanent bool
	}{
		{name: "wrong user key", opt: sshx.Options{Identity: wrong}, permanent: true},
		{name: "unknown host key", setup: func() { os.WriteFile(srv.KnownHosts, nil, 0o600) }, permanent: true},
		{name: "changed host key", setup: func() {
			os.WriteFile(srv.KnownHosts, []byte("[127.0.0.1]:"+port(srv)+" "+string(ssh.MarshalAuthorizedKey(other))), 0o600)
		}, permanent: true},
		{name: "mirror directory is a file", path: file + "/www", permanent: true},
		{name: "unknown ~user", path: "~gosync-no-such-user/www", permanent: true},
		{name: "bad ssh config", host: "badport", permanent: true},
		{name: "connection refused", host: "refused"},
		{name: "handshake timeout", host: "silent"},
		{name: "unresolvable host", host: "ghost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(srv.KnownHosts, knownHosts, 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.setup != nil {
				tt.setup()
			}
			host, path := tt.host, tt.path
			if host == "" {
				host = sshtest.Alias
			}
			if path == "" {
				path = filepath.Join(t.TempDir(), "m")
			}
			ep := endpoint.Endpoint{Raw: host + ":" + path, Host: host, Path: path}
			m, err := sshx.DialMirror(context.Background(), ep, tt.opt, self(t), engine.ClientOptions{Create: true})
			if err == nil {
				m.Close()
				t.Fatal("dial succeeded")
			}
			// As the command line and the watch loop wrap it.
			wrapped := fmt.Errorf("watch %s: %w", ep.Raw, err)
			for _, e := range []error{err, wrapped} {
				if got := sshx.Permanent(e); got != tt.permanent {
					t.Errorf("Permanent(%v) = %v, want %v", e, got, tt.permanent)
				}
			}
		})
	}

	// Not from a dial, but what the watch loop also sees.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ep := endpoint.Endpoint{Raw: "x", Host: sshtest.Alias, Path: t.TempDir()}
	if _, err := sshx.DialMirror(ctx, ep, sshx.Options{}, self(t), engine.ClientOptions{Create: true}); err == nil || sshx.Permanent(err) {
		t.Errorf("cancelled dial: err = %v, Permanent = %v", err, sshx.Permanent(err))
	}
	for _, e := range []error{nil, engine.ErrMirrorLost, fmt.Errorf("%w: probe: %w", sshx.ErrAgent, fmt.Errorf("x: %w", sshx.ErrUnresponsive))} {
		if sshx.Permanent(e) {
			t.Errorf("Permanent(%v) = true", e)
		}
	}
}
