package delta

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// A basis of parallelMin bytes or more is summed on up to maxSignWorkers
// goroutines (no more than GOMAXPROCS), each reading its own chunks of
// whole blocks with ReadAt. The caller's goroutine hands the chunks out
// in basis order and appends their sums in that order, so the signature
// is the one a single loop makes, byte for byte, and so is the error: the
// first one in basis order, worded as the single loop words it.
const (
	parallelMin    = 8 << 20
	maxSignWorkers = 4
	// jobsPerWorker chunks per worker may be out at once (being read,
	// summed, or waiting their turn to be appended): memory is a chunk
	// buffer per worker plus the sums of 2 chunks per worker, under
	// 7 MiB with 4 workers even for the tiniest blocks.
	jobsPerWorker = 2
	// maxJobBlocks bounds a chunk's blocks, hence its sums, when blocks
	// are tiny.
	maxJobBlocks = 1 << 14
)

// signWorkers is how many goroutines sum a basis of size bytes.
func signWorkers(size int64) int {
	if size < parallelMin {
		return 1
	}
	return max(1, min(maxSignWorkers, runtime.GOMAXPROCS(0)))
}

type readAtSeeker interface {
	io.Reader
	io.ReaderAt
	io.Seeker
}

func newSignature(size int64, bs, sl int) *Signature {
	// size is the caller's claim, not yet backed by bytes: grow past a
	// modest preallocation only as blocks actually arrive.
	prealloc := min(blockCount(size, bs), 1<<16)
	return &Signature{
		BlockSize: bs,
		StrongLen: sl,
		Size:      size,
		Weak:      make([]uint32, 0, prealloc),
		Strong:    make([]byte, 0, prealloc*int64(sl)),
	}
}

// signAt is SignWith of the size bytes of r from offset base, read with
// ReadAt on workers goroutines. It leaves r at base+size, as reading it
// through would, and reports too long a basis the same way.
func signAt(ctx context.Context, r readAtSeeker, base, size int64, bs, sl, workers int) (*Signature, error) {
	s := newSignature(size, bs, sl)
	p := startPipeline(ctx, r, s, workers)
	defer p.stop()
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return nil, p.fail(fmt.Errorf("delta: sign: %w", err))
		}
		n := min(int64(p.chunk), size-off)
		if err := p.read(base+off, int(n)); err != nil {
			return nil, err
		}
		off += n
	}
	if err := p.flush(); err != nil {
		return nil, err
	}
	if _, err := r.Seek(base+size, io.SeekStart); err != nil {
		return nil, fmt.Errorf("delta: sign: read basis: %w", err)
	}
	if err := atEnd(r, size); err != nil {
		return nil, err
	}
	return s, nil
}

// signSparseAt is SignSparseWith on workers goroutines: the same walk
// over data and holes, with the data chunks summed by the workers and
// each run of hole blocks queued, in order, as a count of zero blocks.
func signSparseAt(ctx context.Context, r io.ReaderAt, size int64, bs, sl int, nextData func(off int64) (start, end int64), workers int) (*Signature, error) {
	s := newSignature(size, bs, sl)
	p := startPipeline(ctx, r, s, workers)
	defer p.stop()
	chunk := int64(p.chunk)
	var start, end int64 // the data run last found
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return nil, p.fail(fmt.Errorf("delta: sign: %w", err))
		}
		if off >= end {
			start, end = nextData(off)
			start, end = max(start, off), min(end, size)
			if end <= start {
				start, end = size, size
			}
		}
		if blen := min(int64(bs), size-off); off+blen <= start {
			// Every block up to start is zeros: the whole ones, then
			// the short last block if the hole runs to the end. off
			// stays below start, hence end, so the one loop would not
			// have asked nextData again in between.
			k := (start - off) / int64(bs)
			off += k * int64(bs)
			tail := 0
			if blen := min(int64(bs), size-off); off < size && off+blen <= start {
				tail = int(blen)
				off += blen
			}
			if err := p.zero(k, tail); err != nil {
				return nil, err
			}
			continue
		}
		// The blocks that hold data, up to a chunk.
		n := min(chunk, size-off, (end-off+int64(bs)-1)/int64(bs)*int64(bs))
		if err := p.read(off, int(n)); err != nil {
			return nil, err
		}
		off += n
	}
	if err := p.flush(); err != nil {
		return nil, err
	}
	var one [1]byte
	switch n, err := r.ReadAt(one[:], size); {
	case n > 0:
		return nil, fmt.Errorf("delta: sign: %w: longer than %d bytes", ErrBasisSize, size)
	case err != nil && !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("delta: sign: read basis: %w", err)
	}
	return s, nil
}

// sumJob is a chunk of whole blocks (the last one may be short) summed
// by a worker, or a run of zero blocks queued in its place in the order.
type sumJob struct {
	off    int64 // where the chunk starts in the reader
	n      int   // its length; 0 for zero blocks
	zeros  int64 // zero blocks of bs bytes, appended before weak and strong
	weak   []uint32
	strong []byte
	err    error
	done   chan struct{} // one token per hand-out, when weak, strong and err are set
}

