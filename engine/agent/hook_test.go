//go:build !windows

package agent

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosync/gosync/engine/wire"
)

// A hook that leaves a child holding its output (`sleep 1000 &`) is
// killed with that child at its time limit: the agent does not wait past
// it, and nothing of the hook is left running.
func TestRunKillsBackgroundChildAtLimit(t *testing.T) {
	c, _, _ := open(t, Options{Root: t.TempDir(), RunTimeout: 300 * time.Millisecond}, wire.Hello{})
	if err := c.WriteMsg(&wire.Run{ID: 1, Cmd: "sleep 1000 & echo $!"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	got := make(chan *wire.RunDone, 1)
	go func() {
		for {
			m, err := c.ReadMsg()
			if err != nil {
				close(got)
				return
			}
			if d, ok := m.(*wire.RunDone); ok {
				got <- d
				return
			}
		}
	}()
	var done *wire.RunDone
	select {
	case done = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the hook was not ended within 30 s of its 300 ms limit")
	}
	if done == nil || done.Code != -1 || !strings.Contains(done.Output, "killed after 300ms") {
		t.Fatalf("run answer %+v, want a kill at the limit", done)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(done.Output, "\n", 2)[0]))
	if err != nil {
		t.Fatalf("no pid in %q", done.Output)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) }) // if the test fails
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil && !zombie(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the background child %d is still running", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// zombie: killed, not yet reaped by whoever inherited it.
func zombie(pid int) bool {
	b, err := readProcStat(pid)
	return err == nil && b == 'Z'
}

// A hook that ends in time gives its exit code and output, and reads
// every byte of its input, NULs included.
func TestRunHookEnds(t *testing.T) {
	var out bytes.Buffer
	in := []byte("a\nb.txt\x00c.txt\x00")
	code, err := runHook(context.Background(), "od -c | head -n 1; exit 3", t.TempDir(), in, &out, time.Minute)
	if err != nil || code != 3 {
		t.Fatalf("code %d err %v", code, err)
	}
	if !strings.Contains(out.String(), `a  \n   b   .   t   x   t  \0   c`) {
		t.Fatalf("output %q", out.String())
	}
}

func readProcStat(pid int) (byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, os.ErrInvalid
	}
	return b[i+2], nil
}
