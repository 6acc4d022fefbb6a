package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/treetest"
	"github.com/gosync/gosync/engine/wire"
)

// A mirror whose disk fills up reports ENOSPC for the file that did not
// fit, and the sync stops sending file data to it: the other files fail
// as not sent instead of crossing the link for nothing.
func TestFullDiskStopsSending(t *testing.T) {
	dst := filepath.Join(treetest.SmallDisk(t, "1m"), "www")
	src := t.TempDir()
	files := map[string]string{}
	chunk := strings.Repeat("x", 256<<10)
	for i := range 40 { // 10 MiB for a 1 MiB disk
		files[fmt.Sprintf("f%03d.bin", i)] = chunk
	}
	treetest.Write(t, src, files)
	s, err := engine.ScanSource(context.Background(), src, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := engine.DialLocal(context.Background(), dst, dst, engine.ClientOptions{Create: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r := engine.Sync(context.Background(), s, m, engine.Options{MaxDelete: -1, WholeFile: true})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	full, others := engine.SplitNoSpace(r.Failed)
	if len(others) != 0 || len(full) < 30 || full[0].Code != wire.CodeNoSpace || full[0].Op != "write" {
		t.Fatalf("failures: %d for space (first %+v), others %v", len(full), full[0], others)
	}
	if !strings.Contains(full[0].Error(), ": write: ") {
		t.Errorf("error does not name its operation: %s", full[0].Error())
	}
	t.Logf("sent %d bytes, %d paths not written", r.Stats.Sent, len(full))
	if sent := r.Stats.Sent; sent > 5<<20 {
		t.Errorf("sent %d bytes to a full 1 MiB mirror: it should stop sending", sent)
	}
}
