package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gosync/gosync/engine/delta"
	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/ident"
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
	// SetsGroup reports whether a mirror that does not set owners gives
	// files group gid (its user belongs to it).
	SetsGroup(gid uint32) bool
	// Root is the mirror directory's own metadata as the session found
	// it (ok false when the agent did not say, or in a dry run of a new
	// mirror), and whether the session created the directory.
	Root() (e fstree.Entry, created, ok bool)
	// PermBits are the mode bits the mirror applies to a directory (dir)
	// or another entry (0o7777; a restricted agent: 0o3777 and 0o777,
	// where setuid, setgid and sticky are stripped).
	PermBits(dir bool) uint32
	// Missing reports that the mirror directory does not exist (only in a
	// dry run, which does not create it).
	Missing() bool
	// Scan lists the subtree at sub ("" for all), with content hashes if
	// hash is set (sub naming a file too: the rename check asks so). Problems with single paths come back in the slice of
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
	// Resolve returns the ids the mirror's host gives user and group
	// names (a name it does not know is absent from the maps) and the
	// uid its agent runs as: rsync's name mapping and --chown.
	Resolve(ctx context.Context, users, groups []string) (HostIDs, error)
	// BytesSent counts bytes written to the transport so far.
	BytesSent() int64
	// Place is where the mirror directory is on its host (unknown for
	// an agent of an older protocol): a reconnection that finds another
	// directory at the path finds a new mirror.
	Place() ident.Place
	// TookOver names the live session this one took the mirror over
	// from ("" if none), and whether it was an earlier connection of
	// this very process (a stale session left by a reconnect).
	TookOver() (holder string, earlier bool)
	// Lost is closed when the session has ended (the connection broke,
	// a keepalive gave up, the mirror broke the protocol); Err says why.
	// A watch waiting for changes learns of a dead link from it.
	Lost() <-chan struct{}
	Err() error
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
	// CopyAt adds n bytes of the basis from off (a match of a second,
	// finer signature round).
	CopyAt(off int64, n uint32) error
	// Hole adds n zero bytes that the mirror leaves unwritten (a hole).
	Hole(n int64) error
	EndFile(hash fstree.Hash) error
	AbortFile() error
	// Batch opens a batch (wire.Batch): with delay the files and
	// symlinks written up to Commit are staged and renamed into place
	// together at Commit; with backupDir every entry replaced or deleted
	// up to the next Batch is saved into backupDir/stamp first. A
	// failure of the Batch itself is reported at the next Barrier under
	// the path "" and Op BatchOp.
	Batch(delay bool, backupDir, stamp string) error
	// Commit renames the batch's staged files into place.
	Commit() error
}

// BatchOp names a failed Batch in an OpError.
const BatchOp = "keep backups"

// RollbackItem is one path a rollback changed.
type RollbackItem struct {
	Removed bool // created by the batch, moved out of the way; else restored
	Kind    fstree.Kind
	Path    string
}

// RollbackResult says what a rollback did.
type RollbackResult struct {
	Stamp   string // the backup put back
	Already bool   // it had been rolled back before: nothing done
	Items   []RollbackItem
	Err     string // why it stopped or what it left (the rest was done)
}

// SigRequest names a file on the mirror and the size the client expects.
type SigRequest struct {
	Path string
	Size int64
	// BlockSize, when not 0, is the block length asked for (at least
	// delta.MinFineBlock); else the mirror uses delta.BlockSize(Size).
	BlockSize int
	// Off and Len, when Len > 0, ask for the signature of that range of
	// the file alone.
	Off, Len int64
}

// OpError is an operation on one path that failed.
type OpError struct {
	Path string
	Op   string // what failed: "write", "mkdir", "list", "read source", ...
	Code int    // wire.Code* for failures on the mirror
	Msg  string
}

func (e OpError) Error() string { return printable(displayPath(e.Path), false) + ": " + e.Reason() }

// Reason is the error without its path: the operation and what went wrong.
func (e OpError) Reason() string {
	if e.Op == "" {
		return e.Msg
	}
	return e.Op + ": " + e.Msg
}

// OpNoSpace reports whether the mirror refused the operation for want of
// space (ENOSPC, or EDQUOT: a quota).
func (e OpError) OpNoSpace() bool { return e.Code == wire.CodeNoSpace }

// ErrRunRefused is a command (--on-sync) that the mirror's agent does not
// run: it was started with --restrict and without --allow-run.
var ErrRunRefused = errors.New("the mirror's agent is restricted (gosync agent --restrict in authorized_keys) and runs no commands; " +
	"drop --on-sync for it, or add --allow-run to that command")

// ErrMirrorLost is wrapped when a session with a mirror ended: the
// connection broke, the mirror stopped answering, it broke the protocol,
// or the session was closed.
var ErrMirrorLost = errors.New("connection to mirror lost")

// ErrTakenOver is wrapped (with ErrMirrorLost) when a newer session took
// the mirror over: this one must not reconnect, or two sources would
// take turns on one mirror.
var ErrTakenOver = errors.New("another gosync session took over this mirror")

// TakenOverError is a session fenced by a newer one.
type TakenOverError struct {
	Mirror string
	Holder string // the newer session, as its agent describes it
}

func (e *TakenOverError) Error() string {
	return fmt.Sprintf("%s: %s (%s); this one stops", e.Mirror, ErrTakenOver, e.Holder)
}

func (e *TakenOverError) Is(target error) bool {
	return target == ErrTakenOver || target == ErrMirrorLost
}

// OverlapError refuses a mirror that is its source, lies inside it (it
// would mirror itself for ever) or contains it (--delete would remove
// the source).
type OverlapError struct {
	Source, Dest string
	Rel          ident.Relation
}

func (e *OverlapError) Error() string {
	switch e.Rel {
	case ident.Same:
		return fmt.Sprintf("refusing to sync %s into itself (%s)", e.Source, e.Dest)
	case ident.Inside:
		return fmt.Sprintf("refusing to sync %s into %s: the destination is inside the source", e.Source, e.Dest)
	}
	return fmt.Sprintf("refusing to sync %s into %s: the destination contains the source", e.Source, e.Dest)
}

