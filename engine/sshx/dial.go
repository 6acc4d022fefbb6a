package sshx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// ErrHostKey wraps every host key refusal: nothing was sent to the host.
var ErrHostKey = errors.New("host key refused")

// ErrAuth wraps authentication failures.
var ErrAuth = errors.New("authentication failed")

// Client is an SSH connection to one host, with what is needed to close
// the jump hosts it went through.
type Client struct {
	*ssh.Client
	Name    string // user@host as resolved, for messages
	closers []func() error
	stop    chan struct{}
}

// Close closes the connection and the jump connections under it.
func (c *Client) Close() error {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	err := c.Client.Close()
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
	return err
}

// Dial connects and authenticates to the host alias (a name from the
// command line, looked up in ssh_config).
func Dial(ctx context.Context, alias string, opt Options) (*Client, error) {
	s, err := loadSettings(opt)
	if err != nil {
		return nil, err
	}
	return dial(ctx, s, alias, opt, 0)
}

func dial(ctx context.Context, s *settings, alias string, opt Options, depth int) (*Client, error) {
	if depth > 8 {
		return nil, fmt.Errorf("%s: ProxyJump chain too long (a loop in ssh config?)", alias)
	}
	hc, err := s.resolve(alias, opt)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(hc.HostName, strconv.Itoa(hc.Port))
	name := hc.User + "@" + alias
	if hc.HostName != alias || hc.Port != 22 {
		name += " (" + addr + ")"
	}
	hostKeys, algos, err := hostKeyCheck(hc, addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	auth, tried, closeAuth := authMethods(hc, opt)
	defer closeAuth()
	cfg := &ssh.ClientConfig{
		User:              hc.User,
		Auth:              auth,
		HostKeyCallback:   hostKeys,
		HostKeyAlgorithms: algos,
		Timeout:           hc.ConnectTimeout,
	}

	// Through jump hosts, the last one opens the TCP connection.
	var conn net.Conn
	var closers []func() error
	if hc.ProxyJump != "" {
		jumps := strings.Split(hc.ProxyJump, ",")
		var prev *Client
		for _, j := range jumps {
			j = strings.TrimSpace(j)
			jalias, jopt := parseJump(j)
			var jc *Client
			if prev == nil {
				jc, err = dial(ctx, s, jalias, jopt, depth+1)
			} else {
				jc, err = dialVia(ctx, s, prev, jalias, jopt, depth+1)
			}
			if err != nil {
				for i := len(closers) - 1; i >= 0; i-- {
					closers[i]()
				}
				return nil, fmt.Errorf("%s: through jump host %s: %w", name, j, err)
			}
			closers = append(closers, jc.Close)
			prev = jc
		}
		conn, err = prev.DialContext(ctx, "tcp", addr)
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
			return nil, fmt.Errorf("%s: jump host could not connect: %w", name, err)
		}
	} else {
		d := net.Dialer{Timeout: hc.ConnectTimeout}
		conn, err = d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("%s: %s", name, describeDialError(err, hc))
		}
	}
	return handshake(ctx, conn, addr, cfg, name, hc, tried, closers)
}

