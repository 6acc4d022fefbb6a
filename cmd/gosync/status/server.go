package status

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// request is the one request there is; the version lets a newer
	// status ask an older watch.
	request = "status 1\n"
	// maxRequest bounds what a server reads of a request.
	maxRequest = 64
	// maxAnswer bounds what a client reads of an answer.
	maxAnswer = 4 << 20
	// deadline bounds each side's whole exchange.
	deadline = 2 * time.Second
	// maxConns bounds the requests served at once; more are closed.
	maxConns = 8
	// staleAge is how old a socket nobody listens on must be before it
	// is taken for the leftover of a dead watch: a socket is bound a
	// moment before it listens.
	staleAge = 2 * time.Second
)

var seq atomic.Int64 // numbers the sockets of one process (tests run many watches)

// Server answers status requests on a Unix socket.
type Server struct {
	l        net.Listener
	path     string
	snapshot func() Watch
	log      *slog.Logger
	sem      chan struct{}
}

// Listen opens this watch's socket in dir (from Dir), mode 0600, after
// removing sockets that dead watches left. snapshot is called for every
// request and must not wait for the watch's work.
func Listen(dir string, snapshot func() Watch, log *slog.Logger) (*Server, error) {
	removeStale(dir)
	path := filepath.Join(dir, fmt.Sprintf("watch-%d-%d.sock", os.Getpid(), seq.Add(1)))
	os.Remove(path) // a dead process with our pid left it; the name is ours now
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("status socket: %w", err)
	}
	if err := restrictSocket(path); err != nil {
		l.Close()
		return nil, fmt.Errorf("status socket: %w", err)
	}
	return &Server{l: l, path: path, snapshot: snapshot, log: log, sem: make(chan struct{}, maxConns)}, nil
}

// Path is the socket's file.
func (s *Server) Path() string { return s.path }

// Serve answers requests until ctx ends, then removes the socket and
// waits for the requests in flight.
func (s *Server) Serve(ctx context.Context) {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { s.l.Close() })
	defer stop()
	for {
		c, err := s.l.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.log.Warn("status socket closed; gosync status no longer sees this watch", slog.String("err", err.Error()))
			}
			break
		}
		select {
		case s.sem <- struct{}{}:
		default:
			c.Close() // too many at once: the client retries or reports
			continue
		}
		wg.Go(func() {
			defer func() { <-s.sem }()
			s.answer(c)
		})
	}
	s.l.Close()
	wg.Wait()
}

func (s *Server) answer(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(deadline))
	line, err := bufio.NewReaderSize(io.LimitReader(c, maxRequest), maxRequest).ReadString('\n')
	if err != nil {
		return
	}
	enc := json.NewEncoder(c)
	if line != request {
		enc.Encode(map[string]string{"error": "unknown request " + strings.TrimSpace(line)})
		return
	}
	enc.Encode(s.snapshot())
}

// Close stops listening and removes the socket (Serve does it too).
func (s *Server) Close() error { return s.l.Close() }

// removeStale removes the sockets in dir that nobody listens on any
// more and that are old enough not to be about to listen.
func removeStale(dir string) {
	paths, _ := filepath.Glob(filepath.Join(dir, "*.sock"))
	for _, p := range paths {
		isStale(p)
	}
}

// isStale removes p if it is the socket of a dead watch, and says so.
func isStale(p string) bool {
	fi, err := os.Lstat(p)
	if err != nil || fi.Mode().Type() != os.ModeSocket || time.Since(fi.ModTime()) < staleAge {
		return false
	}
	c, err := net.DialTimeout("unix", p, deadline)
	if err == nil {
		c.Close()
		return false
	}
	if !refused(err) {
		return false // busy or unreadable, not dead
	}
	os.Remove(p)
	return true
}
