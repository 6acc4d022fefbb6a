//go:build linux || darwin || freebsd

package engine_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/treetest"
	"github.com/gosync/gosync/engine/wire"
	"github.com/gosync/gosync/queue"
)

func dialDeploy(t *testing.T, dst string) *engine.Client {
	t.Helper()
	m, err := engine.DialLocal(context.Background(), dst, dst, engine.ClientOptions{Create: true, Lock: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func sendWhole(t *testing.T, w engine.Writer, p, content string) {
	t.Helper()
	h, _, err := fstree.HashReader(strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.BeginFile(p, int64(len(content)), wire.Meta{Perm: 0o644, Mtime: fstree.TimeFromNs(1e18)}, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Data([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := w.EndFile(h); err != nil {
		t.Fatal(err)
	}
}

// With a delaying batch the agent has handled every FileEnd (a barrier
// came back) and still no target shows a new byte; after the Commit all
// do. A file whose hash check fails is dropped, its target keeps the old
// content, and the rest of the batch still lands.
func TestDelayUpdatesStagesUntilCommit(t *testing.T) {
	treetest.NeedAgent(t)
	dst := t.TempDir()
	treetest.Write(t, dst, map[string]string{"a": "old a", "d/b": "old b"})
	m := dialDeploy(t, dst)
	ctx := context.Background()
	w := m.Writer()
	if err := w.Batch(true, "", ""); err != nil {
		t.Fatal(err)
	}
	sendWhole(t, w, "a", "new a")
	sendWhole(t, w, "d/b", "new b")
	sendWhole(t, w, "d/c", "new c")
	// A corrupt transfer: the hash is of other bytes.
	if err := w.BeginFile("bad", 3, wire.Meta{Perm: 0o644}, 0); err != nil {
		t.Fatal(err)
	}
	w.Data([]byte("xyz"))
	w.EndFile(fstree.Hash{1})
	errs, err := m.Barrier(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 1 || errs[0].Path != "bad" || errs[0].Code != wire.CodeVerify {
		t.Fatalf("before the commit: errors %v, want the hash failure of bad alone", errs)
	}
	for p, want := range map[string]string{"a": "old a", "d/b": "old b"} {
		if got := readFile(t, filepath.Join(dst, p)); got != want {
			t.Errorf("before the commit %s holds %q, want %q", p, got, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(dst, "d/c")); err == nil {
		t.Error("new file d/c visible before the commit")
	}
	if n := len(treetest.Temporaries(t, dst, fstree.TempPrefix)); n != 3 {
		t.Errorf("%d temporaries staged, want 3", n)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if errs, err := m.Barrier(ctx); err != nil || len(errs) > 0 {
		t.Fatalf("commit: %v %v", errs, err)
	}
	for p, want := range map[string]string{"a": "new a", "d/b": "new b", "d/c": "new c"} {
		if got := readFile(t, filepath.Join(dst, p)); got != want {
			t.Errorf("after the commit %s holds %q, want %q", p, got, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(dst, "bad")); err == nil {
		t.Error("file that failed its hash check is on the mirror")
	}
	if tmp := treetest.Temporaries(t, dst, fstree.TempPrefix); len(tmp) > 0 {
		t.Errorf("temporaries left: %v", tmp)
	}
}

// A session that ends before its Commit shows nothing it staged and
// leaves no temporary behind.
func TestDelayUpdatesInterruptedShowsNothing(t *testing.T) {
	treetest.NeedAgent(t)
	dst := t.TempDir()
	treetest.Write(t, dst, map[string]string{"a": "old a"})
	m := dialDeploy(t, dst)
	w := m.Writer()
	w.Batch(true, "", "")
	sendWhole(t, w, "a", "new a")
	sendWhole(t, w, "n", "new n")
	if _, err := m.Barrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	m.Close()
	deadline := time.Now().Add(10 * time.Second)
	for len(treetest.Temporaries(t, dst, fstree.TempPrefix)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if tmp := treetest.Temporaries(t, dst, fstree.TempPrefix); len(tmp) > 0 {
		t.Errorf("temporaries left after the session ended: %v", tmp)
	}
	if got := readFile(t, filepath.Join(dst, "a")); got != "old a" {
		t.Errorf("a holds %q after an interrupted batch, want the old content", got)
	}
	if _, err := os.Lstat(filepath.Join(dst, "n")); err == nil {
		t.Error("staged new file visible after an interrupted batch")
	}
}

// A staged file whose directory is replaced before the Commit (renamed
// away, a symlink to elsewhere put in its place) is not renamed through
// the symlink nor into the old directory's new place: it fails alone.
func TestDelayUpdatesDirectoryReplaced(t *testing.T) {
	treetest.NeedAgent(t)
	dst := t.TempDir()
	outside := t.TempDir()
	treetest.Write(t, dst, map[string]string{"d/f": "old", "g": "old g"})
	m := dialDeploy(t, dst)
	w := m.Writer()
	w.Batch(true, "", "")
	sendWhole(t, w, "d/f", "new")
	sendWhole(t, w, "g", "new g")
	if _, err := m.Barrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dst, "d"), filepath.Join(dst, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dst, "d")); err != nil {
		t.Fatal(err)
	}
	w.Commit()
	errs, err := m.Barrier(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 1 || errs[0].Path != "d/f" {
		t.Fatalf("commit errors %v, want one for d/f", errs)
	}
	if got := readFile(t, filepath.Join(dst, "moved/f")); got != "old" {
		t.Errorf("moved/f holds %q, want the old content", got)
	}
	if _, err := os.Lstat(filepath.Join(outside, "f")); err == nil {
		t.Error("the staged file went through the symlink")
	}
	if got := readFile(t, filepath.Join(dst, "g")); got != "new g" {
		t.Errorf("g holds %q, want the new content", got)
	}
}

// A whole sync with DelayUpdates and BackupDir: the mirror ends equal to
// the source; replaced and deleted entries (a directory whole) are in
// the backup; a rollback puts back content, mode and mtime and removes
// what the sync created; a second rollback changes nothing.
func TestBackupAndRollback(t *testing.T) {
	treetest.NeedAgent(t)
	ctx := context.Background()
	src, dst := t.TempDir(), t.TempDir()
	treetest.Write(t, src, map[string]string{"keep": "same", "a": "v1 a", "d/b": "v1 b", "gone/x": "v1 x", "gone/y/z": "v1 z", "old": "v1 old"})
	os.Symlink("a", filepath.Join(src, "ln"))
	os.Chmod(filepath.Join(src, "a"), 0o640)
	os.Chtimes(filepath.Join(src, "a"), time.Unix(1e9, 123), time.Unix(1e9, 123))
	opt := engine.Options{Delete: true, MaxDelete: -1, BackupDir: ".backups", DelayUpdates: true}
	syncOnce := func() engine.Result {
		t.Helper()
		s, err := engine.ScanSource(ctx, src, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		m := dialDeploy(t, dst)
		defer m.Close()
		r := engine.Sync(ctx, s, m, opt)
		if r.Err != nil || len(r.Failed) > 0 {
			t.Fatalf("sync: %v %v", r.Err, r.Failed)
		}
		return r
	}
	syncOnce()
	before := snapshot(t, dst)
	// The first run created everything: its backup lists what it made.
	time.Sleep(time.Millisecond)
	// The bad save.
	treetest.Write(t, src, map[string]string{"a": "v2 a longer", "d/b": "v2 b", "new/n": "v2 n", "fresh": "v2"})
	os.RemoveAll(filepath.Join(src, "gone"))
	os.Remove(filepath.Join(src, "old"))
	os.Remove(filepath.Join(src, "ln"))
	os.Symlink("d/b", filepath.Join(src, "ln"))
	syncOnce()
	treetest.Equal(t, src, dst, treetest.Options{Ignore: []string{".backups"}})
	stamps := backupStamps(t, filepath.Join(dst, ".backups"))
	if len(stamps) != 2 {
		t.Fatalf("backups %v, want one per run", stamps)
	}
	last := filepath.Join(dst, ".backups", stamps[1])
	for p, want := range map[string]string{"a": "v1 a", "d/b": "v1 b", "gone/x": "v1 x", "gone/y/z": "v1 z", "old": "v1 old"} {
		if got := readFile(t, filepath.Join(last, p)); got != want {
			t.Errorf("backup of %s holds %q, want %q", p, got, want)
		}
	}
	if target, err := os.Readlink(filepath.Join(last, "ln")); err != nil || target != "a" {
		t.Errorf("backup of symlink ln: %q %v", target, err)
	}

	m := dialDeploy(t, dst)
	res, err := m.Rollback(ctx, ".backups", false)
	if err != nil || res.Err != "" || res.Already {
		t.Fatalf("rollback: %+v %v", res, err)
	}
	m.Close()
	if res.Stamp != stamps[1] {
		t.Errorf("rolled back %s, want the newest %s", res.Stamp, stamps[1])
	}
	var removed []string
	for _, it := range res.Items {
		if it.Removed {
			removed = append(removed, it.Path)
		}
	}
	slices.Sort(removed)
	if want := []string{"fresh", "new", "new/n"}; !slices.Equal(removed, want) {
		t.Errorf("rollback removed %v, want %v", removed, want)
	}
	if diff := diffSnapshots(before, snapshot(t, dst)); diff != "" {
		t.Errorf("after the rollback the mirror differs from before the bad save:\n%s", diff)
	}
	// Nothing is lost: the versions the rollback replaced are kept.
	if got := readFile(t, filepath.Join(dst, ".backups", stamps[1]+".undone", "a")); got != "v2 a longer" {
		t.Errorf("the undone version of a holds %q", got)
	}

	m = dialDeploy(t, dst)
	again, err := m.Rollback(ctx, ".backups", false)
	if err != nil || !again.Already || len(again.Items) > 0 || again.Err != "" {
		t.Fatalf("second rollback: %+v %v", again, err)
	}
	m.Close()
	if diff := diffSnapshots(before, snapshot(t, dst)); diff != "" {
		t.Errorf("a second rollback changed the mirror:\n%s", diff)
	}
}

// A backup directory on another file system than the mirror fails the
// sync before anything is replaced, naming it.
func TestBackupDirOtherFileSystem(t *testing.T) {
	treetest.NeedAgent(t)
	other := "/dev/shm"
	var a, b = statDev(t, other), statDev(t, t.TempDir())
	if a == 0 || a == b {
		t.Skip("no second file system at /dev/shm")
	}
	ctx := context.Background()
	src, dst := t.TempDir(), t.TempDir()
	treetest.Write(t, src, map[string]string{"a": "new"})
	treetest.Write(t, dst, map[string]string{"a": "old"})
	dir, err := os.MkdirTemp(other, "gosync-backup-")
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s, err := engine.ScanSource(ctx, src, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := dialDeploy(t, dst)
	r := engine.Sync(ctx, s, m, engine.Options{MaxDelete: -1, BackupDir: dir})
	if r.Err == nil || !strings.Contains(r.Err.Error(), dir) || !strings.Contains(r.Err.Error(), "another file system") {
		t.Fatalf("sync with a backup dir on another file system: %v", r.Err)
	}
	if got := readFile(t, filepath.Join(dst, "a")); got != "old" {
		t.Errorf("a replaced although its backup could not be made: %q", got)
	}
}

type snap struct {
	mode  os.FileMode
	mtime time.Time
	data  string
}

// snapshot lists the mirror outside its backups: type and mode,
// nanosecond mtime of files and symlinks, content or link target.
func snapshot(t *testing.T, root string) map[string]snap {
	t.Helper()
	out := map[string]snap{}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == ".backups" {
			return filepath.SkipDir
		}
		if rel == "." || strings.HasPrefix(fi.Name(), fstree.TempPrefix) {
			return nil
		}
		s := snap{mode: fi.Mode()}
		switch {
		case fi.Mode().IsRegular():
			s.data = readFile(t, p)
			s.mtime = fi.ModTime()
		case fi.Mode()&os.ModeSymlink != 0:
			s.data, _ = os.Readlink(p)
			s.mtime = fi.ModTime()
		}
		out[rel] = s
		return nil
	})
	return out
}

func diffSnapshots(a, b map[string]snap) string {
	var d []string
	for k, x := range a {
		if y, ok := b[k]; !ok {
			d = append(d, "missing "+k)
		} else if x != y {
			d = append(d, k+": "+x.mode.String()+" "+x.mtime.String()+" "+x.data+" != "+y.mode.String()+" "+y.mtime.String()+" "+y.data)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, "extra "+k)
		}
	}
	slices.Sort(d)
	return strings.Join(d, "\n")
}

func backupStamps(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && wire.ValidStamp(e.Name()) {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out
}

func statDev(t *testing.T, p string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		return 0
	}
	return uint64(st.Dev)
}

// In watch mode each batch keeps its own backup: the newest stamp holds
// what the last batch replaced, and a rollback undoes that batch alone.
func TestSessionBackupPerBatch(t *testing.T) {
	ctx := context.Background()
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "m")
	treetest.Write(t, src, map[string]string{"a": "a1", "d/b": "b1", "gone/x": "x1"})
	s := newSession(t, dst, engine.Options{Delete: true, BackupDir: ".backups", DelayUpdates: true})
	source := scan(t, src)
	ok(t, s.Full(ctx, source, false))
	steps := []struct {
		do    func()
		paths []queue.Path
		saved map[string]string // in this batch's backup
	}{
		{func() { os.WriteFile(filepath.Join(src, "d/b"), []byte("b2"), 0o644) }, []queue.Path{{Rel: "d/b"}}, map[string]string{"d/b": "b1"}},
		{func() { os.RemoveAll(filepath.Join(src, "gone")) }, []queue.Path{{Rel: "gone"}}, map[string]string{"gone/x": "x1"}},
		{func() { os.Rename(filepath.Join(src, "a"), filepath.Join(src, "a2")) }, []queue.Path{{Rel: "a"}, {Rel: "a2"}}, map[string]string{"a": "a1"}},
		{func() { os.WriteFile(filepath.Join(src, "d/b"), []byte("b3"), 0o644) }, []queue.Path{{Rel: "d/b"}}, map[string]string{"d/b": "b2"}},
	}
	for i, st := range steps {
		time.Sleep(time.Millisecond) // stamps are nanoseconds apart anyway
		st.do()
		ok(t, s.Apply(ctx, source, st.paths))
		treetest.Equal(t, src, dst, treetest.Options{Ignore: []string{".backups"}})
		stamps := backupStamps(t, filepath.Join(dst, ".backups"))
		if len(stamps) != i+2 {
			t.Fatalf("after batch %d: backups %v, want one per batch", i+1, stamps)
		}
		for p, want := range st.saved {
			if got := readFile(t, filepath.Join(dst, ".backups", stamps[i+1], p)); got != want {
				t.Errorf("batch %d: backup of %s holds %q, want %q", i+1, p, got, want)
			}
		}
	}
	m := dialDeploy(t, dst)
	res, err := m.Rollback(ctx, ".backups", false)
	if err != nil || res.Err != "" {
		t.Fatalf("rollback: %+v %v", res, err)
	}
	if got := readFile(t, filepath.Join(dst, "d/b")); got != "b2" {
		t.Errorf("after the rollback d/b holds %q, want the version before the last batch", got)
	}
	if got := readFile(t, filepath.Join(dst, "a2")); got != "a1" {
		t.Errorf("an earlier batch's change was undone too: a2 holds %q", got)
	}
}

// A rollback that stops halfway (here: a path it cannot restore) leaves
// the backup in place; run again once the obstacle is gone, it finishes
// without touching what the first run put back.
func TestRollbackResumes(t *testing.T) {
	treetest.NeedAgent(t)
	ctx := context.Background()
	src, dst := t.TempDir(), t.TempDir()
	treetest.Write(t, src, map[string]string{"a": "a1", "b": "b1"})
	opt := engine.Options{MaxDelete: -1, BackupDir: "bk"}
	for _, v := range []string{"1", "2"} {
		treetest.Write(t, src, map[string]string{"a": "a" + v, "b": "b" + v})
		s := scan(t, src)
		ok(t, engine.Sync(ctx, s, dialDeploy(t, dst), opt))
	}
	os.Remove(filepath.Join(dst, "b"))
	treetest.Write(t, dst, map[string]string{"b/in-the-way": "x"})
	res, err := dialDeploy(t, dst).Rollback(ctx, "bk", false)
	if err != nil || res.Err == "" || !strings.Contains(res.Err, "b (a directory now") {
		t.Fatalf("first rollback: %+v %v; want it to stop at b", res, err)
	}
	if got := readFile(t, filepath.Join(dst, "a")); got != "a1" {
		t.Errorf("a holds %q after the first rollback", got)
	}
	os.WriteFile(filepath.Join(dst, "a"), []byte("changed since"), 0o644)
	os.RemoveAll(filepath.Join(dst, "b"))
	res, err = dialDeploy(t, dst).Rollback(ctx, "bk", false)
	if err != nil || res.Err != "" || res.Already || len(res.Items) != 1 || res.Items[0].Path != "b" {
		t.Fatalf("second rollback: %+v %v; want b alone restored", res, err)
	}
	if got := readFile(t, filepath.Join(dst, "b")); got != "b1" {
		t.Errorf("b holds %q after the second rollback", got)
	}
	if got := readFile(t, filepath.Join(dst, "a")); got != "changed since" {
		t.Errorf("the second rollback touched a again: %q", got)
	}
	if res, _ := dialDeploy(t, dst).Rollback(ctx, "bk", false); !res.Already {
		t.Errorf("third rollback: %+v, want nothing to do", res)
	}
}

// A rollback takes the mirror's session lock: a session still running
// on it (a watch) stops at its next change instead of sending its
// source's version back over the rollback.
func TestRollbackStopsRunningSession(t *testing.T) {
	treetest.NeedAgent(t)
	ctx := context.Background()
	src, dst := t.TempDir(), t.TempDir()
	treetest.Write(t, src, map[string]string{"a": "a1"})
	s := engine.NewSession(dialDeploy(t, dst), engine.Options{MaxDelete: -1, BackupDir: "bk"})
	ok(t, s.Full(ctx, scan(t, src), false))
	treetest.Write(t, src, map[string]string{"a": "a2 bad"})
	ok(t, s.Apply(ctx, scan(t, src), []queue.Path{{Rel: "a"}}))
	if res, err := dialDeploy(t, dst).Rollback(ctx, "bk", false); err != nil || res.Err != "" {
		t.Fatalf("rollback: %+v %v", res, err)
	}
	r := s.Full(ctx, scan(t, src), true)
	if !errors.Is(r.Err, engine.ErrTakenOver) {
		t.Errorf("the watch's reconcile after a rollback: %v, want it taken over", r.Err)
	}
	if got := readFile(t, filepath.Join(dst, "a")); got != "a1" {
		t.Errorf("a holds %q, want the rolled-back version", got)
	}
}

// A batch whose backup directory is unusable (here: an absolute path
// inside the mirror) applies none of its operations: nothing is
// replaced or deleted without its backup. Watch batches rely on this;
// a full sync checks the directory before it sends anything.
func TestBackupDirRefusedBatchChangesNothing(t *testing.T) {
	treetest.NeedAgent(t)
	dst := t.TempDir()
	treetest.Write(t, dst, map[string]string{"a": "old", "gone": "keep"})
	m := dialDeploy(t, dst)
	w := m.Writer()
	if err := w.Batch(false, filepath.Join(dst, "bk"), time.Now().UTC().Format(wire.StampLayout)); err != nil {
		t.Fatal(err)
	}
	sendWhole(t, w, "a", "new")
	w.Delete("gone", fstree.File)
	w.Mkdir("d", wire.Meta{Perm: 0o755})
	errs, err := m.Barrier(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 4 || errs[0].Op != engine.BatchOp || !strings.Contains(errs[0].Msg, "inside the mirror directory") {
		t.Fatalf("errors %v, want the batch's and one for each operation", errs)
	}
	for _, e := range errs[1:] {
		if !strings.Contains(e.Msg, "not applied") {
			t.Errorf("%s: %s, want it refused", e.Path, e.Msg)
		}
	}
	if got := readFile(t, filepath.Join(dst, "a")); got != "old" {
		t.Errorf("a holds %q", got)
	}
	for _, p := range []string{"gone", "a"} {
		if _, err := os.Lstat(filepath.Join(dst, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range []string{"d", "bk"} {
		if _, err := os.Lstat(filepath.Join(dst, p)); err == nil {
			t.Errorf("%s made by a refused batch", p)
		}
	}
}
