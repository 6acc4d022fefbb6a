//go:build !windows

package agent

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosync/gosync/engine/delta"
	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/wire"
)

// Options configure one agent session.
type Options struct {
	Root    string // the mirror directory
	BuildID string // reported in the handshake
	Logger  *slog.Logger
	// Heartbeat is how often a busy agent tells the client it is alive
	// (0: DefaultHeartbeat). It must stay well below the client's idle
	// deadline.
	Heartbeat time.Duration
	// RunTimeout bounds an --on-sync command (0: DefaultRunTimeout).
	RunTimeout time.Duration
	// WalkHelpers is how many goroutines help the mirror's walk stat the
	// entries of a large directory (fstree.WalkOptions.Helpers). An agent
	// of its own (on a mirror host) gives it the host's other cores: a
	// 100,000-file walk alone on two cores took 0.29 s instead of 0.37 s.
	// An agent inside the client leaves it 0: the source walk has the
	// other core already (a local no-op was 5% slower with a helper).
	WalkHelpers int
	Restriction
}

// DefaultHeartbeat is a sixth of the client's default idle deadline, so a
// late tick or two on a loaded host never looks like a dead agent.
const DefaultHeartbeat = 5 * time.Second

// Serve speaks the protocol on r and w until the client closes its side
// (a nil return) or something fails. Errors of single operations go back
// to the client as messages and do not end the session.
func Serve(ctx context.Context, r io.Reader, w io.Writer, opt Options) error {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &server{ctx: ctx, log: log, isRoot: os.Geteuid() == 0, uid: os.Geteuid(), gid: os.Getegid(), rootFD: -1, dirs: map[string]int{},
		start: time.Now(), wake: make(chan struct{}, 1), runTimeout: cmp.Or(opt.RunTimeout, DefaultRunTimeout), fence: fence{lockFD: -1}}
	s.policy = opt.Restriction.policy(s.isRoot)
	s.walkHelpers = opt.WalkHelpers
	growPipe(r)
	growPipe(w)
	conn := wire.NewConn(activityReader{r, s}, w)
	s.conn = conn
	defer conn.Close()
	defer s.close()

	if s.policy.fixedRoot {
		// The client may have asked for a probe script, not for this
		// agent: say at once what answers it.
		if err := conn.WriteMsg(&wire.Hello{Version: wire.Version, BuildID: opt.BuildID, Flags: s.policy.flags | wire.FlagGreeting}); err != nil {
			return err
		}
		if err := conn.Flush(); err != nil {
			return err
		}
	}
	first, err := conn.ReadMsg()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("handshake: %w", err)
	}
	hello, ok := first.(*wire.Hello)
	if !ok {
		return fmt.Errorf("handshake: %w: expected hello, got message type %d", wire.ErrFrame, first.Type())
	}
	reply := &wire.Hello{Version: wire.Version, BuildID: opt.BuildID, Flags: s.policy.flags}
	if s.policy.setsGroup {
		reply.Groups = userGroups()
		s.groups = make(map[uint32]bool, len(reply.Groups))
		for _, g := range reply.Groups {
			s.groups[g] = true
		}
	}
	overlaps := overlapsSource(opt.Root, hello.Place)
	create := hello.Flags&wire.FlagCreate != 0 && !overlaps
	if hello.Version != wire.Version {
		reply.Err = fmt.Sprintf("agent speaks protocol version %d, client %d", wire.Version, hello.Version)
	} else if err := s.policy.check(opt.Root, hello.Root); err != nil {
		reply.Err = err.Error()
	} else if missing, err := s.openRoot(opt.Root, create); err != nil {
		reply.Err = err.Error()
	} else if missing {
		reply.Flags |= wire.FlagMissing
	} else if err := s.held(); err != nil {
		reply.Err = err.Error()
	} else if hello.Flags&wire.FlagLock != 0 && !overlaps {
		if reply.Holder, err = s.takeLock(hello.Session); err != nil {
			reply.Err = err.Error()
		}
	}
	s.sparse = hello.Flags&wire.FlagSparse != 0
	if reply.Err == "" {
		reply.Place = s.place(opt.Root)
		if s.createdRoot {
			reply.Flags |= wire.FlagCreated
		}
		if s.rootMeta != nil {
			reply.Flags |= wire.FlagRootMeta
			reply.RootMeta = *s.rootMeta
		}
	}
	if err := conn.WriteMsg(reply); err != nil {
		return err
	}
	if err := conn.Flush(); err != nil {
		return err
	}
	if reply.Err != "" {
		return errors.New(reply.Err)
	}
	if err := conn.StartCompression(hello.Compress); err != nil {
		return err
	}
	every := opt.Heartbeat
	if every <= 0 {
		every = DefaultHeartbeat
	}
	stop := make(chan struct{})
	beats := make(chan struct{})
	go func() {
		defer close(beats)
		s.heartbeat(stop, every)
	}()
	defer func() {
		close(stop)
		<-beats
	}()
	for {
		if !conn.Buffered() {
			if err := s.flush(); err != nil {
				return err
			}
			s.fence.idle = true // the next message may come much later
		}
		m, err := conn.ReadMsg()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		s.busy.Store(true)
		err = s.handle(m)
		s.busy.Store(false)
		if err != nil {
			return err
		}
	}
}

