package agent

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/wire"
)

// xfsMount mounts a fresh XFS image of size bytes (reflinks on, as
// mkfs.xfs makes it) on a loop device for the test and returns where.
// It needs root; under CI, which runs as root, a missing mkfs.xfs or a
// mount that fails is a failure (.ci/run installs xfsprogs).
func xfsMount(t *testing.T, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a loop device needs root")
	}
	ci := os.Getenv("CI") == "true"
	mkfs, err := exec.LookPath("mkfs.xfs")
	if err != nil {
		if ci {
			t.Fatal("mkfs.xfs not found; CI must install xfsprogs (see .ci/run)")
		}
		t.Skip("mkfs.xfs not found; install xfsprogs to run the reflink tests")
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "xfs.img"), filepath.Join(dir, "mnt")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-f", "-m", "reflink=1", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs: %v: %s", err, out)
	}
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		if ci {
			t.Fatalf("mount -o loop: %v: %s", err, out)
		}
		t.Skipf("cannot mount a loop device here: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	return mnt
}

func usedBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks-st.Bfree) * int64(st.Bsize)
}

// A delta on a file system that shares blocks clones the copied ranges
// of the basis: ten small edits in a 64 MiB file cost about the edited
// blocks in space, not a second 64 MiB, and the file is still verified.
func TestDeltaClonesBasis(t *testing.T) {
	mnt := xfsMount(t, 512<<20)
	root := filepath.Join(mnt, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	const size, bs = 64 << 20, 128 << 10
	r := rand.New(rand.NewPCG(1, 2))
	p := filepath.Join(root, "f")
	old := randomFile(t, r, p, size)
	// A second name outside the mirror keeps the old blocks, so the
	// space the new file takes of its own shows.
	if err := os.Link(p, filepath.Join(mnt, "keep")); err != nil {
		t.Fatal(err)
	}
	unix.Sync()
	neu, edited, msgs := tenEdits(r, old, bs)
	before := usedBytes(t, mnt)
	c := serve(t, root, 0)
	if errs := roundTrip(t, c, msgs...); len(errs) > 0 {
		t.Fatalf("delta: %+v", errs[0])
	}
	unix.Sync()
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, neu) {
		t.Fatal("the mirror's file is not the new content")
	}
	// Each edited block is written; everything else is shared.
	if grew, limit := usedBytes(t, mnt)-before, int64(len(edited)+4)*bs; grew > limit {
		t.Fatalf("the delta took %d KiB of new space, want at most %d KiB: the basis was copied, not cloned", grew>>10, limit>>10)
	}
}

