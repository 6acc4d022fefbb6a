// Package mirrortest is the conformance suite every engine.Mirror
// implementation passes: the in-process agent, the agent as a child
// process and the agent over SSH run the same scenarios through
// engine.Sync and compare whole trees afterwards.
package mirrortest

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/delta"
	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/treetest"
	"github.com/gosync/gosync/engine/wire"
	"github.com/gosync/gosync/ignore"
	"github.com/gosync/gosync/queue"
)

// Dial connects to a mirror of dir. It registers its own cleanup.
type Dial func(t *testing.T, dir string, opt engine.ClientOptions) engine.Mirror

// Run runs the whole suite.
func Run(t *testing.T, dial Dial) {
	treetest.NeedAgent(t)
	s := &suite{dial: dial}
	t.Run("InitialSync", s.initialSync)
	t.Run("NothingToDo", s.nothingToDo)
	t.Run("Edits", s.edits)
	t.Run("DeltaLargeFile", s.deltaLargeFile)
	t.Run("Deletes", s.deletes)
	t.Run("KindChanges", s.kindChanges)
	t.Run("Ignores", s.ignores)
	t.Run("DryRun", s.dryRun)
	t.Run("MaxDelete", s.maxDelete)
	t.Run("EmptySource", s.emptySource)
	t.Run("Checksum", s.checksum)
	t.Run("Temporaries", s.temporaries)
	t.Run("SymlinkOnMirrorDoesNotRedirect", s.symlinkRedirect)
	t.Run("EscapingPathRefused", s.escapingPath)
	t.Run("Compressed", s.compressed)
	t.Run("SourceChangesWhileRead", s.sourceChanges)
	t.Run("ConcurrentMirrors", s.concurrentMirrors)
	t.Run("BasisChangedAfterSignature", s.basisChanged)
	t.Run("RunCommand", s.runCommand)
	t.Run("ScanTwiceOneSession", s.scanTwice)
	t.Run("RenamesKnownOnly", s.renamesKnownOnly)
}

// A watch session renames on the mirror what was renamed in the source,
// sending nothing, but only when it knows the content is the same: the
// mirror hashes its old file for the comparison. A file that took over a
// removed file's inode with the same size and mtime is sent.
func (s *suite) renamesKnownOnly(t *testing.T) {
	src, dst := dirs(t)
	treetest.Write(t, src, map[string]string{"a.txt": "content a", "reused.txt": "old content", "d/x": "x", "d/y": "y"})
	fixed := time.Date(1985, 10, 26, 8, 15, 0, 0, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chtimes(filepath.Join(src, "reused.txt"), fixed, fixed))
	m := s.dial(t, dst, engine.ClientOptions{Create: true})
	defer m.Close()
	var renamed []string
	sess := engine.NewSession(m, engine.Options{Delete: true, MaxDelete: -1, OnItem: func(it engine.Item) {
		if it.Action == engine.Renamed {
			renamed = append(renamed, it.Path)
		}
	}})
	source, err := engine.ScanSource(context.Background(), src, nil, false)
	must(err)
	defer source.Close()
	mustSync(t, sess.Full(context.Background(), source, false))

	must(os.Rename(filepath.Join(src, "a.txt"), filepath.Join(src, "b.txt")))
	must(os.Rename(filepath.Join(src, "d"), filepath.Join(src, "e")))
	must(os.Link(filepath.Join(src, "reused.txt"), filepath.Join(src, "other.txt")))
	must(os.Remove(filepath.Join(src, "reused.txt")))
	must(os.WriteFile(filepath.Join(src, "other.txt"), []byte("new content"), 0o644))
	must(os.Chtimes(filepath.Join(src, "other.txt"), fixed, fixed))
	res := mustSync(t, sess.Apply(context.Background(), source, []queue.Path{
		{Rel: "a.txt"}, {Rel: "b.txt"}, {Rel: "d"}, {Rel: "e", Subtree: true}, {Rel: "reused.txt"}, {Rel: "other.txt"}}))
	treetest.Equal(t, src, dst, treetest.Options{})
	if strings.Join(renamed, " ") != "e b.txt" {
		t.Errorf("renamed %q, want the directory e and the file b.txt", renamed)
	}
	if res.Stats.Literal != int64(len("new content")) {
		t.Errorf("sent %d bytes, want only other.txt's %d", res.Stats.Literal, len("new content"))
	}
}