// activityReader notes when bytes arrive, so a client still streaming a
// big file gets heartbeats even between whole messages.
type activityReader struct {
	r io.Reader
	s *server
}

func (a activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.s.lastRead.Store(int64(time.Since(a.s.start)))
		select {
		case a.s.wake <- struct{}{}:
		default:
		}
	}
	return n, err
}

// heartbeat sends a Heartbeat every interval while the agent is busy:
// handling a message, or having received bytes within the last interval.
// It sleeps on wake while idle, so an idle session costs no timer and no
// bytes.
func (s *server) heartbeat(stop <-chan struct{}, every time.Duration) {
	t := time.NewTimer(every)
	t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-s.wake:
		}
		for {
			t.Reset(every)
			select {
			case <-stop:
				t.Stop()
				return
			case <-t.C:
			}
			if !s.busy.Load() && time.Since(s.start)-time.Duration(s.lastRead.Load()) >= every {
				break
			}
			if err := s.beat(stop); err != nil {
				return // the main loop sees the broken stream too
			}
		}
	}
}

func (s *server) beat(stop <-chan struct{}) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	select {
	case <-stop:
		return io.EOF // Serve is returning: the stream may be gone
	default:
	}
	if err := s.conn.WriteMsg(&wire.Heartbeat{}); err != nil {
		return err
	}
	return s.conn.Flush()
}

type server struct {
	ctx         context.Context
	walkHelpers int // Options.WalkHelpers
	conn        *wire.Conn
	wmu         sync.Mutex // the heartbeat writes too
	busy        atomic.Bool
	start       time.Time
	// lastRead is when bytes last arrived, as time since start (a
	// monotonic clock).
	lastRead atomic.Int64
	wake     chan struct{}
	log      *slog.Logger
	root     *os.Root // nil when the root is missing (dry run)
	rootFD   int      // the root directory, for *at system calls
	isRoot   bool
	uid      int // the agent's own ids: new files already have them
	gid      int
	groups   map[uint32]bool // when not root: the groups it may give files
	// createdRoot: this session made the mirror directory; rootMeta is
	// its metadata as the session found it.
	createdRoot bool
	rootMeta    *wire.Meta
	dirs        map[string]int // open directory descriptors by relative path
	file        *openFile
	batch       *batch           // between a Batch and the next (batch.go)
	hashes      fstree.HashCache // content hashes across the scans of a session
	wbuf        *bufio.Writer    // reused by every received file
	hash        *wire.FileHash   // likewise
	pend        []byte           // likewise, for direct files (direct.go)
	readBuf     *[]byte
	// sparse (wire.FlagSparse): runs of zeros in received files are
	// left as holes.
	sparse bool
	policy policy
	// runTimeout bounds an --on-sync command.
	runTimeout time.Duration
	fence      fence // this session still owns the root (fence.go)
	// widened are the directories opened for a change after adding
	// u+rwx to a mode that refused the agent's user (a 000 directory
	// mirrored from the source): their mode comes back with their
	// SetMeta or, failing that, at the next barrier.
	widened map[string]widenedDir
}

// widenedDir is a directory's own descriptor and the mode it had.
type widenedDir struct {
	fd   int
	mode uint32
}

func (s *server) close() {
	if s.file != nil {
		s.file.discard()
		s.file = nil
	}
	s.endBatch()
	s.restoreWidened()
	s.releaseLock()
	s.closeDirs()
	if s.rootFD >= 0 {
		unix.Close(s.rootFD)
	}
	if s.root != nil {
		s.root.Close()
	}
}

// openRoot opens (or creates) the mirror directory. It refuses the file
// system root and the agent user's home: a mirror there with --delete
// would wipe a machine or an account.
func (s *server) openRoot(dir string, create bool) (missing bool, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false, err
	}
	if refuse := refusedRoot(abs); refuse != "" {
		return false, fmt.Errorf("refusing to use %s as a mirror: it is %s; give a directory below it", dir, refuse)
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist) && create:
		// Private until the first sync ends: the session gives the root
		// the source root's mode last (finishDirs), so a 0700 tree is
		// never readable by others while it is being filled.
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			return false, fmt.Errorf("create mirror directory %s: %w", dir, errors.Unwrap(err))
		}
		if err := os.Mkdir(abs, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return false, fmt.Errorf("create mirror directory %s: %w", dir, errors.Unwrap(err))
		} else if err == nil {
			s.createdRoot = true
		}
	case errors.Is(err, fs.ErrNotExist):
		// A dry run creates nothing, but fails where the real run would.
		if err := creatable(abs); err != nil {
			return false, fmt.Errorf("create mirror directory %s: %w", dir, err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("mirror directory %s: %w", dir, errors.Unwrap(err))
	case !fi.IsDir():
		return false, fmt.Errorf("mirror %s exists and is not a directory", dir)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return false, fmt.Errorf("open mirror directory %s: %w", dir, errors.Unwrap(err))
	}
	fd, err := unix.Open(abs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		root.Close()
		return false, fmt.Errorf("open mirror directory %s: %w", dir, err)
	}
	s.root, s.rootFD = root, fd
	// As found, before the session lock (which lives in it) moves its
	// mtime.
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil {
		sec, nsec := st.Mtim.Unix()
		s.rootMeta = &wire.Meta{Perm: uint32(st.Mode & 0o7777), Mtime: fstree.Time{Sec: sec, Nsec: int32(nsec)}, Owner: true, Uid: st.Uid, Gid: st.Gid}
	}
	return false, nil
}

