//go:build linux

package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// gosyncBinary is this test binary under the name gosync, which TestMain
// (testscript.Main) runs as the command line.
func gosyncBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "gosync")
	if err := os.Symlink(exe, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// `gosync sync` while another process keeps exchanging source files with
// FIFOs (renameat2 RENAME_EXCHANGE), so files listed as regular are FIFOs
// when opened: every run ends on its own, exit 0, with the special-file
// warning and everything else mirrored; none waits for a writer on a FIFO
// (issue 10, item 10). A run that does not end is sent SIGTERM, which
// must end it.
func TestSyncSourceFIFOSwapNeverBlocks(t *testing.T) {
	bin := gosyncBinary(t)
	src, dst := t.TempDir(), t.TempDir()
	const n = 40
	for i := range n {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%02d", i)), []byte(strings.Repeat("x", 1000+i)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mkfifo(filepath.Join(src, fmt.Sprintf("p%02d", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "steady"), []byte("never swapped"), 0o644); err != nil {
		t.Fatal(err)
	}
	dirfd, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dirfd)
	var swaps atomic.Int64
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i = (i + 1) % n {
			select {
			case <-quit:
				return
			default:
			}
			if unix.Renameat2(dirfd, fmt.Sprintf("f%02d", i), dirfd, fmt.Sprintf("p%02d", i), unix.RENAME_EXCHANGE) == nil {
				swaps.Add(1)
			}
		}
	})
	stopSwaps := func() {
		select {
		case <-quit:
		default:
			close(quit)
		}
		wg.Wait()
	}
	defer stopSwaps()

	const runs = 10
	for r := range runs {
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "sync", "--log-format", "text", src, dst)
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		var runErr error
		select {
		case runErr = <-exited:
		case <-time.After(60 * time.Second):
			stopSwaps()
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
				t.Fatalf("run %d blocked (a FIFO in place of a source file?) until SIGTERM; output:\n%s", r, stderr.String())
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				<-exited
				t.Fatalf("run %d blocked and ignored SIGTERM; output:\n%s", r, stderr.String())
			}
		}
		var ee *exec.ExitError
		if errors.As(runErr, &ee) || runErr != nil {
			t.Fatalf("run %d: %v; output:\n%s", r, runErr, stderr.String())
		}
		if !strings.Contains(stderr.String(), "skipping special file") {
			t.Fatalf("run %d: no special-file warning:\n%s", r, stderr.String())
		}
		if strings.Contains(stderr.String(), "ERR") {
			t.Fatalf("run %d: errors:\n%s", r, stderr.String())
		}
		if b, err := os.ReadFile(filepath.Join(dst, "steady")); err != nil || string(b) != "never swapped" {
			t.Fatalf("run %d: steady = %q, %v", r, b, err)
		}
	}
	stopSwaps()
	t.Logf("%d runs of gosync sync while %d exchanges of files with FIFOs ran", runs, swaps.Load())
}
