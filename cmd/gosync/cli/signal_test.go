//go:build linux

// Linux only: it needs a real sshd started by engine/sshx/sshtest, setpriv,
// Pdeathsig or Unix signals, which the CI machine (Linux) has.

package cli

import (
	"bytes"
	"context"
	"os"
	"syscall"
	"testing"
	"time"
)

// Real signals to this process: the first cancels, the second exits with
// ExitInterrupted at once.
func TestSecondInterruptExits(t *testing.T) {
	exited := make(chan int, 1)
	var stderr bytes.Buffer
	ctx, stop := notifyInterrupt(context.Background(), &stderr, func(code int) { exited <- code }, syscall.SIGUSR1)
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the first signal did not cancel the context")
	}
	select {
	case code := <-exited:
		t.Fatalf("exited %d after one signal", code)
	default:
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exited:
		if code != ExitInterrupted {
			t.Fatalf("exit code %d, want %d", code, ExitInterrupted)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second signal did not exit")
	}
}

// After stop, signals are no longer taken: a later one must not call exit.
func TestInterruptStop(t *testing.T) {
	exited := make(chan int, 1)
	ctx, stop := notifyInterrupt(context.Background(), &bytes.Buffer{}, func(code int) { exited <- code }, syscall.SIGUSR2)
	stop()
	if ctx.Err() == nil {
		t.Fatal("stop left the context running")
	}
	select {
	case code := <-exited:
		t.Fatalf("exited %d", code)
	default:
	}
}