// session names this process to the agents it talks to, so a lock taken
// over from an earlier connection of the same process is told apart.
var session = sync.OnceValue(func() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
})

// Session limits. The agent is not trusted: everything it sends is bounded
// by what was asked.
const (
	// DefaultIdleTimeout is how long a client waits for any byte from a
	// mirror while it expects an answer or a write is stuck. A busy agent
	// sends a heartbeat every 5 s, so only a dead or stopped one trips it.
	DefaultIdleTimeout = 30 * time.Second
	// DefaultMaxScanEntries bounds the entries and per-path errors of one
	// scan answer: ten times a 400,000-file tree, far below what would
	// exhaust a developer's machine.
	DefaultMaxScanEntries = 4 << 20
	// DefaultMaxScanBytes bounds the memory of one scan answer (entries
	// with their paths and link targets).
	DefaultMaxScanBytes = 1 << 30
	// closeTimeout bounds Close on a transport that will not close.
	closeTimeout = 2 * time.Second
	// maxKeptMsg bounds an error message kept from the agent: a failed
	// batch of many files must not hold megabytes of text.
	maxKeptMsg = 512
	// maxWriteChunk is the most handed to the transport in one call, so a
	// slow link shows progress to the idle deadline between chunks.
	maxWriteChunk = 64 << 10
)

// entryOverhead approximates what a listed entry costs beyond its strings.
const entryOverhead = int64(unsafe.Sizeof(fstree.Entry{}))

// Client speaks the agent protocol over a transport stream. Its reader
// never blocks on anything but the transport: answers are collected into
// the waiting request, bounded by what that request asked for, and an
// answer nobody asked for ends the session.
type Client struct {
	name      string
	conn      *wire.Conn
	transport io.Closer
	hello     *wire.Hello
	// root is the mirror directory's metadata: as the agent found it,
	// then as this session last set it (rootMu).
	rootMu     sync.Mutex
	root       fstree.Entry
	idle       time.Duration
	maxEntries int
	maxBytes   int64

	wmu sync.Mutex // serialises writes, so ids reach the agent in order

	mu      sync.Mutex
	nextID  uint64
	waiters map[uint64]*waiter
	// ops are the write operations sent since the last acknowledged
	// barrier, ids ascending from opsHead; the agent reports at most one
	// failure for each, in order.
	ops     []opRef
	opsHead int
	opErrs  []OpError     // failures for the next Barrier
	delay   bool          // a staging batch is open
	staged  int           // files and symlinks sent since it opened
	err     error         // why the session ended; set once
	dead    chan struct{} // closed when err is set

	start     time.Time
	lastAlive atomic.Int64 // time since start of the last byte received, write progress or request
	pending   atomic.Int32 // registered waiters
	writing   atomic.Int32 // transport writes in progress
	handing   atomic.Int32 // a streamed scan's batch waits for its consumer
	sent      atomic.Int64
	noSpace   atomic.Bool   // the mirror reported a full disk or quota
	kick      chan struct{} // wakes the idle watchdog

	closeOnce sync.Once
	closed    chan struct{} // closed when transport.Close returned
	closeErr  error
	connOnce  sync.Once
	done      chan struct{} // closed when the reader ends
	watchDone chan struct{} // closed when the watchdog ends

	// The mirror host's answers to name look-ups, kept for the session
	// so a watch batch asks only about names it has not seen.
	namesMu  sync.Mutex
	userIDs  map[string]wire.NameID
	groupIDs map[string]wire.NameID
	self     uint32
	selfGid  uint32
	haveSelf bool
}

type opRef struct {
	id   uint64
	path string
	op   string // names the operation in its error
	// many: a Commit, which may fail for each of the files staged
	// before it (left more times), naming the file.
	many bool
	left int
}

// waiter is one request and its answer, filled in by the reader.
type waiter struct {
	req  wire.Type // TScan, TSigReq, TBarrier or TRun
	path string    // scan: the subtree; signature: the file
	size int64     // signature: the size asked for
	bs   int       // signature: the block size asked for
	sigN int64     // signature: the bytes it is to describe
	done chan struct{}
	err  error // the session ended first

	entries []fstree.Entry
	errs    []OpError
	bytes   int64
	scanErr string
	// stream, if set, takes a streamed scan's batches of entries (in
	// place of entries) until quit is closed.
	stream chan []fstree.Entry
	quit   chan struct{}
	sig    *delta.Signature
	sigErr string
	opErrs []OpError
	run    wire.RunDone
	names  *wire.Names // asked (TNames)
	ids    *wire.Ids
	roll   RollbackResult
}

// ClientOptions shape the handshake and the session's limits.
type ClientOptions struct {
	Compress int  // zstd level, 0 for none
	Create   bool // create the mirror directory if missing
	BuildID  string
	// Root is the mirror directory as the user wrote it in DEST; an
	// agent whose root the server fixed (a forced command) refuses a
	// session that asks for another.
	Root string
	// Lock takes the mirror's session lock: this session will write, and
	// any older session on the same mirror root stops (not in a dry run).
	Lock bool
	// Sparse asks the agent to leave the runs of zeros it writes as
	// holes (wire.FlagSparse, rsync's -S).
	Sparse bool
	// Source is where the source directory is, SourceName how the user
	// wrote it: a mirror on the same machine that is the source, lies
	// inside it or contains it is refused with an OverlapError, and the
	// agent does not create it there.
	Source     ident.Place
	SourceName string
	// IdleTimeout ends the session as lost when nothing arrives from the
	// mirror for this long while a request waits or a write is stuck
	// (0: DefaultIdleTimeout; negative: never).
	IdleTimeout time.Duration
	// MaxScanEntries and MaxScanBytes bound one scan answer
	// (0: DefaultMaxScanEntries, DefaultMaxScanBytes).
	MaxScanEntries int
	MaxScanBytes   int64
}

// HandshakeError is the agent's refusal at the handshake (an unusable
// mirror directory, another protocol version).
type HandshakeError struct{ Msg string }

func (e *HandshakeError) Error() string { return e.Msg }

