package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/agent"
	"github.com/gosync/gosync/engine/delta"
	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/treetest"
	"github.com/gosync/gosync/engine/wire"
	"github.com/gosync/gosync/engine/wire/wiretest"
)

// hung bounds what must return rather than hang; it is generous because
// the machines running the tests are shared and noisy.
const hung = 10 * time.Second

const peerName = "peer:/srv/www"

// dialPeer connects a client to a crafted agent running script.
func dialPeer(t *testing.T, opt engine.ClientOptions, script wiretest.Script) (*engine.Client, *wiretest.Peer) {
	t.Helper()
	p := wiretest.Start(t, script)
	c, err := engine.NewClient(context.Background(), peerName, p.R, p.W, p.Transport, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeWithin(t, c) })
	return c, p
}

// closeWithin closes c and fails the test if Close hangs.
func closeWithin(t *testing.T, c *engine.Client) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		c.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(hung):
		t.Errorf("Close did not return within %s", hung)
	}
}

// within runs f and fails the test if it does not return in time.
func within[T any](t *testing.T, what string, f func() T) T {
	t.Helper()
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	select {
	case v := <-ch:
		return v
	case <-time.After(hung):
		t.Fatalf("%s did not return within %s", what, hung)
		panic("unreachable")
	}
}

// wantViolation checks that err ends the session for a protocol violation
// and names the mirror.
func wantViolation(t *testing.T, err error, contains string) {
	t.Helper()
	if !errors.Is(err, wire.ErrFrame) || !errors.Is(err, engine.ErrMirrorLost) {
		t.Fatalf("err = %v, want a protocol error that ends the session", err)
	}
	if !strings.Contains(err.Error(), peerName) || !strings.Contains(err.Error(), contains) {
		t.Fatalf("err = %q, want it to name %s and say %q", err, peerName, contains)
	}
}

func barrierAnswer(conn *wire.Conn) (*wire.Barrier, error) {
	m, err := wiretest.Next(conn, wire.TBarrier)
	if err != nil {
		return nil, err
	}
	return m.(*wire.Barrier), nil
}

func TestClientAnswerTwiceEndsSession(t *testing.T) {
	c, _ := dialPeer(t, engine.ClientOptions{}, func(p *wiretest.Peer, conn *wire.Conn) error {
		b, err := barrierAnswer(conn)
		if err != nil {
			return err
		}
		if err := wiretest.Send(conn, &wire.Done{ID: b.ID}, &wire.Done{ID: b.ID}); err != nil {
			return err
		}
		return wiretest.Drain(conn)
	})
	ctx := context.Background()
	if _, err := c.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	err := within(t, "Barrier", func() error { _, err := c.Barrier(ctx); return err })
	wantViolation(t, err, "not waiting")
}

// An agent that floods answers to one request while the client waits for
// another must not wedge the client's reader (which once blocked on a
// full channel, so that neither the wait nor Close ever returned).
func TestClientFloodOfAnswersDoesNotDeadlock(t *testing.T) {
	const size = 10000
	sig := signature(t, size, delta.BlockSize(size))
	c, _ := dialPeer(t, engine.ClientOptions{}, func(p *wiretest.Peer, conn *wire.Conn) error {
		first, err := wiretest.Next(conn, wire.TSigReq)
		if err != nil {
			return err
		}
		second, err := wiretest.Next(conn, wire.TSigReq)
		if err != nil {
			return err
		}
		for range 200 {
			if err := wiretest.Send(conn, &wire.Sig{ID: second.(*wire.SigReq).ID, Sig: sig}); err != nil {
				return nil // the client gave up on us, as it should
			}
		}
		wiretest.Send(conn, &wire.Sig{ID: first.(*wire.SigReq).ID, Sig: sig})
		return wiretest.Drain(conn)
	})
	ctx, cancel := context.WithTimeout(context.Background(), hung)
	defer cancel()
	reqs := []engine.SigRequest{{Path: "a", Size: size}, {Path: "b", Size: size}}
	err := within(t, "Signatures", func() error { _, _, err := c.Signatures(ctx, reqs); return err })
	wantViolation(t, err, "not waiting")
	closeWithin(t, c)
}