// dialVia connects to alias through an existing connection (a ProxyJump hop).
func dialVia(ctx context.Context, s *settings, via *Client, alias string, opt Options, depth int) (*Client, error) {
	hc, err := s.resolve(alias, opt)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(hc.HostName, strconv.Itoa(hc.Port))
	name := hc.User + "@" + alias
	hostKeys, algos, err := hostKeyCheck(hc, addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	auth, tried, closeAuth := authMethods(hc, opt)
	defer closeAuth()
	conn, err := via.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cfg := &ssh.ClientConfig{User: hc.User, Auth: auth, HostKeyCallback: hostKeys, HostKeyAlgorithms: algos, Timeout: hc.ConnectTimeout}
	return handshake(ctx, conn, addr, cfg, name, hc, tried, nil)
}

func parseJump(j string) (string, Options) {
	var o Options
	if at := strings.LastIndexByte(j, '@'); at >= 0 {
		o.User, j = j[:at], j[at+1:]
	}
	if h, p, err := net.SplitHostPort(j); err == nil {
		if n, err := strconv.Atoi(p); err == nil {
			o.Port, j = n, h
		}
	}
	return j, o
}

func handshake(ctx context.Context, conn net.Conn, addr string, cfg *ssh.ClientConfig, name string, hc *hostConfig, tried []string, closers []func() error) (*Client, error) {
	if hc.ConnectTimeout > 0 {
		conn.SetDeadline(time.Now().Add(hc.ConnectTimeout))
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	stop()
	if err != nil {
		conn.Close()
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var hk *hostKeyError
		if errors.As(err, &hk) {
			return nil, fmt.Errorf("%s: %w", name, hk)
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, fmt.Errorf("%s: %w: tried %s; add your public key to the host's ~/.ssh/authorized_keys, load it into ssh-agent, or name it with --ssh-identity", name, ErrAuth, strings.Join(tried, ", "))
		}
		if os.IsTimeout(err) || errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("%s: SSH handshake timed out after %s", name, hc.ConnectTimeout)
		}
		return nil, fmt.Errorf("%s: SSH handshake: %w", name, err)
	}
	conn.SetDeadline(time.Time{})
	cl := &Client{Client: ssh.NewClient(c, chans, reqs), Name: name, closers: closers, stop: make(chan struct{})}
	if hc.AliveInterval > 0 {
		go cl.keepAlive(hc.AliveInterval, hc.AliveCountMax)
	}
	return cl, nil
}

// keepAlive closes a connection whose server stopped answering, as
// OpenSSH's ServerAliveInterval does, so a dead link fails instead of
// hanging.
func (c *Client) keepAlive(every time.Duration, maxMissed int) {
	t := time.NewTicker(every)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		res := make(chan error, 1)
		go func() {
			_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
			res <- err
		}()
		select {
		case err := <-res:
			if err != nil {
				return // connection closed
			}
			missed = 0
		case <-time.After(every):
			missed++
			if missed >= maxMissed {
				c.Client.Close()
				return
			}
		case <-c.stop:
			return
		}
	}
}

func describeDialError(err error, hc *hostConfig) string {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("cannot resolve host name %q; check the name or HostName in ~/.ssh/config", hc.HostName)
	case errors.Is(err, errConnRefused()):
		return fmt.Sprintf("connection refused at %s:%d; is sshd running there, on that port?", hc.HostName, hc.Port)
	case os.IsTimeout(err):
		return fmt.Sprintf("connection to %s:%d timed out after %s", hc.HostName, hc.Port, hc.ConnectTimeout)
	}
	return err.Error()
}

// authMethods offers ssh-agent keys and the identity files, naming what it
// tried for the error message.
func authMethods(hc *hostConfig, opt Options) ([]ssh.AuthMethod, []string, func()) {
	var methods []ssh.AuthMethod
	var tried []string
	closeFn := func() {}
	var agentSigners []ssh.Signer
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if conn, err := net.Dial("unix", sock); err == nil {
			closeFn = func() { conn.Close() }
			if signers, err := agent.NewClient(conn).Signers(); err == nil {
				agentSigners = signers
			}
		}
	}
	var fileSigners []ssh.Signer
	var keyErrs []string
	for _, f := range hc.IdentityFiles {
		signer, err := loadKey(f, opt)
		if err != nil {
			if !os.IsNotExist(err) {
				keyErrs = append(keyErrs, err.Error())
			}
			continue
		}
		fileSigners = append(fileSigners, signer)
		tried = append(tried, "key "+tildePath(f))
	}
	signers := fileSigners
	if hc.IdentitiesOnly && len(agentSigners) > 0 {
		// Only agent keys that are also named by IdentityFile.
		var keep []ssh.Signer
		for _, a := range agentSigners {
			for _, f := range fileSigners {
				if string(a.PublicKey().Marshal()) == string(f.PublicKey().Marshal()) {
					keep = append(keep, a)
				}
			}
		}
		agentSigners = keep
	}
	if len(agentSigners) > 0 {
		tried = append([]string{fmt.Sprintf("%d ssh-agent key(s)", len(agentSigners))}, tried...)
		signers = append(agentSigners, fileSigners...)
	}
	tried = append(tried, keyErrs...)
	if len(tried) == 0 {
		tried = []string{"no keys (none in ssh-agent, no " + strings.Join(tildePaths(hc.IdentityFiles), ", ") + ")"}
	}
	if len(signers) > 0 {
		methods = append(methods, ssh.PublicKeys(signers...))
	}
	return methods, tried, closeFn
}

