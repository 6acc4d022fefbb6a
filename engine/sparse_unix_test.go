//go:build linux || darwin || freebsd

package engine_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/treetest"
	"github.com/gosync/gosync/engine/wire"
	"github.com/gosync/gosync/queue"
)

// extent is a run of random data written into a sparse file.
type extent struct{ off, n int64 }

// sparseFile makes a file of size bytes that holds data only in the
// extents (the rest is a hole, as truncate leaves it) and, in zeros,
// runs of zeros written as data.
func sparseFile(t *testing.T, path string, size int64, data, zeros []extent) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for _, e := range data {
		b := make([]byte, e.n)
		rand.Read(b)
		if _, err := f.WriteAt(b, e.off); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range zeros {
		if _, err := f.WriteAt(make([]byte, e.n), e.off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// allocated is what a file takes on disk.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Blocks * 512
}

func sameContent(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Errorf("%s: content differs from the source (%d and %d bytes)", b, len(y), len(x))
	}
}

// sparseSync syncs src to dst with --sparse through the real agent.
func sparseSync(t *testing.T, src, dst string, opt engine.Options) (engine.Result, int64) {
	t.Helper()
	treetest.NeedAgent(t)
	m, err := engine.DialLocal(context.Background(), dst, dst, engine.ClientOptions{Create: true, Sparse: opt.Sparse}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := scan(t, src)
	opt.MaxDelete = -1
	r := ok(t, engine.Sync(context.Background(), s, m, opt))
	return r, m.BytesSent()
}

// slack is what a file system may allocate beyond the data: an
// indirect block or a preallocated extent.
const slack = 64 << 10

// With --sparse the holes of the source are neither read nor sent nor
// written, and runs of zeros written as data become holes on the mirror
// (rsync's -S); the content and its hash are right.
func TestSparseHolesStayHoles(t *testing.T) {
	const size = 64 << 20
	cases := []struct {
		name   string
		size   int64
		data   []extent
		zeros  []extent
		onDisk int64 // what the mirror may take besides slack
	}{
		{"data at the start", size, []extent{{0, 4096}}, nil, 4096},
		{"data in the middle", size, []extent{{size / 2, 4096}}, nil, 4096},
		{"data at the end", size, []extent{{size - 4096, 4096}}, nil, 4096},
		{"all hole", size, nil, nil, 0},
		{"odd size and offsets", size + 100, []extent{{12345, 5000}, {size + 50, 50}}, nil, 3 * 4096},
		{"zeros written as data", 12 << 20, []extent{{0, 1 << 20}, {11 << 20, 1 << 20}}, []extent{{1 << 20, 10 << 20}}, 2 << 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src, dst := t.TempDir(), filepath.Join(t.TempDir(), "m")
			sparseFile(t, filepath.Join(src, "f"), c.size, c.data, c.zeros)
			r, sent := sparseSync(t, src, dst, engine.Options{Sparse: true, WholeFile: true})
			got := filepath.Join(dst, "f")
			sameContent(t, filepath.Join(src, "f"), got)
			if a := allocated(t, got); a > c.onDisk+slack {
				t.Errorf("the mirror's file takes %d bytes on disk, want at most %d", a, c.onDisk+slack)
			}
			var data int64
			for _, e := range c.data {
				data += e.n
			}
			// Whole blocks of zeros become holes: the data's blocks are sent.
			data += int64(len(c.data)) * 2 * fstree.ZeroBlock
			if r.Stats.Literal > data || sent > data+64<<10 {
				t.Errorf("sent %d literal bytes, %d on the stream, for %d bytes of data", r.Stats.Literal, sent, data)
			}
			treetest.Equal(t, src, dst, treetest.Options{})
		})
	}
}

// Without --sparse nothing changes: the zeros are sent and written.
func TestNoSparseWritesZeros(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "m")
	sparseFile(t, filepath.Join(src, "f"), 4<<20, []extent{{0, 4096}}, nil)
	r, _ := sparseSync(t, src, dst, engine.Options{WholeFile: true})
	sameContent(t, filepath.Join(src, "f"), filepath.Join(dst, "f"))
	if r.Stats.Literal != 4<<20 {
		t.Errorf("sent %d literal bytes, want the whole file", r.Stats.Literal)
	}
	if a := allocated(t, filepath.Join(dst, "f")); a < 4<<20 {
		t.Errorf("the mirror's file takes %d bytes on disk, want all of its 4 MiB", a)
	}
}

