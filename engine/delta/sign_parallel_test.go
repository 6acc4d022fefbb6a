package delta

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func requireSame(t *testing.T, what string, got, want *Signature) {
	t.Helper()
	switch {
	case got.BlockSize != want.BlockSize, got.StrongLen != want.StrongLen, got.Size != want.Size:
		t.Fatalf("%s: shape %d/%d/%d, want %d/%d/%d", what, got.BlockSize, got.StrongLen, got.Size, want.BlockSize, want.StrongLen, want.Size)
	case len(got.Weak) != len(want.Weak):
		t.Fatalf("%s: %d weak sums, want %d", what, len(got.Weak), len(want.Weak))
	case !slices.Equal(got.Weak, want.Weak):
		t.Fatalf("%s: weak sums differ", what)
	case !bytes.Equal(got.Strong, want.Strong):
		t.Fatalf("%s: strong sums differ", what)
	}
}

// The parallel paths make the signature the single loop makes, field by
// field, for SignWith (from any reader offset) and SignSparseWith.
func TestSignParallelMatchesOneLoop(t *testing.T) {
	ctx := context.Background()
	big := 40 << 20
	if testing.Short() || raceEnabled {
		big = 10 << 20
	}
	data := genMixed(31, big+1000)
	for _, c := range []struct{ size, bs int }{
		{0, 700},
		{700, 700},              // one block
		{5*700 + 123, 700},      // blocks and a short one
		{3*1497*700 + 699, 700}, // chunks and a short block
		{big, 64},               // many chunks of maxJobBlocks tiny blocks
		{big + 17, BlockSize(int64(big))},
		{1<<20 + 5, MaxBlockSize}, // chunks of 8 blocks
		{100_000, 1},
	} {
		size := int64(c.size)
		sl := StrongLenFor(size, c.bs)
		want, err := signWith(ctx, bytes.NewReader(data[:size]), size, c.bs, sl, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, workers := range []int{2, 4} {
			got, err := signWith(ctx, bytes.NewReader(data[:size]), size, c.bs, sl, workers)
			if err != nil {
				t.Fatalf("size %d bs %d: %v", size, c.bs, err)
			}
			requireSame(t, "SignWith", got, want)

			// From an offset of a longer reader, which is left where
			// the single loop leaves it.
			r := bytes.NewReader(data[:size+1000])
			r.Seek(1000, io.SeekStart)
			off, err := signWith(ctx, r, size, c.bs, sl, workers)
			if err != nil {
				t.Fatalf("size %d bs %d at 1000: %v", size, c.bs, err)
			}
			wantOff, _ := signWith(ctx, bytes.NewReader(data[1000:size+1000]), size, c.bs, sl, 1)
			requireSame(t, "SignWith at an offset", off, wantOff)
			if pos, _ := r.Seek(0, io.SeekCurrent); pos != size+1000 {
				t.Fatalf("reader left at %d, want %d", pos, size+1000)
			}

			all := func(off int64) (int64, int64) { return off, size }
			got, err = signSparseWith(ctx, bytes.NewReader(data[:size]), size, c.bs, sl, all, workers)
			if err != nil {
				t.Fatalf("sparse size %d bs %d: %v", size, c.bs, err)
			}
			requireSame(t, "SignSparseWith", got, want)
		}
	}
}

// Holes, data runs and chunks in every arrangement: the parallel sparse
// walk queues the same blocks as the single loop.
func TestSignSparseParallelHoles(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(32, 33))
	for trial := range 40 {
		size := []int64{1, 700, 5000, 1 << 20, 3<<20 + 333, 9<<20 + 1}[trial%6]
		bs := []int{700, 4096, 64, MaxBlockSize}[r.IntN(4)]
		b := make([]byte, size)
		type run struct{ start, end int64 }
		var runs []run
		for off := int64(0); off < size; {
			gap := r.Int64N(size/4 + 2)
			n := r.Int64N(size/8 + 2)
			start, end := min(size, off+gap), min(size, off+gap+n)
			if end > start {
				copy(b[start:end], genRandom(r, int(end-start)))
				runs = append(runs, run{start, end})
			}
			off = end
		}
		nextData := func(off int64) (int64, int64) {
			for _, x := range runs {
				if x.end > off {
					return max(x.start, off), x.end
				}
			}
			return size, size
		}
		sl := StrongLenFor(size, bs)
		want, err := signWith(ctx, bytes.NewReader(b), size, bs, sl, 1)
		if err != nil {
			t.Fatal(err)
		}
		one, err := signSparseWith(ctx, bytes.NewReader(b), size, bs, sl, nextData, 1)
		if err != nil {
			t.Fatal(err)
		}
		requireSame(t, "one-loop SignSparseWith", one, want)
		got, err := signSparseWith(ctx, bytes.NewReader(b), size, bs, sl, nextData, 3)
		if err != nil {
			t.Fatal(err)
		}
		requireSame(t, "parallel SignSparseWith", got, want)
	}
}

