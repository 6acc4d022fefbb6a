// Package wiretest runs crafted agents for tests of the client side of the
// protocol: a Peer answers the handshake as a real agent would, over real
// pipes (greeting first if asked, as a forced agent does), and then
// follows a script that may misbehave on purpose (answer twice, flood,
// never answer, stop reading).
package wiretest

import (
	"errors"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gosync/gosync/engine/wire"
)

// Script is what a Peer does after the handshake, on its end of the
// connection. The peer's end is closed when it returns. A script that
// blocks must also return when Stopped is closed.
type Script func(p *Peer, conn *wire.Conn) error

// Peer is a crafted agent. R, W and Transport are the client's end, for
// engine.NewClient; closing Transport closes both of the client's pipe
// ends, which makes its blocked reads and writes fail.
type Peer struct {
	R         io.Reader
	W         io.Writer
	Transport io.Closer

	// Hello is what the client sent in the handshake.
	Hello *wire.Hello

	stop     chan struct{}
	done     chan struct{}
	pr, pw   *os.File
	stopOnce sync.Once
}

type pipeCloser struct {
	once sync.Once
	r, w *os.File
}

func (c *pipeCloser) Close() error {
	c.once.Do(func() {
		c.w.Close()
		c.r.Close()
	})
	return nil
}

// Options shape a Peer's link.
type Options struct {
	// ReadRate, if positive, is how many bytes a second the peer reads:
	// a slow link, or an agent on a slow disk.
	ReadRate int
	// Greetings is how many greetings (wire.FlagGreeting) the peer sends
	// before it reads the client's Hello: 1 as a forced agent does, more
	// for a broken one.
	Greetings int
	// Flags go into every Hello the peer sends.
	Flags uint64
	// HungUpOn says the client is expected to hang up during the
	// handshake (a test of a peer it refuses), so the peer's own write
	// errors are not the test's failure.
	HungUpOn bool
}

// Start runs a Peer with script until the test ends (or Stop). The test
// fails if the script returns an error before it was stopped.
func Start(t testing.TB, script Script) *Peer {
	t.Helper()
	return StartWith(t, Options{}, script)
}

// StartWith is Start with options.
func StartWith(t testing.TB, opt Options, script Script) *Peer {
	t.Helper()
	cr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, cw, err := os.Pipe()
	if err != nil {
		cr.Close()
		pw.Close()
		t.Fatal(err)
	}
	p := &Peer{R: cr, W: cw, Transport: &pipeCloser{r: cr, w: cw}, stop: make(chan struct{}), done: make(chan struct{}), pr: pr, pw: pw}
	var serr error
	go func() {
		defer close(p.done)
		defer p.closeEnds()
		var r io.Reader = pr
		if opt.ReadRate > 0 {
			r = &slowReader{r: pr, rate: opt.ReadRate, stop: p.stop}
		}
		conn := wire.NewConn(r, pw)
		defer conn.Close()
		serr = p.handshake(conn, opt)
		if serr == nil {
			serr = script(p, conn)
		}
		select {
		case <-p.stop:
			serr = nil // the failure is the stop's doing
		default:
			if opt.HungUpOn {
				serr = nil
			}
		}
	}()
	t.Cleanup(func() {
		p.Stop()
		p.Transport.Close()
		if serr != nil {
			t.Errorf("crafted peer: %v", serr)
		}
	})
	return p
}

func (p *Peer) handshake(conn *wire.Conn, opt Options) error {
	for range opt.Greetings {
		if err := Send(conn, &wire.Hello{Version: wire.Version, BuildID: "wiretest", Flags: opt.Flags | wire.FlagGreeting}); err != nil {
			return err
		}
	}
	m, err := conn.ReadMsg()
	if err != nil {
		return err
	}
	h, ok := m.(*wire.Hello)
	if !ok {
		return errors.New("first message is not a hello")
	}
	p.Hello = h
	if err := conn.WriteMsg(&wire.Hello{Version: wire.Version, BuildID: "wiretest", Flags: opt.Flags}); err != nil {
		return err
	}
	if err := conn.Flush(); err != nil {
		return err
	}
	return conn.StartCompression(h.Compress)
}

func (p *Peer) closeEnds() {
	p.pr.Close()
	p.pw.Close()
}

// Stop ends the script (its pipe ends are closed, so its reads and writes
// fail) and waits for it.
func (p *Peer) Stop() {
	p.stopOnce.Do(func() { close(p.stop) })
	p.closeEnds()
	<-p.done
}

// WriteRaw writes bytes to the client unframed (a corrupt stream) and then
// closes the peer's sending end, as an agent that died would.
func (p *Peer) WriteRaw(b []byte) error {
	_, err := p.pw.Write(b)
	p.pw.Close()
	return err
}

// Stopped is closed when the test is over or Stop was called.
func (p *Peer) Stopped() <-chan struct{} { return p.stop }

// Done is closed when the script has returned.
func (p *Peer) Done() <-chan struct{} { return p.done }

// Hold keeps the connection open without reading or writing until the
// peer is stopped: a stopped agent, or one whose host went silent.
func (p *Peer) Hold() error {
	<-p.stop
	return nil
}

// Drain reads and discards everything until the stream ends: an agent
// that receives but never answers.
func Drain(conn *wire.Conn) error {
	for {
		if _, err := conn.ReadMsg(); err != nil {
			return nil
		}
	}
}

// Next reads until a message of one of the given types arrives and
// returns it; the others are discarded.
func Next(conn *wire.Conn, types ...wire.Type) (wire.Msg, error) {
	for {
		m, err := conn.ReadMsg()
		if err != nil {
			return nil, err
		}
		for _, t := range types {
			if m.Type() == t {
				return m, nil
			}
		}
	}
}

// Send writes and flushes messages.
func Send(conn *wire.Conn, ms ...wire.Msg) error {
	for _, m := range ms {
		if err := conn.WriteMsg(m); err != nil {
			return err
		}
	}
	return conn.Flush()
}

// slowReader reads at most rate bytes a second, in small pieces.
type slowReader struct {
	r    io.Reader
	rate int
	stop chan struct{}
}

func (s *slowReader) Read(p []byte) (int, error) {
	piece := max(1, s.rate/50) // 50 reads a second
	n, err := s.r.Read(p[:min(len(p), piece)])
	t := time.NewTimer(time.Duration(n) * time.Second / time.Duration(s.rate))
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.stop:
	}
	return n, err
}