// NewClient performs the handshake on r/w and starts reading answers.
// transport is closed by Close (and when ctx ends during the handshake)
// to end the session; closing it must make blocked reads and writes on
// r and w fail.
func NewClient(ctx context.Context, name string, r io.Reader, w io.Writer, transport io.Closer, opt ClientOptions) (*Client, error) {
	c := &Client{
		name: name, transport: transport, idle: opt.IdleTimeout,
		maxEntries: opt.MaxScanEntries, maxBytes: opt.MaxScanBytes,
		waiters: map[uint64]*waiter{}, dead: make(chan struct{}), start: time.Now(), kick: make(chan struct{}, 1),
		closed: make(chan struct{}), done: make(chan struct{}), watchDone: make(chan struct{}),
	}
	if c.idle == 0 {
		c.idle = DefaultIdleTimeout
	}
	if c.maxEntries <= 0 {
		c.maxEntries = DefaultMaxScanEntries
	}
	if c.maxBytes <= 0 {
		c.maxBytes = DefaultMaxScanBytes
	}
	c.conn = wire.NewConn(aliveReader{r, c}, watchedWriter{w, c})
	var timedOut atomic.Bool
	stop := context.AfterFunc(ctx, func() { transport.Close() })
	defer stop()
	if c.idle > 0 {
		// A wrong program on the other end may say nothing at all.
		t := time.AfterFunc(c.idle, func() { timedOut.Store(true); transport.Close() })
		defer t.Stop()
	}
	var flags uint64
	if opt.Create {
		flags |= wire.FlagCreate
	}
	if opt.Lock {
		flags |= wire.FlagLock
	}
	if opt.Sparse {
		flags |= wire.FlagSparse
	}
	hello := &wire.Hello{Version: wire.Version, BuildID: opt.BuildID, Compress: opt.Compress, Flags: flags, Place: opt.Source, Session: session(), Root: opt.Root}
	if err := c.conn.WriteMsg(hello); err != nil {
		transport.Close()
		return nil, fmt.Errorf("%w: %w", ErrMirrorLost, err)
	}
	if err := c.conn.Flush(); err != nil {
		transport.Close()
		return nil, fmt.Errorf("%w: %w", ErrMirrorLost, err)
	}
	var h *wire.Hello
	// An agent whose root the server fixed greets before it answers: at
	// most one greeting, and only first.
	for h == nil || h.Flags&wire.FlagGreeting != 0 && h.Version == wire.Version {
		m, err := c.conn.ReadMsg()
		if err != nil {
			transport.Close()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if timedOut.Load() {
				return nil, fmt.Errorf("%w: mirror %s did not answer the handshake for %s", ErrMirrorLost, name, c.idle)
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("%w: handshake: %w", ErrMirrorLost, err)
		}
		next, ok := m.(*wire.Hello)
		if !ok || h != nil && next.Flags&wire.FlagGreeting != 0 {
			transport.Close()
			return nil, fmt.Errorf("handshake: %w: got message type %d", wire.ErrFrame, m.Type())
		}
		h = next
	}
	if h.Err != "" {
		transport.Close()
		return nil, &HandshakeError{Msg: printable(h.Err, false)}
	}
	if h.Version != wire.Version {
		transport.Close()
		return nil, &HandshakeError{Msg: fmt.Sprintf("agent speaks protocol version %d, this gosync %d", h.Version, wire.Version)}
	}
	if rel := overlap(h, opt.Source); rel != ident.Apart {
		transport.Close()
		return nil, &OverlapError{Source: opt.SourceName, Dest: name, Rel: rel}
	}
	c.hello = h
	if m := h.RootMeta; h.Flags&wire.FlagRootMeta != 0 {
		c.root = fstree.Entry{Kind: fstree.Dir, Perm: m.Perm, Mtime: m.Mtime, Uid: m.Uid, Gid: m.Gid}
	}
	if err := c.conn.StartCompression(opt.Compress); err != nil {
		transport.Close()
		return nil, err
	}
	go c.read()
	if c.idle > 0 {
		go c.watch()
	} else {
		close(c.watchDone)
	}
	return c, nil
}

func (c *Client) Name() string    { return c.name }
func (c *Client) SetsOwner() bool { return c.hello.Flags&wire.FlagRoot != 0 }

func (c *Client) Root() (e fstree.Entry, created, ok bool) {
	h := c.hello
	if h.Flags&wire.FlagRootMeta == 0 {
		return e, false, false
	}
	c.rootMu.Lock()
	defer c.rootMu.Unlock()
	return c.root, h.Flags&wire.FlagCreated != 0, true
}

// SetsGroup reports whether the mirror gives files group gid although it
// does not set owners: an agent that is not root, whose user belongs to
// gid.
func (c *Client) SetsGroup(gid uint32) bool {
	return c.hello.Flags&wire.FlagRoot == 0 && slices.Contains(c.hello.Groups, gid)
}
func (c *Client) Missing() bool    { return c.hello.Flags&wire.FlagMissing != 0 }
func (c *Client) BytesSent() int64 { return c.sent.Load() }

// Restricted reports an agent started with --restrict: it strips setuid,
// setgid and sticky bits and runs commands only if RunsCommands.
func (c *Client) Restricted() bool { return c.hello.Flags&wire.FlagRestricted != 0 }

// Forced reports an agent that sshd started as the forced command of the
// key, whatever this client asked to run.
func (c *Client) Forced() bool { return c.hello.Flags&wire.FlagForced != 0 }

// RunsCommands reports whether the agent runs --on-sync commands.
func (c *Client) RunsCommands() bool {
	return !c.Restricted() || c.hello.Flags&wire.FlagAllowRun != 0
}

// PermBits are the mode bits the mirror applies: a restricted agent
// strips setuid, setgid and sticky from files and setuid from
// directories (a setgid or sticky directory grants nothing: a 2775 web
// root's subdirectories keep their group inheritance).
func (c *Client) PermBits(dir bool) uint32 {
	switch {
	case !c.Restricted():
		return 0o7777
	case dir:
		return 0o3777
	}
	return 0o777
}

func (c *Client) Lost() <-chan struct{} { return c.dead }

func (c *Client) Place() ident.Place {
	if c.hello.Flags&wire.FlagMissing != 0 {
		return ident.Place{} // the nearest parent's, not the mirror's
	}
	return c.hello.Place
}

func (c *Client) TookOver() (string, bool) {
	h := c.hello.Holder
	return printable(h, false), h != "" && strings.Contains(h, "gosync session "+session()+",")
}

// overlap relates the mirror the agent describes to the source. A
// missing root (a dry run) is described by its nearest existing parent:
// below or at the source, the root would be inside it; a parent that
// contains the source says nothing about the root.
func overlap(h *wire.Hello, src ident.Place) ident.Relation {
	rel := ident.Relate(h.Place, src)
	if h.Flags&wire.FlagMissing != 0 {
		switch rel {
		case ident.Same, ident.Inside:
			return ident.Inside
		}
		return ident.Apart
	}
	return rel
}

// NoSpace reports whether the mirror has refused an operation for want of
// space in this session: a sync stops sending file data to it.
func (c *Client) NoSpace() bool { return c.noSpace.Load() }

func (c *Client) Err() error { return c.sessionErr() }

func (c *Client) now() int64 { return int64(time.Since(c.start)) }

// alive records a sign of life (or the start of a wait, from which the
// idle deadline counts).
func (c *Client) alive() { c.lastAlive.Store(c.now()) }

func (c *Client) nudge() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// aliveReader counts every received byte as a sign of life, so a long
// answer arriving slowly is not taken for silence.
type aliveReader struct {
	r io.Reader
	c *Client
}

func (a aliveReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.c.alive()
	}
	return n, err
}