// creatable tells why MkdirAll(abs) would fail, without creating
// anything: the nearest existing ancestor must be a directory this
// process may add entries to.
func creatable(abs string) error {
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist) && dir != filepath.Dir(dir):
			continue
		case err != nil:
			return errors.Unwrap(err)
		case !fi.IsDir():
			return fmt.Errorf("%s is not a directory", dir)
		}
		if err := unix.Faccessat(unix.AT_FDCWD, dir, unix.W_OK|unix.X_OK, unix.AT_EACCESS); err != nil {
			return err
		}
		return nil
	}
}

// refusedRoot tells why abs may not be a mirror: it is the file system
// root or the home directory, however it is spelled. Paths are compared
// resolved (symlinks, /proc/self/root, "/./") and as directories (device
// and inode, which a bind mount of / also shares).
func refusedRoot(abs string) string {
	for _, r := range []struct{ dir, what string }{{"/", "the file system root"}, {homeDir(), "the home directory"}} {
		if r.dir != "" && sameDir(abs, r.dir) {
			return r.what
		}
	}
	return ""
}

func homeDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return home
}

func sameDir(a, b string) bool {
	if resolved(a) == resolved(b) {
		return true
	}
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// resolved is p absolute with every symlink resolved, or p cleaned where
// it cannot be resolved (it does not exist yet).
func resolved(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r
	}
	return abs
}

func (s *server) send(m wire.Msg) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.conn.WriteMsg(m)
}

func (s *server) flush() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.conn.Flush()
}

// DefaultRunTimeout bounds an --on-sync command: the mirror's next batch
// waits for it.
const DefaultRunTimeout = time.Minute