func signature(t *testing.T, size int64, blockSize int) []byte {
	t.Helper()
	s, err := delta.SignWith(context.Background(), bytes.NewReader(make([]byte, size)), size, blockSize, delta.StrongLen(size))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestClientSignatureBounds(t *testing.T) {
	const size = 100_000
	tests := []struct {
		name string
		sig  []byte
		want string // "" for accepted
	}{
		{"as asked", signature(t, size, delta.BlockSize(size)), ""},
		{"another size", signature(t, size*2, delta.BlockSize(size*2)), "were asked for"},
		{"tiny blocks", signature(t, size, 1), "blocks of 1 bytes, 700 were asked for"},
		{"garbage", []byte{1, 2, 3}, "invalid signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := dialPeer(t, engine.ClientOptions{}, func(p *wiretest.Peer, conn *wire.Conn) error {
				m, err := wiretest.Next(conn, wire.TSigReq)
				if err != nil {
					return err
				}
				if err := wiretest.Send(conn, &wire.Sig{ID: m.(*wire.SigReq).ID, Sig: tt.sig}); err != nil {
					return err
				}
				return wiretest.Drain(conn)
			})
			sigs, _, err := within(t, "Signatures", func() sigResult {
				s, e, err := c.Signatures(context.Background(), []engine.SigRequest{{Path: "f", Size: size}})
				return sigResult{s, e, err}
			}).unpack()
			if tt.want == "" {
				if err != nil || sigs[0] == nil || sigs[0].Size != size {
					t.Fatalf("signature refused: %v", err)
				}
				return
			}
			wantViolation(t, err, tt.want)
		})
	}
}

type sigResult struct {
	sigs []*delta.Signature
	errs []error
	err  error
}

func (r sigResult) unpack() ([]*delta.Signature, []error, error) { return r.sigs, r.errs, r.err }

func entries(prefix string, n int) []fstree.Entry {
	es := make([]fstree.Entry, n)
	for i := range es {
		es[i] = fstree.Entry{Path: fmt.Sprintf("%s%d", prefix, i), Kind: fstree.File, Perm: 0o644}
	}
	return es
}

func TestClientScanBounds(t *testing.T) {
	tests := []struct {
		name    string
		sub     string
		opt     engine.ClientOptions
		batches [][]fstree.Entry
		want    string
	}{
		{"entries", "", engine.ClientOptions{MaxScanEntries: 1000}, [][]fstree.Entry{entries("f", 600), entries("g", 600)}, "more than 1000 entries"},
		{"bytes", "", engine.ClientOptions{MaxScanBytes: 64 << 10}, [][]fstree.Entry{entries(strings.Repeat("x", 1000), 100)}, "bytes"},
		{"outside the subtree", "a", engine.ClientOptions{}, [][]fstree.Entry{entries("a/", 3), entries("b/", 1)}, "outside it"},
		{"sibling with the same prefix", "a", engine.ClientOptions{}, [][]fstree.Entry{entries("ab", 1)}, "outside it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := dialPeer(t, tt.opt, func(p *wiretest.Peer, conn *wire.Conn) error {
				m, err := wiretest.Next(conn, wire.TScan)
				if err != nil {
					return err
				}
				id := m.(*wire.Scan).ID
				for _, b := range tt.batches {
					if err := wiretest.Send(conn, &wire.Entries{ID: id, Entries: b}); err != nil {
						return nil // refused midway
					}
				}
				wiretest.Send(conn, &wire.ScanEnd{ID: id})
				return wiretest.Drain(conn)
			})
			err := within(t, "Scan", func() error { _, _, err := c.Scan(context.Background(), tt.sub, false); return err })
			wantViolation(t, err, tt.want)
		})
	}
}

