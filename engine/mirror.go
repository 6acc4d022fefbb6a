package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/gosync/gosync/engine/delta"
	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/wire"
)

// Mirror is everything the engine needs from a destination. The agent
// client (Client) satisfies it over any byte stream, so a local directory,
// a child process and an SSH session are the same to the engine.
type Mirror interface {
	// Name is how the user wrote the destination.
	Name() string
	// SetsOwner reports whether the mirror side can set file owners.
	SetsOwner() bool
	// Missing reports that the mirror directory does not exist (only in a
	// dry run, which does not create it).
	Missing() bool
	// Scan lists the subtree at sub ("" for all), with content hashes if
	// hash is set. Problems with single paths come back in the slice of
	// OpError; the error is for the listing as a whole.
	Scan(ctx context.Context, sub string, hash bool) ([]fstree.Entry, []OpError, error)
	// Signatures returns the block signature of each named file; a file
	// whose signature is unavailable gets a nil entry and an error.
	Signatures(ctx context.Context, reqs []SigRequest) ([]*delta.Signature, []error, error)
	// Writer returns the stream of write operations. Operations are
	// pipelined; their failures are reported by the next Barrier.
	Writer() Writer
	// Barrier waits until every operation written before it is applied
	// and returns those that failed.
	Barrier(ctx context.Context) ([]OpError, error)
	// Run runs a shell command in the mirror directory on the mirror's
	// host, with stdin as its input, and returns its exit code and the
	// tail of its output (--on-sync).
	Run(ctx context.Context, cmd string, stdin []byte) (code int, output string, err error)
	// BytesSent counts bytes written to the transport so far.
	BytesSent() int64
	Close() error
}

// Writer sends write operations to a mirror. The file operations come in
// sequence: BeginFile, any number of Data and Copy, then EndFile or
// AbortFile.
type Writer interface {
	Mkdir(path string, meta wire.Meta) error
	Symlink(path, target string, meta wire.Meta) error
	SetMeta(path string, kind fstree.Kind, meta wire.Meta) error
	Delete(path string, kind fstree.Kind) error
	Rename(from, to string, kind fstree.Kind) error
	BeginFile(path string, size int64, meta wire.Meta, blockSize int) error
	Data(p []byte) error
	Copy(block uint64, count uint32) error
	EndFile(hash fstree.Hash) error
	AbortFile() error
}

// SigRequest names a file on the mirror and the size the client expects.
type SigRequest struct {
	Path string
	Size int64
}

// OpError is an operation the mirror could not apply.
type OpError struct {
	Path string
	Code int
	Msg  string
}

func (e OpError) Error() string { return displayPath(e.Path) + ": " + e.Msg }

// ErrMirrorLost is wrapped when the connection to a mirror broke.
var ErrMirrorLost = errors.New("connection to mirror lost")

// Client speaks the agent protocol over a transport stream.
type Client struct {
	name      string
	conn      *wire.Conn
	transport io.Closer
	hello     *wire.Hello

	wmu    sync.Mutex // serialises writes
	nextID uint64

	mu      sync.Mutex
	waiters map[uint64]chan wire.Msg
	opErrs  []OpError
	readErr error
	done    chan struct{} // closed when the reader ends
}

// ClientOptions shape the handshake.
type ClientOptions struct {
	Compress int  // zstd level, 0 for none
	Create   bool // create the mirror directory if missing
	BuildID  string
}

// HandshakeError is the agent's refusal at the handshake (an unusable
// mirror directory, another protocol version).
type HandshakeError struct{ Msg string }

func (e *HandshakeError) Error() string { return e.Msg }

// NewClient performs the handshake on r/w and starts reading answers.
// transport is closed by Close (and when ctx ends) to end the session.
func NewClient(ctx context.Context, name string, r io.Reader, w io.Writer, transport io.Closer, opt ClientOptions) (*Client, error) {
	c := &Client{name: name, conn: wire.NewConn(r, w), transport: transport, waiters: map[uint64]chan wire.Msg{}, done: make(chan struct{})}
	stop := context.AfterFunc(ctx, func() { transport.Close() })
	defer stop()
	var flags uint64
	if opt.Create {
		flags |= wire.FlagCreate
	}
	if err := c.conn.WriteMsg(&wire.Hello{Version: wire.Version, BuildID: opt.BuildID, Compress: opt.Compress, Flags: flags}); err != nil {
		transport.Close()
		return nil, fmt.Errorf("%w: %w", ErrMirrorLost, err)
	}
	if err := c.conn.Flush(); err != nil {
		transport.Close()
		return nil, fmt.Errorf("%w: %w", ErrMirrorLost, err)
	}
	m, err := c.conn.ReadMsg()
	if err != nil {
		transport.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: handshake: %w", ErrMirrorLost, err)
	}
	h, ok := m.(*wire.Hello)
	if !ok {
		transport.Close()
		return nil, fmt.Errorf("handshake: %w: got message type %d", wire.ErrFrame, m.Type())
	}
	if h.Err != "" {
		transport.Close()
		return nil, &HandshakeError{Msg: h.Err}
	}
	if h.Version != wire.Version {
		transport.Close()
		return nil, &HandshakeError{Msg: fmt.Sprintf("agent speaks protocol version %d, this gosync %d", h.Version, wire.Version)}
	}
	c.hello = h
	if err := c.conn.StartCompression(opt.Compress); err != nil {
		transport.Close()
		return nil, err
	}
	go c.read()
	return c, nil
}

