//go:build linux

package main

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gosync/gosync/engine/sshx/sshtest"
	"github.com/gosync/gosync/engine/treetest"
)

func TestPick(t *testing.T) {
	got, err := pick(servers, "linux/arm64, linux/arm")
	if err != nil || len(got) != 2 || got[1].GOARM != "7" {
		t.Fatalf("pick = %v, %v", got, err)
	}
	if _, err := pick(clients, "plan9/amd64"); err == nil || !strings.Contains(err.Error(), "known: darwin/arm64") {
		t.Fatalf("err = %v", err)
	}
}

// A release binary, as a user gets it, against an arm64 server: it picks
// its embedded arm64 agent, uploads and runs it (under qemu). It makes a
// real release build for linux/amd64 (minutes with a cold build cache),
// so it runs only with GOSYNC_DIST_E2E=1; engine/sshx TestArm64Server
// covers the same lookup on every run.
func TestReleaseBinaryArm64Server(t *testing.T) {
	if os.Getenv("GOSYNC_DIST_E2E") != "1" {
		t.Skip("set GOSYNC_DIST_E2E=1 to build a release and run it against an arm64 server")
	}
	out := t.TempDir()
	var log bytes.Buffer
	if err := run(context.Background(), []string{"-o", out, "-platforms", "linux/amd64", "-agents", "linux/amd64,linux/arm64"}, &log, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Logf("release build:\n%s", log.String())
	uname := filepath.Join(t.TempDir(), "uname")
	os.WriteFile(uname, []byte("#!/bin/sh\ncase \"$*\" in -s) echo Linux;; -m) echo aarch64;; *) echo 'Linux aarch64';; esac\n"), 0o755)
	srv := sshtest.StartWith(t, sshtest.Options{PathPrefix: filepath.Dir(uname)})
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "release"})
	dst := filepath.Join(t.TempDir(), "www")
	cmd := exec.Command(filepath.Join(out, "gosync-linux-amd64"), "sync", src, sshtest.Alias+":"+dst)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gosync sync: %v\n%s", err, b)
	}
	treetest.Equal(t, src, dst, treetest.Options{})
	agents, _ := filepath.Glob(filepath.Join(srv.RemoteCache, "gosync", "*", "gosync"))
	if len(agents) != 1 {
		t.Fatalf("remote cache holds %v", agents)
	}
	f, err := elf.Open(agents[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 {
		t.Fatalf("uploaded agent is for %v, want aarch64", f.Machine)
	}
}
