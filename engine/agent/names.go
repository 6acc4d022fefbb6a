//go:build !windows

package agent

import (
	"os"
	"os/user"
	"strconv"

	"github.com/gosync/gosync/engine/wire"
)

// resolve answers a Names: the ids this host gives the names, as rsync's
// receiver maps the sender's user and group names. A name the host does
// not know comes back unknown; the client keeps the source's number then
// (or refuses a --chown naming it).
func resolve(m *wire.Names) *wire.Ids {
	out := &wire.Ids{ID: m.ID, Self: uint32(os.Geteuid()), SelfGid: uint32(os.Getegid())}
	if len(m.Users) > 0 {
		out.Users = make([]wire.NameID, len(m.Users))
	}
	for i, n := range m.Users {
		if u, err := user.Lookup(n); err == nil {
			out.Users[i] = parseID(u.Uid)
		}
	}
	if len(m.Groups) > 0 {
		out.Groups = make([]wire.NameID, len(m.Groups))
	}
	for i, n := range m.Groups {
		if g, err := user.LookupGroup(n); err == nil {
			out.Groups[i] = parseID(g.Gid)
		}
	}
	return out
}

func parseID(s string) wire.NameID {
	v, err := strconv.ParseUint(s, 10, 32)
	return wire.NameID{ID: uint32(v), Known: err == nil}
}