// run executes an --on-sync command in the mirror directory.
func (s *server) run(m *wire.Run) *wire.RunDone {
	done := &wire.RunDone{ID: m.ID, Code: -1}
	if s.root == nil {
		done.Output = errNoRoot.Error()
		return done
	}
	out := &tailBuffer{max: wire.MaxErrorMsg}
	code, err := runHook(s.ctx, m.Cmd, s.root.Name(), m.Stdin, out, s.runTimeout)
	done.Code = code
	done.Output = out.String()
	if err != nil {
		done.Output += "\n(" + err.Error() + ")"
	}
	return done
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// opOf names the write operation m (its id and path).
func opOf(m wire.Msg) (id uint64, path string, ok bool) {
	switch m := m.(type) {
	case *wire.Mkdir:
		return m.ID, m.Path, true
	case *wire.Symlink:
		return m.ID, m.Path, true
	case *wire.SetMeta:
		return m.ID, m.Path, true
	case *wire.Delete:
		return m.ID, m.Path, true
	case *wire.Rename:
		return m.ID, m.To, true
	}
	return 0, "", false
}

// opError reports a failed operation to the client.
func (s *server) opError(id uint64, p string, err error) error {
	code := wire.CodeOther
	var pe *wire.PathError
	switch {
	case errors.As(err, &pe):
		code = wire.CodeInvalid
	case errors.Is(err, errMismatch):
		code = wire.CodeMismatch
	case errors.Is(err, errVerify):
		code = wire.CodeVerify
	case errors.Is(err, errAborted):
		code = wire.CodeAborted
	case errors.Is(err, fs.ErrNotExist):
		code = wire.CodeNotExist
	case errors.Is(err, fs.ErrPermission):
		code = wire.CodePermission
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		code = wire.CodeNoSpace
	}
	msg := err.Error()
	if len(msg) > wire.MaxErrorMsg {
		msg = msg[:wire.MaxErrorMsg]
	}
	s.log.Debug("operation failed", slog.String("path", p), slog.String("err", msg))
	return s.send(&wire.Error{ID: id, Path: p, Code: code, Msg: msg})
}

var (
	errMismatch = errors.New("entry on the mirror changed kind")
	errVerify   = errors.New("content hash mismatch after write")
	errAborted  = errors.New("transfer aborted by the client")
	errNoRoot   = errors.New("mirror directory does not exist")
)

func (s *server) handle(m wire.Msg) error {
	if s.file != nil {
		switch m.(type) {
		case *wire.FileData, *wire.FileCopy, *wire.FileCopyAt, *wire.FileHole, *wire.FileEnd, *wire.FileAbort:
		case *wire.SigReq:
			// The second round of a delta, asked for while its first
			// round is being written (protocol 5): the open file is a
			// temporary, the basis is still in place.
		default:
			return fmt.Errorf("%w: message type %d inside a file transfer", wire.ErrFrame, m.Type())
		}
	}
	if err := s.guard(m); err != nil {
		return err
	}
	if refusal := s.admit(m); refusal != nil {
		return s.send(refusal)
	}
	if err := s.refused(); err != nil {
		if id, p, ok := opOf(m); ok {
			return s.opError(id, p, err)
		}
	}
	switch m := m.(type) {
	case *wire.Scan:
		return s.scan(m)
	case *wire.SigReq:
		return s.signature(m)
	case *wire.Mkdir:
		if err := s.mkdir(m); err != nil {
			return s.opError(m.ID, m.Path, err)
		}
	case *wire.Symlink:
		if err := s.symlink(m); err != nil {
			return s.opError(m.ID, m.Path, err)
		}
	case *wire.SetMeta:
		if err := s.setMeta(m.Path, m.Kind, m.Meta); err != nil {
			return s.opError(m.ID, m.Path, err)
		}
		s.settled(m.Path)
	case *wire.Delete:
		if err := s.delete(m); err != nil {
			return s.opError(m.ID, m.Path, err)
		}
	case *wire.Rename:
		if err := s.rename(m); err != nil {
			return s.opError(m.ID, m.To, err)
		}
	case *wire.FileBegin:
		return s.fileBegin(m)
	case *wire.FileData:
		return s.fileData(m)
	case *wire.FileCopy:
		return s.fileCopy(m)
	case *wire.FileCopyAt:
		return s.fileCopyAt(m)
	case *wire.FileHole:
		return s.fileHole(m)
	case *wire.FileEnd:
		return s.fileEnd(m)
	case *wire.FileAbort:
		return s.fileAbort()
	case *wire.Barrier:
		s.restoreWidened()
		if s.file == nil {
			// The end of a sync or a watch's batch: a watch idles for
			// hours after it, so let the file buffers (1.5 MiB) go.
			s.pend, s.readBuf, s.wbuf = nil, nil, nil
		}
		return s.send(&wire.Done{ID: m.ID})
	case *wire.Run:
		return s.send(s.run(m))
	case *wire.Names:
		return s.send(resolve(m))
	case *wire.Batch:
		return s.beginBatch(m)
	case *wire.Commit:
		return s.commitBatch(m)
	case *wire.Rollback:
		return s.rollback(m)
	default:
		return fmt.Errorf("%w: unexpected message type %d from client", wire.ErrFrame, m.Type())
	}
	return nil
}

const scanBatch = 1024

func (s *server) scan(m *wire.Scan) error {
	batch := make([]fstree.Entry, 0, scanBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.send(&wire.Entries{ID: m.ID, Entries: batch})
		batch = batch[:0]
		return err
	}
	var sendErr error
	var tooLong string // the topmost entry not listed for its length
	err := s.walk(m.Path, m.Hash, func(rel string, err error) {
		if sendErr == nil {
			sendErr = s.opError(m.ID, rel, err)
		}
	}, func(e *fstree.Entry) error {
		if len(e.Path) > wire.MaxPath || len(e.Target) > wire.MaxPath {
			// Not listable: report it under its directory (whose path
			// fits, or it would be the one reported), once per subtree.
			if tooLong == "" || !strings.HasPrefix(e.Path, tooLong+"/") {
				tooLong = e.Path
				if sendErr == nil {
					sendErr = s.send(&wire.Error{ID: m.ID, Path: parentOf(e.Path),
						Msg: fmt.Sprintf("holds an entry whose path or symlink target is longer than %d bytes: not listed", wire.MaxPath)})
				}
			}
			return nil
		}
		batch = append(batch, *e)
		if len(batch) == scanBatch {
			return flush()
		}
		return nil
	})
	if sendErr != nil {
		return sendErr
	}
	if err == nil {
		err = flush()
	}
	end := &wire.ScanEnd{ID: m.ID}
	if err != nil {
		if s.ctx.Err() != nil {
			return err
		}
		end.Err = err.Error()
	}
	return s.send(end)
}

// walk lists the subtree at sub, removing temporaries of earlier runs.
func (s *server) walk(sub string, hash bool, onErr func(string, error), fn func(*fstree.Entry) error) error {
	if s.root == nil {
		return nil // missing root in a dry run: an empty mirror
	}
	if sub != "" {
		var e fstree.Entry
		err := s.withParent(sub, func(dirfd int, base string) error {
			var err error
			e, err = fstree.StatAt(dirfd, base)
			e.Path = sub
			return err
		})
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if hash && e.Kind == fstree.File {
			// One file's hash: the engine confirms with it that a new
			// source file is the mirror's old one renamed.
			sum, err := s.hashes.Hash(&e, func() (*os.File, error) { return s.openSame(sub, &e) })
			if err != nil {
				onErr(sub, err)
			} else {
				e.Hash, e.HasHash = sum, true
			}
		}
		if err := fn(&e); err != nil || e.Kind != fstree.Dir {
			return err
		}
	}
	fd, err := s.dir(sub)
	if err != nil {
		return err
	}
	dupfd, err := unix.Dup(fd)
	if err != nil {
		return err
	}
	dir := os.NewFile(uintptr(dupfd), displayPath(sub))
	defer dir.Close()
	if hash && sub == "" {
		s.hashes.Begin()
		defer s.hashes.End()
	}
	return fstree.Walk(s.ctx, dir, fstree.WalkOptions{
		Prefix:   sub,
		Hash:     hash,
		HashFunc: s.hashes.Hash,
		OnError:  onErr,
		Widen:    s.widenToList,
		Helpers:  s.walkHelpers,
		Temp: func(rel string) {
			if rel == fstree.LockName {
				return // not a leftover: the session lock
			}
			err := s.withParent(rel, func(dirfd int, base string) error {
				err := unix.Unlinkat(dirfd, base, 0)
				if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EPERM) {
					err = unix.Unlinkat(dirfd, base, unix.AT_REMOVEDIR) // an empty directory, as os.Remove would
				}
				return err
			})
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("cannot remove leftover temporary", slog.String("path", rel), slog.String("err", err.Error()))
			}
		},
	}, fn)
}

