//go:build linux

package sshtest

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// orphanEnv makes the test binary a process that starts sshd and then
// dies the way a go test -timeout panic kills a test binary: no Cleanup,
// no deferred Stop.
const orphanEnv = "GOSYNC_SSHTEST_ORPHAN_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(orphanEnv); dir != "" {
		sshd, err := FindSSHD()
		if err != nil {
			os.Exit(3)
		}
		s, err := Launch(sshd, dir)
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(4)
		}
		os.Stdout.WriteString(strconv.Itoa(s.cmd.Process.Pid) + "\n")
		panic("test timed out (simulated)")
	}
	os.Exit(m.Run())
}

func waitGone(t *testing.T, what string, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: process %d still running", what, pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	var out []int
	for p, parent := range processParents() {
		if parent == pid {
			out = append(out, p)
		}
	}
	return out
}

// A test binary that dies without running Cleanup (what a go test
// -timeout panic does) takes its sshd with it.
func TestSSHDDiesWithTestBinary(t *testing.T) {
	if _, err := FindSSHD(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sshd not found; CI must install openssh-server (see .ci/run)")
		}
		t.Skip("sshd not found")
	}
	// The orphaned sshd comes to this process to be reaped, not to an
	// init that may never reap it.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), orphanEnv+"="+t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("helper process: %v", err)
	}
	pid, perr := strconv.Atoi(strings.TrimSpace(line))
	if perr != nil {
		t.Fatalf("helper printed %q, exit %v", line, err)
	}
	waitGone(t, "sshd of a dead test binary", pid)
	reap([]int{pid})
}

// Stop ends sshd and the per-connection processes it forked, even with a
// client still connected.
func TestStopKillsConnections(t *testing.T) {
	s := Start(t)
	key, err := os.ReadFile(s.UserKey)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", s.Addr(), &ssh.ClientConfig{
		User:            currentUser(t),
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(s.HostKey),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Start("cat"); err != nil {
		t.Fatal(err)
	}
	sshd := s.cmd.Process.Pid
	var conn []int
	deadline := time.Now().Add(10 * time.Second)
	for len(conn) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no per-connection sshd process appeared")
		}
		conn = children(sshd)
		time.Sleep(10 * time.Millisecond)
	}
	s.Stop()
	waitGone(t, "after Stop", append(conn, sshd)...)
	if err := syscall.Kill(-sshd, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("process group %d still has members (kill: %v)", sshd, err)
	}
}

func currentUser(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(os.Getenv("HOME"), ".ssh", "config"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "User" {
			return f[1]
		}
	}
	t.Fatal("no User in the client config")
	return ""
}