// watchedWriter lets the idle watchdog see writes stuck in the transport
// (a full pipe, a closed SSH window) and writes still progressing.
type watchedWriter struct {
	w io.Writer
	c *Client
}

func (ww watchedWriter) Write(p []byte) (int, error) {
	c := ww.c
	c.writing.Add(1)
	defer c.writing.Add(-1)
	c.alive()
	c.nudge()
	n := 0
	for n < len(p) {
		m, err := ww.w.Write(p[n:min(len(p), n+maxWriteChunk)])
		n += m
		c.sent.Add(int64(m))
		if m > 0 {
			c.alive()
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// watch ends the session when the mirror is silent for the idle deadline
// while the client waits for it. While nothing is pending it sleeps on
// kick, so an idle session costs nothing.
func (c *Client) watch() {
	defer close(c.watchDone)
	t := time.NewTimer(c.idle)
	t.Stop()
	for {
		if c.pending.Load() == 0 && c.writing.Load() == 0 {
			select {
			case <-c.kick:
				continue
			case <-c.dead:
				return
			}
		}
		if c.handing.Load() > 0 {
			c.alive() // waiting for our own consumer, not for the mirror
		}
		quiet := time.Duration(c.now() - c.lastAlive.Load())
		if quiet >= c.idle {
			c.fail(fmt.Errorf("%w: mirror %s did not answer for %s", ErrMirrorLost, c.name, c.idle))
			return
		}
		t.Reset(c.idle - quiet)
		select {
		case <-t.C:
		case <-c.dead:
			t.Stop()
			return
		}
	}
}

// fail ends the session with err (the first reason wins): every waiter
// gets it, and the transport is closed so that blocked reads and writes
// fail. Closing may block (a child that does not exit), so it runs on
// its own; Close waits for it, for a bounded time.
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	close(c.dead)
	for id, w := range c.waiters {
		w.err = err
		close(w.done)
		delete(c.waiters, id)
	}
	c.pending.Store(0)
	c.mu.Unlock()
	c.closeOnce.Do(func() {
		go func() {
			c.closeErr = c.transport.Close()
			close(c.closed)
		}()
	})
}

// sessionErr reports why the session ended, or nil.
func (c *Client) sessionErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// read dispatches the agent's messages until the stream ends or breaks
// the protocol.
func (c *Client) read() {
	defer close(c.done)
	for {
		m, err := c.conn.ReadMsg()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			c.fail(fmt.Errorf("%w: %s: %w", ErrMirrorLost, c.name, err))
			return
		}
		hand, err := c.dispatch(m)
		if err != nil {
			c.fail(err)
			return
		}
		if hand != nil {
			hand()
		}
	}
}

// violation is an answer the client did not ask for or cannot accept.
func (c *Client) violation(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %w: %s", ErrMirrorLost, c.name, wire.ErrFrame, fmt.Sprintf(format, args...))
}

// waiterFor finds the request an answer of type got belongs to.
func (c *Client) waiterFor(id uint64, got, want wire.Type) (*waiter, error) {
	w := c.waiters[id]
	if w == nil {
		return nil, c.violation("answer (message type %d) to request %d, which is not waiting", got, id)
	}
	if w.req != want {
		return nil, c.violation("answer of message type %d to a request of type %d", got, w.req)
	}
	return w, nil
}

func (c *Client) complete(id uint64, w *waiter) {
	delete(c.waiters, id)
	c.pending.Add(-1)
	close(w.done)
}

// dispatch files the answer m with its request. It returns hand, to be
// called without the lock, when m is a batch of a streamed scan: hand
// waits for the consumer to take it, which holds the stream (and the
// agent) back while the consumer is behind.
func (c *Client) dispatch(m wire.Msg) (hand func(), err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dispatchLocked(m)
}

func (c *Client) dispatchLocked(m wire.Msg) (hand func(), _ error) {
	switch m := m.(type) {
	case *wire.Heartbeat:
		return nil, nil // aliveReader saw its bytes
	case *wire.Stop:
		msg := clip(printable(m.Msg, false))
		if m.Code == wire.StopTakenOver {
			return nil, &TakenOverError{Mirror: c.name, Holder: msg}
		}
		return nil, fmt.Errorf("%w: %s: %s", ErrMirrorLost, c.name, msg)
	case *wire.Entries:
		w, err := c.waiterFor(m.ID, m.Type(), wire.TScan)
		if err != nil {
			return nil, err
		}
		for i := range m.Entries {
			e := &m.Entries[i]
			if !within(e.Path, w.path) {
				return nil, c.violation("scan of %s listed %s, outside it", quote(displayPath(w.path)), quote(e.Path))
			}
			if w.stream == nil {
				w.bytes += entryOverhead + int64(len(e.Path)+len(e.Target))
			}
		}
		if w.stream != nil {
			// The consumer holds at most a few batches: the bound is on
			// the messages (wire.MaxEntries each), not the whole answer.
			return c.handOver(w, m.Entries), nil
		}
		if err := c.scanBounds(w, len(m.Entries)); err != nil {
			return nil, err
		}
		w.entries = append(w.entries, m.Entries...)
	case *wire.ScanEnd:
		w, err := c.waiterFor(m.ID, m.Type(), wire.TScan)
		if err != nil {
			return nil, err
		}
		w.scanErr = printable(m.Err, false)
		c.complete(m.ID, w)
	case *wire.Sig:
		w, err := c.waiterFor(m.ID, m.Type(), wire.TSigReq)
		if err != nil {
			return nil, err
		}
		if m.Err != "" {
			w.sigErr = clip(printable(m.Err, false))
		} else if w.sig, err = c.checkSig(w, m.Sig); err != nil {
			return nil, err
		}
		c.complete(m.ID, w)
	case *wire.Done:
		w, err := c.waiterFor(m.ID, m.Type(), wire.TBarrier)
		if err != nil {
			return nil, err
		}
		c.acked(m.ID)
		w.opErrs, c.opErrs = c.opErrs, nil
		c.complete(m.ID, w)
	case *wire.Ids:
		w, err := c.waiterFor(m.ID, m.Type(), wire.TNames)
		if err != nil {
			return nil, err
		}
		if len(m.Users) != len(w.names.Users) || len(m.Groups) != len(w.names.Groups) {
			return nil, c.violation("%d user and %d group ids for %d and %d names", len(m.Users), len(m.Groups), len(w.names.Users), len(w.names.Groups))
		}
		w.ids = m
		c.complete(m.ID, w)
	case *wire.RunDone:
		w, err := c.waiterFor(m.ID, m.Type(), wire.TRun)
		if err != nil {
			return nil, err
		}
		w.run = wire.RunDone{Code: m.Code, Output: printable(m.Output, true)}
		c.complete(m.ID, w)
	case *wire.Rollback:
		w, err := c.waiterFor(m.ID, m.Type(), wire.TRollback)
		if err != nil {
			return nil, err
		}
		if len(w.roll.Items)+len(m.Items) > c.maxEntries {
			return nil, c.violation("rollback answer of more than %d paths", c.maxEntries)
		}
		for _, it := range m.Items {
			w.roll.Items = append(w.roll.Items, RollbackItem{Removed: it.Action == wire.RollRemoved, Kind: it.Kind, Path: it.Path})
		}
		if m.Flags&wire.RollbackEnd != 0 {
			if m.Stamp != "" && !wire.ValidStamp(m.Stamp) {
				return nil, c.violation("rollback of backup %s, not a backup's name", quote(m.Stamp))
			}
			w.roll.Stamp, w.roll.Already = m.Stamp, m.Flags&wire.RollbackAlready != 0
			w.roll.Err = clip(printable(m.Err, false))
			c.complete(m.ID, w)
		}
	case *wire.Error:
		if w := c.waiters[m.ID]; w != nil {
			if w.req != wire.TScan {
				return nil, c.violation("error answer to a request of type %d", w.req)
			}
			if !within(m.Path, w.path) || wire.ValidPath(m.Path) != nil {
				return nil, c.violation("scan of %s reported an error at %s, outside it", quote(displayPath(w.path)), quote(m.Path))
			}
			w.bytes += entryOverhead + int64(len(m.Path)+min(len(m.Msg), maxKeptMsg))
			if err := c.scanBounds(w, 1); err != nil {
				return nil, err
			}
			w.errs = append(w.errs, OpError{Path: m.Path, Op: "list", Code: m.Code, Msg: clip(printable(m.Msg, false))})
			return nil, nil
		}
		return nil, c.opFailed(m)
	default:
		return nil, c.violation("unexpected message type %d", m.Type())
	}
	return nil, nil
}

// handOver returns what gives batch to a streamed scan's consumer: it
// waits for the consumer to take it, or to give up, or for the session
// to end. Meanwhile the watchdog does not count the mirror's silence: it
// is the client that is behind.
func (c *Client) handOver(w *waiter, batch []fstree.Entry) func() {
	return func() {
		c.handing.Add(1)
		defer func() {
			c.handing.Add(-1)
			c.alive()
		}()
		select {
		case w.stream <- batch:
		case <-w.quit:
		case <-c.dead:
		}
	}
}

func (c *Client) scanBounds(w *waiter, more int) error {
	if n := len(w.entries) + len(w.errs) + more; n > c.maxEntries {
		return c.violation("scan answer of more than %d entries", c.maxEntries)
	}
	if w.bytes > c.maxBytes {
		return c.violation("scan answer of more than %d bytes", c.maxBytes)
	}
	return nil
}

// checkSig decodes a signature and checks that it describes a file of the
// size asked for, in no more blocks than the agent's block size gives, so
// a batch of signatures costs what its files' sizes say.
func (c *Client) checkSig(w *waiter, b []byte) (*delta.Signature, error) {
	sig, err := delta.UnmarshalSignature(b)
	if err != nil {
		return nil, c.violation("signature of %s: %v", quote(w.path), err)
	}
	if sig.Size != w.sigN {
		return nil, c.violation("signature of %s describes %d bytes, %d were asked for", quote(w.path), sig.Size, w.sigN)
	}
	if sig.BlockSize != w.bs {
		return nil, c.violation("signature of %s has blocks of %d bytes, %d were asked for", quote(w.path), sig.BlockSize, w.bs)
	}
	return sig, nil
}

// opFailed records the failure of a write operation. The agent applies
// operations in order and reports each at most once, so an error must
// name a sent operation later than the last one reported.
func (c *Client) opFailed(m *wire.Error) error {
	live := c.ops[c.opsHead:]
	i := sort.Search(len(live), func(i int) bool { return live[i].id >= m.ID })
	if i == len(live) || live[i].id != m.ID {
		return c.violation("error for operation %d, which was not sent or was already answered", m.ID)
	}
	path := live[i].path
	if live[i].many {
		if live[i].left == 0 || m.Path == "" || wire.ValidPath(m.Path) != nil {
			return c.violation("error for operation %d at %s, more than it staged", m.ID, quote(m.Path))
		}
		live[i].left--
		path = m.Path
		c.opsHead += i
	} else {
		c.opsHead += i + 1
	}
	c.opErrs = append(c.opErrs, OpError{Path: path, Op: live[i].op, Code: m.Code, Msg: clip(printable(m.Msg, false))})
	if m.Code == wire.CodeNoSpace {
		c.noSpace.Store(true)
	}
	return nil
}

// acked forgets the operations before barrier id: they are all answered.
func (c *Client) acked(id uint64) {
	live := c.ops[c.opsHead:]
	i := sort.Search(len(live), func(i int) bool { return live[i].id > id })
	live = live[i:]
	if cap(c.ops) > 1<<10 && len(live) < cap(c.ops)/8 {
		// Do not pin a large batch's array (tens of bytes an operation)
		// while a watch idles.
		c.ops = append(make([]opRef, 0, max(2*len(live), 64)), live...)
	} else {
		n := copy(c.ops, live)
		clear(c.ops[n:]) // the answered operations' paths
		c.ops = c.ops[:n]
	}
	c.opsHead = 0
}

func within(p, sub string) bool {
	return sub == "" || p == sub || strings.HasPrefix(p, sub) && p[len(sub)] == '/'
}

// ask registers w for the answers to a new request and sends the request.
func (c *Client) ask(w *waiter, mk func(id uint64) wire.Msg) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.nextID++
	id := c.nextID
	w.done = make(chan struct{})
	c.waiters[id] = w
	c.pending.Add(1)
	c.mu.Unlock()
	c.alive() // the deadline counts from the request, not from the last answer
	c.nudge()
	return c.write(mk(id))
}