func (s *server) signature(m *wire.SigReq) error {
	sig, err := s.sign(m)
	if err != nil {
		return s.send(&wire.Sig{ID: m.ID, Err: err.Error()})
	}
	b, err := sig.AppendBinary(nil)
	if err != nil {
		return s.send(&wire.Sig{ID: m.ID, Err: err.Error()})
	}
	return s.send(&wire.Sig{ID: m.ID, Sig: b})
}

func (s *server) sign(m *wire.SigReq) (*delta.Signature, error) {
	if s.root == nil {
		return nil, errNoRoot
	}
	size, bs, sl := m.Size, delta.BlockSize(m.Size), delta.StrongLen(m.Size)
	if m.Len > 0 {
		if m.Off > m.Size || m.Len > m.Size-m.Off {
			return nil, fmt.Errorf("%w: range %d+%d of a file of %d bytes", wire.ErrFrame, m.Off, m.Len, m.Size)
		}
		size = m.Len
	}
	if m.BlockSize > 0 {
		// The client's choice, bounded: never more blocks than the
		// default signature of the file or MaxRequestedBlocks.
		most := max(int64(delta.MaxRequestedBlocks), (m.Size+int64(bs)-1)/int64(bs))
		if m.BlockSize < delta.MinFineBlock || m.BlockSize > delta.MaxBlockSize || (size+int64(m.BlockSize)-1)/int64(m.BlockSize) > most {
			return nil, fmt.Errorf("%w: block size %d for %d bytes", wire.ErrFrame, m.BlockSize, size)
		}
		bs, sl = m.BlockSize, delta.StrongLenFor(m.Size, m.BlockSize)
	}
	f, fi, err := s.openRegular(m.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() != m.Size {
		return nil, fmt.Errorf("%w: size %d, expected %d", errMismatch, fi.Size(), m.Size)
	}
	if m.Len > 0 {
		return delta.SignWith(s.ctx, io.NewSectionReader(f, m.Off, m.Len), m.Len, bs, sl)
	}
	// The holes of a sparse basis are not read: their blocks are zeros.
	return delta.SignSparseWith(s.ctx, f, fi.Size(), bs, sl, func(off int64) (int64, int64) {
		start, end, _ := fstree.NextData(f, off, fi.Size())
		return start, end
	})
}

// openSame opens the regular file p for reading if it is still the
// inode e describes.
func (s *server) openSame(p string, e *fstree.Entry) (*os.File, error) {
	f, _, err := s.openRegular(p)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, err
	}
	if uint64(st.Dev) != e.Dev || uint64(st.Ino) != e.Ino {
		f.Close()
		return nil, fmt.Errorf("%w: replaced while being listed", errMismatch)
	}
	return f, nil
}

// openRegular opens an existing regular file for reading without
// following a symlink anywhere on its path.
func (s *server) openRegular(p string) (*os.File, os.FileInfo, error) {
	var f *os.File
	err := s.withParent(p, func(dirfd int, base string) error {
		fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			if errors.Is(err, unix.ELOOP) {
				return fmt.Errorf("%w: is a symlink", errMismatch)
			}
			return &os.PathError{Op: "open", Path: p, Err: err}
		}
		unix.SetNonblock(fd, false)
		f = os.NewFile(uintptr(fd), p)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%w: not a regular file", errMismatch)
	}
	return f, fi, nil
}

// maxDirs bounds the cache of open directory descriptors.
const maxDirs = 256

// dir returns a descriptor of the directory rel ("" for the root), opened
// beneath the root with no symbolic link in any component: os.Root keeps
// a path inside the mirror, this also keeps a symlink on the mirror from
// redirecting a write to another place inside it. Descriptors are cached,
// so a batch of files in one directory resolves it once.
func (s *server) dir(rel string) (int, error) {
	if s.root == nil {
		return -1, errNoRoot
	}
	if fd, ok := s.dirs[rel]; ok {
		return fd, nil
	}
	if len(s.dirs) >= maxDirs {
		s.closeDirs()
	}
	fd, err := fstree.OpenBeneath(s.rootFD, rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if errors.Is(err, unix.EACCES) && rel != "" {
		if wfd, werr := s.openWidened(rel); werr == nil {
			fd, err = wfd, nil
		}
	}
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return -1, fmt.Errorf("%w: a symlink or file is in the way at %s", errMismatch, displayPath(rel))
		}
		return -1, &os.PathError{Op: "open directory", Path: displayPath(rel), Err: err}
	}
	s.dirs[rel] = fd
	return fd, nil
}

