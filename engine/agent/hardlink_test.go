//go:build !windows

package agent

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/wire"
)

// A mirror entry with another hard link (here: to a file and a symlink
// outside ROOT, as another user of the host can make) gets its new
// metadata on a copy renamed over it; the other link keeps its mode,
// owner, mtime and content (issue 10, item 3).
func TestHardLinkedEntryRewrittenNotChanged(t *testing.T) {
	root, out := t.TempDir(), t.TempDir()
	outFile, outLink := filepath.Join(out, "file"), filepath.Join(out, "link")
	if err := os.WriteFile(outFile, []byte("outside content"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("target", outLink); err != nil {
		t.Fatal(err)
	}
	old := time.Unix(1_000_000_000, 0)
	os.Chtimes(outFile, old, old)
	if err := os.Link(outFile, filepath.Join(root, "f")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(outLink, filepath.Join(root, "l")); err != nil { // links the symlink itself
		t.Fatal(err)
	}
	beforeFile, beforeLink := identityOf(t, outFile), identityOf(t, outLink)

	owner := os.Geteuid() == 0
	meta := wire.Meta{Perm: 0o4750, MtimeNs: 2_000_000_000_123, Owner: owner, Uid: 4242, Gid: 4343}
	c := serve(t, root, time.Hour)
	if errs := roundTrip(t, c,
		&wire.SetMeta{ID: 1, Path: "f", Kind: fstree.File, Meta: meta},
		&wire.SetMeta{ID: 2, Path: "l", Kind: fstree.Symlink, Meta: meta}); len(errs) > 0 {
		t.Fatalf("SetMeta: %+v", errs[0])
	}

	if got := identityOf(t, outFile); got != beforeFile {
		t.Errorf("the file outside changed: %+v, was %+v", got, beforeFile)
	}
	if got := identityOf(t, outLink); got != beforeLink {
		t.Errorf("the symlink outside changed: %+v, was %+v", got, beforeLink)
	}
	if b, _ := os.ReadFile(outFile); string(b) != "outside content" {
		t.Errorf("the file outside holds %q", b)
	}

	for _, tc := range []struct {
		name string
		perm uint32
	}{{"f", 0o4750}, {"l", 0}} {
		p := filepath.Join(root, tc.name)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Nlink != 1 {
			t.Errorf("%s: %d links, want its own inode", tc.name, st.Nlink)
		}
		if fi.ModTime().UnixNano() != meta.MtimeNs {
			t.Errorf("%s: mtime %d, want %d", tc.name, fi.ModTime().UnixNano(), meta.MtimeNs)
		}
		if owner && (st.Uid != meta.Uid || st.Gid != meta.Gid) {
			t.Errorf("%s: owner %d:%d, want %d:%d", tc.name, st.Uid, st.Gid, meta.Uid, meta.Gid)
		}
		if tc.perm != 0 && uint32(st.Mode)&07777 != tc.perm {
			t.Errorf("%s: mode %o, want %o", tc.name, uint32(st.Mode)&07777, tc.perm)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "f")); string(b) != "outside content" {
		t.Errorf("the mirror's copy holds %q", b)
	}
	if target, _ := os.Readlink(filepath.Join(root, "l")); target != "target" {
		t.Errorf("the mirror's symlink points to %q", target)
	}
	if tmps, _ := filepath.Glob(filepath.Join(root, fstree.TempPrefix+"*")); len(tmps) > 0 {
		t.Errorf("temporaries left: %q", tmps)
	}
}