// write sends m; wmu is held. A failed write breaks the stream, so it
// ends the session.
func (c *Client) write(m wire.Msg) error {
	if err := c.conn.WriteMsg(m); err != nil {
		c.fail(fmt.Errorf("%w: %s: %w", ErrMirrorLost, c.name, err))
		return c.sessionErr()
	}
	return nil
}

func (c *Client) send(m wire.Msg) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.sessionErr(); err != nil {
		return err
	}
	return c.write(m)
}

func (c *Client) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.sessionErr(); err != nil {
		return err
	}
	if err := c.conn.Flush(); err != nil {
		c.fail(fmt.Errorf("%w: %s: %w", ErrMirrorLost, c.name, err))
		return c.sessionErr()
	}
	return nil
}

// await waits for w's answer, giving up with ctx.
func (c *Client) await(ctx context.Context, w *waiter) error {
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		// The answer will still come and the stream is out of step with
		// us: end the session.
		c.fail(fmt.Errorf("%w: %s: %w", ErrMirrorLost, c.name, ctx.Err()))
		return ctx.Err()
	}
}

func (c *Client) Scan(ctx context.Context, sub string, hash bool) ([]fstree.Entry, []OpError, error) {
	w := &waiter{req: wire.TScan, path: sub}
	if err := c.ask(w, func(id uint64) wire.Msg { return &wire.Scan{ID: id, Path: sub, Hash: hash} }); err != nil {
		return nil, nil, err
	}
	if err := c.flush(); err != nil {
		return nil, nil, err
	}
	if err := c.await(ctx, w); err != nil {
		return nil, nil, err
	}
	if w.scanErr != "" {
		return nil, w.errs, fmt.Errorf("scan %s: %s", c.name, w.scanErr)
	}
	return w.entries, w.errs, nil
}

