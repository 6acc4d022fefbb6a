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
	"sync"
	"sync/atomic"
	"time"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// ErrHostKey wraps every host key refusal: nothing was sent to the host.
var ErrHostKey = errors.New("host key refused")

// ErrAuth wraps authentication failures.
var ErrAuth = errors.New("authentication failed")

// ErrNegotiation wraps a server with no algorithm in common with what
// ssh_config allows (typically one offering only SHA-1).
var ErrNegotiation = errors.New("SSH algorithm negotiation failed")

// ErrUnresponsive is why a connection whose server stopped answering
// keepalives was closed.
var ErrUnresponsive = errors.New("SSH server not responding")

// Client is an SSH connection to one host, with what is needed to close
// the jump hosts it went through.
type Client struct {
	*ssh.Client
	Name      string // user@host as resolved, for messages
	closers   []func() error
	stop      chan struct{}
	closeOnce sync.Once
	closeErr  error
	lost      atomic.Pointer[error]
	// connDone is closed when the connection has ended; connErr is then
	// why (ssh.Client.Wait's result).
	connDone chan struct{}
	connErr  error
}

// Close closes the connection and the jump connections under it.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		close(c.stop)
		c.closeErr = c.Client.Close()
		for i := len(c.closers) - 1; i >= 0; i-- {
			c.closers[i]()
		}
	})
	return c.closeErr
}

// Lost returns why gosync closed the connection under its users (the
// server stopped answering keepalives), or nil. Reads and writes on the
// connection fail with io.EOF or a closed-connection error then, which
// say nothing to a user; the streams of this package return Lost instead.
func (c *Client) Lost() error {
	if e := c.lost.Load(); e != nil {
		return *e
	}
	return nil
}

