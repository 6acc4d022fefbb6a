//go:build linux

package sshx_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/endpoint"
	"github.com/gosync/gosync/engine/sshx"
	"github.com/gosync/gosync/engine/sshx/sshtest"
)

// TestDialMirrorWithBinary: the binary is asked for only once SSH is up
// (a host that refuses the connection never asks), an error from it ends
// the dial naming the mirror and starts nothing there, and a remote
// gosync given by path is started without it.
func TestDialMirrorWithBinary(t *testing.T) {
	sshtest.Start(t)
	ctx := context.Background()
	dst := filepath.Join(t.TempDir(), "dst")
	ep := endpoint.Endpoint{Raw: sshtest.Alias + ":" + dst, Host: sshtest.Alias, Path: dst}
	asked := 0
	boom := errors.New("cannot read the executable")
	failing := func() (sshx.Binary, error) { asked++; return sshx.Binary{}, boom }

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().(*net.TCPAddr).Port
	l.Close()
	if _, err := sshx.DialMirrorWith(ctx, ep, sshx.Options{Port: closed}, failing, engine.ClientOptions{Create: true}); err == nil || errors.Is(err, boom) {
		t.Fatalf("dial to a closed port: %v", err)
	}
	if asked != 0 {
		t.Fatalf("the binary was asked for %d times before SSH was up", asked)
	}

	_, err = sshx.DialMirrorWith(ctx, ep, sshx.Options{}, failing, engine.ClientOptions{Create: true})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), ep.Raw) || asked != 1 {
		t.Fatalf("dial with a failing binary (asked %d times): %v", asked, err)
	}
	if _, err := os.Stat(dst); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the mirror directory was made by a dial that failed: %v", err)
	}

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	m, err := sshx.DialMirrorWith(ctx, ep, sshx.Options{RemoteGosync: exe}, failing, engine.ClientOptions{Create: true})
	if err != nil {
		t.Fatalf("dial with --remote-gosync: %v", err)
	}
	m.Close()
	if asked != 1 {
		t.Fatalf("the binary was asked for with a remote gosync given (%d times)", asked)
	}
}