// ScanEach is Scan handing the entries to fn as they come, in batches
// in walk order, instead of collecting them: a listing of any size costs
// the client a few batches of memory. fn runs on the caller's goroutine;
// while it works the stream waits (the agent too, once the transport's
// buffers are full), so fn must not wait for other answers of this
// session. Problems with single paths are returned at the end, as Scan
// returns them.
func (c *Client) ScanEach(ctx context.Context, sub string, hash bool, fn func([]fstree.Entry) error) ([]OpError, error) {
	w := &waiter{req: wire.TScan, path: sub, stream: make(chan []fstree.Entry, scanStreamDepth), quit: make(chan struct{})}
	quit := sync.OnceFunc(func() { close(w.quit) })
	defer quit()
	if err := c.ask(w, func(id uint64) wire.Msg { return &wire.Scan{ID: id, Path: sub, Hash: hash} }); err != nil {
		return nil, err
	}
	if err := c.flush(); err != nil {
		return nil, err
	}
	var fnErr error
	take := func(batch []fstree.Entry) {
		if fnErr == nil {
			if fnErr = fn(batch); fnErr != nil {
				// The rest of the answer is read and dropped, which keeps
				// the session in step.
				quit()
			}
		}
	}
	for done := false; !done; {
		select {
		case batch := <-w.stream:
			take(batch)
		case <-w.done:
			// Every batch was handed over before the end was filed.
			for more := true; more; {
				select {
				case batch := <-w.stream:
					take(batch)
				default:
					more = false
				}
			}
			done = true
		case <-ctx.Done():
			c.fail(fmt.Errorf("%w: %s: %w", ErrMirrorLost, c.name, ctx.Err()))
			return nil, ctx.Err()
		}
	}
	switch {
	case w.err != nil:
		return nil, w.err
	case fnErr != nil:
		return nil, fnErr
	case w.scanErr != "":
		return w.errs, fmt.Errorf("scan %s: %s", c.name, w.scanErr)
	}
	return w.errs, nil
}

// scanStreamDepth is how many batches of a streamed scan wait for their
// consumer.
const scanStreamDepth = 4

func (c *Client) Signatures(ctx context.Context, reqs []SigRequest) ([]*delta.Signature, []error, error) {
	if len(reqs) == 0 {
		return nil, nil, nil
	}
	a, err := c.AskSignatures(reqs)
	if err != nil {
		return nil, nil, err
	}
	return a.Wait(ctx)
}

// sigAsker is a Mirror that asks for signatures without waiting for
// them, also while a file is being written (protocol 5): the second
// round of a delta is asked for while the first goes on.
type sigAsker interface {
	AskSignatures(reqs []SigRequest) (*SigAnswer, error)
}

