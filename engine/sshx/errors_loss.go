package sshx

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gosync/gosync/engine"
)

// lossWait bounds how long a read that failed waits to learn why: the
// exit status follows the end of the agent's output, and a connection's
// end reaches every channel at once.
const lossWait = 2 * time.Second

// stderrLines is how many lines of a dead agent's stderr are shown.
const stderrLines = 3

// cause says why the agent's output ended, which the bare io.EOF of the
// channel does not: the keepalive gave up on a silent server, the agent
// was killed or exited (with the end of its stderr), or the connection
// was reset or closed under it. These read differently because they
// call for different action: a dead agent is a problem on the host, a
// reset one of the network.
func (s *Stream) cause(readErr error) error {
	c := s.client
	if lost := c.Lost(); lost != nil {
		return lost
	}
	t := time.NewTimer(lossWait)
	defer t.Stop()
	select {
	case <-s.exited:
	case <-c.connDone:
	case <-t.C:
		return readErr
	}
	if lost := c.Lost(); lost != nil {
		return lost
	}
	select {
	case <-s.exited:
		var exit *ssh.ExitError
		if errors.As(s.exitErr, &exit) {
			return &describedError{s.exitMessage(exit), exit}
		}
		if s.exitErr == nil {
			return readErr // a clean exit: the output just ended
		}
	default:
	}
	// The channel closed without an exit status: the connection went.
	select {
	case <-c.connDone:
	case <-t.C:
		return readErr
	}
	return c.connCause()
}

func (s *Stream) exitMessage(exit *ssh.ExitError) string {
	var b strings.Builder
	if sig := exit.Signal(); sig != "" {
		fmt.Fprintf(&b, "the agent on %s was killed by signal %s", s.client.Name, sig)
	} else {
		fmt.Fprintf(&b, "the agent on %s exited with status %d", s.client.Name, exit.ExitStatus())
	}
	if tail := s.stderr.Tail(stderrLines); tail != "" {
		b.WriteString("; its last output: ")
		b.WriteString(engine.Printable(strings.ReplaceAll(tail, "\n", " | ")))
	} else {
		b.WriteString(" (no output on stderr)")
	}
	return b.String()
}

// connCause describes a connection that ended by itself. None of the
// errors wraps io.EOF: callers would take it for a bare end of stream.
func (c *Client) connCause() error {
	err := c.connErr
	switch {
	case errors.Is(err, errConnReset()):
		return &describedError{fmt.Sprintf("the connection to %s was reset (TCP RST from the server, or from a firewall or NAT on the way)", c.Name), err}
	case err == nil || errors.Is(err, io.EOF):
		return &describedError{fmt.Sprintf("the SSH server %s closed the connection", c.Name), errConnLost}
	}
	return &describedError{fmt.Sprintf("the connection to %s failed: %v", c.Name, err), err}
}
