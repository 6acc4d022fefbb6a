//go:build !windows

package agent

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/gosync/gosync/engine/delta"
	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/wire"
)

// openFile is the file being received: a temporary beside its target.
type openFile struct {
	begin *wire.FileBegin
	dirfd int // parent directory of the target (cached by the server; not ours to close)
	base  string
	tmp   string
	fd    int // the temporary, -1 when none
	buf   *bufio.Writer
	hash  *wire.FileHash
	basis *os.File
	patch *delta.Patcher
	n     int64
	// sparse: runs of zeros are left as holes (wire.FlagSparse); hole
	// is the run not yet skipped over (FileHole runs, always).
	sparse bool
	hole   int64
	failed error // first error; later data is drained, not written
	// direct: not sparse, written as direct.go describes; pend,
	// copier, bg and readBuf serve it.
	direct  bool
	pend    []byte
	copier  copier
	bg      *backHash
	readBuf *[]byte
	// restore puts back the mode of a directory widened for the
	// temporary (see widen), after the rename or removal.
	restore func()
}

// Write feeds the hash and the temporary.
func (o *openFile) Write(p []byte) (int, error) {
	if o.direct {
		return o.writeDirect(p)
	}
	o.hash.Write(p)
	off := o.n
	o.n += int64(len(p))
	if !o.sparse {
		if err := o.skipHole(); err != nil {
			return 0, err
		}
		return o.buf.Write(p)
	}
	err := fstree.SplitZeros(p, off, func(run []byte, zero bool) error {
		if zero {
			o.hole += int64(len(run))
			return nil
		}
		if err := o.skipHole(); err != nil {
			return err
		}
		_, err := o.buf.Write(run)
		return err
	})
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// addHole adds n zero bytes that are not written.
func (o *openFile) addHole(n int64) error {
	if o.direct {
		return o.holeDirect(n)
	}
	o.hash.Hole(n)
	o.n += n
	o.hole += n
	return nil
}

// skipHole moves the temporary's offset over the pending hole, so the
// next write leaves it unallocated.
func (o *openFile) skipHole() error {
	if o.hole == 0 {
		return nil
	}
	if err := o.buf.Flush(); err != nil {
		return err
	}
	if _, err := unix.Seek(o.fd, o.hole, io.SeekCurrent); err != nil {
		return &os.PathError{Op: "seek", Path: "temporary", Err: err}
	}
	o.hole = 0
	return nil
}

// finish writes what is buffered and gives the temporary its size when
// it ends in a hole.
func (o *openFile) finish() error {
	if o.direct {
		return o.finishDirect()
	}
	if err := o.buf.Flush(); err != nil {
		return err
	}
	if o.hole == 0 {
		return nil
	}
	if err := unix.Ftruncate(o.fd, o.n); err != nil {
		return &os.PathError{Op: "truncate", Path: "temporary", Err: err}
	}
	o.hole = 0
	return nil
}

// fdWriter writes to a raw descriptor: an *os.File would cost a poller
// registration attempt and a finalizer per received file.
type fdWriter int

func (w fdWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Write(int(w), p[n:])
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return n, &os.PathError{Op: "write", Path: "temporary", Err: err}
		}
		n += m
	}
	return n, nil
}

func (o *openFile) discard() {
	o.stopBackHash()
	if o.fd >= 0 {
		unix.Close(o.fd)
		unix.Unlinkat(o.dirfd, o.tmp, 0)
		o.fd = -1
	}
	o.restoreDir()
	if o.basis != nil {
		o.basis.Close()
		o.basis = nil
	}
}

func (s *server) fileBegin(m *wire.FileBegin) error {
	o := &openFile{begin: m, fd: -1, hash: s.hasher(), sparse: s.sparse, direct: !s.sparse}
	s.file = o
	if o.failed = s.refused(); o.failed == nil {
		o.failed = s.startFile(o)
	}
	return nil
}

// hasher returns the session's reusable hasher, reset.
func (s *server) hasher() *wire.FileHash {
	if s.hash == nil {
		s.hash = wire.NewFileHash()
	}
	s.hash.Reset()
	return s.hash
}