// A watch session lists the mirror again on the same connection at every
// reconciliation; the second listing must be as complete as the first.
func (s *suite) scanTwice(t *testing.T) {
	src, dst := dirs(t)
	richTree(t, src)
	mustSync(t, s.sync(t, src, dst, engine.Options{}))
	m := s.dial(t, dst, engine.ClientOptions{})
	defer m.Close()
	var counts []int
	for _, hash := range []bool{false, true, true, false} {
		ents, errs, err := m.Scan(context.Background(), "", hash)
		if err != nil || len(errs) > 0 {
			t.Fatal(err, errs)
		}
		counts = append(counts, len(ents))
	}
	if counts[0] == 0 || counts[1] != counts[0] || counts[2] != counts[0] || counts[3] != counts[0] {
		t.Fatalf("entries per listing: %v", counts)
	}
}

// --on-sync commands run in the mirror directory with the paths on stdin;
// their exit code and output come back, a failure is not an error.
func (s *suite) runCommand(t *testing.T) {
	_, dst := dirs(t)
	m := s.dial(t, dst, engine.ClientOptions{Create: true})
	defer m.Close()
	code, out, err := m.Run(context.Background(), "pwd; cat; echo oops >&2; exit 3", []byte("a.txt\nb/c.txt\n"))
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(dst)
	if code != 3 || !strings.Contains(out, real+"\na.txt\nb/c.txt\noops") {
		t.Fatalf("code %d output %q", code, out)
	}
	// The session goes on after a command.
	if _, err := m.Barrier(context.Background()); err != nil {
		t.Fatal(err)
	}
}

type suite struct{ dial Dial }

func (s *suite) sync(t *testing.T, src, dst string, opt engine.Options) engine.Result {
	t.Helper()
	return s.syncWith(t, src, dst, opt, engine.ClientOptions{Create: !opt.DryRun})
}

func (s *suite) syncWith(t *testing.T, src, dst string, opt engine.Options, copt engine.ClientOptions) engine.Result {
	t.Helper()
	ctx := context.Background()
	m := s.dial(t, dst, copt)
	defer m.Close()
	if opt.MaxDelete == 0 {
		opt.MaxDelete = -1
	}
	// The path gosync sync and a watch's full syncs take: the source
	// walked in step with the mirror's listing.
	var unread []engine.OpError
	res := engine.SyncTree(ctx, engine.SourceSpec{Dir: src, Ignore: opt.Ignore, Hash: opt.Checksum,
		Done: func(s *engine.Source) { unread = s.Errors }}, m, opt)
	if len(unread) > 0 {
		t.Fatalf("source errors: %v", unread)
	}
	return res
}

func mustSync(t *testing.T, res engine.Result) engine.Result {
	t.Helper()
	if res.Err != nil {
		t.Fatalf("sync: %v", res.Err)
	}
	if len(res.Failed) > 0 {
		t.Fatalf("failed paths: %v", res.Failed)
	}
	return res
}

func dirs(t *testing.T) (src, dst string) {
	base := t.TempDir()
	src, dst = filepath.Join(base, "src"), filepath.Join(base, "dst")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	return src, dst
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// richTree writes a tree with every kind of entry gosync mirrors.
func richTree(t *testing.T, src string) {
	r := rand.New(rand.NewPCG(1, 2))
	treetest.Write(t, src, map[string]string{
		"index.html":                 "<h1>hi</h1>\n",
		"empty.txt":                  "",
		"css/site.css":               strings.Repeat("body{}\n", 500),
		"a/b/c/d/deep.txt":           "deep",
		"emptydir/":                  "",
		"with space/and 'quotes'.md": "q",
		"link-rel":                   "-> index.html",
		"link-dir":                   "-> a/b",
		"link-abs":                   "-> /etc/hostname",
		"dangling":                   "-> does/not/exist",
		"a/up":                       "-> ../index.html",
	})
	write := func(p string, b []byte, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(src, p), b, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(src, p), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("big.bin", randBytes(r, 3<<20+17), 0o600)
	write("script.sh", []byte("#!/bin/sh\necho hi\n"), 0o755)
	write("weird\nname\x01\xff", []byte("bytes in names"), 0o640)
	if err := os.Chmod(filepath.Join(src, "a"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "emptydir"), 0o2775); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Lchown(filepath.Join(src, "script.sh"), 1234, 4321); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(filepath.Join(src, "link-rel"), 1234, 4321); err != nil {
			t.Fatal(err)
		}
	}
	// Mtimes with nanoseconds, including one before the epoch.
	ts := time.Date(2020, 2, 29, 12, 0, 0, 123456789, time.UTC)
	if err := os.Chtimes(filepath.Join(src, "index.html"), ts, ts); err != nil {
		t.Fatal(err)
	}
	old := time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(src, "empty.txt"), old, old); err != nil {
		t.Fatal(err)
	}
}

