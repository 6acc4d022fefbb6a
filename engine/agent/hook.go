//go:build !windows

package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// outputGrace is how long a killed hook's output may take to close: a
// process that left the hook's group (setsid) may hold it open forever.
const outputGrace = time.Second

// runHook runs text with sh -c in dir, stdin on its standard input and
// its output into out, in a process group of its own. The hook is over
// when the shell has exited and nothing it started holds its output open
// any more. At limit, or when ctx ends, the whole group is killed: a
// background child still writing to the hook's output (`sleep 1000 &`)
// is part of the hook and dies with it. A child that closed its output
// (`nohup daemon >log 2>&1 &`) outlives a hook that ends in time, as it
// would a shell.
func runHook(ctx context.Context, text, dir string, stdin []byte, out io.Writer, limit time.Duration) (code int, err error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return -1, err
	}
	defer pr.Close()
	ir, iw, err := os.Pipe()
	if err != nil {
		pw.Close()
		return -1, err
	}
	cmd := exec.Command("/bin/sh", "-c", text)
	cmd.Dir = dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = ir, pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	pw.Close()
	ir.Close()
	if err != nil {
		iw.Close()
		return -1, err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	// A hook that does not read its input must not block the writer:
	// closing iw below ends the write.
	wg.Go(func() {
		iw.Write(stdin)
		iw.Close()
	})
	defer iw.Close()
	copied := make(chan struct{})
	wg.Go(func() {
		defer close(copied)
		io.Copy(out, pr)
	})
	exited := make(chan error, 1)
	wg.Go(func() { exited <- cmd.Wait() })

	timer := time.NewTimer(limit)
	defer timer.Stop()
	var werr error
	shellDone, outputDone := false, false
	var stopped error
	for !(shellDone && outputDone) && stopped == nil {
		select {
		case werr = <-exited:
			shellDone = true
		case <-copied:
			outputDone = true
		case <-timer.C:
			stopped = fmt.Errorf("killed after %s with every process it started", limit)
		case <-ctx.Done():
			stopped = fmt.Errorf("killed: the agent is stopping: %w", ctx.Err())
		}
	}
	if stopped != nil {
		// The group id is the shell's pid; the kernel does not reuse it
		// while the group has a member.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if !shellDone {
			<-exited
		}
		if !outputDone {
			select {
			case <-copied:
			case <-time.After(outputGrace):
				pr.SetReadDeadline(time.Now())
				<-copied
			}
		}
		return -1, stopped
	}
	var ee *exec.ExitError
	switch {
	case werr == nil:
		return 0, nil
	case errors.As(werr, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode(), nil
	}
	return -1, werr
}