func loadKey(path string, opt Options) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(b)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if opt.Passphrase == nil {
			return nil, fmt.Errorf("key %s is encrypted and there is no terminal to ask its passphrase (load it into ssh-agent)", tildePath(path))
		}
		pass, perr := opt.Passphrase(path)
		if perr != nil {
			return nil, fmt.Errorf("key %s: %v", tildePath(path), perr)
		}
		signer, err = ssh.ParsePrivateKeyWithPassphrase(b, pass)
		if err != nil {
			return nil, fmt.Errorf("key %s: wrong passphrase", tildePath(path))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("key %s: %v", tildePath(path), err)
	}
	return signer, nil
}

func tildePath(p string) string {
	if home, err := os.UserHomeDir(); err == nil && strings.HasPrefix(p, home+"/") {
		return "~/" + strings.TrimPrefix(p, home+"/")
	}
	return p
}

func tildePaths(ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = tildePath(p)
	}
	return out
}

// hostKeyError is a refused host key, with what the user must do.
type hostKeyError struct{ msg string }

func (e *hostKeyError) Error() string { return e.msg }
func (e *hostKeyError) Unwrap() error { return ErrHostKey }

// hostKeyCheck builds the known_hosts check. It also returns the key
// algorithms known for the host, so a server preferring another key type
// is not mistaken for a changed key.
func hostKeyCheck(hc *hostConfig, addr string) (ssh.HostKeyCallback, []string, error) {
	var files []string
	for _, f := range hc.KnownHosts {
		if _, err := os.Stat(f); err == nil {
			files = append(files, f)
		}
	}
	var db *knownhosts.HostKeyDB
	if len(files) > 0 {
		var err error
		db, err = knownhosts.NewDB(files...)
		if err != nil {
			return nil, nil, fmt.Errorf("read known_hosts: %w", err)
		}
	}
	var algos []string
	if db != nil {
		algos = db.HostKeyAlgorithms(addr)
	}
	userFile := hc.KnownHosts[0]
	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		var err error
		if db != nil {
			err = db.HostKeyCallback()(hostname, remote, key)
			if err == nil {
				return nil
			}
		}
		fp := ssh.FingerprintSHA256(key)
		if db != nil && knownhosts.IsHostKeyChanged(err) {
			return &hostKeyError{msg: fmt.Sprintf("HOST KEY CHANGED: the %s key of %s is now %s, which does not match known_hosts; this can be an attack. If the host was really reinstalled, remove its old line with: ssh-keygen -R %s -f %s",
				key.Type(), addr, fp, knownHostsName(addr), userFile)}
		}
		if db != nil && err != nil && !knownhosts.IsHostUnknown(err) {
			return &hostKeyError{msg: "known_hosts check failed: " + err.Error()}
		}
		switch hc.Strict {
		case "accept-new", "no", "off":
			if err := appendKnownHost(userFile, addr, key); err != nil {
				return &hostKeyError{msg: fmt.Sprintf("cannot record host key in %s: %v", userFile, err)}
			}
			return nil
		}
		return &hostKeyError{msg: fmt.Sprintf("unknown host key %s %s for %s; check it with the host's admin, then accept it with --accept-new-host-key, or StrictHostKeyChecking accept-new in ~/.ssh/config, or once with: ssh -p %s %s true",
			key.Type(), fp, addr, portOf(addr), hostOf(addr))}
	}
	return cb, algos, nil
}

func knownHostsName(addr string) string { return knownhosts.Normalize(addr) }

func hostOf(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }
func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

func appendKnownHost(file, addr string, key ssh.PublicKey) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, werr := fmt.Fprintln(f, knownhosts.Line([]string{knownhosts.Normalize(addr)}, key))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	return werr
}
