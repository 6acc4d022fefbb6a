package treetest

import (
	"os"
	"syscall"
	"testing"
)

// SmallDisk mounts a tmpfs of the given size ("1m") on a new directory
// for the test and unmounts it at the end: a disk that fills up. It needs
// root; without it the test is skipped, except under CI=true (CI runs as
// root), where it fails.
func SmallDisk(t testing.TB, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root: the full-disk tests need to mount a tmpfs")
		}
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount a %s tmpfs on %s: %v", size, dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}