// Failures of write operations must name operations that were sent, once
// each; what the client keeps is its own path and a short, escaped
// message.
func TestClientOperationErrors(t *testing.T) {
	t.Run("kept", func(t *testing.T) {
		c, _ := dialPeer(t, engine.ClientOptions{}, func(p *wiretest.Peer, conn *wire.Conn) error {
			m, err := wiretest.Next(conn, wire.TMkdir)
			if err != nil {
				return err
			}
			long := "\x1b[2J" + strings.Repeat("y", 3000) + ": no space left"
			if err := wiretest.Send(conn, &wire.Error{ID: m.(*wire.Mkdir).ID, Path: "elsewhere", Code: wire.CodeNoSpace, Msg: long}); err != nil {
				return err
			}
			b, err := barrierAnswer(conn)
			if err != nil {
				return err
			}
			if err := wiretest.Send(conn, &wire.Done{ID: b.ID}); err != nil {
				return err
			}
			return wiretest.Drain(conn)
		})
		w := c.Writer()
		if err := w.Mkdir("d", wire.Meta{Perm: 0o755}); err != nil {
			t.Fatal(err)
		}
		errs, err := c.Barrier(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(errs) != 1 || errs[0].Path != "d" || errs[0].Code != wire.CodeNoSpace {
			t.Fatalf("errors = %+v, want one for d", errs)
		}
		msg := errs[0].Msg
		if strings.ContainsRune(msg, 0x1b) || len(msg) > 600 || !strings.HasSuffix(msg, "no space left") {
			t.Fatalf("kept message %q: want escaped, clipped, with its end", msg)
		}
	})
	for _, tt := range []struct {
		name string
		ids  func(sent uint64) []uint64
	}{
		{"never sent", func(sent uint64) []uint64 { return []uint64{sent + 1000} }},
		{"twice", func(sent uint64) []uint64 { return []uint64{sent, sent} }},
		{"flood", func(sent uint64) []uint64 {
			ids := make([]uint64, 5000)
			for i := range ids {
				ids[i] = 999_999
			}
			return ids
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := dialPeer(t, engine.ClientOptions{}, func(p *wiretest.Peer, conn *wire.Conn) error {
				m, err := wiretest.Next(conn, wire.TMkdir)
				if err != nil {
					return err
				}
				for _, id := range tt.ids(m.(*wire.Mkdir).ID) {
					if err := conn.WriteMsg(&wire.Error{ID: id, Path: "d", Code: wire.CodeOther, Msg: "boom"}); err != nil {
						return nil
					}
				}
				b, err := barrierAnswer(conn)
				if err != nil {
					return nil
				}
				wiretest.Send(conn, &wire.Done{ID: b.ID})
				return wiretest.Drain(conn)
			})
			if err := c.Writer().Mkdir("d", wire.Meta{Perm: 0o755}); err != nil {
				t.Fatal(err)
			}
			err := within(t, "Barrier", func() error { _, err := c.Barrier(context.Background()); return err })
			wantViolation(t, err, "was not sent or was already answered")
		})
	}
}

func wantIdle(t *testing.T, err error, idle time.Duration) {
	t.Helper()
	want := fmt.Sprintf("mirror %s did not answer for %s", peerName, idle)
	if !errors.Is(err, engine.ErrMirrorLost) || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want ErrMirrorLost saying %q", err, want)
	}
}

// serveBarriers answers every Barrier until the stream ends.
func serveBarriers(conn *wire.Conn) error {
	for {
		b, err := barrierAnswer(conn)
		if err != nil {
			return nil
		}
		if err := wiretest.Send(conn, &wire.Done{ID: b.ID}); err != nil {
			return nil
		}
	}
}

