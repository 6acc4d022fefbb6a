package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/gosync/gosync/engine/agent"
)

// pipeTransport closes both directions of an in-process connection and
// waits for the agent goroutine.
type pipeTransport struct {
	cw   *io.PipeWriter
	cr   *io.PipeReader
	once sync.Once
	done chan struct{}
}

func (t *pipeTransport) Close() error {
	t.once.Do(func() {
		t.cw.Close()
		t.cr.Close()
	})
	<-t.done
	return nil
}

// DialLocal serves the mirror directory dir with an agent running in this
// process, connected by a pipe. The agent goroutine lives until Close.
func DialLocal(ctx context.Context, name, dir string, opt ClientOptions, log *slog.Logger) (*Client, error) {
	ar, cw := io.Pipe()
	cr, aw := io.Pipe()
	t := &pipeTransport{cw: cw, cr: cr, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		err := agent.Serve(ctx, ar, aw, agent.Options{Root: dir, BuildID: opt.BuildID, Logger: log})
		if err == nil {
			err = io.EOF
		}
		aw.CloseWithError(err)
		ar.CloseWithError(err)
	}()
	return NewClient(ctx, name, cr, cw, t, opt)
}

// cmdTransport is an agent running as a child process.
type cmdTransport struct {
	cmd    *exec.Cmd
	stdin  io.Closer
	stderr *StderrBuffer
	once   sync.Once
	err    error
}

func (t *cmdTransport) Close() error {
	t.once.Do(func() {
		t.stdin.Close()
		// An agent that does not exit at the end of its input (stopped,
		// or stuck in the kernel) is killed after a grace period, so its
		// output closes and nothing waits for it for ever.
		exited := make(chan struct{})
		kill := time.AfterFunc(agentGrace, func() {
			select {
			case <-exited:
			default:
				t.cmd.Process.Kill()
			}
		})
		t.err = t.cmd.Wait()
		close(exited)
		kill.Stop()
	})
	return t.err
}

// agentGrace is how long an agent child has to exit after its input ends.
const agentGrace = time.Second

// DialCommand starts argv (a `gosync agent ROOT` command, possibly through
// another program) and speaks the protocol on its stdin and stdout.
func DialCommand(ctx context.Context, name string, argv []string, opt ClientOptions) (*Client, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr := &StderrBuffer{Max: 64 << 10}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start agent for %s: %w", name, err)
	}
	t := &cmdTransport{cmd: cmd, stdin: stdin, stderr: stderr}
	c, err := NewClient(ctx, name, stdout, stdin, t, opt)
	if err != nil && errors.Is(err, ErrMirrorLost) {
		t.Close()
		if msg := stderr.LastLine(); msg != "" {
			return nil, fmt.Errorf("%w: agent said: %s", err, msg)
		}
	}
	return c, err
}

// StderrBuffer keeps the last Max bytes an agent writes to its standard
// error, for error messages; it is safe for concurrent use.
type StderrBuffer struct {
	Max int
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *StderrBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Keep the end: a program that fails says why last.
	if len(p) >= l.Max {
		l.buf.Reset()
		l.buf.Write(p[len(p)-l.Max:])
		return len(p), nil
	}
	if over := l.buf.Len() + len(p) - l.Max; over > 0 {
		l.buf.Next(over)
	}
	l.buf.Write(p)
	return len(p), nil
}

// String returns what was kept.
func (l *StderrBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Tail returns the last n non-empty lines kept, joined by newlines.
func (l *StderrBuffer) Tail(n int) string {
	var lines []string
	for _, line := range strings.Split(l.String(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// LastLine returns the last non-empty line kept: usually the error.
func (l *StderrBuffer) LastLine() string {
	s := strings.TrimSpace(l.String())
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