// openWidened opens the directory rel, which refused the agent's user,
// after adding u+rwx to its mode, when the user owns it: rsync does the
// same while it fills a directory, so a directory mirrored as 000 takes
// its new content and mode in one run. The mode comes back with the
// directory's SetMeta or at the next barrier (restoreWidened).
func (s *server) openWidened(rel string) (int, error) {
	pfd, err := s.dir(parentOf(rel))
	if err != nil {
		return -1, err
	}
	base := baseOf(rel)
	n, err := openNode(pfd, base)
	if err != nil {
		return -1, err
	}
	defer n.close()
	mode := n.perm()
	if n.kind() != fstree.Dir || int(n.st.Uid) != s.uid || mode&0o700 == 0o700 {
		return -1, unix.EACCES
	}
	if err := n.chmod(mode | 0o700); err != nil {
		return -1, err
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	var st unix.Stat_t
	if err == nil {
		if err = unix.Fstat(fd, &st); err == nil && !n.same(&st) {
			err = fmt.Errorf("%w: replaced while being opened", errMismatch)
		}
		if err != nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		n.chmod(mode)
		return -1, err
	}
	own, err := unix.Dup(fd)
	if err != nil {
		unix.Close(fd)
		n.chmod(mode)
		return -1, err
	}
	if s.widened == nil {
		s.widened = map[string]widenedDir{}
	}
	if old, ok := s.widened[rel]; ok {
		unix.Close(old.fd) // widened again after a restore raced: keep the first mode
		mode = old.mode
	}
	s.widened[rel] = widenedDir{fd: own, mode: mode}
	return fd, nil
}

// settled drops rel from the widened directories: its SetMeta gave it
// its final mode.
func (s *server) settled(rel string) {
	if w, ok := s.widened[rel]; ok {
		unix.Close(w.fd)
		delete(s.widened, rel)
	}
}

// restoreWidened puts back the mode of every directory still widened.
func (s *server) restoreWidened() {
	for rel, w := range s.widened {
		if err := unix.Fchmod(w.fd, w.mode); err != nil {
			s.log.Warn("cannot restore the mode of a directory", slog.String("path", rel), slog.String("err", err.Error()))
		}
		unix.Close(w.fd)
		delete(s.widened, rel)
		s.forget(rel) // a cached descriptor would meet the old mode
	}
}

// widenToList adds u+rx to the mode of the directory name in dirfd when
// the agent's user owns it and its mode refuses the listing (a mirrored
// 000 directory), so a scan lists it; restore puts the mode back.
func (s *server) widenToList(dirfd int, name string) (restore func(), ok bool) {
	n, err := openNode(dirfd, name)
	if err != nil {
		return nil, false
	}
	mode := n.perm()
	if n.kind() != fstree.Dir || int(n.st.Uid) != s.uid || mode&0o500 == 0o500 || n.chmod(mode|0o500) != nil {
		n.close()
		return nil, false
	}
	return func() {
		if err := n.chmod(mode); err != nil {
			s.log.Warn("cannot restore the mode of a directory", slog.String("path", name), slog.String("err", err.Error()))
		}
		n.close()
	}, true
}

func (s *server) closeDirs() {
	for k, fd := range s.dirs {
		unix.Close(fd)
		delete(s.dirs, k)
	}
}

// forget drops cached descriptors of p and everything below it, before p
// is removed or replaced.
func (s *server) forget(p string) {
	if p == "" {
		s.closeDirs()
		return
	}
	for d, fd := range s.dirs {
		if d == p || strings.HasPrefix(d, p+"/") {
			unix.Close(fd)
			delete(s.dirs, d)
		}
	}
}

func displayPath(p string) string {
	if p == "" {
		return "."
	}
	return p
}

// withParent runs fn with a descriptor of p's parent directory and p's
// last component, for the *at system calls that never follow a final
// symlink.
func (s *server) withParent(p string, fn func(dirfd int, base string) error) error {
	if p == "" {
		fd, err := s.dir("")
		if err != nil {
			return err
		}
		return fn(fd, ".")
	}
	fd, err := s.dir(parentOf(p))
	if err != nil {
		return err
	}
	err = fn(fd, baseOf(p))
	if errors.Is(err, unix.EACCES) {
		if restore, ok := s.widen(fd); ok {
			err = fn(fd, baseOf(p))
			restore()
		}
	}
	return err
}

// widen makes the directory dirfd writable for the agent's user while it
// changes an entry in it, when the user owns the directory and only its
// mode refuses (a 0555 directory mirrored from the source): rsync does
// the same. restore puts the mode back. ok is false when the directory
// is not the user's or is writable already (the refusal is something
// else).
func (s *server) widen(dirfd int) (restore func(), ok bool) {
	var st unix.Stat_t
	if unix.Fstat(dirfd, &st) != nil || int(st.Uid) != s.uid || st.Mode&0o200 != 0 {
		return nil, false
	}
	mode := uint32(st.Mode & 0o7777)
	if unix.Fchmod(dirfd, mode|0o200) != nil {
		return nil, false
	}
	return func() { unix.Fchmod(dirfd, mode) }, true
}

func (s *server) mkdir(m *wire.Mkdir) error {
	if m.Path == "" {
		return &wire.PathError{Path: m.Path, Why: "cannot create the root"}
	}
	return s.withParent(m.Path, func(dirfd int, base string) error {
		if bk := s.backupOn(); bk != nil {
			if err := s.save(bk, dirfd, base, m.Path, true); err != nil {
				return err
			}
		}
		// Owner write+search stay on until the final SetMeta, so a
		// directory that ends read-only can still be filled first.
		err := unix.Mkdirat(dirfd, base, 0o700)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		n, oerr := openNode(dirfd, base)
		if oerr != nil {
			return oerr
		}
		defer n.close()
		if n.kind() != fstree.Dir {
			return fmt.Errorf("%w: exists and is not a directory", errMismatch)
		}
		if err != nil {
			return nil // it existed: its metadata comes with the final SetMeta
		}
		if err := n.chmod(m.Meta.Perm | 0o700); err != nil {
			return err
		}
		return s.chown(n, m.Meta)
	})
}

// chown gives n the owner meta asks for, when the agent may.
func (s *server) chown(n *node, meta wire.Meta) error {
	uid, gid, change := s.ownerChange(meta, n.st.Uid, n.st.Gid)
	if !change {
		return nil
	}
	return n.chown(uid, gid)
}

// ownerChange tells what chown an entry owned by cur needs for meta: the
// owner and group (root), or the group alone when the agent's user
// belongs to it (-1 keeps the owner), as rsync -a does for a normal user.
func (s *server) ownerChange(meta wire.Meta, curUid, curGid uint32) (uid, gid int, change bool) {
	switch {
	case !meta.Owner:
		return -1, -1, false
	case s.isRoot:
		return int(meta.Uid), int(meta.Gid), curUid != meta.Uid || curGid != meta.Gid
	case s.groups[meta.Gid]:
		return -1, int(meta.Gid), curGid != meta.Gid
	}
	return -1, -1, false
}

func (s *server) symlink(m *wire.Symlink) error {
	if m.Path == "" {
		return &wire.PathError{Path: m.Path, Why: "cannot replace the root"}
	}
	s.forget(m.Path)
	return s.withParent(m.Path, func(dirfd int, base string) error {
		tmp := tempName()
		if err := unix.Symlinkat(m.Target, dirfd, tmp); err != nil {
			return err
		}
		err := s.metaOfNew(dirfd, tmp, fstree.Symlink, m.Meta)
		if err == nil {
			err = s.install(dirfd, tmp, m.Path)
		}
		if err != nil {
			unix.Unlinkat(dirfd, tmp, 0)
		}
		return err
	})
}

// metaOfNew gives a temporary the agent just made its owner and mtime,
// through a node: the name is another user's to swap until the rename.
func (s *server) metaOfNew(dirfd int, tmp string, kind fstree.Kind, meta wire.Meta) error {
	n, err := openNode(dirfd, tmp)
	if err != nil {
		return err
	}
	defer n.close()
	if n.kind() != kind {
		return fmt.Errorf("%w: temporary replaced by a %s", errMismatch, n.kind())
	}
	if err := s.chown(n, meta); err != nil {
		return err
	}
	return n.setTimes(meta.Mtime)
}

// renameInto replaces base with tmp, refusing to replace a directory (the
// client deletes a directory explicitly when a file takes its place).
func renameInto(dirfd int, tmp, base string) error {
	err := unix.Renameat(dirfd, tmp, dirfd, base)
	if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("%w: a directory is in the way", errMismatch)
	}
	return err
}