// A delta update of a sparse file: the data between the holes goes as a
// delta against the mirror's copy, the holes as holes, and blocks copied
// from the old copy's holes stay holes. The source's 4 MiB of zeros
// written as data are data to SEEK_DATA: the first sync sends them as
// holes, the delta as copies of the mirror's holes, which the agent
// does not write.
func TestSparseDelta(t *testing.T) {
	const size = 64 << 20
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "m")
	f := filepath.Join(src, "f")
	sparseFile(t, f, size, []extent{{1 << 20, 1 << 20}, {6 << 20, 1 << 20}, {size - 1<<20, 1 << 20}}, []extent{{2 << 20, 4 << 20}})
	sparseSync(t, src, dst, engine.Options{Sparse: true})

	// Change 4 KiB inside the first run of data and move the size on.
	fh, err := os.OpenFile(f, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteAt(bytes.Repeat([]byte{7}, 4096), 1<<20+8192)
	fh.Close()
	os.Chtimes(f, time.Unix(5, 0), time.Unix(5, 0))
	r, sent := sparseSync(t, src, dst, engine.Options{Sparse: true})
	got := filepath.Join(dst, "f")
	sameContent(t, f, got)
	if r.Stats.Matched < 6<<20 || r.Stats.Literal > 256<<10 {
		t.Errorf("delta matched %d and sent %d literal bytes, want most of the 7 MiB of data matched", r.Stats.Matched, r.Stats.Literal)
	}
	if sent > 1<<20 {
		t.Errorf("sent %d bytes for a 4 KiB change", sent)
	}
	if a := allocated(t, got); a > 3<<20+slack {
		t.Errorf("the mirror's file takes %d bytes on disk, want about its 3 MiB of data", a)
	}
}

// The agent checks the FileEnd hash of a file sent with holes: a hash
// of the same bytes with the zeros sent as data is refused, and nothing
// is left on the mirror.
func TestSparseHashChecked(t *testing.T) {
	dst := t.TempDir()
	c := dialAgent(t, dst, 0, engine.ClientOptions{Sparse: true})
	data := []byte("data before a hole")
	dense := fstree.NewHasher()
	dense.Write(data)
	dense.Write(make([]byte, 8192))
	var wrong fstree.Hash
	dense.Sum(wrong[:0])
	right := wire.NewFileHash()
	right.Write(data)
	right.Hole(8192)
	for _, tc := range []struct {
		name string
		hash fstree.Hash
		ok   bool
	}{{"zeros hashed as data", wrong, false}, {"holes hashed as runs", right.Sum(), true}} {
		w := c.Writer()
		if err := w.BeginFile(tc.name, int64(len(data))+8192, wire.Meta{Perm: 0o644}, 0); err != nil {
			t.Fatal(err)
		}
		if err := w.Data(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Hole(8192); err != nil {
			t.Fatal(err)
		}
		if err := w.EndFile(tc.hash); err != nil {
			t.Fatal(err)
		}
		failed, err := c.Barrier(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := len(failed) == 0; got != tc.ok {
			t.Errorf("%s: failures %v, want ok=%v", tc.name, failed, tc.ok)
		}
	}
	want := append(append([]byte(nil), []byte("data before a hole")...), make([]byte, 8192)...)
	if b, err := os.ReadFile(filepath.Join(dst, "holes hashed as runs")); err != nil || !bytes.Equal(b, want) {
		t.Errorf("written file: %q %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(dst, "zeros hashed as data")); !os.IsNotExist(err) {
		t.Errorf("a file with a wrong hash is on the mirror: %v", err)
	}
	if tmp := tempFiles(t, dst); len(tmp) > 0 {
		t.Errorf("temporaries left: %v", tmp)
	}
}

// Watch mode sends a sparse file that appears as it sends one in a full
// sync: its holes stay holes.
func TestSparseSessionBatch(t *testing.T) {
	treetest.NeedAgent(t)
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "m")
	m, err := engine.DialLocal(context.Background(), dst, dst, engine.ClientOptions{Create: true, Sparse: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	s := engine.NewSession(m, engine.Options{Sparse: true, MaxDelete: -1})
	source := scan(t, src)
	ok(t, s.Full(context.Background(), source, false))
	sparseFile(t, filepath.Join(src, "vm.img"), 64<<20, []extent{{32 << 20, 4096}}, nil)
	r := ok(t, s.Apply(context.Background(), source, []queue.Path{{Rel: "vm.img"}}))
	sameContent(t, filepath.Join(src, "vm.img"), filepath.Join(dst, "vm.img"))
	if a := allocated(t, filepath.Join(dst, "vm.img")); a > 4096+slack {
		t.Errorf("the mirror's file takes %d bytes on disk", a)
	}
	if r.Stats.Literal > 4096 {
		t.Errorf("sent %d literal bytes for 4 KiB of data", r.Stats.Literal)
	}
}
