//go:build linux

// Package sshtest starts a real OpenSSH sshd on 127.0.0.1 for tests, with
// generated host and user keys and a temporary HOME holding .ssh/config
// and known_hosts, so any test reaches a remote mirror in one line:
//
//	srv := sshtest.Start(t)   // then sync to srv.Alias + ":" + dir
//
// Sessions log in as the test's own user, or as a user made for the test
// (root only), with a www-data-like group and a sudoers rule if needed:
//
//	srv := sshtest.StartWith(t, sshtest.Options{User: sshtest.UserName("deploy")})
//	gid := sshtest.AddGroup(t, sshtest.UserName("www"), srv.Login.Name)
//	sshtest.AllowSudo(t, srv.Login.Name, srv.Login.Name+" ALL=(root) NOPASSWD: ...")
//
// Without sshd the test is skipped, except under CI=true, where it fails:
// CI must never pass by skipping the SSH tests.

package sshtest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

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
	UserPub     ssh.PublicKey
	HostKey     ssh.PublicKey
	RemoteCache string // XDG_CACHE_HOME of remote sessions: uploaded agents land below it
	// RemoteHome is $HOME in remote sessions, so ~/x lands in the test's
	// directory. ~root/x still means root's home from passwd, and the
	// sessions start in that home too (sshd does not follow SetEnv
	// there), so a relative remote path is below it, not below RemoteHome.
	RemoteHome string
	ConfigFile string // the client's ssh config
	// Login is the account sessions log in as, when Options.User named
	// one (nil: the test's own user). RemoteHome is then its home and
	// RemoteCache its ~/.cache, as sshd sets them.
	Login    *User
	authKeys string // the authorized_keys file sshd reads
	cmd      *exec.Cmd
	log      *os.File
	release  chan struct{} // closed by Stop: lets the thread that forked sshd exit
	stopOnce sync.Once
}

// Options change the server's sessions.
type Options struct {
	// PathPrefix goes before the standard PATH of remote sessions (sshd's
	// SetEnv), so a test can put its own uname, gosync or sha256sum first,
	// or, with NoStandardPath, offer only what is in it.
	PathPrefix     string
	NoStandardPath bool
	// ServerConfig is appended to sshd_config (KexAlgorithms, Ciphers...).
	ServerConfig string
	// User makes sessions log in as this account instead of the test's
	// own user (root in CI): StartWith creates it if it is missing (with
	// a home, a group of its own and the client's key in its
	// ~/.ssh/authorized_keys) and removes all of that when the test
	// ends, failed or not. Tests using the same name, in any package,
	// wait for each other; UserName gives a name no other test uses.
	// AddGroup makes a group it belongs to, AllowSudo a sudoers rule.
	// LaunchWith needs the account to exist already.
	User string
}