// SigAnswer is the answer to AskSignatures, to come.
type SigAnswer struct {
	c  *Client
	ws []*waiter
}

// Ready tells whether every signature asked for has come.
func (a *SigAnswer) Ready() bool {
	for _, w := range a.ws {
		select {
		case <-w.done:
		default:
			return false
		}
	}
	return true
}

// Wait returns the signatures as Signatures does.
func (a *SigAnswer) Wait(ctx context.Context) ([]*delta.Signature, []error, error) {
	sigs := make([]*delta.Signature, len(a.ws))
	errs := make([]error, len(a.ws))
	for i, w := range a.ws {
		if err := a.c.await(ctx, w); err != nil {
			return nil, nil, err
		}
		if w.sigErr != "" {
			errs[i] = errors.New(w.sigErr)
			continue
		}
		sigs[i] = w.sig
	}
	return sigs, errs, nil
}

// AskSignatures sends the requests and returns without waiting.
func (c *Client) AskSignatures(reqs []SigRequest) (*SigAnswer, error) {
	ws := make([]*waiter, len(reqs))
	for i, r := range reqs {
		ws[i] = &waiter{req: wire.TSigReq, path: r.Path, size: r.Size, bs: r.BlockSize, sigN: r.Size}
		if r.BlockSize == 0 {
			ws[i].bs = delta.BlockSize(r.Size)
		}
		if r.Len > 0 {
			ws[i].sigN = r.Len
		}
		if err := c.ask(ws[i], func(id uint64) wire.Msg {
			return &wire.SigReq{ID: id, Path: r.Path, Size: r.Size, BlockSize: r.BlockSize, Off: r.Off, Len: r.Len}
		}); err != nil {
			return nil, err
		}
	}
	if err := c.flush(); err != nil {
		return nil, err
	}
	return &SigAnswer{c: c, ws: ws}, nil
}

func (c *Client) Barrier(ctx context.Context) ([]OpError, error) {
	w := &waiter{req: wire.TBarrier}
	if err := c.ask(w, func(id uint64) wire.Msg { return &wire.Barrier{ID: id} }); err != nil {
		return nil, err
	}
	if err := c.flush(); err != nil {
		return nil, err
	}
	if err := c.await(ctx, w); err != nil {
		return nil, err
	}
	// Space may be freed before the next batch: it tries again.
	c.noSpace.Store(false)
	// Errors of earlier operations arrived before Done.
	return w.opErrs, nil
}

func (c *Client) Run(ctx context.Context, cmd string, stdin []byte) (int, string, error) {
	if !c.RunsCommands() {
		return 0, "", fmt.Errorf("%s: %w", c.name, ErrRunRefused)
	}
	w := &waiter{req: wire.TRun}
	if err := c.ask(w, func(id uint64) wire.Msg { return &wire.Run{ID: id, Cmd: cmd, Stdin: stdin} }); err != nil {
		return 0, "", err
	}
	if err := c.flush(); err != nil {
		return 0, "", err
	}
	if err := c.await(ctx, w); err != nil {
		return 0, "", err
	}
	return w.run.Code, w.run.Output, nil
}

// Resolve asks the agent about the names it has not been asked about in
// this session, at most wire.MaxNames a message.
func (c *Client) Resolve(ctx context.Context, users, groups []string) (HostIDs, error) {
	c.namesMu.Lock()
	defer c.namesMu.Unlock()
	if c.userIDs == nil {
		c.userIDs, c.groupIDs = map[string]wire.NameID{}, map[string]wire.NameID{}
	}
	newNames := func(names []string, known map[string]wire.NameID) []string {
		var out []string
		seen := map[string]bool{}
		for _, n := range names {
			if _, ok := known[n]; !ok && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
		return out
	}
	askU, askG := newNames(users, c.userIDs), newNames(groups, c.groupIDs)
	for first := true; first && !c.haveSelf || len(askU)+len(askG) > 0; first = false {
		for _, n := range append(slices.Clip(askU), askG...) {
			if len(n) == 0 || len(n) > wire.MaxName {
				return HostIDs{}, fmt.Errorf("%s: user or group name %q cannot be looked up (1 to %d bytes)", c.name, n, wire.MaxName)
			}
		}
		nu := min(len(askU), wire.MaxNames)
		ng := min(len(askG), wire.MaxNames-nu)
		q := &wire.Names{Users: askU[:nu], Groups: askG[:ng]}
		askU, askG = askU[nu:], askG[ng:]
		w := &waiter{req: wire.TNames, names: q}
		if err := c.ask(w, func(id uint64) wire.Msg { q.ID = id; return q }); err != nil {
			return HostIDs{}, err
		}
		if err := c.flush(); err != nil {
			return HostIDs{}, err
		}
		if err := c.await(ctx, w); err != nil {
			return HostIDs{}, err
		}
		for i, n := range q.Users {
			c.userIDs[n] = w.ids.Users[i]
		}
		for i, n := range q.Groups {
			c.groupIDs[n] = w.ids.Groups[i]
		}
		c.self, c.selfGid, c.haveSelf = w.ids.Self, w.ids.SelfGid, true
	}
	h := HostIDs{Users: map[string]uint32{}, Groups: map[string]uint32{}, Uid: c.self, Gid: c.selfGid}
	for _, n := range users {
		if x := c.userIDs[n]; x.Known {
			h.Users[n] = x.ID
		}
	}
	for _, n := range groups {
		if x := c.groupIDs[n]; x.Known {
			h.Groups[n] = x.ID
		}
	}
	return h, nil
}

// HostIDs are a mirror host's ids for user and group names (the names it
// knows) and the user and group its agent runs as.
type HostIDs struct {
	Users, Groups map[string]uint32
	Uid, Gid      uint32
}

// Rollback asks the agent to put the newest backup in dir back (see
// wire.Rollback); with dry it only says what it would do.
func (c *Client) Rollback(ctx context.Context, dir string, dry bool) (RollbackResult, error) {
	w := &waiter{req: wire.TRollback}
	var flags uint64
	if dry {
		flags = wire.RollbackDryRun
	}
	if err := c.ask(w, func(id uint64) wire.Msg { return &wire.Rollback{ID: id, Flags: flags, Dir: dir} }); err != nil {
		return RollbackResult{}, err
	}
	if err := c.flush(); err != nil {
		return RollbackResult{}, err
	}
	if err := c.await(ctx, w); err != nil {
		return RollbackResult{}, err
	}
	return w.roll, nil
}

func (c *Client) Writer() Writer { return clientWriter{c} }

// Close ends the session: the transport is closed, so the agent sees the
// end of its input and every blocked call returns an error wrapping
// ErrMirrorLost. It returns within about two seconds even when the
// transport will not close (a stopped agent process); its resources are
// then released when the transport finally gives up.
func (c *Client) Close() error {
	c.fail(fmt.Errorf("%w: %s: session closed", ErrMirrorLost, c.name))
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	for _, ch := range []chan struct{}{c.closed, c.done, c.watchDone} {
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: close %s: the transport did not close within %s", ErrMirrorLost, c.name, closeTimeout)
		}
	}
	// Writers check the session before touching the encoder.
	c.connOnce.Do(func() {
		c.wmu.Lock()
		c.conn.Close()
		c.wmu.Unlock()
	})
	return c.closeErr
}