func (c *Client) Name() string     { return c.name }
func (c *Client) SetsOwner() bool  { return c.hello.Flags&wire.FlagRoot != 0 }
func (c *Client) Missing() bool    { return c.hello.Flags&wire.FlagMissing != 0 }
func (c *Client) BytesSent() int64 { c.wmu.Lock(); defer c.wmu.Unlock(); return c.conn.Written }

// read dispatches the agent's messages until the stream ends.
func (c *Client) read() {
	defer close(c.done)
	for {
		m, err := c.conn.ReadMsg()
		if err != nil {
			c.mu.Lock()
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			c.readErr = fmt.Errorf("%w: %w", ErrMirrorLost, err)
			for id, ch := range c.waiters {
				close(ch)
				delete(c.waiters, id)
			}
			c.mu.Unlock()
			return
		}
		var id uint64
		switch m := m.(type) {
		case *wire.Entries:
			id = m.ID
		case *wire.ScanEnd:
			id = m.ID
		case *wire.Sig:
			m.Sig = append([]byte(nil), m.Sig...) // the frame buffer is reused
			id = m.ID
		case *wire.Done:
			id = m.ID
		case *wire.RunDone:
			id = m.ID
		case *wire.Error:
			id = m.ID
		default:
			c.mu.Lock()
			c.readErr = fmt.Errorf("%w: unexpected message type %d from agent", wire.ErrFrame, m.Type())
			c.mu.Unlock()
			c.transport.Close()
			continue
		}
		c.mu.Lock()
		ch := c.waiters[id]
		if ch == nil {
			if e, ok := m.(*wire.Error); ok {
				c.opErrs = append(c.opErrs, OpError{Path: e.Path, Code: e.Code, Msg: e.Msg})
			}
			c.mu.Unlock()
			continue
		}
		c.mu.Unlock()
		ch <- m
	}
}

// request registers a waiter for answers to a new request id.
func (c *Client) request() (uint64, chan wire.Msg, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.readErr != nil {
		return 0, nil, c.readErr
	}
	c.nextID++
	ch := make(chan wire.Msg, 64)
	c.waiters[c.nextID] = ch
	return c.nextID, ch, nil
}

func (c *Client) forget(id uint64) {
	c.mu.Lock()
	delete(c.waiters, id)
	c.mu.Unlock()
}

func (c *Client) lost() error {
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readErr
}

func (c *Client) send(m wire.Msg) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.conn.WriteMsg(m); err != nil {
		return fmt.Errorf("%w: %w", ErrMirrorLost, err)
	}
	return nil
}

func (c *Client) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.conn.Flush(); err != nil {
		return fmt.Errorf("%w: %w", ErrMirrorLost, err)
	}
	return nil
}

// wait receives the next answer to a request, giving up with ctx.
func (c *Client) wait(ctx context.Context, ch chan wire.Msg) (wire.Msg, error) {
	select {
	case m, ok := <-ch:
		if !ok {
			return nil, c.lost()
		}
		return m, nil
	case <-ctx.Done():
		// The stream is now out of step with us: end the session.
		c.transport.Close()
		return nil, ctx.Err()
	}
}

func (c *Client) Scan(ctx context.Context, sub string, hash bool) ([]fstree.Entry, []OpError, error) {
	id, ch, err := c.request()
	if err != nil {
		return nil, nil, err
	}
	defer c.forget(id)
	if err := c.send(&wire.Scan{ID: id, Path: sub, Hash: hash}); err != nil {
		return nil, nil, err
	}
	if err := c.flush(); err != nil {
		return nil, nil, err
	}
	var entries []fstree.Entry
	var errs []OpError
	for {
		m, err := c.wait(ctx, ch)
		if err != nil {
			return nil, nil, err
		}
		switch m := m.(type) {
		case *wire.Entries:
			entries = append(entries, m.Entries...)
		case *wire.Error:
			errs = append(errs, OpError{Path: m.Path, Code: m.Code, Msg: m.Msg})
		case *wire.ScanEnd:
			if m.Err != "" {
				return nil, errs, fmt.Errorf("scan %s: %s", c.name, m.Err)
			}
			return entries, errs, nil
		default:
			return nil, nil, fmt.Errorf("%w: unexpected answer type %d to scan", wire.ErrFrame, m.Type())
		}
	}
}