// standardPath is the PATH sshd gives sessions on Debian.
const standardPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Start runs sshd for the test and points HOME at a client home that
// reaches it as Alias. It unsets SSH_AUTH_SOCK so the developer's agent
// keys play no part.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, opt Options) *Server {
	t.Helper()
	sshd, err := FindSSHD()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sshd not found; CI must install openssh-server (see .ci/run)")
		}
		t.Skip("sshd not found; install openssh-server to run the SSH tests")
	}
	if opt.User != "" {
		addUser(t, opt.User) // removed after Stop, registered below, has ended its sessions
	}
	s, err := LaunchWith(sshd, t.TempDir(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	t.Setenv("HOME", s.Home)
	t.Setenv("SSH_AUTH_SOCK", "")
	return s
}

// FindSSHD locates the sshd binary.
func FindSSHD() (string, error) {
	if p, err := exec.LookPath("sshd"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("sshd not found; install openssh-server")
}

// Launch starts sshd with its files in dir and a client home in dir/home
// that reaches it as Alias (paths in .ssh/config are absolute, so plain
// ssh -F works too). Stop ends it. It does not touch the environment.
func Launch(sshd, dir string) (*Server, error) { return LaunchWith(sshd, dir, Options{}) }

// LaunchWith is Launch with options.
func LaunchWith(sshd, dir string, opt Options) (*Server, error) {
	s := &Server{Dir: dir, Home: filepath.Join(dir, "home"), RemoteCache: filepath.Join(dir, "remote-cache"), RemoteHome: filepath.Join(dir, "remote-home")}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	hostKeyFile := filepath.Join(dir, "host_ed25519")
	var err error
	if s.HostKey, err = newKey(hostKeyFile); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.RemoteHome, 0o700); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(s.Home, ".ssh"), 0o700); err != nil {
		return nil, err
	}
	s.UserKey = filepath.Join(s.Home, ".ssh", "id_ed25519")
	userPub, err := newKey(s.UserKey)
	if err != nil {
		return nil, err
	}
	s.UserPub = userPub
	s.authKeys = filepath.Join(dir, "authorized_keys")
	setEnv := fmt.Sprintf("SetEnv XDG_CACHE_HOME=%s HOME=%s%s", s.RemoteCache, s.RemoteHome, opt.setPath())
	allow := ""
	if opt.User != "" {
		if s.Login, err = lookupUser(opt.User); err != nil {
			return nil, err
		}
		// sshd reads the keys as the user: they live in its home, and
		// its sessions keep the HOME and cache that sshd gives them.
		s.RemoteHome, s.RemoteCache = s.Login.Home, filepath.Join(s.Login.Home, ".cache")
		s.authKeys = filepath.Join(s.Login.Home, ".ssh", "authorized_keys")
		if err := os.MkdirAll(filepath.Dir(s.authKeys), 0o700); err != nil {
			return nil, err
		}
		if err := os.Chown(filepath.Dir(s.authKeys), s.Login.UID, s.Login.GID); err != nil {
			return nil, err
		}
		setEnv = ""
		if p := opt.setPath(); p != "" {
			setEnv = "SetEnv" + p
		}
		// The key is in a file that AuthorizedKeysFile names for every
		// user: only this one may log in.
		allow = "AllowUsers " + opt.User
	}
	if err := os.WriteFile(s.authKeys, ssh.MarshalAuthorizedKey(userPub), 0o600); err != nil {
		return nil, err
	}
	if s.Login != nil {
		if err := os.Chown(s.authKeys, s.Login.UID, s.Login.GID); err != nil {
			return nil, err
		}
	}
	if os.Geteuid() == 0 {
		os.MkdirAll("/run/sshd", 0o755) // privilege separation directory
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	config := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s/sshd.pid
AuthorizedKeysFile %s
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin yes
AllowTcpForwarding yes
%s
%s
LogLevel ERROR
%s
`, s.Port, hostKeyFile, dir, s.authKeys, setEnv, allow, opt.ServerConfig)
	if err := os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(config), 0o600); err != nil {
		return nil, err
	}
	s.cmd = exec.Command(sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	logFile, err := os.Create(filepath.Join(dir, "sshd.log"))
	if err != nil {
		return nil, err
	}
	s.log = logFile
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	// t.Cleanup does not run when go test -timeout panics, and a leaked
	// sshd outlives the test binary: the kernel kills it when its parent
	// goes (Pdeathsig), and Stop kills its whole process group.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	if err := s.start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			s.Stop()
			log, _ := os.ReadFile(filepath.Join(dir, "sshd.log"))
			return nil, fmt.Errorf("sshd did not start listening on %s: %v\n%s", s.Addr(), err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	login := ""
	if s.Login != nil {
		login = s.Login.Name
	} else {
		u, err := user.Current()
		if err != nil {
			s.Stop()
			return nil, err
		}
		login = u.Username
	}
	s.KnownHosts = filepath.Join(s.Home, ".ssh", "known_hosts")
	s.ConfigFile = filepath.Join(s.Home, ".ssh", "config")
	kh := fmt.Sprintf("[127.0.0.1]:%d %s", s.Port, ssh.MarshalAuthorizedKey(s.HostKey))
	cfg := fmt.Sprintf(`Host %s
  HostName 127.0.0.1
  Port %d
  User %s
  IdentityFile %s
  IdentitiesOnly yes
  UserKnownHostsFile %s
  StrictHostKeyChecking yes
  ConnectTimeout 10
`, Alias, s.Port, login, s.UserKey, s.KnownHosts)
	if err := os.WriteFile(s.KnownHosts, []byte(kh), 0o600); err != nil {
		s.Stop()
		return nil, err
	}
	if err := os.WriteFile(s.ConfigFile, []byte(cfg), 0o600); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// setPath is the PATH=... word of SetEnv, if the options change PATH.
// SetEnv overrides the PATH sshd would set; a value with a space or a
// quote would need quoting there, and test directories have neither.
func (o Options) setPath() string {
	std := sessionPath(standardPath)
	switch {
	case o.NoStandardPath:
		return " PATH=" + o.PathPrefix
	case o.PathPrefix != "":
		return " PATH=" + o.PathPrefix + ":" + std
	case std != standardPath:
		return " PATH=" + std
	}
	return ""
}

// sessionPath leaves out of path the directories that hold a gosync
// (a developer's installed one, on the machine that runs the tests), so
// a test session finds only the gosync its test put first, if any, and
// an installed gosync of the same protocol cannot stand in for the agent
// a test expects to be uploaded.
func sessionPath(path string) string {
	var keep []string
	for _, d := range filepath.SplitList(path) {
		if _, err := os.Stat(filepath.Join(d, "gosync")); err == nil {
			continue
		}
		keep = append(keep, d)
	}
	return strings.Join(keep, string(filepath.ListSeparator))
}

// start forks sshd from a goroutine that holds its OS thread until Stop.
// Pdeathsig fires when the forking thread exits, not the process: on an
// unlocked goroutine, Go could retire that thread at any time and the
// kernel would kill a healthy sshd in the middle of a test.
func (s *Server) start() error {
	started := make(chan error, 1)
	s.release = make(chan struct{})
	go func() {
		runtime.LockOSThread()
		err := s.cmd.Start()
		started <- err
		if err == nil {
			<-s.release
		}
		// Returning while locked ends the thread; sshd is already dead.
	}()
	return <-started
}

// Stop kills sshd and everything it forked (the per-connection sshd
// processes call setsid, so killing sshd's process group misses them,
// and so do the commands they run), then waits for them.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			pid := s.cmd.Process.Pid
			// Stopped processes cannot fork: freeze the tree, then kill it.
			syscall.Kill(pid, syscall.SIGSTOP)
			tree := freezeDescendants(pid)
			for _, p := range tree {
				syscall.Kill(p, syscall.SIGKILL)
			}
			// Before Wait: sshd's pid, and so its group id, cannot be
			// reused until it is reaped.
			syscall.Kill(-pid, syscall.SIGKILL)
			s.cmd.Wait()
			close(s.release)
			reap(tree)
		}
		if s.log != nil {
			s.log.Close()
		}
	})
}

// freezeDescendants stops every descendant of pid, repeating until a scan
// finds no new one (a process may fork between being seen and stopped).
func freezeDescendants(pid int) []int {
	seen := map[int]bool{pid: true}
	var tree []int
	for {
		found := false
		for p, parent := range processParents() {
			if seen[parent] && !seen[p] {
				seen[p] = true
				syscall.Kill(p, syscall.SIGSTOP)
				tree = append(tree, p)
				found = true
			}
		}
		if !found {
			return tree
		}
	}
}

// processParents maps every pid to its parent pid, from /proc.
func processParents() map[int]int {
	m := map[int]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		// The command name may hold spaces and parentheses: the fixed
		// fields start after its last ')': state, then parent.
		st := string(b)
		i := strings.LastIndexByte(st, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(st[i+1:])
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			m[pid] = ppid
		}
	}
	return m
}

// reap collects the killed processes that were handed to this process as
// their parents died (Launch makes it a child subreaper); without that,
// an init that never reaps (some containers) keeps them as zombies.
func reap(pids []int) {
	deadline := time.Now().Add(5 * time.Second)
	// Reparenting happens as a parent exits: wait until all are dead.
	for _, p := range pids {
		for alive(p) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	for _, p := range pids {
		var ws syscall.WaitStatus
		syscall.Wait4(p, &ws, syscall.WNOHANG, nil) // ECHILD: its own parent reaps it
	}
}

// alive reports whether pid runs; a zombie still answers kill(0) but has
// exited.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	st := string(b)
	i := strings.LastIndexByte(st, ')')
	f := strings.Fields(st[i+1:])
	return len(f) > 0 && f[0] != "Z"
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

// AuthorizeKey replaces the authorized_keys line of the client's key with
// one that carries options, as an administrator writes them:
// `restrict,command="gosync agent --restrict /srv/www"`. sshd reads the
// file at each login.
func (s *Server) AuthorizeKey(t testing.TB, options string) {
	t.Helper()
	line := options + " " + string(ssh.MarshalAuthorizedKey(s.UserPub))
	if err := os.WriteFile(s.authKeys, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Kill stops the server abruptly, dropping every connection, and returns
// once the listening sshd has exited (its port refuses connections from
// then on; a SIGKILL is delivered asynchronously). Stop must still be
// called (Start's cleanup does) to reap it.
func (s *Server) Kill() {
	pid := s.cmd.Process.Pid
	syscall.Kill(-pid, syscall.SIGKILL)
	for deadline := time.Now().Add(10 * time.Second); alive(pid) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
}

func newKey(path string) (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return ssh.NewPublicKey(pub)
}

// NewKey writes a fresh private key to path and returns its public half.
func NewKey(t testing.TB, path string) ssh.PublicKey {
	t.Helper()
	k, err := newKey(path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// AgentMain lets a test binary serve as the gosync uploaded to the remote
// host: call it first in TestMain. It handles `version` and `agent ROOT`
// (with the restriction flags) and exits; for any other arguments it
// returns.
func AgentMain() {
	if len(os.Args) < 2 {
		return
	}
	switch os.Args[1] {
	case "version":
		fmt.Printf("gosync test protocol %d\n", wire.Version)
		os.Exit(0)
	case "agent":
		root, restrict, err := agent.ParseArgs(os.Args[2:], os.Getenv)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := agent.Serve(context.Background(), os.Stdin, os.Stdout, agent.Options{Root: root, Restriction: restrict, WalkHelpers: 1}); err != nil {
			fmt.Fprintln(os.Stderr, strings.TrimSpace(err.Error()))
			os.Exit(1)
		}
		os.Exit(0)
	}
}