func tempName() string {
	return fstree.TempName()
}

func kindOf(mode uint32) fstree.Kind {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return fstree.File
	case unix.S_IFDIR:
		return fstree.Dir
	case unix.S_IFLNK:
		return fstree.Symlink
	}
	return fstree.Other
}

// setMeta changes an entry's owner, mode and mtime in place, through a
// node. An entry with other hard links is rewritten instead (relink).
func (s *server) setMeta(p string, kind fstree.Kind, meta wire.Meta) error {
	var relink bool
	err := s.withParent(p, func(dirfd int, base string) error {
		n, err := openNode(dirfd, base)
		if err != nil {
			return err
		}
		defer n.close()
		if k := n.kind(); k != kind {
			return fmt.Errorf("%w: is a %s, expected a %s", errMismatch, k, kind)
		}
		if n.linked() {
			relink = true
			return nil
		}
		_, _, chowned := s.ownerChange(meta, n.st.Uid, n.st.Gid)
		if err := s.chown(n, meta); err != nil {
			return err
		}
		// chown clears setuid and setgid: the mode goes after it.
		if kind != fstree.Symlink && (chowned || n.perm() != meta.Perm) {
			if err := n.chmod(meta.Perm); err != nil {
				return err
			}
		}
		return n.setTimes(meta.Mtime)
	})
	if err != nil || !relink {
		return err
	}
	return s.relink(p, kind, meta)
}

// relink gives a file or symlink that has other hard links its metadata
// by writing a copy under a new inode and renaming it over the name:
// chown, chmod or utimes in place would change every name of the inode,
// and another user of the host can link a file of theirs, or one outside
// ROOT, into the mirror. rsync changes such a file in place; gosync
// always copies, whoever the agent runs as: for a root agent the other
// name may be any file of the host, for any agent it may be the agent
// user's own file outside ROOT or a hard-linked snapshot of the mirror
// (cp -al, rsnapshot), which a metadata change must not reach either.
func (s *server) relink(p string, kind fstree.Kind, meta wire.Meta) error {
	if kind == fstree.Symlink {
		var target string
		err := s.withParent(p, func(dirfd int, base string) error {
			e, err := fstree.StatAt(dirfd, base)
			if err == nil && e.Kind != fstree.Symlink {
				err = fmt.Errorf("%w: is a %s, expected a symlink", errMismatch, e.Kind)
			}
			target = e.Target
			return err
		})
		if err != nil {
			return err
		}
		return s.symlink(&wire.Symlink{Path: p, Target: target, Meta: meta})
	}
	return s.withParent(p, func(dirfd int, base string) error {
		n, err := openNode(dirfd, base)
		if err != nil {
			return err
		}
		defer n.close()
		if n.kind() != fstree.File {
			return fmt.Errorf("%w: is a %s, expected a file", errMismatch, n.kind())
		}
		src, err := n.reopen()
		if err != nil {
			return &os.PathError{Op: "open", Path: p, Err: err}
		}
		in := os.NewFile(uintptr(src), p)
		defer in.Close()
		tmp := tempName()
		fd, err := unix.Openat(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return &os.PathError{Op: "create temporary", Path: p, Err: err}
		}
		out := os.NewFile(uintptr(fd), tmp)
		err = s.copyWithMeta(out, in, n.st.Size, meta, dirfd, tmp)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = renameInto(dirfd, tmp, base)
		}
		if err != nil {
			unix.Unlinkat(dirfd, tmp, 0)
			return fmt.Errorf("rewrite hard-linked %s: %w", p, err)
		}
		return nil
	})
}