func (c *Client) Signatures(ctx context.Context, reqs []SigRequest) ([]*delta.Signature, []error, error) {
	if len(reqs) == 0 {
		return nil, nil, nil
	}
	ids := make([]uint64, len(reqs))
	chans := make([]chan wire.Msg, len(reqs))
	for i, r := range reqs {
		id, ch, err := c.request()
		if err != nil {
			return nil, nil, err
		}
		defer c.forget(id)
		ids[i], chans[i] = id, ch
		if err := c.send(&wire.SigReq{ID: id, Path: r.Path, Size: r.Size}); err != nil {
			return nil, nil, err
		}
	}
	if err := c.flush(); err != nil {
		return nil, nil, err
	}
	sigs := make([]*delta.Signature, len(reqs))
	errs := make([]error, len(reqs))
	for i := range reqs {
		m, err := c.wait(ctx, chans[i])
		if err != nil {
			return nil, nil, err
		}
		sm, ok := m.(*wire.Sig)
		if !ok {
			return nil, nil, fmt.Errorf("%w: unexpected answer type %d to signature request", wire.ErrFrame, m.Type())
		}
		if sm.Err != "" {
			errs[i] = errors.New(sm.Err)
			continue
		}
		sig, err := delta.UnmarshalSignature(sm.Sig)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: signature of %s: %w", wire.ErrFrame, reqs[i].Path, err)
		}
		sigs[i] = sig
	}
	return sigs, errs, nil
}

func (c *Client) Barrier(ctx context.Context) ([]OpError, error) {
	id, ch, err := c.request()
	if err != nil {
		return nil, err
	}
	defer c.forget(id)
	if err := c.send(&wire.Barrier{ID: id}); err != nil {
		return nil, err
	}
	if err := c.flush(); err != nil {
		return nil, err
	}
	m, err := c.wait(ctx, ch)
	if err != nil {
		return nil, err
	}
	if _, ok := m.(*wire.Done); !ok {
		return nil, fmt.Errorf("%w: unexpected answer type %d to barrier", wire.ErrFrame, m.Type())
	}
	// Errors of earlier operations arrived before Done.
	c.mu.Lock()
	errs := c.opErrs
	c.opErrs = nil
	c.mu.Unlock()
	return errs, nil
}

func (c *Client) Run(ctx context.Context, cmd string, stdin []byte) (int, string, error) {
	id, ch, err := c.request()
	if err != nil {
		return 0, "", err
	}
	defer c.forget(id)
	if err := c.send(&wire.Run{ID: id, Cmd: cmd, Stdin: stdin}); err != nil {
		return 0, "", err
	}
	if err := c.flush(); err != nil {
		return 0, "", err
	}
	m, err := c.wait(ctx, ch)
	if err != nil {
		return 0, "", err
	}
	d, ok := m.(*wire.RunDone)
	if !ok {
		return 0, "", fmt.Errorf("%w: unexpected answer type %d to run", wire.ErrFrame, m.Type())
	}
	return d.Code, d.Output, nil
}

func (c *Client) Writer() Writer { return clientWriter{c} }

// Close ends the session: the agent sees the end of its input and exits.
func (c *Client) Close() error {
	err := c.transport.Close()
	<-c.done
	c.conn.Close()
	return err
}

type clientWriter struct{ c *Client }

func (w clientWriter) id() uint64 {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	w.c.nextID++
	return w.c.nextID
}

func (w clientWriter) Mkdir(p string, meta wire.Meta) error {
	return w.c.send(&wire.Mkdir{ID: w.id(), Path: p, Meta: meta})
}
func (w clientWriter) Symlink(p, target string, meta wire.Meta) error {
	return w.c.send(&wire.Symlink{ID: w.id(), Path: p, Target: target, Meta: meta})
}
func (w clientWriter) SetMeta(p string, kind fstree.Kind, meta wire.Meta) error {
	return w.c.send(&wire.SetMeta{ID: w.id(), Path: p, Kind: kind, Meta: meta})
}
func (w clientWriter) Delete(p string, kind fstree.Kind) error {
	return w.c.send(&wire.Delete{ID: w.id(), Path: p, Kind: kind})
}
func (w clientWriter) Rename(from, to string, kind fstree.Kind) error {
	return w.c.send(&wire.Rename{ID: w.id(), From: from, To: to, Kind: kind})
}
func (w clientWriter) BeginFile(p string, size int64, meta wire.Meta, blockSize int) error {
	return w.c.send(&wire.FileBegin{ID: w.id(), Path: p, Size: size, Meta: meta, BlockSize: blockSize})
}
func (w clientWriter) Data(p []byte) error {
	for len(p) > 0 {
		n := min(len(p), wire.MaxData)
		if err := w.c.send(&wire.FileData{Data: p[:n]}); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}
func (w clientWriter) Copy(block uint64, count uint32) error {
	return w.c.send(&wire.FileCopy{Block: block, Count: count})
}
func (w clientWriter) EndFile(hash fstree.Hash) error { return w.c.send(&wire.FileEnd{Hash: hash}) }
func (w clientWriter) AbortFile() error               { return w.c.send(&wire.FileAbort{}) }

func displayPath(p string) string {
	if p == "" {
		return "."
	}
	return p
}
