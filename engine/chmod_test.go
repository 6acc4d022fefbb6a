//go:build unix

package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/perm"
	"github.com/gosync/gosync/engine/treetest"
	"github.com/gosync/gosync/queue"
)

// --chmod and --chown in watch mode: the batches compare with what the
// session applied, in the mirror's terms, so a batch re-sends nothing
// that only the transformation made differ from the source.
func TestSessionChmodChownStable(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "m")
	treetest.Write(t, src, map[string]string{"d/a.txt": "a", "b.txt": "b"})
	os.Chmod(filepath.Join(src, "d/a.txt"), 0o600)
	os.Chmod(filepath.Join(src, "d"), 0o700)
	opt := engine.Options{Chmod: mustChmod(t, "D2775,F664,o-w")}
	root := os.Geteuid() == 0
	if root {
		opt.Chown = perm.Chown{User: "65534", Group: "65534"}
	}
	var items []string
	opt.OnItem = func(it engine.Item) { items = append(items, string(it.Action)+" "+it.Path) }
	s := newSession(t, dst, opt)
	source := scan(t, src)
	ok(t, s.Full(context.Background(), source, false))
	for name, want := range map[string]os.FileMode{"d": os.ModeDir | os.ModeSetgid | 0o775, "d/a.txt": 0o664, "b.txt": 0o664} {
		fi, err := os.Lstat(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s on the mirror is %v, want %v", name, fi.Mode(), want)
		}
		if root {
			if o := owner(t, filepath.Join(dst, name)); o != [2]uint32{65534, 65534} {
				t.Errorf("%s on the mirror is owned by %v, want 65534:65534", name, o)
			}
		}
	}
	items = nil
	os.WriteFile(filepath.Join(src, "d/a.txt"), []byte("a2"), 0o600)
	ok(t, s.Apply(context.Background(), source, []queue.Path{{Rel: "d/a.txt"}}))
	if len(items) != 1 || items[0] != "updated d/a.txt" {
		t.Errorf("a batch of one edit did %q, want only the update", items)
	}
	items = nil
	ok(t, s.Apply(context.Background(), source, []queue.Path{{Rel: "", Subtree: true}}))
	if len(items) != 0 {
		t.Errorf("a batch of the unchanged tree did %q", items)
	}
	hashed, err := engine.ScanSource(context.Background(), src, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	defer hashed.Close()
	items = nil
	ok(t, s.Full(context.Background(), hashed, true))
	if len(items) != 0 {
		t.Errorf("a reconcile of the unchanged tree did %q", items)
	}
}

func owner(t *testing.T, p string) [2]uint32 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return [2]uint32{st.Uid, st.Gid}
}

func mustChmod(t *testing.T, s string) *perm.Chmod {
	t.Helper()
	c, err := perm.Parse(s, 0o022)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