// copyWithMeta fills the new temporary out (tmp in dirfd) with in's
// content and gives it meta, through its descriptor.
func (s *server) copyWithMeta(out, in *os.File, size int64, meta wire.Meta, dirfd int, tmp string) error {
	n, err := io.Copy(out, in)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%w: changed while copied", errMismatch)
	}
	fd := int(out.Fd())
	if uid, gid, change := s.ownerChange(meta, uint32(s.uid), uint32(s.gid)); change {
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return err
		}
	}
	if err := unix.Fchmod(fd, meta.Perm); err != nil {
		return err
	}
	tn, err := fileNode(fd, dirfd, tmp)
	if err != nil {
		return err
	}
	return tn.setTimes(meta.Mtime)
}

// delete removes an entry through its parent's descriptor, resolved
// without symlinks like every other change: a path is never resolved
// again after its kind was checked.
func (s *server) delete(m *wire.Delete) error {
	if m.Path == "" {
		return &wire.PathError{Path: m.Path, Why: "cannot delete the root"}
	}
	err := s.withParent(m.Path, func(dirfd int, base string) error {
		e, err := fstree.StatAt(dirfd, base)
		if err != nil {
			return err
		}
		if e.Kind != m.Kind {
			return fmt.Errorf("%w: is a %s, expected a %s; left alone", errMismatch, e.Kind, m.Kind)
		}
		s.forget(m.Path)
		if bk := s.backupOn(); bk != nil {
			// Moved into the backup, a directory whole; what is left
			// (saved before in this batch) is removed.
			if err := s.save(bk, dirfd, base, m.Path, false); err != nil {
				return err
			}
		}
		if e.Kind == fstree.Dir {
			err = removeAllAt(dirfd, base)
		} else {
			err = unix.Unlinkat(dirfd, base, 0)
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return &os.PathError{Op: "remove", Path: m.Path, Err: err}
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil // already gone: the goal is reached
	}
	return err
}

// removeAllAt removes the directory name in dirfd and everything in it,
// opening each directory with O_NOFOLLOW below the one before: a symlink
// met on the way is removed, never entered.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
	if err == nil || !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) {
		if errors.Is(err, unix.ENOTDIR) {
			return fmt.Errorf("%w: no longer a directory; left alone", errMismatch)
		}
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	dir := os.NewFile(uintptr(fd), name)
	defer dir.Close()
	// All names first: removing entries while reading a directory may
	// make some file systems skip others. Entries made meanwhile leave
	// it not empty, and the final rmdir says so.
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = removeAllAt(fd, n)
		} else {
			err = unix.Unlinkat(fd, n, 0)
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}

// rename moves an entry within the mirror: both parents are resolved
// without symlinks, the source must be of the kind the client saw, and a
// directory is never replaced.
func (s *server) rename(m *wire.Rename) error {
	if m.From == "" || m.To == "" || m.From == m.To || strings.HasPrefix(m.To, m.From+"/") {
		return &wire.PathError{Path: m.To, Why: "cannot move " + displayPath(m.From) + " there"}
	}
	if s.backupOn() != nil {
		// A rollback could not move it back: the client sends the
		// content instead while it keeps backups.
		return &wire.PathError{Path: m.To, Why: "no renames while backups are kept (--backup-dir)"}
	}
	fromDir, err := s.dir(parentOf(m.From))
	if err != nil {
		return err
	}
	e, err := fstree.StatAt(fromDir, baseOf(m.From))
	if err != nil {
		return err
	}
	if e.Kind != m.Kind {
		return fmt.Errorf("%w: %s is a %s, expected a %s", errMismatch, m.From, e.Kind, m.Kind)
	}
	toDir, err := s.dir(parentOf(m.To))
	if err != nil {
		return err
	}
	if t, err := fstree.StatAt(toDir, baseOf(m.To)); err == nil && t.Kind == fstree.Dir {
		return fmt.Errorf("%w: a directory is in the way", errMismatch)
	}
	s.forget(m.From)
	s.forget(m.To)
	return unix.Renameat(fromDir, baseOf(m.From), toDir, baseOf(m.To))
}

// userGroups lists the groups this process may give its files: its
// effective group and supplementary groups.
func userGroups() []uint32 {
	gids, _ := os.Getgroups()
	out := []uint32{uint32(os.Getegid())}
	for _, g := range gids {
		if uint32(g) != out[0] && len(out) < wire.MaxGroups {
			out = append(out, uint32(g))
		}
	}
	return out
}
