//go:build !windows

package agent

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/gosync/gosync/engine/wire"
)

// A file received without --sparse is written directly: literal bytes
// gather in a buffer that goes out with pwrite at its offset, copied
// basis ranges are cloned or copied in the kernel (copyRange) where the
// file system can, else read and written through a buffer, and once the
// file is past inlineHashMax or has copied a range, its hash is taken on
// another goroutine, trailing the writes, so hashing and writing use two
// cores. Bytes that went through a buffer are hashed from it once pwrite
// has put them on the temporary (the buffer then goes back to the
// writer); ranges the kernel copied or cloned never pass through the
// agent and are read back from the temporary. Either way the hash covers
// the bytes the file holds, never the basis ranges the agent meant to
// copy. Reading back what was just written would only read the page
// cache again: on tmpfs that was a sixth of the agent's system time for
// a 1 GiB delta.
const (
	directBuf = 256 << 10
	// copyChunk is the most one copy hands the hasher at a time, so the
	// hash of a long copied range starts before the copy ends.
	copyChunk = 8 << 20
	// inlineHashMax is where a file of literals starts hashing on its
	// own goroutine: a small file is hashed as it arrives, from memory,
	// with no goroutine and no read-back.
	inlineHashMax = 1 << 20
	readBackBuf   = 1 << 20
	// spanQueue bounds what the hasher may lag behind: this many spans
	// of at most copyChunk bytes.
	spanQueue = 16
	// hashBufs buffers circulate between the writer and the hasher
	// besides the writer's own two (literals and copies): while the
	// hasher hashes some, the writer fills others.
	hashBufs = 4
	hashBuf  = max(directBuf, copyBuf)
)

// directWriter is the Patcher's destination for a direct file.
type directWriter struct{ o *openFile }

func (w directWriter) Write(p []byte) (int, error)           { return w.o.writeDirect(p) }
func (w directWriter) CopyRange(off, n int64) (int64, error) { return w.o.copyDirect(off, n) }

func (o *openFile) writeDirect(p []byte) (int, error) {
	if o.bg == nil && o.n+int64(len(p)) > inlineHashMax {
		if err := o.startBackHash(); err != nil {
			return 0, err
		}
	}
	if o.bg == nil {
		o.hash.Write(p)
	}
	o.hole = 0
	n := 0
	for len(p) > 0 {
		if len(o.pend) == cap(o.pend) {
			if err := o.flushDirect(); err != nil {
				return n, err
			}
		}
		k := copy(o.pend[len(o.pend):cap(o.pend)], p)
		o.pend = o.pend[:len(o.pend)+k]
		p = p[k:]
		o.n += int64(k)
		n += k
	}
	return n, nil
}

// flushDirect writes the gathered literal bytes, which end at o.n.
func (o *openFile) flushDirect() error {
	if len(o.pend) == 0 {
		return nil
	}
	off := o.n - int64(len(o.pend))
	if err := pwriteAll(o.fd, o.pend, off); err != nil {
		return err
	}
	if o.bg != nil {
		o.bg.spans <- span{off: off, n: int64(len(o.pend)), data: o.pend}
		o.pend = (<-o.bg.free)[:0]
		return nil
	}
	o.pend = o.pend[:0]
	return nil
}

func pwriteAll(fd int, p []byte, off int64) error {
	for len(p) > 0 {
		m, err := unix.Pwrite(fd, p, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "write", Path: "temporary", Err: err}
		}
		if m == 0 {
			return &os.PathError{Op: "write", Path: "temporary", Err: io.ErrShortWrite}
		}
		p, off = p[m:], off+int64(m)
	}
	return nil
}

// copyDirect appends n basis bytes from off.
func (o *openFile) copyDirect(off, n int64) (int64, error) {
	if o.bg == nil {
		if err := o.startBackHash(); err != nil {
			return 0, err
		}
	} else if err := o.flushDirect(); err != nil {
		return 0, err
	}
	o.hole = 0
	done := int64(0)
	for done < n {
		k := min(copyChunk, n-done)
		m, err := o.copier.copyRange(int(o.basis.Fd()), o.fd, off+done, o.n, k) // emits to o.bg
		if m > 0 {
			o.n += m
			done += m
		}
		if err != nil {
			return done, err
		}
		if m < k {
			return done, nil // the basis ended: the Patcher reports it
		}
	}
	return done, nil
}

