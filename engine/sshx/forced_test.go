//go:build linux

package sshx_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/endpoint"
	"github.com/gosync/gosync/engine/sshx"
	"github.com/gosync/gosync/engine/sshx/sshtest"
)

// A key forced to a command that is no gosync agent (or one too old to
// greet) prints nothing and waits: the client gives up at the probe's
// time limit with advice, instead of waiting for ever.
func TestForcedCommandThatIsNoAgent(t *testing.T) {
	srv := sshtest.Start(t)
	srv.AuthorizeKey(t, `restrict,command="sleep 600"`)
	defer sshx.SetProbeTimeout(2 * time.Second)()
	dir := filepath.Join(t.TempDir(), "www")
	ep := endpoint.Endpoint{Raw: sshtest.Alias + ":" + dir, Host: sshtest.Alias, Path: dir}
	done := make(chan error, 1)
	go func() {
		m, err := sshx.DialMirror(context.Background(), ep, sshx.Options{}, self(t), engine.ClientOptions{Create: true})
		if m != nil {
			m.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, sshx.ErrAgent) || !strings.Contains(err.Error(), "gosync agent --restrict DIR") {
			t.Fatalf("err = %v, want ErrAgent naming the forced command to use", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the client still waits a minute after a 2 s probe limit")
	}
}

// A forced agent is recognised even after lines that the user's shell
// start-up files printed before it.
func TestForcedAgentAfterNoise(t *testing.T) {
	srv := sshtest.Start(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "www")
	srv.AuthorizeKey(t, `restrict,command="echo Welcome to web1; echo; exec `+exe+` agent --restrict `+dir+`"`)
	ep := endpoint.Endpoint{Raw: sshtest.Alias + ":" + dir, Host: sshtest.Alias, Path: dir}
	m, err := sshx.DialMirror(context.Background(), ep, sshx.Options{}, self(t), engine.ClientOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !m.Forced() || !m.Restricted() {
		t.Fatalf("forced %v restricted %v", m.Forced(), m.Restricted())
	}
	if entries, err := os.ReadDir(srv.RemoteCache); err == nil && len(entries) > 0 {
		t.Fatalf("the client uploaded an agent: %v", entries)
	}
}
