//go:build linux

package sshx_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/sshx"
	"github.com/gosync/gosync/engine/sshx/sshtest"
)

// streamEnd runs cmd as the agent, waits for its "ready" line, does act,
// and returns the error the agent's stdout then ends with.
func streamEnd(t *testing.T, alias, cmd string, act func()) error {
	t.Helper()
	c, err := sshx.Dial(context.Background(), alias, sshx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := sshx.StartAgent(c, cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ready := make([]byte, 6)
	if _, err := io.ReadFull(st.Stdout, ready); err != nil || string(ready) != "ready\n" {
		t.Fatalf("agent not ready: %q %v", ready, err)
	}
	act()
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := st.Stdout.Read(buf); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("the agent's output did not end")
		return nil
	}
}

// An agent killed, an agent that exited, a TCP reset and a keepalive
// timeout each read as what happened, not as "unexpected EOF"; a dead
// agent's last lines of stderr are shown.
func TestLossMessagesSayWhatHappened(t *testing.T) {
	srv := sshtest.Start(t)
	resetting := srv.ViaProxy(t, "resetting", "")
	freezing := srv.ViaProxy(t, "freezing", "  ServerAliveInterval 1\n  ServerAliveCountMax 1\n")
	tests := []struct {
		name, alias, cmd string
		act              func()
		want             []string
	}{
		{"killed", sshtest.Alias, `echo "agent: first line" >&2; echo "agent: about to die" >&2; echo ready; kill -KILL $$`, func() {},
			[]string{"the agent on ", "was killed by signal KILL", "its last output: agent: first line | agent: about to die"}},
		{"exited", sshtest.Alias, `echo ready; echo "agent: cannot open /srv/www" >&2; exit 3`, func() {},
			[]string{"exited with status 3", "agent: cannot open /srv/www"}},
		{"reset", "resetting", `echo ready; exec sleep 600`, resetting.Reset,
			[]string{"the connection to ", "was reset (TCP RST"}},
		{"keepalive", "freezing", `echo ready; exec sleep 600`, freezing.Freeze,
			[]string{"SSH server not responding", "ServerAliveInterval 1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := streamEnd(t, tt.alias, tt.cmd, tt.act)
			if err == nil || errors.Is(err, io.EOF) || strings.Contains(err.Error(), "EOF") {
				t.Fatalf("err = %v, want what happened", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want %q in it", err, w)
				}
			}
			if tt.name == "keepalive" && !errors.Is(err, sshx.ErrUnresponsive) {
				t.Errorf("keepalive loss does not wrap ErrUnresponsive: %v", err)
			}
			t.Log(err)
		})
	}
}

// agentPID finds the agent serving root on the test's sshd.
func agentPID(t *testing.T, root string) int {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) >= 3 && args[len(args)-2] == "agent" && args[len(args)-1] == root {
			pid, _ := strconv.Atoi(filepath.Base(d))
			return pid
		}
	}
	t.Fatalf("no agent process for %s", root)
	return 0
}

// The session of a mirror whose agent was killed ends saying so.
func TestMirrorLostWhenAgentKilled(t *testing.T) {
	sshtest.Start(t)
	dst := filepath.Join(t.TempDir(), "dst")
	m := dialer(t, sshx.Options{})(t, dst, engine.ClientOptions{Create: true})
	if err := syscall.Kill(agentPID(t, dst), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.Lost():
	case <-time.After(60 * time.Second):
		t.Fatal("session not lost after its agent was killed")
	}
	err := m.Err()
	if !errors.Is(err, engine.ErrMirrorLost) || !strings.Contains(err.Error(), "killed by signal KILL") {
		t.Fatalf("err = %v", err)
	}
	t.Log(err)
}