func (o *openFile) holeDirect(n int64) error {
	if err := o.flushDirect(); err != nil {
		return err
	}
	if o.bg != nil {
		o.bg.spans <- span{n: n, hole: true}
	} else {
		o.hash.Hole(n)
	}
	o.n += n
	o.hole += n
	return nil
}

// finishDirect writes what is gathered, sizes a file that ends in a
// hole and waits for the hash.
func (o *openFile) finishDirect() error {
	if err := o.flushDirect(); err != nil {
		return err
	}
	if o.hole > 0 {
		if err := unix.Ftruncate(o.fd, o.n); err != nil {
			return &os.PathError{Op: "truncate", Path: "temporary", Err: err}
		}
		o.hole = 0
	}
	return o.stopBackHash()
}

// startBackHash writes what is gathered (already hashed inline) and
// hashes everything after it on its own goroutine.
func (o *openFile) startBackHash() error {
	if err := o.flushDirect(); err != nil {
		return err
	}
	if o.readBuf == nil {
		return fmt.Errorf("agent: no read-back buffer")
	}
	b := &backHash{fd: o.fd, h: o.hash, readBuf: o.readBuf, spans: make(chan span, spanQueue),
		free: make(chan []byte, hashBufs+2), done: make(chan struct{})}
	for range hashBufs {
		b.free <- make([]byte, hashBuf)
	}
	o.bg = b
	o.copier.emit = o.emitCopied
	go b.run()
	return nil
}

// emitCopied hands the hasher what the copier put on the temporary.
func (o *openFile) emitCopied(off, n int64, data []byte) []byte {
	if data == nil {
		o.bg.spans <- span{off: off, n: n}
		return nil
	}
	o.bg.spans <- span{off: off, n: n, data: data}
	return (<-o.bg.free)[:copyBuf]
}

// stopBackHash waits for the hasher; after it, o.hash is the main
// goroutine's again.
func (o *openFile) stopBackHash() error {
	b := o.bg
	if b == nil {
		return nil
	}
	o.bg, o.copier.emit = nil, nil
	close(b.spans)
	<-b.done
	return b.err
}

// span is a range of the temporary to hash: its bytes (data, a buffer
// the hasher hands back) or a range to read back; or a hole of n zero
// bytes.
type span struct {
	off, n int64
	data   []byte
	hole   bool
}

// backHash hashes spans in the order they were written: bytes handed
// over (then handed back on free), ranges read back from the temporary
// and holes. Its owner closes spans and waits for done.
type backHash struct {
	fd      int
	h       *wire.FileHash
	readBuf *[]byte // the session's, made at the first read-back
	spans   chan span
	free    chan []byte // never full: it holds every buffer there is
	done    chan struct{}
	err     error
}

func (b *backHash) run() {
	defer close(b.done)
	for sp := range b.spans {
		if sp.data != nil {
			if b.err == nil {
				b.h.Write(sp.data)
			}
			b.free <- sp.data[:cap(sp.data)]
			continue
		}
		if b.err != nil {
			continue // drain: the owner learns the error at the end
		}
		if sp.hole {
			b.h.Hole(sp.n)
			continue
		}
		if len(*b.readBuf) == 0 {
			*b.readBuf = make([]byte, readBackBuf)
		}
		buf := *b.readBuf
		for sp.n > 0 {
			m, err := unix.Pread(b.fd, buf[:min(sp.n, int64(len(buf)))], sp.off)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				b.err = &os.PathError{Op: "read back", Path: "temporary", Err: err}
				break
			}
			if m == 0 {
				b.err = &os.PathError{Op: "read back", Path: "temporary", Err: io.ErrUnexpectedEOF}
				break
			}
			b.h.Write(buf[:m])
			sp.off += int64(m)
			sp.n -= int64(m)
		}
	}
}
