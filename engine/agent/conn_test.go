//go:build !windows

package agent

import (
	"os"
	"syscall"
	"testing"

	"github.com/gosync/gosync/engine/wire"
)

// roundTrip sends msgs and a Barrier and returns the operation errors
// the agent answered before the barrier's Done.
func roundTrip(t *testing.T, c *wire.Conn, msgs ...wire.Msg) []*wire.Error {
	t.Helper()
	const barrier = 1 << 62
	for _, m := range msgs {
		if err := c.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WriteMsg(&wire.Barrier{ID: barrier}); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	var errs []*wire.Error
	for {
		m, err := c.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		switch m := m.(type) {
		case *wire.Done:
			if m.ID == barrier {
				return errs
			}
		case *wire.Error:
			errs = append(errs, m)
		case *wire.Heartbeat:
		default:
			t.Fatalf("unexpected answer %T", m)
		}
	}
}

// identity is what the race tests watch on the file outside the mirror.
type identity struct {
	mode     uint32
	uid, gid uint32
	mtime    int64
}

func identityOf(t *testing.T, p string) identity {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return identity{uint32(st.Mode), st.Uid, st.Gid, fi.ModTime().UnixNano()}
}
