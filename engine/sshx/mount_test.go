//go:build linux

package sshx_test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/gosync/gosync/engine/sshx"
	"github.com/gosync/gosync/engine/sshx/sshtest"
)

// mountCache puts a tmpfs with the given options where remote sessions
// cache uploaded agents. It needs root (CI runs as root).
func mountCache(t *testing.T, srv *sshtest.Server, opts string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	if err := os.MkdirAll(srv.RemoteCache, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", srv.RemoteCache).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", srv.RemoteCache).Run() })
}

func TestUploadToNoexecCache(t *testing.T) {
	srv := sshtest.Start(t)
	mountCache(t, srv, "noexec,size=256m")
	err := dialErr(t, sshx.Options{})
	if !errors.Is(err, sshx.ErrAgent) || !strings.Contains(err.Error(), "noexec") || !strings.Contains(err.Error(), "--remote-gosync") {
		t.Fatalf("err = %v", err)
	}
}

func TestUploadToFullDisk(t *testing.T) {
	srv := sshtest.Start(t)
	mountCache(t, srv, "size=64k")
	err := dialErr(t, sshx.Options{})
	if !errors.Is(err, sshx.ErrAgent) || !strings.Contains(err.Error(), "disk is full") {
		t.Fatalf("err = %v", err)
	}
	if left, _ := os.ReadDir(srv.RemoteCache); len(left) > 0 {
		entries, _ := os.ReadDir(srv.RemoteCache + "/" + left[0].Name())
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".gosync-upload") {
				t.Fatalf("partial upload left behind: %s", e.Name())
			}
		}
	}
}
