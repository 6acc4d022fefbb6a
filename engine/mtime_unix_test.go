//go:build !windows

package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosync/gosync/engine"
)

// mtimes outside int64 nanoseconds (before 1677, after 2262) reach the
// mirror unchanged, and a second run finds nothing to do.
func TestMtimesBeyondNanosecondRange(t *testing.T) {
	// tmpfs holds any time; ext4 holds 1901 to 2446.
	base := t.TempDir()
	if d, err := os.MkdirTemp("/dev/shm", "gosync-mtime"); err == nil {
		base = d
		t.Cleanup(func() { os.RemoveAll(d) })
	}
	src, dst := filepath.Join(base, "src"), filepath.Join(base, "m")
	os.Mkdir(src, 0o755)
	times := map[string]time.Time{
		"after2262.txt": time.Date(2400, 1, 1, 12, 0, 0, 123456789, time.UTC),
		"future.txt":    time.Date(3000, 1, 1, 12, 0, 0, 5, time.UTC),
		"past.txt":      time.Date(1600, 6, 1, 0, 0, 0, 7, time.UTC),
		"now.txt":       time.Date(2026, 12, 1, 0, 0, 0, 1, time.UTC),
	}
	for name, mt := range times {
		p := filepath.Join(src, name)
		os.WriteFile(p, []byte(name), 0o644)
		// Not os.Chtimes: it converts through int64 nanoseconds.
		ts, err := unix.TimeToTimespec(mt)
		if err == nil {
			err = unix.UtimesNano(p, []unix.Timespec{ts, ts})
		}
		if fi, _ := os.Stat(p); err != nil || !fi.ModTime().Equal(mt) {
			if name == "after2262.txt" {
				t.Fatalf("cannot set %v on %s: %v", mt, p, err)
			}
			t.Logf("this file system cannot hold %v: left out", mt)
			os.Remove(p)
			delete(times, name)
		}
	}
	m, err := engine.DialLocal(context.Background(), dst, dst, engine.ClientOptions{Create: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	syncTwiceStable(t, src, m)
	for name, mt := range times {
		fi, err := os.Stat(filepath.Join(dst, name))
		if err != nil || !fi.ModTime().Equal(mt) {
			t.Errorf("%s on the mirror: %v %v, want %v", name, fi.ModTime().UTC(), err, mt)
		}
	}
}

// syncTwiceStable syncs src to m twice: both runs succeed, and the second
// finds nothing to change (what the first set is what it compares).
func syncTwiceStable(t *testing.T, src string, m engine.Mirror) {
	t.Helper()
	for run := 1; run <= 2; run++ {
		s, err := engine.ScanSource(context.Background(), src, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		r := engine.Sync(context.Background(), s, m, engine.Options{MaxDelete: -1})
		s.Close()
		if r.Err != nil || len(r.Failed) > 0 {
			t.Fatalf("run %d: %v %v", run, r.Err, r.Failed)
		}
		if run == 2 && r.Stats.Created+r.Stats.Updated+r.Stats.MetaOnly != 0 {
			t.Errorf("second run changed something: %+v", r.Stats)
		}
	}
}