// lose records why the connection is closed before closing it, so a
// read or write that fails because of the close already sees the cause.
func (c *Client) lose(err error) {
	c.lost.CompareAndSwap(nil, &err)
	c.Close()
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
		return nil, fmt.Errorf("%s: %w: ProxyJump chain too long (a loop in ssh config?)", alias, ErrConfig)
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
	cfg, tried, closeAuth, err := clientConfig(hc, addr, opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer closeAuth()

	// Through jump hosts, the last one opens the TCP connection.
	var conn net.Conn
	var closers []func() error
	if hc.ProxyJump != "" {
		jumps := strings.Split(hc.ProxyJump, ",")
		var prev *Client
		for _, j := range jumps {
			j = strings.TrimSpace(j)
			jalias, jopt := parseJump(j, opt)
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
		d := net.Dialer{Timeout: hc.dialTimeout()}
		conn, err = d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, describeDialError(err, hc))
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
	cfg, tried, closeAuth, err := clientConfig(hc, addr, opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer closeAuth()
	conn, err := via.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return handshake(ctx, conn, addr, cfg, name, hc, tried, nil)
}

// clientConfig is the SSH configuration for one host: its known_hosts
// check, the keys to offer and the algorithms ssh_config allows.
func clientConfig(hc *hostConfig, addr string, opt Options) (*ssh.ClientConfig, []string, func(), error) {
	hostKeys, known, err := hostKeyCheck(hc, addr)
	if err != nil {
		return nil, nil, nil, err
	}
	auth, tried, closeAuth := authMethods(hc, opt)
	cfg := &ssh.ClientConfig{
		Config: ssh.Config{
			KeyExchanges: hc.Algos.Kex,
			Ciphers:      hc.Algos.Ciphers,
			MACs:         hc.Algos.MACs,
		},
		User:              hc.User,
		Auth:              auth,
		HostKeyCallback:   hostKeys,
		HostKeyAlgorithms: hc.Algos.hostKeyAlgorithms(known),
		Timeout:           hc.dialTimeout(),
	}
	return cfg, tried, closeAuth, nil
}

// parseJump reads one ProxyJump hop, [user@]host[:port]. The hop takes
// the command line's known_hosts file, host key acceptance, identity
// and ssh config, but not its user and port, which are the
// destination's (as ssh -l and -p are).
func parseJump(j string, dest Options) (string, Options) {
	o := dest
	o.User, o.Port, o.RemoteGosync, o.RemoteSudo = "", 0, "", false
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

func handshake(ctx context.Context, raw net.Conn, addr string, cfg *ssh.ClientConfig, name string, hc *hostConfig, tried []string, closers []func() error) (*Client, error) {
	conn := newAliveConn(raw)
	if t := hc.dialTimeout(); t > 0 {
		conn.SetDeadline(time.Now().Add(t))
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
		var ne *ssh.AlgorithmNegotiationError
		if errors.As(err, &ne) {
			return nil, fmt.Errorf("%s: %w: %w", name, ErrNegotiation, describeNegotiation(ne, hc))
		}
		if os.IsTimeout(err) || errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("%s: SSH handshake timed out after %s: %w", name, hc.dialTimeout(), os.ErrDeadlineExceeded)
		}
		return nil, fmt.Errorf("%s: SSH handshake: %w", name, err)
	}
	conn.SetDeadline(time.Time{})
	cl := &Client{Client: ssh.NewClient(c, chans, reqs), Name: name, closers: closers, stop: make(chan struct{}), connDone: make(chan struct{})}
	go func() {
		cl.connErr = cl.Client.Wait()
		close(cl.connDone)
	}()
	if hc.AliveInterval > 0 {
		go cl.keepAlive(conn, hc.AliveInterval, hc.AliveCountMax)
	}
	return cl, nil
}

// aliveConn remembers when the server last sent anything: any byte proves
// the link alive, so a keepalive is only needed on a silent link, and a
// reply stuck behind megabytes of our own upload on a slow link does not
// count as missed while the server's window adjustments arrive.
type aliveConn struct {
	net.Conn
	start time.Time    // monotonic base for last
	last  atomic.Int64 // since start, when a read last returned data
	ack   func() error // acknowledges what was read at once (quickAcker), or nil
}

func newAliveConn(c net.Conn) *aliveConn {
	return &aliveConn{Conn: c, start: time.Now(), ack: quickAcker(c)}
}

func (c *aliveConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.last.Store(int64(time.Since(c.start)))
		if c.ack != nil {
			c.ack() // only a delay if it fails
		}
	}
	return n, err
}

// silence is how long the server has sent nothing.
func (c *aliveConn) silence() time.Duration {
	return time.Since(c.start) - time.Duration(c.last.Load())
}

// keepAlive closes a connection whose server stopped answering, as
// OpenSSH's ServerAliveInterval does: after every interval of silence a
// keepalive@openssh.com request goes out, and after maxMissed of them
// with still nothing heard the connection is closed, so a frozen link
// (packets dropped, no reset) fails (maxMissed+1)*every after the last
// byte received instead of hanging until TCP gives up.
func (c *Client) keepAlive(conn *aliveConn, every time.Duration, maxMissed int) {
	timer := time.NewTimer(every)
	defer timer.Stop()
	missed := 0
	var reply chan error // nil while no request is out
	for {
		select {
		case <-c.stop:
			return
		case err := <-reply:
			reply = nil
			if err != nil {
				return // the connection is closed
			}
			// The answer is word from the server: the silence is over
			// even if the next tick comes a little late.
			missed = 0
			continue
		case <-timer.C:
		}
		if quiet := conn.silence(); quiet < every {
			missed = 0
			timer.Reset(every - quiet)
			continue
		}
		if missed >= maxMissed {
			c.lose(fmt.Errorf("%s: %w: nothing received for %s (ServerAliveInterval %s, ServerAliveCountMax %d); connection closed",
				c.Name, ErrUnresponsive, conn.silence().Round(time.Second), every, maxMissed))
			return
		}
		missed++
		if reply == nil {
			// Ends when the answer comes or the connection closes; the
			// channel has room, so it never waits for this loop.
			reply = make(chan error, 1)
			go func(reply chan<- error) {
				_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
				reply <- err
			}(reply)
		}
		timer.Reset(every)
	}
}

// describeDialError says what a failed TCP connect means for the user,
// keeping the cause for errors.Is and errors.As.
func describeDialError(err error, hc *hostConfig) error {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		return &describedError{fmt.Sprintf("cannot resolve host name %q; check the name or HostName in ~/.ssh/config", hc.HostName), err}
	case errors.Is(err, errConnRefused()):
		return &describedError{fmt.Sprintf("connection refused at %s:%d; is sshd running there, on that port?", hc.HostName, hc.Port), err}
	case os.IsTimeout(err):
		return &describedError{fmt.Sprintf("connection to %s:%d timed out after %s", hc.HostName, hc.Port, hc.dialTimeout()), err}
	}
	return err
}

// describedError is a cause with a message written for users.
type describedError struct {
	msg   string
	cause error
}

func (e *describedError) Error() string { return e.msg }
func (e *describedError) Unwrap() error { return e.cause }

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
	if n := len(signers); n > 0 {
		signers = hc.Algos.restrictSigners(signers)
		if len(signers) < n {
			tried = append(tried, fmt.Sprintf("%d key(s) not offered: no signature algorithm in PubkeyAcceptedAlgorithms", n-len(signers)))
		}
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
	// As OpenSSH does, HostKeyAlias replaces host and port in known_hosts
	// (lookup and recording alike); port 22 makes Normalize keep it bare.
	keyName := addr
	if hc.HostKeyAlias != "" {
		keyName = net.JoinHostPort(hc.HostKeyAlias, "22")
	}
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
		algos = db.HostKeyAlgorithms(keyName)
	}
	userFile := hc.KnownHosts[0]
	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		var err error
		if db != nil {
			err = db.HostKeyCallback()(keyName, remote, key)
			if err == nil {
				return nil
			}
		}
		fp := ssh.FingerprintSHA256(key)
		if db != nil && knownhosts.IsHostKeyChanged(err) {
			return &hostKeyError{msg: fmt.Sprintf("HOST KEY CHANGED: the %s key of %s is now %s, which does not match known_hosts; this can be an attack. If the host was really reinstalled, remove its old line with: ssh-keygen -R %s -f %s",
				key.Type(), hostKeyName(addr, hc), fp, knownHostsName(keyName), userFile)}
		}
		if db != nil && err != nil && !knownhosts.IsHostUnknown(err) {
			return &hostKeyError{msg: "known_hosts check failed: " + err.Error()}
		}
		switch hc.Strict {
		case "accept-new", "no", "off":
			if err := appendKnownHost(userFile, keyName, key); err != nil {
				return &hostKeyError{msg: fmt.Sprintf("cannot record host key in %s: %v", userFile, err)}
			}
			return nil
		}
		return &hostKeyError{msg: fmt.Sprintf("unknown host key %s %s for %s; check it with the host's admin, then accept it with --accept-new-host-key, or StrictHostKeyChecking accept-new in ~/.ssh/config, or once with: ssh -p %s %s true",
			key.Type(), fp, hostKeyName(addr, hc), portOf(addr), hostOf(addr))}
	}
	return cb, algos, nil
}

func knownHostsName(addr string) string { return knownhosts.Normalize(addr) }

// hostKeyName names the host in host key messages: with HostKeyAlias,
// known_hosts holds the key under the alias, which the user must see.
func hostKeyName(addr string, hc *hostConfig) string {
	if hc.HostKeyAlias != "" {
		return addr + " (HostKeyAlias " + hc.HostKeyAlias + ")"
	}
	return addr
}

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