func TestClientIdleDeadline(t *testing.T) {
	t.Parallel()
	const idle = 300 * time.Millisecond
	t.Run("never answers", func(t *testing.T) {
		c, _ := dialPeer(t, engine.ClientOptions{IdleTimeout: idle}, func(p *wiretest.Peer, conn *wire.Conn) error {
			return wiretest.Drain(conn)
		})
		err := within(t, "Barrier", func() error { _, err := c.Barrier(context.Background()); return err })
		wantIdle(t, err, idle)
		// Later calls fail at once with the same reason.
		_, _, err = c.Scan(context.Background(), "", false)
		wantIdle(t, err, idle)
	})
	t.Run("stops reading", func(t *testing.T) {
		c, _ := dialPeer(t, engine.ClientOptions{IdleTimeout: idle}, func(p *wiretest.Peer, conn *wire.Conn) error {
			return p.Hold()
		})
		w := c.Writer()
		if err := w.BeginFile("big", 64<<20, wire.Meta{Perm: 0o644}, 0); err != nil {
			t.Fatal(err)
		}
		err := within(t, "Data", func() error { return w.Data(make([]byte, 64<<20)) })
		wantIdle(t, err, idle)
	})
	t.Run("idle session is never ended", func(t *testing.T) {
		// A deadline generous enough that a loaded machine never trips it
		// while answering, short against the silence below.
		const idle = time.Second
		c, p := dialPeer(t, engine.ClientOptions{IdleTimeout: idle}, func(p *wiretest.Peer, conn *wire.Conn) error {
			return serveBarriers(conn)
		})
		if _, err := c.Barrier(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Silence far longer than the deadline, with nothing asked.
		quiet := time.NewTimer(3 * idle)
		select {
		case <-quiet.C:
		case <-p.Done():
			t.Fatal("the client ended an idle session")
		}
		if _, err := c.Barrier(context.Background()); err != nil {
			t.Fatalf("after an idle spell: %v", err)
		}
	})
}

// A slow link where the client is still streaming file data must not be
// taken for a dead mirror: writes that progress are signs of life.
func TestClientSlowLinkDoesNotTrip(t *testing.T) {
	t.Parallel()
	const idle = time.Second
	p := wiretest.StartWith(t, wiretest.Options{ReadRate: 1 << 20}, func(p *wiretest.Peer, conn *wire.Conn) error {
		b, err := barrierAnswer(conn)
		if err != nil {
			return err
		}
		if err := wiretest.Send(conn, &wire.Done{ID: b.ID}); err != nil {
			return err
		}
		return wiretest.Drain(conn)
	})
	c, err := engine.NewClient(context.Background(), peerName, p.R, p.W, p.Transport, engine.ClientOptions{IdleTimeout: idle})
	if err != nil {
		t.Fatal(err)
	}
	defer closeWithin(t, c)
	// Twice the deadline's worth of data, never answered until the end.
	const size = 2 << 20
	w := c.Writer()
	if err := w.BeginFile("big", size, wire.Meta{Perm: 0o644}, 0); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := within(t, "Data", func() error { return w.Data(make([]byte, size)) }); err != nil {
		t.Fatal(err)
	}
	if err := within(t, "Barrier", func() error { _, err := c.Barrier(context.Background()); return err }); err != nil {
		t.Fatalf("after %s of streaming: %v", time.Since(start).Round(time.Millisecond), err)
	}
}

// blockingCloser is a transport whose Close never returns until the test
// ends, like a child process that does not exit.
type blockingCloser struct{ release chan struct{} }

func (b blockingCloser) Close() error { <-b.release; return nil }

func TestClientCloseIsBounded(t *testing.T) {
	t.Parallel()
	t.Run("unblocks a stuck writer", func(t *testing.T) {
		c, _ := dialPeer(t, engine.ClientOptions{IdleTimeout: -1}, func(p *wiretest.Peer, conn *wire.Conn) error {
			return p.Hold()
		})
		w := c.Writer()
		if err := w.BeginFile("big", 64<<20, wire.Meta{Perm: 0o644}, 0); err != nil {
			t.Fatal(err)
		}
		res := make(chan error, 1)
		go func() { res <- w.Data(make([]byte, 64<<20)) }()
		// The peer reads nothing, so the write cannot finish: give it time
		// to get stuck (a Windows pipe blocks a whole write, so BytesSent
		// may stay 0 there).
		select {
		case err := <-res:
			t.Fatalf("64 MiB written to a peer that reads nothing: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		closeWithin(t, c)
		select {
		case err := <-res:
			if !errors.Is(err, engine.ErrMirrorLost) {
				t.Fatalf("Data after Close: %v, want ErrMirrorLost", err)
			}
		case <-time.After(hung):
			t.Fatal("Data did not return after Close")
		}
		if err := w.Mkdir("d", wire.Meta{}); !errors.Is(err, engine.ErrMirrorLost) {
			t.Fatalf("Mkdir after Close: %v", err)
		}
	})
	t.Run("transport that will not close", func(t *testing.T) {
		p := wiretest.Start(t, func(p *wiretest.Peer, conn *wire.Conn) error { return p.Hold() })
		release := make(chan struct{})
		defer close(release)
		c, err := engine.NewClient(context.Background(), peerName, p.R, p.W, blockingCloser{release}, engine.ClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		err = within(t, "Close", c.Close)
		if !errors.Is(err, engine.ErrMirrorLost) || !strings.Contains(err.Error(), "did not close") {
			t.Fatalf("Close = %v, want a report that the transport did not close", err)
		}
		p.Stop() // ends the reader blocked on the pipe
	})
}

// waitFor polls cond until it holds, failing the test after hung.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hung)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dialAgent runs the real agent on dir in this process, over real pipes,
// with a short heartbeat.
func dialAgent(t *testing.T, dir string, heartbeat time.Duration, opt engine.ClientOptions) *engine.Client {
	t.Helper()
	return dialAgentWith(t, agent.Options{Root: dir, Heartbeat: heartbeat}, opt)
}

// dialAgentWith is dialAgent with any agent options.
func dialAgentWith(t *testing.T, aopt agent.Options, opt engine.ClientOptions) *engine.Client {
	t.Helper()
	treetest.NeedAgent(t)
	ar, cw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cr, aw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		agent.Serve(ctx, ar, aw, aopt)
		aw.Close()
		ar.Close()
	})
	tr := &pipePair{r: cr, w: cw}
	t.Cleanup(func() {
		cancel() // kills a command still running
		tr.Close()
		aw.Close()
		ar.Close()
		wg.Wait()
	})
	c, err := engine.NewClient(context.Background(), peerName, cr, cw, tr, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeWithin(t, c) })
	return c
}

type pipePair struct {
	once sync.Once
	r, w *os.File
}

func (p *pipePair) Close() error {
	p.once.Do(func() {
		p.w.Close()
		p.r.Close()
	})
	return nil
}

// A long on-sync command keeps the session alive through the agent's
// heartbeats; without them the same wait trips the deadline.
func TestAgentHeartbeatKeepsLongOperationAlive(t *testing.T) {
	t.Parallel()
	// idle is well above the heartbeat interval, so a loaded machine
	// (a race build beside other tests) that stalls the agent for a
	// moment does not make the test fail; the command runs for more than
	// twice idle.
	const idle = 2 * time.Second
	dir := t.TempDir()
	c := dialAgent(t, dir, 50*time.Millisecond, engine.ClientOptions{IdleTimeout: idle})
	code, out, err := within(t, "Run", func() runResult { return runOf(c, "sleep 4.5; echo done") }).unpack()
	if err != nil || code != 0 || strings.TrimSpace(out) != "done" {
		t.Fatalf("Run = %d, %q, %v", code, out, err)
	}

	silent := dialAgent(t, t.TempDir(), time.Hour, engine.ClientOptions{IdleTimeout: idle})
	_, _, err = within(t, "Run", func() runResult { return runOf(silent, "sleep 10") }).unpack()
	wantIdle(t, err, idle)
}

type runResult struct {
	code int
	out  string
	err  error
}

func (r runResult) unpack() (int, string, error) { return r.code, r.out, r.err }

func runOf(c *engine.Client, cmd string) runResult {
	code, out, err := c.Run(context.Background(), cmd, nil)
	return runResult{code, out, err}
}

func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, fstree.TempPrefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// When the caller's context ends mid-upload, the engine closes the client
// (context.AfterFunc): the upload fails at once and the agent, seeing its
// input end inside a file, removes the temporary and leaves the old file.
func TestCancelMidFileRemovesTemporary(t *testing.T) {
	treetest.NeedAgent(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "f")
	if err := os.WriteFile(target, []byte("old content"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := engine.DialLocal(ctx, dir, dir, engine.ClientOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeWithin(t, c)
	context.AfterFunc(ctx, func() { c.Close() })

	w := c.Writer()
	const size = 64 << 20
	if err := w.BeginFile("f", size, wire.Meta{Perm: 0o644}, 0); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	upload := make(chan error, 1)
	go func() {
		for range size / len(chunk) {
			if err := w.Data(chunk); err != nil {
				upload <- err
				return
			}
		}
		upload <- errors.New("the whole file was sent before the cancellation")
	}()
	waitFor(t, "the temporary to appear", func() bool { return len(tempFiles(t, dir)) > 0 })
	cancel()
	select {
	case err := <-upload:
		if !errors.Is(err, engine.ErrMirrorLost) {
			t.Fatalf("upload ended with %v, want ErrMirrorLost", err)
		}
	case <-time.After(hung):
		t.Fatal("the upload did not stop after the cancellation")
	}
	waitFor(t, "the temporary to be removed", func() bool { return len(tempFiles(t, dir)) == 0 })
	if b, err := os.ReadFile(target); err != nil || string(b) != "old content" {
		t.Fatalf("target after cancel = %q, %v", b, err)
	}
}

// Names are asked once per session: a second Resolve of the same names
// sends nothing. An answer with another number of ids than names asked
// ends the session.
func TestClientResolve(t *testing.T) {
	asked := make(chan *wire.Names, 4)
	c, _ := dialPeer(t, engine.ClientOptions{}, func(p *wiretest.Peer, conn *wire.Conn) error {
		m, err := wiretest.Next(conn, wire.TNames)
		if err != nil {
			return err
		}
		q := m.(*wire.Names)
		asked <- q
		if err := wiretest.Send(conn, &wire.Ids{ID: q.ID, Users: []wire.NameID{{ID: 33, Known: true}, {}}, Groups: []wire.NameID{{ID: 44, Known: true}}, Self: 1000, SelfGid: 1001}); err != nil {
			return err
		}
		if m, err = wiretest.Next(conn, wire.TNames); err != nil {
			return err
		}
		q = m.(*wire.Names)
		asked <- q
		if err := wiretest.Send(conn, &wire.Ids{ID: q.ID}); err != nil { // no answer for the name asked
			return err
		}
		return wiretest.Drain(conn)
	})
	ctx := context.Background()
	for range 2 {
		h, err := within(t, "Resolve", func() resolved {
			h, err := c.Resolve(ctx, []string{"www-data", "ghost"}, []string{"web"})
			return resolved{h, err}
		}).unpack()
		if err != nil {
			t.Fatal(err)
		}
		if h.Users["www-data"] != 33 || len(h.Users) != 1 || h.Groups["web"] != 44 || h.Uid != 1000 || h.Gid != 1001 {
			t.Fatalf("Resolve = %+v", h)
		}
	}
	if q := <-asked; len(q.Users) != 2 || len(q.Groups) != 1 || len(asked) != 0 {
		t.Fatalf("asked %+v, then %d more times", q, len(asked))
	}
	_, err := within(t, "Resolve", func() resolved {
		h, err := c.Resolve(ctx, []string{"new"}, nil)
		return resolved{h, err}
	}).unpack()
	wantViolation(t, err, "ids for")
}

type resolved struct {
	h   engine.HostIDs
	err error
}

func (r resolved) unpack() (engine.HostIDs, error) { return r.h, r.err }