func (s *suite) initialSync(t *testing.T) {
	src, dst := dirs(t)
	richTree(t, src)
	res := mustSync(t, s.sync(t, src, dst, engine.Options{}))
	treetest.Equal(t, src, dst, treetest.Options{})
	if res.Stats.Created == 0 || res.Stats.Literal < 3<<20 {
		t.Fatalf("stats = %+v, want files created and literal bytes counted", res.Stats)
	}
}

func (s *suite) nothingToDo(t *testing.T) {
	src, dst := dirs(t)
	richTree(t, src)
	mustSync(t, s.sync(t, src, dst, engine.Options{}))
	res := mustSync(t, s.sync(t, src, dst, engine.Options{Delete: true}))
	st := res.Stats
	if st.Created+st.Updated+st.MetaOnly+st.Deleted != 0 || st.Literal != 0 {
		t.Fatalf("second sync changed something: %+v", st)
	}
	treetest.Equal(t, src, dst, treetest.Options{})
}

func (s *suite) edits(t *testing.T) {
	src, dst := dirs(t)
	richTree(t, src)
	mustSync(t, s.sync(t, src, dst, engine.Options{}))

	// Same size, same second, one nanosecond later: still a change.
	p := filepath.Join(src, "index.html")
	fi, _ := os.Stat(p)
	if err := os.WriteFile(p, []byte("<h1>ho</h1>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime().Add(time.Nanosecond)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "script.sh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(src, "link-rel")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("css/site.css", filepath.Join(src, "link-rel")); err != nil {
		t.Fatal(err)
	}
	treetest.Write(t, src, map[string]string{"a/b/new.txt": "new", "newdir/x/y.txt": "y"})
	res := mustSync(t, s.sync(t, src, dst, engine.Options{}))
	treetest.Equal(t, src, dst, treetest.Options{})
	if res.Stats.Updated < 2 || res.Stats.MetaOnly < 1 || res.Stats.Created < 3 {
		t.Fatalf("stats = %+v", res.Stats)
	}
}

func (s *suite) deltaLargeFile(t *testing.T) {
	src, dst := dirs(t)
	r := rand.New(rand.NewPCG(3, 4))
	data := randBytes(r, 8<<20)
	p := filepath.Join(src, "big.bin")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	mustSync(t, s.sync(t, src, dst, engine.Options{}))
	// Scattered small edits, an insertion that shifts the rest, an append.
	for i := 0; i < 10; i++ {
		off := r.IntN(len(data) - 100)
		copy(data[off:], randBytes(r, 100))
	}
	data = append(data[:4096], append([]byte("inserted!"), data[4096:]...)...)
	// New data that no block of the old file holds, longer than a
	// literal op may be, between two blocks of the first round (so
	// nothing of the old file was replaced: no second round for it): it
	// goes literal in more than one op.
	inserted := randBytes(r, 100<<10)
	at := 500*delta.CoarseBlockSize(8<<20) + len("inserted!")
	data = append(data[:at], append(inserted, data[at:]...)...)
	data = append(data, []byte("appended tail")...)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	res := mustSync(t, s.sync(t, src, dst, engine.Options{}))
	treetest.Equal(t, src, dst, treetest.Options{})
	if res.Stats.Updated != 1 || res.Stats.Matched < int64(len(data))*9/10 || res.Stats.Literal > 1<<20 {
		t.Fatalf("delta stats = %+v, want most of %d bytes matched", res.Stats, len(data))
	}
	// The second signature round: each edit costs fine blocks (256 bytes
	// here), not a block of the first round (11 KiB): 3.3 KiB in all
	// besides the 100 KiB inserted, where one round sent 31 KiB.
	if res.Stats.Literal > int64(len(inserted))+8<<10 {
		t.Fatalf("delta sent %d literal bytes for ten 100-byte edits, insertions of 9 bytes and %d KiB and an append, want at most 8 KiB more than the insertions", res.Stats.Literal, len(inserted)>>10)
	}
}

func (s *suite) deletes(t *testing.T) {
	src, dst := dirs(t)
	richTree(t, src)
	mustSync(t, s.sync(t, src, dst, engine.Options{}))
	for _, p := range []string{"a", "big.bin", "link-abs", "emptydir"} {
		if err := os.RemoveAll(filepath.Join(src, p)); err != nil {
			t.Fatal(err)
		}
	}
	// Without --delete nothing goes.
	mustSync(t, s.sync(t, src, dst, engine.Options{}))
	for _, p := range []string{"a/b/c/d/deep.txt", "big.bin", "link-abs", "emptydir"} {
		if _, err := os.Lstat(filepath.Join(dst, p)); err != nil {
			t.Fatalf("%s removed without --delete: %v", p, err)
		}
	}
	res := mustSync(t, s.sync(t, src, dst, engine.Options{Delete: true}))
	treetest.Equal(t, src, dst, treetest.Options{})
	// a, a/up, a/b, a/b/c, a/b/c/d, deep.txt, big.bin, link-abs, emptydir
	if res.Stats.Deleted != 9 {
		t.Fatalf("deleted %d entries, want 9", res.Stats.Deleted)
	}
}

func (s *suite) kindChanges(t *testing.T) {
	src, dst := dirs(t)
	treetest.Write(t, src, map[string]string{
		"f2d": "file", "d2f/x": "x", "f2l": "file", "l2d": "-> f2d", "d2l/y": "y", "emptyd2f/": "",
	})
	mustSync(t, s.sync(t, src, dst, engine.Options{}))
	for _, p := range []string{"f2d", "d2f", "f2l", "l2d", "d2l", "emptyd2f"} {
		os.RemoveAll(filepath.Join(src, p))
	}
	treetest.Write(t, src, map[string]string{
		"f2d/inner": "now a dir", "d2f": "now a file", "f2l": "-> d2f", "l2d/z": "z", "d2l": "-> l2d", "emptyd2f": "file",
	})
	// Without --delete, only the non-empty directories stay in the way.
	res := s.sync(t, src, dst, engine.Options{})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if len(res.Failed) != 2 {
		t.Fatalf("failed = %v, want d2f and d2l refused", res.Failed)
	}
	mustSync(t, s.sync(t, src, dst, engine.Options{Delete: true}))
	treetest.Equal(t, src, dst, treetest.Options{})
}

func (s *suite) ignores(t *testing.T) {
	src, dst := dirs(t)
	treetest.Write(t, src, map[string]string{
		"keep.txt": "k", "node_modules/pkg/index.js": "js", ".git/HEAD": "ref", "x.swp": "swap",
		"logs/a.log": "l", "logs/keep.log": "kl",
	})
	rules, err := ignore.Parse("test", strings.NewReader("node_modules/\n.git/\n*.log\n!keep.log\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := ignore.New(ignore.Defaults(), rules)
	// The mirror has its own copies of ignored paths: they must survive --delete.
	treetest.Write(t, dst, map[string]string{"node_modules/other/x.js": "mirror's own", "logs/server.log": "mirror log", "old.txt": "extra"})
	mustSync(t, s.sync(t, src, dst, engine.Options{Ignore: m, Delete: true}))
	for _, p := range []string{"node_modules/pkg", ".git", "x.swp", "logs/a.log", "old.txt"} {
		if _, err := os.Lstat(filepath.Join(dst, p)); err == nil {
			t.Errorf("%s should not be on the mirror", p)
		}
	}
	for _, p := range []string{"keep.txt", "logs/keep.log", "node_modules/other/x.js", "logs/server.log"} {
		if _, err := os.Lstat(filepath.Join(dst, p)); err != nil {
			t.Errorf("%s should be on the mirror: %v", p, err)
		}
	}
}

func snapshot(t *testing.T, dir string) string {
	t.Helper()
	snap := filepath.Join(t.TempDir(), "snap")
	if err := os.CopyFS(snap, os.DirFS(dir)); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return snap
}

func (s *suite) dryRun(t *testing.T) {
	src, dst := dirs(t)
	// Dry run into a missing mirror creates nothing.
	richTree(t, src)
	var items []engine.Item
	res := mustSync(t, s.sync(t, src, dst, engine.Options{DryRun: true, OnItem: func(it engine.Item) { items = append(items, it) }}))
	if _, err := os.Lstat(dst); err == nil {
		t.Fatal("dry run created the mirror directory")
	}
	if len(items) == 0 || res.Stats.Created == 0 {
		t.Fatal("dry run reported nothing to do")
	}
	mustSync(t, s.sync(t, src, dst, engine.Options{}))
	treetest.Write(t, src, map[string]string{"index.html": "changed!", "new/file": "n"})
	os.RemoveAll(filepath.Join(src, "a"))
	before, err := treetest.Diff(src, dst, treetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	items = nil
	mustSync(t, s.sync(t, src, dst, engine.Options{DryRun: true, Delete: true, OnItem: func(it engine.Item) { items = append(items, it) }}))
	after, _ := treetest.Diff(src, dst, treetest.Options{})
	if strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Fatalf("dry run changed the mirror:\nbefore %v\nafter %v", before, after)
	}
	seen := map[string]engine.Action{}
	for _, it := range items {
		seen[it.Path] = it.Action
	}
	if seen["index.html"] != engine.Updated || seen["new"] != engine.Created || seen["a"] != engine.Deleted {
		t.Fatalf("dry run items = %v", seen)
	}
}

func (s *suite) maxDelete(t *testing.T) {
	src, dst := dirs(t)
	treetest.Write(t, src, map[string]string{"a": "a", "b": "b", "d/1": "1", "d/2": "2", "keep": "k"})
	mustSync(t, s.sync(t, src, dst, engine.Options{}))
	for _, p := range []string{"a", "b", "d"} {
		os.RemoveAll(filepath.Join(src, p))
	}
	treetest.Write(t, src, map[string]string{"new": "should not arrive either"})
	res := s.sync(t, src, dst, engine.Options{Delete: true, MaxDelete: 4})
	if !errors.Is(res.Err, engine.ErrRefused) || !strings.Contains(res.Err.Error(), "would delete 5 entries") {
		t.Fatalf("err = %v, want a refusal naming 5 deletes", res.Err)
	}
	if _, err := os.Lstat(filepath.Join(dst, "new")); err == nil {
		t.Fatal("refused sync still wrote files")
	}
	mustSync(t, s.sync(t, src, dst, engine.Options{Delete: true, MaxDelete: 5}))
	treetest.Equal(t, src, dst, treetest.Options{})
}

func (s *suite) emptySource(t *testing.T) {
	src, dst := dirs(t)
	treetest.Write(t, src, map[string]string{"a": "a"})
	mustSync(t, s.sync(t, src, dst, engine.Options{}))
	os.Remove(filepath.Join(src, "a"))
	res := s.sync(t, src, dst, engine.Options{Delete: true})
	if !errors.Is(res.Err, engine.ErrRefused) {
		t.Fatalf("err = %v, want refusal", res.Err)
	}
	if _, err := os.Lstat(filepath.Join(dst, "a")); err != nil {
		t.Fatal("empty source wiped the mirror")
	}
	mustSync(t, s.sync(t, src, dst, engine.Options{Delete: true, AllowEmptySource: true}))
	treetest.Equal(t, src, dst, treetest.Options{})
}

func (s *suite) checksum(t *testing.T) {
	src, dst := dirs(t)
	treetest.Write(t, src, map[string]string{"f": "aaaa"})
	mustSync(t, s.sync(t, src, dst, engine.Options{}))
	// Someone changes the mirror's copy and puts the mtime back.
	fi, _ := os.Stat(filepath.Join(dst, "f"))
	os.WriteFile(filepath.Join(dst, "f"), []byte("bbbb"), 0o644)
	os.Chtimes(filepath.Join(dst, "f"), fi.ModTime(), fi.ModTime())
	mustSync(t, s.sync(t, src, dst, engine.Options{}))
	if b, _ := os.ReadFile(filepath.Join(dst, "f")); string(b) != "bbbb" {
		t.Fatalf("quick check should not notice: %q", b)
	}
	res := mustSync(t, s.sync(t, src, dst, engine.Options{Checksum: true}))
	treetest.Equal(t, src, dst, treetest.Options{})
	if res.Stats.Updated != 1 {
		t.Fatalf("checksum sync stats %+v", res.Stats)
	}
}

func (s *suite) temporaries(t *testing.T) {
	src, dst := dirs(t)
	treetest.Write(t, src, map[string]string{"a/f": "f"})
	mustSync(t, s.sync(t, src, dst, engine.Options{}))
	left := filepath.Join(dst, "a", fstree.TempName())
	if err := os.WriteFile(left, []byte("half a file"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustSync(t, s.sync(t, src, dst, engine.Options{Delete: true}))
	if tmp := treetest.Temporaries(t, dst, fstree.TempPrefix); len(tmp) != 0 {
		t.Fatalf("temporaries left: %v", tmp)
	}
	treetest.Equal(t, src, dst, treetest.Options{})
}

func (s *suite) symlinkRedirect(t *testing.T) {
	src, dst := dirs(t)
	outside := t.TempDir()
	treetest.Write(t, src, map[string]string{"sub/file": "payload"})
	// The mirror has sub as a symlink to a directory outside it.
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dst, "sub")); err != nil {
		t.Fatal(err)
	}
	mustSync(t, s.sync(t, src, dst, engine.Options{}))
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("wrote through a symlink outside the mirror: %v", ents)
	}
	treetest.Equal(t, src, dst, treetest.Options{})
}

func (s *suite) escapingPath(t *testing.T) {
	_, dst := dirs(t)
	m := s.dial(t, dst, engine.ClientOptions{Create: true})
	defer m.Close()
	ctx := context.Background()
	if err := m.Writer().Mkdir("../escaped", wire.Meta{Perm: 0o755}); err != nil {
		t.Fatal(err)
	}
	_, err := m.Barrier(ctx)
	if err == nil {
		t.Fatal("agent accepted a path with ..")
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(dst), "escaped")); err == nil {
		t.Fatal("directory created outside the mirror")
	}
}

func (s *suite) compressed(t *testing.T) {
	src, dst := dirs(t)
	richTree(t, src)
	treetest.Write(t, src, map[string]string{"text.txt": strings.Repeat("compressible line of text\n", 20000)})
	res := mustSync(t, s.syncWith(t, src, dst, engine.Options{}, engine.ClientOptions{Create: true, Compress: 1}))
	treetest.Equal(t, src, dst, treetest.Options{})
	if res.Stats.Sent >= res.Stats.Literal {
		t.Fatalf("compressed stream sent %d bytes for %d literal bytes", res.Stats.Sent, res.Stats.Literal)
	}
}

// A file rewritten in place while it is sent must never arrive as a mix of
// two versions: the mirror gets a state the file really had (an in-place
// writer goes through every prefix of its new version, so any prefix of
// either version qualifies), or the path is reported as not mirrored. The
// versions differ from their first byte and in size, so a read that
// spans two of them is caught by the stat after the read even where the
// kernel's mtime granularity would hide it (a limit rsync shares).
func (s *suite) sourceChanges(t *testing.T) {
	src, dst := dirs(t)
	r := rand.New(rand.NewPCG(5, 6))
	versions := [][]byte{randBytes(r, 4<<20), randBytes(r, 4<<20+1)}
	p := filepath.Join(src, "hot.bin")
	if err := os.WriteFile(p, versions[0], 0o644); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(stop); <-done }) // before TempDir's cleanup
	go func() {
		defer close(done)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// In place, not atomic: a reader can see a torn file.
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Error(err)
				return
			}
			f.Write(versions[i%2])
			f.Close()
		}
	}()
	for range 3 {
		res := s.sync(t, src, dst, engine.Options{})
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		got, err := os.ReadFile(filepath.Join(dst, "hot.bin"))
		switch {
		case len(res.Failed) == 1 && res.Failed[0].Path == "hot.bin":
			// Caught by the client's stat after the read, not by the agent
			// refusing a file that is longer or shorter than announced.
			if !strings.Contains(res.Failed[0].Msg, "changed while being read") {
				t.Fatalf("reported as %q", res.Failed[0].Msg)
			}
			// Reported; whatever is on the mirror must still be whole.
			if err == nil && !realState(got, versions) {
				t.Fatal("a torn file is on the mirror")
			}
		case len(res.Failed) == 0:
			if !realState(got, versions) {
				t.Fatalf("mirrored content (%d bytes) is no state the file had: torn read sent", len(got))
			}
		default:
			t.Fatalf("failed = %v", res.Failed)
		}
	}
	if tmp := treetest.Temporaries(t, dst, fstree.TempPrefix); len(tmp) != 0 {
		t.Fatalf("temporaries left: %v", tmp)
	}
}

