package engine_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/treetest"
	"github.com/gosync/gosync/queue"
)

func newSession(t *testing.T, dst string, opt engine.Options) *engine.Session {
	t.Helper()
	treetest.NeedAgent(t)
	m, err := engine.DialLocal(context.Background(), dst, dst, engine.ClientOptions{Create: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if opt.MaxDelete == 0 {
		opt.MaxDelete = -1
	}
	return engine.NewSession(m, opt)
}

func scan(t *testing.T, dir string) *engine.Source {
	t.Helper()
	s, err := engine.ScanSource(context.Background(), dir, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ok(t testing.TB, r engine.Result) engine.Result {
	t.Helper()
	if r.Err != nil || len(r.Failed) > 0 {
		t.Fatalf("err %v failed %v", r.Err, r.Failed)
	}
	return r
}

// Batches name only what changed; the session's picture of the mirror
// fills in the rest, and the mirror ends identical.
func TestSessionBatches(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "m")
	treetest.Write(t, src, map[string]string{"a.txt": "a", "d/b.txt": "b", "d/e/c.txt": "c", "gone/x": "x"})
	s := newSession(t, dst, engine.Options{Delete: true})
	source := scan(t, src)
	ok(t, s.Full(context.Background(), source, false))
	treetest.Equal(t, src, dst, treetest.Options{})

	steps := []struct {
		name  string
		do    func()
		paths []queue.Path
	}{
		{"edit", func() { os.WriteFile(filepath.Join(src, "d/b.txt"), []byte("b2"), 0o644) }, []queue.Path{{Rel: "d/b.txt"}}},
		{"new deep dir", func() { treetest.Write(t, src, map[string]string{"n/o/p/q.txt": "q"}) }, []queue.Path{{Rel: "n", Subtree: true}}},
		{"delete dir", func() { os.RemoveAll(filepath.Join(src, "gone")) }, []queue.Path{{Rel: "gone"}}},
		{"file becomes dir", func() {
			os.Remove(filepath.Join(src, "a.txt"))
			treetest.Write(t, src, map[string]string{"a.txt/inner": "i"})
		}, []queue.Path{{Rel: "a.txt"}}},
		{"dir becomes symlink", func() {
			os.RemoveAll(filepath.Join(src, "d/e"))
			os.Symlink("../n", filepath.Join(src, "d/e"))
		}, []queue.Path{{Rel: "d/e"}}},
		{"chmod", func() { os.Chmod(filepath.Join(src, "n/o/p/q.txt"), 0o600) }, []queue.Path{{Rel: "n/o/p/q.txt"}}},
		{"rename dir", func() { os.Rename(filepath.Join(src, "n"), filepath.Join(src, "renamed")) }, []queue.Path{{Rel: "n"}, {Rel: "renamed"}}},
		{"whole tree", func() { treetest.Write(t, src, map[string]string{"z": "z"}) }, []queue.Path{{Rel: "", Subtree: true}}},
	}
	for _, st := range steps {
		st.do()
		ok(t, s.Apply(context.Background(), source, st.paths))
		diffs, _ := treetest.Diff(src, dst, treetest.Options{})
		if len(diffs) > 0 {
			t.Fatalf("after %s: %v", st.name, diffs)
		}
	}
}

// Renames in the source become renames on the mirror: nothing is sent
// again, and an agent-side inode check shows the same file moved.
func TestSessionRenames(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "m")
	big := strings.Repeat("large content ", 100000)
	treetest.Write(t, src, map[string]string{"a/big.txt": big, "a/sub/x.txt": "x", "f.txt": big, "keep/k": "k"})
	s := newSession(t, dst, engine.Options{Delete: true})
	source := scan(t, src)
	ok(t, s.Full(context.Background(), source, false))
	before, _ := os.Stat(filepath.Join(dst, "f.txt"))
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Rename(filepath.Join(src, "f.txt"), filepath.Join(src, "keep/g.txt")))
	must(os.Rename(filepath.Join(src, "a"), filepath.Join(src, "b")))
	r := ok(t, s.Apply(context.Background(), source, []queue.Path{{Rel: "f.txt"}, {Rel: "keep/g.txt"}, {Rel: "a"}, {Rel: "b", Subtree: true}}))
	treetest.Equal(t, src, dst, treetest.Options{})
	if r.Stats.Literal != 0 {
		t.Fatalf("renames re-sent %d bytes", r.Stats.Literal)
	}
	after, err := os.Stat(filepath.Join(dst, "keep/g.txt"))
	if err != nil || !os.SameFile(before, after) {
		t.Fatal("the mirror's file was not moved but rewritten")
	}
	// The picture of the mirror follows: later edits at the new paths work.
	treetest.Write(t, src, map[string]string{"b/sub/x.txt": "x2"})
	os.Remove(filepath.Join(src, "keep/g.txt"))
	ok(t, s.Apply(context.Background(), source, []queue.Path{{Rel: "b/sub/x.txt"}, {Rel: "keep/g.txt"}}))
	treetest.Equal(t, src, dst, treetest.Options{})
}

// A source emptied while watched (a build tool about to regenerate it)
// never empties the mirror.
func TestSessionEmptiedSourceRefused(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "m")
	treetest.Write(t, src, map[string]string{"a": "a", "b/c": "c"})
	s := newSession(t, dst, engine.Options{Delete: true})
	source := scan(t, src)
	ok(t, s.Full(context.Background(), source, false))
	os.RemoveAll(filepath.Join(src, "a"))
	os.RemoveAll(filepath.Join(src, "b"))
	r := s.Apply(context.Background(), source, []queue.Path{{Rel: "a"}, {Rel: "b"}})
	if !errors.Is(r.Err, engine.ErrSourceGone) {
		t.Fatalf("err = %v, want ErrSourceGone", r.Err)
	}
	if _, err := os.Stat(filepath.Join(dst, "b/c")); err != nil {
		t.Fatal("mirror emptied")
	}
}