func (s *server) startFile(o *openFile) error {
	m := o.begin
	if s.root == nil {
		return errNoRoot
	}
	if m.Path == "" {
		return &wire.PathError{Path: m.Path, Why: "cannot write the root"}
	}
	if m.BlockSize > 0 {
		basis, fi, err := s.openRegular(m.Path)
		if err != nil {
			return fmt.Errorf("open basis: %w", err)
		}
		o.basis = basis
		var w io.Writer = o
		if o.direct {
			w = directWriter{o}
		}
		o.patch = delta.NewPatcher(basis, fi.Size(), m.BlockSize, w)
	}
	dirfd, err := s.dir(parentOf(m.Path))
	if err != nil {
		return err
	}
	o.dirfd, o.base, o.tmp = dirfd, baseOf(m.Path), tempName()
	create := func() (int, error) {
		// Read and write: a direct file's hash is read back from it.
		return unix.Openat(dirfd, o.tmp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	}
	fd, err := create()
	if errors.Is(err, unix.EACCES) {
		if restore, ok := s.widen(dirfd); ok {
			o.restore = restore
			if fd, err = create(); err != nil {
				o.restoreDir()
			}
		}
	}
	if err != nil {
		return &os.PathError{Op: "create temporary", Path: m.Path, Err: err}
	}
	o.fd = fd
	if o.direct {
		if s.pend == nil {
			s.pend = make([]byte, 0, directBuf)
			s.readBuf = new([]byte) // made by the first file that reads back
		}
		o.pend, o.readBuf = s.pend[:0], s.readBuf
		return nil
	}
	if s.wbuf == nil {
		s.wbuf = bufio.NewWriterSize(nil, 256<<10)
	}
	s.wbuf.Reset(fdWriter(fd))
	o.buf = s.wbuf
	return nil
}

func (s *server) fileData(m *wire.FileData) error {
	return s.fileOp(func(o *openFile) error { return o.apply(delta.Op{Kind: delta.OpLiteral, Data: m.Data}) })
}

func (s *server) fileCopy(m *wire.FileCopy) error {
	return s.fileOp(func(o *openFile) error { return o.apply(delta.Op{Kind: delta.OpCopy, Block: m.Block, Count: m.Count}) })
}

func (s *server) fileCopyAt(m *wire.FileCopyAt) error {
	return s.fileOp(func(o *openFile) error {
		if o.patch == nil {
			return fmt.Errorf("%w: byte-range copy without a basis", wire.ErrBadPath)
		}
		return o.patch.CopyAt(m.Off, m.Len)
	})
}

// apply adds literal data or basis blocks.
func (o *openFile) apply(op delta.Op) error {
	switch {
	case o.patch != nil:
		return o.patch.Apply(op)
	case op.Kind == delta.OpLiteral:
		_, err := o.Write(op.Data)
		return err
	}
	return fmt.Errorf("%w: block copy without a basis", wire.ErrBadPath)
}

func (s *server) fileHole(m *wire.FileHole) error {
	o := s.file
	if o == nil {
		return fmt.Errorf("%w: file data outside a transfer", wire.ErrFrame)
	}
	if o.failed != nil {
		return nil
	}
	if m.Len > o.begin.Size-o.n {
		o.failed = fmt.Errorf("%w: more than the announced %d bytes", errVerify, o.begin.Size)
		return nil
	}
	o.failed = o.addHole(m.Len)
	return nil
}

// fileOp does what a data message says to the open file. Its errors
// belong to the file and are reported at its end; only a message outside
// a transfer breaks the protocol.
func (s *server) fileOp(do func(*openFile) error) error {
	o := s.file
	if o == nil {
		return fmt.Errorf("%w: file data outside a transfer", wire.ErrFrame)
	}
	if o.failed != nil {
		return nil
	}
	o.failed = do(o)
	if o.failed == nil && o.n > o.begin.Size {
		o.failed = fmt.Errorf("%w: more than the announced %d bytes", errVerify, o.begin.Size)
	}
	return nil
}

func (s *server) fileAbort() error {
	o := s.file
	if o == nil {
		return fmt.Errorf("%w: abort outside a transfer", wire.ErrFrame)
	}
	s.file = nil
	o.discard()
	return nil
}

func (s *server) fileEnd(m *wire.FileEnd) error {
	o := s.file
	if o == nil {
		return fmt.Errorf("%w: file end outside a transfer", wire.ErrFrame)
	}
	s.file = nil
	err := o.failed
	if err == nil {
		err = s.commit(o, m)
	}
	o.discard() // after a commit only the basis is left to close
	if err != nil {
		return s.opError(o.begin.ID, o.begin.Path, err)
	}
	return nil
}

// commit verifies the temporary, gives it its metadata and renames it
// over the target.
func (s *server) commit(o *openFile, m *wire.FileEnd) error {
	if err := o.finish(); err != nil {
		return err
	}
	if o.n != o.begin.Size {
		return fmt.Errorf("%w: got %d bytes, expected %d", errVerify, o.n, o.begin.Size)
	}
	if o.hash.Sum() != m.Hash {
		return errVerify
	}
	meta := o.begin.Meta
	// A new file belongs to the agent's user and to its group, or to
	// the directory's group in a setgid directory: chown only to change
	// that (it also clears setuid/setgid, so chmod comes after).
	var st unix.Stat_t
	if err := unix.Fstat(o.fd, &st); err != nil {
		return &os.PathError{Op: "stat", Path: o.begin.Path, Err: err}
	}
	if uid, gid, change := s.ownerChange(meta, st.Uid, st.Gid); change {
		if err := unix.Fchown(o.fd, uid, gid); err != nil {
			return &os.PathError{Op: "chown", Path: o.begin.Path, Err: err}
		}
	}
	if err := unix.Fchmod(o.fd, meta.Perm); err != nil {
		return &os.PathError{Op: "chmod", Path: o.begin.Path, Err: err}
	}
	// The mtime goes through the descriptor too, before close: by then
	// the temporary's name may hold something else. Every byte was
	// written with write(2) already, so close changes no time.
	// The node from the stat above: setTimes needs only the kind, which
	// chown and chmod leave alone (one fstat a file fewer).
	n := &node{fd: o.fd, dirfd: o.dirfd, name: o.tmp, st: st}
	if err := n.setTimes(meta.Mtime); err != nil {
		return &os.PathError{Op: "set mtime", Path: o.begin.Path, Err: err}
	}
	fd := o.fd
	o.fd = -1
	if err := unix.Close(fd); err != nil {
		unix.Unlinkat(o.dirfd, o.tmp, 0)
		return &os.PathError{Op: "close", Path: o.begin.Path, Err: err}
	}
	err := s.install(o.dirfd, o.tmp, o.begin.Path)
	if err != nil {
		unix.Unlinkat(o.dirfd, o.tmp, 0)
	}
	o.restoreDir()
	return err
}

func (o *openFile) restoreDir() {
	if o.restore != nil {
		o.restore()
		o.restore = nil
	}
}

func parentOf(p string) string {
	if i := lastSlash(p); i >= 0 {
		return p[:i]
	}
	return ""
}

func baseOf(p string) string { return p[lastSlash(p)+1:] }

func lastSlash(p string) int {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return i
		}
	}
	return -1
}