func realState(got []byte, versions [][]byte) bool {
	return bytes.HasPrefix(versions[0], got) || bytes.HasPrefix(versions[1], got)
}

// Several mirrors sync from one scanned source at once, as the command
// does; run under -race this guards the shared source entries.
func (s *suite) concurrentMirrors(t *testing.T) {
	src, dst := dirs(t)
	richTree(t, src)
	ctx := context.Background()
	source, err := engine.ScanSource(ctx, src, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer source.Close()
	dsts := []string{dst + "1", dst + "2", dst + "3"}
	results := make([]engine.Result, len(dsts))
	var wg sync.WaitGroup
	for i, d := range dsts {
		m := s.dial(t, d, engine.ClientOptions{Create: true})
		wg.Go(func() {
			defer m.Close()
			results[i] = engine.Sync(ctx, source, m, engine.Options{MaxDelete: -1})
		})
	}
	wg.Wait()
	for i, d := range dsts {
		mustSync(t, results[i])
		treetest.Equal(t, src, d, treetest.Options{})
	}
}

// sigHook runs a function right after the mirror has sent its signatures.
type sigHook struct {
	engine.Mirror
	after func()
}

func (h sigHook) Signatures(ctx context.Context, reqs []engine.SigRequest) ([]*delta.Signature, []error, error) {
	sigs, errs, err := h.Mirror.Signatures(ctx, reqs)
	h.after()
	return sigs, errs, err
}

// The mirror's copy changes between its signature and the delta against
// it: the patched file fails verification, the old copy stays in place,
// and the engine sends the file whole instead; the sync succeeds.
func (s *suite) basisChanged(t *testing.T) {
	src, dst := dirs(t)
	r := rand.New(rand.NewPCG(7, 8))
	data := randBytes(r, 1<<20)
	treetest.Write(t, src, map[string]string{"sub/f.bin": string(data)})
	mustSync(t, s.sync(t, src, dst, engine.Options{}))
	data[1000] ^= 1
	if err := os.WriteFile(filepath.Join(src, "sub/f.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	m := s.dial(t, dst, engine.ClientOptions{Create: true})
	defer m.Close()
	hooked := sigHook{Mirror: m, after: func() {
		// Same size, other bytes, mtime kept: a hand edit on the mirror.
		p := filepath.Join(dst, "sub/f.bin")
		fi, _ := os.Stat(p)
		junk := randBytes(r, 1<<20)
		os.WriteFile(p, junk, 0o644)
		os.Chtimes(p, fi.ModTime(), fi.ModTime())
	}}
	source, err := engine.ScanSource(context.Background(), src, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer source.Close()
	res := mustSync(t, engine.Sync(context.Background(), source, hooked, engine.Options{MaxDelete: -1}))
	treetest.Equal(t, src, dst, treetest.Options{})
	if res.Stats.Updated != 1 || res.Stats.Literal != 1<<20 {
		t.Fatalf("stats %+v, want the file sent whole after the failed delta", res.Stats)
	}
}
