//go:build linux

package sshx_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/endpoint"
	"github.com/gosync/gosync/engine/sshx"
	"github.com/gosync/gosync/engine/sshx/agents"
	"github.com/gosync/gosync/engine/sshx/sshtest"
	"github.com/gosync/gosync/engine/treetest"
)

// buildAgent builds the slim agent for another platform, as the release
// build does, into a temporary directory.
func buildAgent(t *testing.T, goos, goarch string) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "gosync-agent-"+goos+"-"+goarch)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", exe, "github.com/gosync/gosync/cmd/gosync-agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the %s/%s agent: %v\n%s", goos, goarch, err, out)
	}
	return exe
}

// requireEmulation runs exe here: an arm64 executable runs only when
// binfmt_misc hands it to qemu. CI must have set that up (.ci/run), so
// there a failure fails the test; elsewhere it is skipped.
func requireEmulation(t *testing.T, exe string) {
	t.Helper()
	out, err := exec.Command(exe, "version").CombinedOutput()
	if err == nil && strings.Contains(string(out), "protocol ") {
		return
	}
	msg := "linux/arm64 executables do not run here (" + strings.TrimSpace(string(out)) + " " + errString(err) +
		"); install qemu-user-static and, as root, run .ci/arm64-binfmt to register qemu-aarch64 with binfmt_misc"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// An arm64 server: the remote uname says "Linux aarch64", so the client
// must pick the linux/arm64 agent from its set, upload it and run it,
// under qemu. The test checks the emulator really runs it; a client
// that picked its own (amd64) binary would fail that check.
func TestArm64Server(t *testing.T) {
	exe := buildAgent(t, "linux", "arm64")
	requireEmulation(t, exe)
	arm64, err := agents.FromFile("linux", "arm64", exe)
	if err != nil {
		t.Fatal(err)
	}
	bin := self(t)
	bin.Agents = []agents.Agent{arm64}

	srv := sshtest.StartWith(t, sshtest.Options{PathPrefix: binDir(t, map[string]string{"uname": fakeUname("Linux", "aarch64")})})
	proxy := srv.ViaProxy(t, "arm64-host", "")
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "<h1>arm64</h1>", "css/site.css": "body{}"})
	dst := filepath.Join(t.TempDir(), "www")

	contact := func(name string) {
		t.Helper()
		up0, down0 := proxy.Bytes()
		start := time.Now()
		ep := endpoint.Endpoint{Raw: "arm64-host:" + dst, Host: "arm64-host", Path: dst}
		m, err := sshx.DialMirror(context.Background(), ep, sshx.Options{}, bin, engine.ClientOptions{Create: true})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer m.Close()
		s, err := engine.ScanSource(context.Background(), src, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if r := engine.Sync(context.Background(), s, m, engine.Options{MaxDelete: -1}); r.Err != nil || len(r.Failed) > 0 {
			t.Fatalf("%s: sync: %v %v", name, r.Err, r.Failed)
		}
		took := time.Since(start)
		up, down := proxy.Bytes()
		// The agent serving this mirror is the arm64 one, run by qemu.
		if !emulated(filepath.Join(srv.RemoteCache, "gosync", arm64.Hash[:16], "gosync")) {
			t.Fatalf("%s: no qemu process runs the cached arm64 agent", name)
		}
		t.Logf("%s contact with the arm64 server (connect, agent, sync of 2 files): %v, %d bytes up, %d bytes down",
			name, took.Round(time.Millisecond), up-up0, down-down0)
	}
	contact("first")
	treetest.Equal(t, src, dst, treetest.Options{})
	entries, _ := os.ReadDir(filepath.Join(srv.RemoteCache, "gosync"))
	if len(entries) != 1 || entries[0].Name() != arm64.Hash[:16] {
		t.Fatalf("remote cache holds %v, want only the arm64 agent %s", entries, arm64.Hash[:16])
	}
	os.WriteFile(filepath.Join(src, "index.html"), []byte("<h1>arm64, again</h1>"), 0o644)
	contact("second")
	treetest.Equal(t, src, dst, treetest.Options{})
}

// emulated reports whether a process runs agent under an emulator: with
// binfmt_misc, the process's executable is qemu and the agent's path is
// among its arguments.
func emulated(agent string) bool {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		exe, err := os.Readlink(d + "/exe")
		if err != nil || !strings.Contains(filepath.Base(exe), "qemu-aarch64") {
			continue
		}
		cmdline, _ := os.ReadFile(d + "/cmdline")
		if strings.Contains(string(cmdline), agent) {
			return true
		}
	}
	return false
}
