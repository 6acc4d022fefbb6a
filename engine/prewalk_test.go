//go:build !windows

package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gosync/gosync/engine"
)

// A prewalk holds at most its depth of batches while no sync takes it,
// the first sync given it takes it over and mirrors the tree, the next
// walks the source itself, and Close ends a walk nobody took.
func TestPrewalkBoundedTakenOnce(t *testing.T) {
	defer engine.SetPrewalkDepth(engine.SetPrewalkDepth(2))
	src := t.TempDir()
	const dirs, files = 5, 600 // 3,005 entries: 3 batches of 1,024, more than 2 held
	for d := range dirs {
		dir := filepath.Join(src, fmt.Sprintf("d%d", d))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range files {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", f)), []byte{byte(f)}, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	spec := engine.SourceSpec{Dir: src}

	// Nobody takes this one: it fills its two batches and waits there.
	idle, err := engine.StartPrewalk(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		held, _, _ := engine.PrewalkState(idle)
		if held >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the prewalk holds %d batches after 10 s, want 2", held)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Given time to walk on (the whole tree takes a few milliseconds), a
	// bounded walk still holds two batches and has not ended.
	time.Sleep(200 * time.Millisecond)
	if held, ended, _ := engine.PrewalkState(idle); held != 2 || ended {
		t.Fatalf("the prewalk holds %d batches (ended: %v), want 2 and a walk waiting", held, ended)
	}
	idle.Close()
	if _, _, taken := engine.PrewalkState(idle); !taken {
		t.Fatal("Close left the walk in place")
	}

	pre, err := engine.StartPrewalk(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer pre.Close()
	spec.Pre = pre
	for i, name := range []string{"a", "b"} {
		dst := filepath.Join(t.TempDir(), name)
		m, err := engine.DialLocal(context.Background(), name, dst, engine.ClientOptions{Create: true, Lock: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		res := engine.SyncTree(context.Background(), spec, m, engine.Options{})
		m.Close()
		if res.Err != nil || res.Stats.Scanned != dirs*(files+1) {
			t.Fatalf("sync %d: %v, stats %+v", i, res.Err, res.Stats)
		}
		if _, _, taken := engine.PrewalkState(pre); !taken {
			t.Fatalf("sync %d did not take the prewalk", i)
		}
		if a, b := treeState(t, src), treeState(t, dst); !slices.Equal(a, b) {
			t.Fatalf("sync %d: the mirror differs from the source", i)
		}
	}
	if _, err := engine.StartPrewalk(context.Background(), engine.SourceSpec{Dir: filepath.Join(src, "missing")}); err == nil {
		t.Fatal("a prewalk of a missing source started")
	}
}
