package sshx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/endpoint"
)

// ErrRemotePath wraps a remote path that cannot be used as written.
var ErrRemotePath = errors.New("remote path")

// rootWord turns the mirror root into shell text for the agent command:
// setup runs first, arg is the argument. Only a leading ~ or ~user is
// left to the shell's tilde expansion (so the remote user's home is
// found by the remote side, in its passwd or $HOME); the user name is
// checked to be a plain login name, and the rest of the path is quoted,
// so nothing else in it is ever expanded or executed. An unknown user
// fails instead of becoming a directory named ~user, as bash would leave
// it.
func rootWord(root string) (setup, arg string, err error) {
	if !strings.HasPrefix(root, "~") {
		return "", shellQuote(root), nil
	}
	user, rest, slash := strings.Cut(root[1:], "/")
	if user != "" && !endpoint.ValidTildeUser(user) {
		return "", "", fmt.Errorf("%w %q: %q is not a user name that ~ can expand", ErrRemotePath, root, user)
	}
	setup = `h=~` + user + `; case "$h" in "~"*|"") echo ` +
		shellQuote("gosync: cannot expand ~"+user+" on the remote host: no such user, or no HOME") +
		` >&2; exit 1;; esac; `
	arg = `"$h"`
	if slash {
		arg += shellQuote("/" + rest)
	}
	return setup, arg, nil
}

// run executes a shell command on the host and returns its stdout. When
// the command fails, the error is the last line of its stderr; when the
// connection fails under it, the error wraps errConnLost, so callers can
// tell a host that refuses from a link that broke.
func run(ctx context.Context, c *Client, cmd string, stdin io.Reader) (string, error) {
	sess, err := c.NewSession()
	if err != nil {
		return "", sessionError(c, err)
	}
	defer sess.Close()
	var out bytes.Buffer
	errb := &engine.StderrBuffer{Max: 16 << 10}
	sess.Stdout, sess.Stderr, sess.Stdin = &out, errb, stdin
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	if err := sess.Run(cmd); err != nil {
		if ctx.Err() != nil {
			return out.String(), ctx.Err()
		}
		var exit *ssh.ExitError
		if !errors.As(err, &exit) {
			return out.String(), sessionError(c, err)
		}
		if msg := errb.LastLine(); msg != "" {
			return out.String(), &commandError{msg: msg, exit: exit}
		}
		return out.String(), err
	}
	return out.String(), nil
}

// commandError is a remote command that exited non-zero, told by the
// last line of its stderr.
type commandError struct {
	msg  string
	exit *ssh.ExitError
}

func (e *commandError) Error() string { return e.msg }
func (e *commandError) Unwrap() error { return e.exit }

// errConnLost marks failures of the connection itself while setting up
// the agent: they say nothing about the host, and the next dial may work.
var errConnLost = errors.New("SSH connection lost")

// sessionError explains a session that failed without an exit status:
// the keepalive's verdict if it closed the connection, else a lost
// connection. A server refusing to open the session at all is not lost.
func sessionError(c *Client, err error) error {
	if lost := c.Lost(); lost != nil {
		return lost
	}
	var refused *ssh.OpenChannelError
	if errors.As(err, &refused) {
		return err
	}
	return fmt.Errorf("%w: %w", errConnLost, err)
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Stream is a running remote agent: its stdin and stdout.
type Stream struct {
	Stdin  io.WriteCloser
	Stdout io.Reader
	sess   *ssh.Session
	stderr *engine.StderrBuffer
	once   sync.Once
	client *Client
	// exited is closed when the remote command has ended and its stderr
	// is copied; exitErr is then sess.Wait's result.
	exited  chan struct{}
	exitErr error
}

// StartAgent runs cmd (from AgentCommand) in a new session.
func StartAgent(c *Client, cmd string) (*Stream, error) {
	sess, err := c.NewSession()
	if err != nil {
		return nil, fmt.Errorf("%w: open session on %s: %w", ErrAgent, c.Name, sessionError(c, err))
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	st := &Stream{sess: sess, stderr: &engine.StderrBuffer{Max: 16 << 10}, client: c, exited: make(chan struct{})}
	st.Stdin, st.Stdout = lostWriter{stdin, st, new(sync.Mutex)}, lostReader{stdout, st}
	sess.Stderr = st.stderr
	if err := sess.Start(cmd); err != nil {
		sess.Close()
		return nil, fmt.Errorf("%w: start on %s: %w", ErrAgent, c.Name, sessionError(c, err))
	}
	go func() {
		st.exitErr = sess.Wait()
		close(st.exited)
	}()
	return st, nil
}

// lostReader and lostWriter replace the bare io.EOF or closed-connection
// error of a connection that ended with its reason: the keepalive gave
// up, the agent was killed or exited, the connection was reset.
type lostReader struct {
	r  io.Reader
	st *Stream
}

func (l lostReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if err != nil {
		err = l.st.cause(err)
	}
	return n, err
}

type lostWriter struct {
	w  io.WriteCloser
	st *Stream
	mu *sync.Mutex // held by Write; see Close
}

func (l lostWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.w.Write(p)
	if err != nil {
		err = l.st.cause(err)
	}
	return n, err
}

// Close sends EOF, unless a Write is in flight: x/crypto/ssh's CloseWrite
// sets the flag that Write reads without a lock (a data race the race
// detector caught when a failing mirror closes its stream mid-write).
// Skipping the EOF then loses nothing, as the session is closed right
// after, which ends the agent's input too; and Close must not wait for
// a write stuck on a dead link.
func (l lostWriter) Close() error {
	if !l.mu.TryLock() {
		return nil
	}
	defer l.mu.Unlock()
	return l.w.Close()
}

// wait waits for the remote command to end and returns sess.Wait's
// result (which only one goroutine may wait for).
func (s *Stream) wait() error {
	<-s.exited
	return s.exitErr
}

// waitExit waits, at most d, for the remote command to end and its
// stderr to be copied.
func (s *Stream) waitExit(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.exited:
	case <-t.C:
		// Close ends the session, and with it the goroutine.
	}
}

// Close ends the agent session and the SSH connection.
func (s *Stream) Close() error {
	s.once.Do(func() {
		s.Stdin.Close()
		s.sess.Close()
		s.client.Close()
	})
	return nil
}
