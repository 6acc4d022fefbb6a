//go:build !windows

package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/wire"
)

// deepFile makes levels nested directories of 250-byte names under dir,
// with a file at the bottom, through directory descriptors (the whole
// path is longer than the system's PATH_MAX), and returns the relative
// path of the file.
func deepFile(t *testing.T, dir string, name byte, levels int) string {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	seg := strings.Repeat(string(name), 250)
	var rel []string
	for range levels {
		if err := unix.Mkdirat(fd, seg, 0o755); err != nil && err != unix.EEXIST {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, seg, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = next
		rel = append(rel, seg)
	}
	defer unix.Close(fd)
	f, err := unix.Openat(fd, "deep.txt", unix.O_CREAT|unix.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	unix.Write(f, []byte("deep"))
	unix.Close(f)
	return strings.Join(append(rel, "deep.txt"), "/")
}

// One path longer than the protocol carries is skipped with an error;
// the rest of the tree is mirrored (exit 23, not a lost mirror), on the
// source side and on the mirror side.
func TestPathTooLongSkipped(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "m")
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(src, "z.txt"), []byte("z"), 0o644)
	if p := deepFile(t, src, 'd', 17); len(p) <= wire.MaxPath {
		t.Fatalf("test path of %d bytes is not too long", len(p))
	}
	m, err := engine.DialLocal(context.Background(), dst, dst, engine.ClientOptions{Create: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := engine.ScanSource(context.Background(), src, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := engine.Sync(context.Background(), s, m, engine.Options{Delete: true, MaxDelete: -1})
	if r.Err != nil {
		t.Fatalf("sync: %v", r.Err)
	}
	if len(r.Failed) != 1 || !strings.Contains(r.Failed[0].Msg, "longer than") {
		t.Fatalf("failed = %v, want the one too-long path", r.Failed)
	}
	for _, f := range []string{"a.txt", "z.txt"} {
		if _, err := os.Stat(filepath.Join(dst, f)); err != nil {
			t.Errorf("%s not mirrored: %v", f, err)
		}
	}

	// A mirror that holds a too-long path of its own: listed as an error,
	// the rest goes on.
	deepFile(t, dst, 'e', 17)
	r = engine.Sync(context.Background(), s, m, engine.Options{Delete: true, MaxDelete: -1})
	if r.Err != nil {
		t.Fatalf("sync with a too-long path on the mirror: %v", r.Err)
	}
	found := false
	for _, f := range r.Failed {
		found = found || strings.Contains(f.Msg, "not listed")
	}
	if !found {
		t.Fatalf("failed = %v, want the mirror's too-long path reported", r.Failed)
	}
}