// randomFile writes size random bytes to p and returns them.
func randomFile(t *testing.T, r *rand.Rand, p string, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// tenEdits writes 100 bytes at ten random places of a copy of old and
// returns it, the blocks of bs bytes it touched and the messages that
// send it as a delta of old, ending with its hash.
func tenEdits(r *rand.Rand, old []byte, bs int) ([]byte, map[uint64]bool, []wire.Msg) {
	size := len(old)
	neu := bytes.Clone(old)
	edited := map[uint64]bool{}
	for range 10 {
		off := r.IntN(size - 100)
		copy(neu[off:], bytes.Repeat([]byte{'x'}, 100))
		edited[uint64(off/bs)], edited[uint64((off+99)/bs)] = true, true
	}
	h := wire.NewFileHash()
	h.Write(neu)
	msgs := []wire.Msg{&wire.FileBegin{ID: 1, Path: "f", Size: int64(size), Meta: wire.Meta{Perm: 0o644, Mtime: fstree.TimeFromNs(1_000_000_000)}, BlockSize: bs}}
	for b := uint64(0); b < uint64(size/bs); b++ {
		if !edited[b] {
			msgs = append(msgs, &wire.FileCopy{Block: b, Count: 1})
			continue
		}
		for o := b * uint64(bs); o < (b+1)*uint64(bs); o += 64 << 10 {
			msgs = append(msgs, &wire.FileData{Data: neu[o : o+64<<10]})
		}
	}
	return neu, edited, append(msgs, &wire.FileEnd{Hash: h.Sum()})
}

// On tmpfs the copied ranges go through the agent's buffers and are
// hashed from them, not read back: the file still verifies, and a hash
// that does not match its bytes still fails it.
func TestDeltaOnTmpfs(t *testing.T) {
	var fs unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &fs); err != nil || fs.Type != unix.TMPFS_MAGIC {
		t.Skip("no tmpfs at /dev/shm")
	}
	root, err := os.MkdirTemp("/dev/shm", "gosync-delta-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	const size, bs = 24 << 20, 128 << 10
	r := rand.New(rand.NewPCG(5, 6))
	p := filepath.Join(root, "f")
	old := randomFile(t, r, p, size)
	neu, _, msgs := tenEdits(r, old, bs)
	bad := bytes.Clone(neu)
	bad[len(bad)/2] ^= 1
	h := wire.NewFileHash()
	h.Write(bad)
	c := serve(t, root, 0)
	wrong := append(append([]wire.Msg(nil), msgs[:len(msgs)-1]...), &wire.FileEnd{Hash: h.Sum()})
	if errs := roundTrip(t, c, wrong...); len(errs) != 1 {
		t.Fatalf("a delta with the wrong hash: %d errors, want 1", len(errs))
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, old) {
		t.Fatal("a delta that failed its hash changed the file")
	}
	if errs := roundTrip(t, c, msgs...); len(errs) > 0 {
		t.Fatalf("delta: %+v", errs[0])
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, neu) {
		t.Fatal("the mirror's file is not the new content")
	}
}

// Where the kernel copies nothing (the other Unix systems), the buffered
// copy gives the same bytes, and the copier tells what it wrote, in
// order: the bytes of what went through its buffer, the ranges of the
// rest.
func TestCopierFallbacks(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(3, 4))
	src := make([]byte, 3<<20+123)
	for i := range src {
		src[i] = byte(r.Uint32())
	}
	sp := filepath.Join(dir, "src")
	if err := os.WriteFile(sp, src, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*copier{{}, {noClone: true}, {noClone: true, noKernel: true}} {
		type piece struct {
			off, n int64
			data   []byte
		}
		var emitted []piece
		c.emit = func(off, n int64, data []byte) []byte {
			emitted = append(emitted, piece{off, n, bytes.Clone(data)})
			if data == nil {
				return nil
			}
			return make([]byte, copyBuf)
		}
		sf, err := os.Open(sp)
		if err != nil {
			t.Fatal(err)
		}
		df, err := os.OpenFile(filepath.Join(dir, "dst"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		// An unaligned range, then one running past the end of src.
		n, err := c.copyRange(int(sf.Fd()), int(df.Fd()), 1000, 0, 2<<20)
		if err != nil || n != 2<<20 {
			t.Fatalf("%+v: copied %d, %v", c, n, err)
		}
		m, err := c.copyRange(int(sf.Fd()), int(df.Fd()), 2<<20, 2<<20, 4<<20)
		if err != nil || m != int64(len(src))-2<<20 {
			t.Fatalf("%+v: copied %d to the end, %v", c, m, err)
		}
		want := append(bytes.Clone(src[1000:1000+2<<20]), src[2<<20:]...)
		got, _ := os.ReadFile(df.Name())
		if !bytes.Equal(got, want) {
			t.Fatalf("%+v: wrong bytes", c)
		}
		at := int64(0)
		for _, p := range emitted {
			if p.off != at || p.data != nil && (int64(len(p.data)) != p.n || !bytes.Equal(p.data, want[p.off:p.off+p.n])) {
				t.Fatalf("%+v: emitted %d bytes at %d (data %v) after %d", c, p.n, p.off, p.data != nil, at)
			}
			if c.noKernel && p.data == nil {
				t.Fatalf("%+v: a buffered copy emitted a range without its bytes", c)
			}
			at += p.n
		}
		if at != int64(len(want)) {
			t.Fatalf("%+v: emitted %d bytes of %d", c, at, len(want))
		}
		sf.Close()
		df.Close()
	}
}

// On tmpfs the copy goes through pread and pwrite: copy_file_range took
// two to three times as long there.
func TestCopierOnTmpfs(t *testing.T) {
	var fs unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &fs); err != nil || fs.Type != unix.TMPFS_MAGIC {
		t.Skip("no tmpfs at /dev/shm")
	}
	dir, err := os.MkdirTemp("/dev/shm", "gosync-copier-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	src := bytes.Repeat([]byte("tmpfs"), 100_000)
	if err := os.WriteFile(filepath.Join(dir, "src"), src, 0o600); err != nil {
		t.Fatal(err)
	}
	sf, err := os.Open(filepath.Join(dir, "src"))
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	df, err := os.Create(filepath.Join(dir, "dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer df.Close()
	var c copier
	if n, err := c.copyRange(int(sf.Fd()), int(df.Fd()), 0, 0, int64(len(src))); err != nil || n != int64(len(src)) {
		t.Fatalf("copied %d, %v", n, err)
	}
	if !c.noKernel || !c.noClone {
		t.Fatalf("copier on tmpfs: %+v, want buffered copies", c)
	}
	if got, _ := os.ReadFile(df.Name()); !bytes.Equal(got, src) {
		t.Fatal("wrong bytes")
	}
}
