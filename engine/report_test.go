package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/treetest"
)

// A source file deleted between the listing and its reading is reported
// as vanished, not as a failure.
func TestVanishedSourceFile(t *testing.T) {
	treetest.NeedAgent(t)
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "dst")
	treetest.Write(t, src, map[string]string{"keep.txt": "k", "gone.txt": "g"})
	s, err := engine.ScanSource(context.Background(), src, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := os.Remove(filepath.Join(src, "gone.txt")); err != nil {
		t.Fatal(err)
	}
	m, err := engine.DialLocal(context.Background(), dst, dst, engine.ClientOptions{Create: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r := engine.Sync(context.Background(), s, m, engine.Options{MaxDelete: -1})
	if r.Err != nil || len(r.Failed) != 0 || len(r.Vanished) != 1 || r.Vanished[0] != "gone.txt" {
		t.Fatalf("err %v failed %v vanished %v", r.Err, r.Failed, r.Vanished)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "keep.txt")); err != nil || string(b) != "k" {
		t.Fatalf("keep.txt: %q %v", b, err)
	}
}
