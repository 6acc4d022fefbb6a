//go:build !windows

package engine_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/agent"
	"github.com/gosync/gosync/engine/wire"
	"github.com/gosync/gosync/engine/wire/wiretest"
)

// A restricted mirror strips setuid, setgid and sticky bits from files
// (directories keep setgid and sticky, which grant nothing) and sets no
// owners; the client knows it from the handshake, so the next sync finds
// nothing to change (no endless metadata updates), and it refuses a
// command before sending it.
func TestRestrictedMirror(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "www")
	for name, mode := range map[string]os.FileMode{"tool": 0o755 | os.ModeSetuid, "plain": 0o644} {
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	for name, mode := range map[string]os.FileMode{"shared": 0o775 | os.ModeSetgid, "tmp": 0o777 | os.ModeSticky} {
		p := filepath.Join(src, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	root := os.Geteuid() == 0
	if root {
		// chown clears setuid: set the mode again after it.
		if err := os.Chown(filepath.Join(src, "tool"), 4321, 4321); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(src, "tool"), 0o755|os.ModeSetuid); err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Stat(filepath.Join(src, "tool")); err != nil || fi.Mode()&os.ModeSetuid == 0 {
		t.Fatalf("source tool: %v %v, want setuid", fi.Mode(), err)
	}
	m := dialAgentWith(t, agent.Options{Root: dst, Restriction: agent.Restriction{Restrict: true}}, engine.ClientOptions{Create: true})
	if !m.Restricted() || m.RunsCommands() || m.PermBits(false) != 0o777 || m.PermBits(true) != 0o3777 || m.SetsOwner() {
		t.Fatalf("restricted %v, runs %v, perm bits %o, sets owner %v", m.Restricted(), m.RunsCommands(), m.PermBits(false), m.SetsOwner())
	}
	var log bytes.Buffer
	sync := func() engine.Result {
		t.Helper()
		s, err := engine.ScanSource(context.Background(), src, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		res := engine.Sync(context.Background(), s, m, engine.Options{MaxDelete: -1, Logger: slog.New(slog.NewTextHandler(&log, nil))})
		if res.Err != nil || len(res.Failed) > 0 {
			t.Fatalf("sync: %v %v", res.Err, res.Failed)
		}
		return res
	}
	sync()
	if strings.Count(log.String(), "bits are not applied") != 1 || !strings.Contains(log.String(), "entries=1") {
		t.Errorf("want one warning about 1 entry, log:\n%s", log.String())
	}
	for name, want := range map[string]uint32{"tool": 0o755, "plain": 0o644, "shared": 0o2775, "tmp": 0o1777} {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(dst, name), &st); err != nil {
			t.Fatal(err)
		}
		if uint32(st.Mode)&0o7777 != want {
			t.Errorf("%s: mode %o on the mirror, want %o", name, st.Mode&0o7777, want)
		}
		if root && st.Uid != 0 {
			t.Errorf("%s: owner %d on the mirror, want the agent's (0)", name, st.Uid)
		}
	}
	log.Reset()
	if again := sync(); again.Stats.Created+again.Stats.Updated+again.Stats.MetaOnly != 0 {
		t.Errorf("second sync changed something: %+v", again.Stats)
	}
	if log.Len() != 0 {
		t.Errorf("second sync logged:\n%s", log.String())
	}
	if _, _, err := m.Run(context.Background(), "true", nil); !errors.Is(err, engine.ErrRunRefused) {
		t.Errorf("run: %v, want ErrRunRefused", err)
	}
}

// One greeting before the answer is a forced agent; a second one is a
// broken or hostile peer and ends the handshake as a protocol error.
func TestGreetings(t *testing.T) {
	for _, n := range []int{1, 2} {
		p := wiretest.StartWith(t, wiretest.Options{Greetings: n, Flags: wire.FlagRestricted | wire.FlagForced, HungUpOn: n > 1}, func(p *wiretest.Peer, conn *wire.Conn) error { return wiretest.Drain(conn) })
		c, err := engine.NewClient(context.Background(), peerName, p.R, p.W, p.Transport, engine.ClientOptions{Root: "/srv/www"})
		switch {
		case n == 1 && err != nil:
			t.Fatalf("one greeting: %v", err)
		case n == 1:
			if !c.Restricted() || !c.Forced() || c.RunsCommands() || p.Hello.Root != "/srv/www" {
				t.Errorf("restricted %v forced %v runs %v, root sent %q", c.Restricted(), c.Forced(), c.RunsCommands(), p.Hello.Root)
			}
			closeWithin(t, c)
		case !errors.Is(err, wire.ErrFrame):
			t.Fatalf("two greetings: %v, want a protocol error", err)
		}
	}
}