// pipeline hands chunks to workers and appends their sums to s in the
// order they were handed out.
type pipeline struct {
	ctx    context.Context // the caller's, cancelled too when the signing ends
	cancel context.CancelFunc
	r      io.ReaderAt
	s      *Signature // appended to by the caller's goroutine only
	size   int64      // s.Size, bs and sl, for the workers
	bs, sl int
	chunk  int // bytes of a full chunk
	jobs   chan *sumJob
	queue  []*sumJob // handed out, oldest first
	free   []*sumJob
	wg     sync.WaitGroup

	zeroBlock  []byte
	zeroWeak   uint32
	zeroStrong [16]byte
}

func startPipeline(ctx context.Context, r io.ReaderAt, s *Signature, workers int) *pipeline {
	ctx, cancel := context.WithCancel(ctx)
	depth := jobsPerWorker * workers
	blocks := max(1, min(signChunk/s.BlockSize, maxJobBlocks))
	p := &pipeline{
		ctx:    ctx,
		cancel: cancel,
		r:      r,
		s:      s,
		size:   s.Size,
		bs:     s.BlockSize,
		sl:     s.StrongLen,
		chunk:  blocks * s.BlockSize,
		jobs:   make(chan *sumJob, depth),
		queue:  make([]*sumJob, 0, depth),
		free:   make([]*sumJob, 0, depth),
	}
	for range depth {
		p.free = append(p.free, &sumJob{done: make(chan struct{}, 1)})
	}
	bufLen := int(min(int64(p.chunk), s.Size))
	p.wg.Add(workers)
	for range workers {
		go p.work(bufLen)
	}
	return p
}

// stop ends the workers; chunks still queued are skipped, not read.
func (p *pipeline) stop() {
	p.cancel()
	close(p.jobs)
	p.wg.Wait()
}

func (p *pipeline) work(bufLen int) {
	defer p.wg.Done()
	var buf []byte
	for j := range p.jobs {
		if buf == nil {
			buf = make([]byte, bufLen)
		}
		j.err = p.sum(j, buf[:j.n])
		j.done <- struct{}{}
	}
}

// sum reads and sums one chunk, reporting what the one loop reports.
func (p *pipeline) sum(j *sumJob, b []byte) error {
	if err := p.ctx.Err(); err != nil {
		return fmt.Errorf("delta: sign: %w", err)
	}
	if k, err := p.r.ReadAt(b, j.off); k < len(b) {
		if err == nil || errors.Is(err, io.EOF) {
			return fmt.Errorf("delta: sign: %w: shorter than %d bytes", ErrBasisSize, p.size)
		}
		return fmt.Errorf("delta: sign: read basis: %w", err)
	}
	j.weak, j.strong = j.weak[:0], j.strong[:0]
	for len(b) > 0 {
		blk := b[:min(len(b), p.bs)]
		b = b[len(blk):]
		j.weak = append(j.weak, weakOf(weakSum(blk)))
		sum := strongSum(blk)
		j.strong = append(j.strong, sum[:p.sl]...)
	}
	return nil
}

// read queues the chunk of n bytes at off for a worker.
func (p *pipeline) read(off int64, n int) error {
	j, err := p.next()
	if err != nil {
		return err
	}
	j.off, j.n, j.zeros, j.err = off, n, 0, nil
	p.queue = append(p.queue, j)
	p.jobs <- j // never blocks: the channel holds every job
	return nil
}

// zero queues k zero blocks and then, if tail > 0, a short zero block of
// tail bytes.
func (p *pipeline) zero(k int64, tail int) error {
	j, err := p.next()
	if err != nil {
		return err
	}
	if p.zeroBlock == nil {
		p.zeroBlock = make([]byte, p.bs)
		p.zeroWeak, p.zeroStrong = weakOf(weakSum(p.zeroBlock)), strongSum(p.zeroBlock)
	}
	j.off, j.n, j.zeros, j.err = 0, 0, k, nil
	j.weak, j.strong = j.weak[:0], j.strong[:0]
	if tail > 0 {
		j.weak = append(j.weak, weakOf(weakSum(p.zeroBlock[:tail])))
		sum := strongSum(p.zeroBlock[:tail])
		j.strong = append(j.strong, sum[:p.sl]...)
	}
	p.queue = append(p.queue, j)
	j.done <- struct{}{}
	return nil
}

// next returns a free job, first appending the oldest one's sums if
// every job is out.
func (p *pipeline) next() (*sumJob, error) {
	if len(p.free) == 0 {
		if err := p.retire(); err != nil {
			return nil, err
		}
	}
	j := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	return j, nil
}

// retire waits for the oldest job out and appends its sums to s, or
// returns its error.
func (p *pipeline) retire() error {
	j := p.queue[0]
	p.queue = append(p.queue[:0], p.queue[1:]...)
	<-j.done
	p.free = append(p.free, j)
	if j.err != nil {
		return j.err
	}
	s := p.s
	for range j.zeros {
		s.Weak = append(s.Weak, p.zeroWeak)
		s.Strong = append(s.Strong, p.zeroStrong[:p.sl]...)
	}
	s.Weak = append(s.Weak, j.weak...)
	s.Strong = append(s.Strong, j.strong...)
	return nil
}

// flush appends the sums of every job out, in order.
func (p *pipeline) flush() error {
	for len(p.queue) > 0 {
		if err := p.retire(); err != nil {
			return err
		}
	}
	return nil
}

// fail returns the first error of the jobs out, in basis order, or err
// if they all succeed: what the one loop would have reported first.
func (p *pipeline) fail(err error) error {
	if ferr := p.flush(); ferr != nil {
		return ferr
	}
	return err
}
