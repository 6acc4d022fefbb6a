//go:build linux || darwin || freebsd

package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gosync/gosync/engine"
)

// fileHook is a Progress that runs a function as each file starts.
type fileHook struct{ file func(string) }

func (fileHook) Plan(int, int64)          {}
func (h fileHook) File(p string, _ int64) { h.file(p) }
func (fileHook) Read(int64)               {}

// The mirror root the agent creates is private while the first sync
// fills it and gets the source root's mode only at the end, even when
// the source is empty (issue 10, item 4).
func TestNewMirrorRootPrivateUntilSynced(t *testing.T) {
	for _, files := range []int{3, 0} {
		src := t.TempDir()
		dst := filepath.Join(t.TempDir(), "parent", "mirror")
		if err := os.Chmod(src, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(src, "sub"), 0o755); err != nil && files > 0 {
			t.Fatal(err)
		}
		for i := range files {
			os.WriteFile(filepath.Join(src, "sub", string(rune('a'+i))), []byte("x"), 0o644)
		}
		if files == 0 {
			os.Remove(filepath.Join(src, "sub"))
		}
		ctx := context.Background()
		m, err := engine.DialLocal(ctx, dst, dst, engine.ClientOptions{Create: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var during []os.FileMode
		watch := func(string) {
			fi, err := os.Stat(dst)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			during = append(during, fi.Mode().Perm())
			mu.Unlock()
		}
		watch("") // right after the handshake created it
		s, err := engine.ScanSource(ctx, src, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		res := engine.Sync(ctx, s, m, engine.Options{Progress: fileHook{watch}, MaxDelete: -1, AllowEmptySource: true})
		s.Close()
		m.Close()
		if res.Err != nil || len(res.Failed) > 0 {
			t.Fatalf("%d files: %v %+v", files, res.Err, res.Failed)
		}
		if len(during) != files+1 {
			t.Fatalf("%d files: looked %d times", files, len(during))
		}
		for _, mode := range during {
			if mode&0o077 != 0 {
				t.Errorf("%d files: the new mirror root was %o during the first sync, readable by others", files, mode)
			}
		}
		if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%d files: mirror root after the sync: %v %v, want the source's 0755", files, fi.Mode(), err)
		}
	}
}
