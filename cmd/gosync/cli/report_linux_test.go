package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gosync/gosync/engine/treetest"
)

// A full disk on a mirror is one line with the count, not one per file,
// and exit code 23.
func TestFullDiskOneLine(t *testing.T) {
	dst := filepath.Join(treetest.SmallDisk(t, "1m"), "www")
	src := t.TempDir()
	files := map[string]string{}
	for i := range 40 {
		files[fmt.Sprintf("f%03d.bin", i)] = strings.Repeat("x", 256<<10)
	}
	treetest.Write(t, src, files)
	code, _, stderr := gosync(t, "sync", "--no-progress", src, dst)
	if code != ExitPartial {
		t.Errorf("exit code %d, want %d", code, ExitPartial)
	}
	if n := strings.Count(stderr, "mirror out of space"); n != 1 {
		t.Errorf("%d full-disk lines, want 1:\n%s", n, stderr)
	}
	if strings.Contains(stderr, "ERR not mirrored") || !strings.Contains(stderr, "paths not mirrored; stopped sending to it") ||
		!strings.Contains(stderr, ": write: ") || !strings.Contains(stderr, "no space left on device") {
		t.Errorf("stderr:\n%s", stderr)
	}
}
