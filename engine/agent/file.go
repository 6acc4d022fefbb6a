package agent

import (
	"bufio"
	"bytes"
	"fmt"
	"os"

	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"

	"github.com/gosync/gosync/engine/delta"
	"github.com/gosync/gosync/engine/wire"
)

// openFile is the file being received: a temporary beside its target.
type openFile struct {
	begin  *wire.FileBegin
	dir    *os.File // parent directory of the target
	base   string
	tmp    string
	f      *os.File
	buf    *bufio.Writer
	hash   *blake3.Hasher
	basis  *os.File
	patch  *delta.Patcher
	n      int64
	failed error // first error; later data is drained, not written
}

// Write feeds the hash and the temporary.
func (o *openFile) Write(p []byte) (int, error) {
	o.hash.Write(p)
	o.n += int64(len(p))
	return o.buf.Write(p)
}

func (o *openFile) discard() {
	if o.f != nil {
		o.f.Close()
		unix.Unlinkat(int(o.dir.Fd()), o.tmp, 0)
	}
	if o.basis != nil {
		o.basis.Close()
	}
	if o.dir != nil {
		o.dir.Close()
	}
}

func (s *server) fileBegin(m *wire.FileBegin) error {
	o := &openFile{begin: m, hash: blake3.New()}
	s.file = o
	o.failed = s.startFile(o)
	return nil
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
		o.patch = delta.NewPatcher(basis, fi.Size(), m.BlockSize, o)
	}
	if err := s.checkParents(m.Path); err != nil {
		return err
	}
	dir, err := s.root.Open(nonEmpty(parentOf(m.Path)))
	if err != nil {
		return err
	}
	o.dir, o.base, o.tmp = dir, baseOf(m.Path), tempName()
	fd, err := unix.Openat(int(dir.Fd()), o.tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create temporary", Path: m.Path, Err: err}
	}
	o.f = os.NewFile(uintptr(fd), o.tmp)
	if s.wbuf == nil {
		s.wbuf = bufio.NewWriterSize(nil, 256<<10)
	}
	s.wbuf.Reset(o.f)
	o.buf = s.wbuf
	return nil
}

func (s *server) fileData(m *wire.FileData) error {
	o := s.file
	if o == nil {
		return fmt.Errorf("%w: file data outside a transfer", wire.ErrFrame)
	}
	if o.failed != nil {
		return nil
	}
	if o.patch != nil {
		o.failed = o.patch.Apply(delta.Op{Kind: delta.OpLiteral, Data: m.Data})
	} else {
		_, o.failed = o.Write(m.Data)
	}
	if o.failed == nil && o.n > o.begin.Size {
		o.failed = fmt.Errorf("%w: more than the announced %d bytes", errVerify, o.begin.Size)
	}
	return nil
}

func (s *server) fileCopy(m *wire.FileCopy) error {
	o := s.file
	if o == nil {
		return fmt.Errorf("%w: block copy outside a transfer", wire.ErrFrame)
	}
	if o.failed != nil {
		return nil
	}
	if o.patch == nil {
		o.failed = fmt.Errorf("%w: block copy without a basis", wire.ErrBadPath)
		return nil
	}
	o.failed = o.patch.Apply(delta.Op{Kind: delta.OpCopy, Block: m.Block, Count: m.Count})
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
	if err != nil {
		o.discard()
		return s.opError(o.begin.ID, o.begin.Path, err)
	}
	o.f = nil // renamed into place: nothing to discard
	o.discard()
	return nil
}

// commit verifies the temporary, gives it its metadata and renames it
// over the target.
func (s *server) commit(o *openFile, m *wire.FileEnd) error {
	if err := o.buf.Flush(); err != nil {
		return err
	}
	var sum [32]byte
	o.hash.Sum(sum[:0])
	if o.n != o.begin.Size {
		return fmt.Errorf("%w: got %d bytes, expected %d", errVerify, o.n, o.begin.Size)
	}
	if !bytes.Equal(sum[:], m.Hash[:]) {
		return errVerify
	}
	meta := o.begin.Meta
	if meta.Owner && s.isRoot {
		if err := o.f.Chown(int(meta.Uid), int(meta.Gid)); err != nil {
			return err
		}
	}
	// After chown, which clears setuid/setgid bits.
	if err := o.f.Chmod(os.FileMode(meta.Perm&0o777) | modeBits(meta.Perm)); err != nil {
		return err
	}
	if err := o.f.Close(); err != nil {
		return err
	}
	dirfd := int(o.dir.Fd())
	if err := setTimes(dirfd, o.tmp, meta.MtimeNs); err != nil {
		return err
	}
	if o.basis != nil {
		o.basis.Close()
		o.basis = nil
	}
	return renameInto(dirfd, o.tmp, o.base)
}

func modeBits(perm uint32) os.FileMode {
	var m os.FileMode
	if perm&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if perm&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if perm&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m
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
