//go:build linux

package sshx_test

import (
	"context"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/endpoint"
	"github.com/gosync/gosync/engine/sshx"
	"github.com/gosync/gosync/engine/sshx/sshtest"
)

// dialOK connects to alias and closes again, failing the test on error.
func dialOK(t *testing.T, alias string, opt sshx.Options) {
	t.Helper()
	ep := endpoint.Endpoint{Raw: alias + ":x", Host: alias, Path: filepath.Join(t.TempDir(), "m")}
	m, err := sshx.DialMirror(context.Background(), ep, opt, self(t), engine.ClientOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
}

func dialAlias(t *testing.T, alias string, opt sshx.Options) error {
	t.Helper()
	ep := endpoint.Endpoint{Raw: alias + ":x", Host: alias, Path: filepath.Join(t.TempDir(), "m")}
	m, err := sshx.DialMirror(context.Background(), ep, opt, self(t), engine.ClientOptions{Create: true})
	if err == nil {
		m.Close()
		t.Fatal("connection succeeded")
	}
	return err
}

// An ssh-agent speaking the real protocol on a unix socket holds the only
// key; no key file is configured.
func TestSSHAgentAuth(t *testing.T) {
	srv := sshtest.Start(t)
	raw, err := os.ReadFile(srv.UserKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.ParseRawPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(srv.UserKey)
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: key}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { agent.ServeAgent(keyring, c); c.Close() }()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
	srv.AppendConfig(t, "\nHost via-agent\n  HostName 127.0.0.1\n  Port "+port(srv)+"\n  StrictHostKeyChecking yes\n")
	dialOK(t, "via-agent", sshx.Options{})
}

func port(srv *sshtest.Server) string { _, p, _ := net.SplitHostPort(srv.Addr()); return p }

func TestEncryptedKey(t *testing.T) {
	srv := sshtest.Start(t)
	raw, _ := os.ReadFile(srv.UserKey)
	key, err := ssh.ParseRawPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKeyWithPassphrase(key, "", []byte("sesame"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(srv.UserKey, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	err = dialErr(t, sshx.Options{})
	if !errors.Is(err, sshx.ErrAuth) || !strings.Contains(err.Error(), "is encrypted and there is no terminal to ask its passphrase") {
		t.Fatalf("err = %v", err)
	}
	err = dialErr(t, sshx.Options{Passphrase: func(string) ([]byte, error) { return []byte("wrong"), nil }})
	if !strings.Contains(err.Error(), "wrong passphrase") {
		t.Fatalf("err = %v", err)
	}
	dialOK(t, sshtest.Alias, sshx.Options{Passphrase: func(string) ([]byte, error) { return []byte("sesame"), nil }})
}

func TestHashedKnownHosts(t *testing.T) {
	srv := sshtest.Start(t)
	hashed := knownhosts.HashHostname(knownhosts.Normalize(srv.Addr()))
	line := hashed + " " + string(ssh.MarshalAuthorizedKey(srv.HostKey))
	if err := os.WriteFile(srv.KnownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	dialOK(t, sshtest.Alias, sshx.Options{})
}

func TestUnresolvableHost(t *testing.T) {
	srv := sshtest.Start(t)
	srv.AppendConfig(t, "\nHost ghost\n  HostName no-such-host.invalid\n")
	err := dialAlias(t, "ghost", sshx.Options{})
	if !strings.Contains(err.Error(), `cannot resolve host name "no-such-host.invalid"`) {
		t.Fatalf("err = %v", err)
	}
}

// A server that accepts TCP but never speaks SSH: ConnectTimeout ends it.
func TestHandshakeTimeout(t *testing.T) {
	srv := sshtest.Start(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	srv.AppendConfig(t, "\nHost silent\n  HostName 127.0.0.1\n  Port "+p+"\n  ConnectTimeout 1\n")
	start := time.Now()
	err = dialAlias(t, "silent", sshx.Options{})
	if !strings.Contains(err.Error(), "timed out after 1s") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v despite ConnectTimeout 1", d)
	}
}

func TestRemotePathNotWritable(t *testing.T) {
	sshtest.Start(t)
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("x"), 0o644)
	ep := endpoint.Endpoint{Raw: sshtest.Alias + ":" + file + "/www", Host: sshtest.Alias, Path: file + "/www"}
	_, err := sshx.DialMirror(context.Background(), ep, sshx.Options{}, self(t), engine.ClientOptions{Create: true})
	if err == nil || !strings.Contains(err.Error(), "mirror directory "+file+"/www: not a directory") {
		t.Fatalf("err = %v", err)
	}
}

func TestPlatformMismatchMessage(t *testing.T) {
	// The mapping from uname to Go's names decides whether an upload is
	// possible; see AgentCommand for the message on a mismatch.
	for uname, want := range map[string]string{
		"Linux x86_64": "linux/amd64", "Linux aarch64": "linux/arm64", "Darwin arm64": "darwin/arm64", "FreeBSD amd64": "freebsd/amd64",
	} {
		if goos, goarch := sshx.Platform(uname); goos+"/"+goarch != want {
			t.Errorf("platform(%q) = %s/%s, want %s", uname, goos, goarch, want)
		}
	}
}