type clientWriter struct{ c *Client }

// op sends a write operation, remembering its path: the agent's report of
// its failure must name it, and the path reported is the one sent.
func (w clientWriter) op(path, op string, mk func(id uint64) wire.Msg) error {
	c := w.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.nextID++
	id := c.nextID
	ref := opRef{id: id, path: path, op: op}
	msg := mk(id)
	switch m := msg.(type) {
	case *wire.Batch:
		c.delay, c.staged = m.Flags&wire.BatchDelay != 0, 0
	case *wire.FileBegin, *wire.Symlink:
		if c.delay {
			c.staged++
		}
	case *wire.Commit:
		ref.many, ref.left = true, c.staged
		c.staged = 0
	}
	c.ops = append(c.ops, ref)
	c.mu.Unlock()
	return c.write(msg)
}

func (w clientWriter) Mkdir(p string, meta wire.Meta) error {
	return w.op(p, "mkdir", func(id uint64) wire.Msg { return &wire.Mkdir{ID: id, Path: p, Meta: meta} })
}
func (w clientWriter) Symlink(p, target string, meta wire.Meta) error {
	return w.op(p, "symlink", func(id uint64) wire.Msg { return &wire.Symlink{ID: id, Path: p, Target: target, Meta: meta} })
}
func (w clientWriter) SetMeta(p string, kind fstree.Kind, meta wire.Meta) error {
	if p == "" {
		c := w.c
		c.rootMu.Lock()
		c.root.Perm, c.root.Mtime = meta.Perm, meta.Mtime
		if meta.Owner {
			c.root.Uid, c.root.Gid = meta.Uid, meta.Gid
		}
		c.rootMu.Unlock()
	}
	return w.op(p, "set metadata", func(id uint64) wire.Msg { return &wire.SetMeta{ID: id, Path: p, Kind: kind, Meta: meta} })
}
func (w clientWriter) Delete(p string, kind fstree.Kind) error {
	return w.op(p, "delete", func(id uint64) wire.Msg { return &wire.Delete{ID: id, Path: p, Kind: kind} })
}
func (w clientWriter) Rename(from, to string, kind fstree.Kind) error {
	// The agent reports a failed rename at its destination.
	return w.op(to, "rename from "+QuotePath(from), func(id uint64) wire.Msg { return &wire.Rename{ID: id, From: from, To: to, Kind: kind} })
}
func (w clientWriter) BeginFile(p string, size int64, meta wire.Meta, blockSize int) error {
	return w.op(p, "write", func(id uint64) wire.Msg {
		return &wire.FileBegin{ID: id, Path: p, Size: size, Meta: meta, BlockSize: blockSize}
	})
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
func (w clientWriter) CopyAt(off int64, n uint32) error {
	return w.c.send(&wire.FileCopyAt{Off: off, Len: n})
}
func (w clientWriter) Hole(n int64) error { return w.c.send(&wire.FileHole{Len: n}) }
func (w clientWriter) Batch(delay bool, backupDir, stamp string) error {
	var flags uint64
	if delay {
		flags = wire.BatchDelay
	}
	return w.op("", BatchOp, func(id uint64) wire.Msg {
		return &wire.Batch{ID: id, Flags: flags, BackupDir: backupDir, Stamp: stamp}
	})
}
func (w clientWriter) Commit() error {
	return w.op("", "rename staged file into place", func(id uint64) wire.Msg { return &wire.Commit{ID: id} })
}
func (w clientWriter) EndFile(hash fstree.Hash) error { return w.c.send(&wire.FileEnd{Hash: hash}) }
func (w clientWriter) AbortFile() error               { return w.c.send(&wire.FileAbort{}) }

func displayPath(p string) string {
	if p == "" {
		return "."
	}
	return p
}

// quote shows a path from the peer in a message.
func quote(p string) string { return strconv.Quote(p) }

// clip keeps the start and the end of a long message: the end usually
// says what went wrong.
func clip(s string) string {
	if len(s) <= maxKeptMsg {
		return s
	}
	head, tail := s[:maxKeptMsg/4], s[len(s)-maxKeptMsg*3/4:]
	return strings.ToValidUTF8(head, "") + "..." + strings.ToValidUTF8(tail, "")
}

// SplitNoSpace separates the failures caused by a full disk or quota on
// the mirror (one per path) from the others, so a full disk is reported
// as one line with a count instead of one per file. The mirror's own
// reports come first, then the files the client did not send.
func SplitNoSpace(failed []OpError) (noSpace, others []OpError) {
	full := map[string]bool{}
	for _, f := range failed {
		if f.OpNoSpace() {
			full[f.Path] = true
		}
	}
	seen := map[string]bool{}
	for _, notSent := range []bool{false, true} {
		for _, f := range failed {
			if f.OpNoSpace() && !seen[f.Path] && (f.Msg == errNoSpace.msg) == notSent {
				seen[f.Path] = true
				noSpace = append(noSpace, f)
			}
		}
	}
	for _, f := range failed {
		if !full[f.Path] {
			others = append(others, f)
		}
	}
	return noSpace, others
}