// failAt is a basis whose reads fail at and after byte at, whichever
// way it is read.
type failAt struct {
	*bytes.Reader
	at  int64
	err error
}

func (f failAt) Read(p []byte) (int, error) {
	pos, _ := f.Seek(0, io.SeekCurrent)
	if pos >= f.at {
		return 0, f.err
	}
	return f.Reader.Read(p[:min(int64(len(p)), f.at-pos)])
}

func (f failAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.at {
		n, _ := f.Reader.ReadAt(p[:max(0, f.at-off)], off)
		return n, f.err
	}
	return f.Reader.ReadAt(p, off)
}

// A basis shorter or longer than declared, or failing to read, gives
// the same error both ways.
func TestSignParallelErrors(t *testing.T) {
	ctx := context.Background()
	const size = 12 << 20
	data := genMixed(34, size+1)
	boom := errors.New("boom")
	all := func(off int64) (int64, int64) { return off, size }
	for _, c := range []struct {
		name string
		r    func() readAtSeeker
		want error
	}{
		{"short", func() readAtSeeker { return bytes.NewReader(data[:size-1]) }, ErrBasisSize},
		{"short by a chunk", func() readAtSeeker { return bytes.NewReader(data[:size-3<<20]) }, ErrBasisSize},
		{"empty", func() readAtSeeker { return bytes.NewReader(nil) }, ErrBasisSize},
		{"long", func() readAtSeeker { return bytes.NewReader(data[:size+1]) }, ErrBasisSize},
		{"read error", func() readAtSeeker { return failAt{bytes.NewReader(data[:size]), 5<<20 + 3, boom} }, boom},
		{"read error after the end", func() readAtSeeker { return failAt{bytes.NewReader(data[:size]), size, boom} }, boom},
	} {
		bs := BlockSize(size)
		sl := StrongLen(size)
		_, want := signWith(ctx, c.r(), size, bs, sl, 1)
		_, got := signWith(ctx, c.r(), size, bs, sl, 4)
		_, sparseOne := signSparseWith(ctx, c.r(), size, bs, sl, all, 1)
		_, sparse := signSparseWith(ctx, c.r(), size, bs, sl, all, 4)
		if !errors.Is(want, c.want) {
			t.Fatalf("%s: one loop: %v, want %v", c.name, want, c.want)
		}
		if got == nil || got.Error() != want.Error() || !errors.Is(got, c.want) {
			t.Errorf("%s: parallel SignWith: %v, want %v", c.name, got, want)
		}
		if sparse == nil || sparseOne == nil || sparse.Error() != sparseOne.Error() || !errors.Is(sparse, c.want) {
			t.Errorf("%s: parallel SignSparseWith: %v, want %v", c.name, sparse, sparseOne)
		}
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := signWith(canceled, bytes.NewReader(data[:size]), size, 700, 8, 4); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
	if _, err := signSparseWith(canceled, bytes.NewReader(data[:size]), size, 700, 8, all, 4); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled sparse: %v", err)
	}
	// Cancelled part-way, by a read.
	mid, cancel := context.WithCancel(ctx)
	defer cancel()
	r := cancelAt{bytes.NewReader(data[:size]), 6 << 20, cancel}
	if _, err := signWith(mid, r, size, 700, 8, 4); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled part-way: %v", err)
	}
}

type cancelAt struct {
	*bytes.Reader
	at     int64
	cancel context.CancelFunc
}

func (c cancelAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= c.at {
		c.cancel()
	}
	return c.Reader.ReadAt(p, off)
}

// The public entry points go parallel on a big *os.File, and the file's
// offset ends where reading it through would leave it.
func TestSignFileParallel(t *testing.T) {
	size := int64(parallelMin + 12345)
	data := genMixed(35, int(size)+100)
	path := filepath.Join(t.TempDir(), "basis")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(100, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got, err := Sign(context.Background(), f, size)
	if err != nil {
		t.Fatal(err)
	}
	want, err := signWith(context.Background(), bytes.NewReader(data[100:]), size, BlockSize(size), StrongLen(size), 1)
	if err != nil {
		t.Fatal(err)
	}
	requireSame(t, "Sign of a file", got, want)
	if pos, _ := f.Seek(0, io.SeekCurrent); pos != size+100 {
		t.Fatalf("file offset %d, want %d", pos, size+100)
	}
	// A plain io.Reader takes the single loop.
	got, err = Sign(context.Background(), struct{ io.Reader }{bytes.NewReader(data[100:])}, size)
	if err != nil {
		t.Fatal(err)
	}
	requireSame(t, "Sign of an io.Reader", got, want)
	fi, _ := f.Stat()
	sparse, err := SignSparse(context.Background(), f, fi.Size(), func(off int64) (int64, int64) { return off, fi.Size() })
	if err != nil {
		t.Fatal(err)
	}
	whole, err := signWith(context.Background(), bytes.NewReader(data), fi.Size(), BlockSize(fi.Size()), StrongLen(fi.Size()), 1)
	if err != nil {
		t.Fatal(err)
	}
	requireSame(t, "SignSparse of a file", sparse, whole)
}
