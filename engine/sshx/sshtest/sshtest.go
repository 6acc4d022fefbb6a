// Package sshtest starts a real OpenSSH sshd on 127.0.0.1 for tests, with
// generated host and user keys and a temporary HOME holding .ssh/config
// and known_hosts, so any test reaches a remote mirror in one line:
//
//	srv := sshtest.Start(t)   // then sync to srv.Alias + ":" + dir
//
// Without sshd the test is skipped, except under CI=true, where it fails:
// CI must never pass by skipping the SSH tests.
package sshtest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gosync/gosync/engine/agent"
	"github.com/gosync/gosync/engine/wire"
)

// Alias is the ssh_config host name that reaches the test server.
const Alias = "gosync-test"

// Server is a running sshd.
type Server struct {
	Port        int
	Dir         string // the server's files
	Home        string // the client's HOME
	KnownHosts  string
	UserKey     string // private key file the client uses
	HostKey     ssh.PublicKey
	RemoteCache string // XDG_CACHE_HOME of remote sessions: uploaded agents land below it
	cmd         *exec.Cmd
}

// Start runs sshd for the test and points HOME at a client home that
// reaches it as Alias. It unsets SSH_AUTH_SOCK so the developer's agent
// keys play no part.
func Start(t testing.TB) *Server {
	t.Helper()
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		for _, p := range []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd"} {
			if _, err2 := os.Stat(p); err2 == nil {
				sshd, err = p, nil
			}
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sshd not found; CI must install openssh-server (see .ci/run)")
		}
		t.Skip("sshd not found; install openssh-server to run the SSH tests")
	}
	dir := t.TempDir()
	s := &Server{Dir: dir, Home: filepath.Join(dir, "home"), RemoteCache: filepath.Join(dir, "remote-cache")}
	hostKeyFile := filepath.Join(dir, "host_ed25519")
	s.HostKey = writeKey(t, hostKeyFile)
	if err := os.MkdirAll(filepath.Join(s.Home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	s.UserKey = filepath.Join(s.Home, ".ssh", "id_ed25519")
	userPub := writeKey(t, s.UserKey)
	writeFile(t, filepath.Join(dir, "authorized_keys"), string(ssh.MarshalAuthorizedKey(userPub)))
	if os.Geteuid() == 0 {
		os.MkdirAll("/run/sshd", 0o755) // privilege separation directory
	}
	s.Port = freePort(t)
	writeFile(t, filepath.Join(dir, "sshd_config"), fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s/sshd.pid
AuthorizedKeysFile %s/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin yes
AllowTcpForwarding yes
SetEnv XDG_CACHE_HOME=%s
LogLevel ERROR
`, s.Port, hostKeyFile, dir, dir, s.RemoteCache))
	s.cmd = exec.Command(sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	logFile, err := os.Create(filepath.Join(dir, "sshd.log"))
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		logFile.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "sshd.log"))
			t.Fatalf("sshd did not start listening on %s: %v\n%s", s.Addr(), err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	s.KnownHosts = filepath.Join(s.Home, ".ssh", "known_hosts")
	writeFile(t, s.KnownHosts, fmt.Sprintf("[127.0.0.1]:%d %s", s.Port, ssh.MarshalAuthorizedKey(s.HostKey)))
	writeFile(t, filepath.Join(s.Home, ".ssh", "config"), fmt.Sprintf(`Host %s
  HostName 127.0.0.1
  Port %d
  User %s
  IdentityFile ~/.ssh/id_ed25519
  IdentitiesOnly yes
  StrictHostKeyChecking yes
  ConnectTimeout 10
`, Alias, s.Port, u.Username))
	t.Setenv("HOME", s.Home)
	t.Setenv("SSH_AUTH_SOCK", "")
	return s
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// AppendConfig adds lines to the client's ~/.ssh/config.
func (s *Server) AppendConfig(t testing.TB, text string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(s.Home, ".ssh", "config"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// Kill stops the server abruptly, dropping every connection.
func (s *Server) Kill() { s.cmd.Process.Kill() }

func writeKey(t testing.TB, path string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(pem.EncodeToMemory(block)))
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// NewKey writes a fresh private key to path and returns its public half.
func NewKey(t testing.TB, path string) ssh.PublicKey { return writeKey(t, path) }

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// AgentMain lets a test binary serve as the gosync uploaded to the remote
// host: call it first in TestMain. It handles `version` and `agent ROOT`
// and exits; for any other arguments it returns.
func AgentMain() {
	if len(os.Args) < 2 {
		return
	}
	switch os.Args[1] {
	case "version":
		fmt.Printf("gosync test protocol %d\n", wire.Version)
		os.Exit(0)
	case "agent":
		if len(os.Args) != 3 {
			os.Exit(2)
		}
		if err := agent.Serve(context.Background(), os.Stdin, os.Stdout, agent.Options{Root: os.Args[2]}); err != nil {
			fmt.Fprintln(os.Stderr, strings.TrimSpace(err.Error()))
			os.Exit(1)
		}
		os.Exit(0)
	}
}
