package engine

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"sync"
	"time"

	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/perm"
	"github.com/gosync/gosync/engine/wire"
)

// owners maps the source's owners into the mirror's ids for one plan:
// rsync -a sends the names of the source's users and groups and the
// receiver gives files the ids its host has for them (uid and gid 0 are
// never mapped, a name the host does not know keeps the number), and
// --chown replaces them outright.
type owners struct {
	uids, gids         map[uint32]uint32 // source id -> mirror id, for mapped names
	chownUid, chownGid uint32
	chownU, chownG     bool
	selfUid, selfGid   uint32 // the agent's user (known when --chown is set)
}

func (o *owners) uid(s *fstree.Entry) (uint32, bool) {
	switch {
	case o.chownU:
		return o.chownUid, true
	case s.NoPerm:
		return 0, false // a source without owners (Windows) leaves the mirror's
	}
	if v, ok := o.uids[s.Uid]; ok {
		return v, true
	}
	return s.Uid, true
}

func (o *owners) gid(s *fstree.Entry) (uint32, bool) {
	switch {
	case o.chownG:
		return o.chownGid, true
	case s.NoPerm:
		return 0, false
	}
	if v, ok := o.gids[s.Gid]; ok {
		return v, true
	}
	return s.Gid, true
}

// prepareOwners looks up the names of the source's owners (once per id
// and process) and asks the mirror's host for their ids (once per name
// and session), and resolves --chown. A --chown the mirror cannot apply
// is refused before anything is written.
func (p *plan) prepareOwners(ctx context.Context, entries []fstree.Entry) error {
	o := &p.ids
	ch := p.opt.Chown
	mapNames := !p.opt.NumericIDs
	var uids, gids []uint32
	if mapNames {
		seenU, seenG := map[uint32]bool{0: true}, map[uint32]bool{0: true} // 0 is never mapped
		for i := range len(entries) + 1 {
			s := &p.root
			if i < len(entries) {
				s = &entries[i]
			}
			if s.NoPerm {
				continue
			}
			if p.owner && ch.User == "" && !seenU[s.Uid] {
				seenU[s.Uid] = true
				uids = append(uids, s.Uid)
			}
			if ch.Group == "" && !seenG[s.Gid] {
				seenG[s.Gid] = true
				gids = append(gids, s.Gid)
			}
		}
	}
	var users, groups []string
	uname := map[uint32]string{}
	gname := map[uint32]string{}
	for _, id := range uids {
		if n, ok := sourceNames.user(id); ok {
			uname[id] = n
			users = append(users, n)
		}
	}
	for _, id := range gids {
		if n, ok := sourceNames.group(id); ok {
			gname[id] = n
			groups = append(groups, n)
		}
	}
	if ch.User != "" {
		if id, ok := perm.ID(ch.User); ok {
			o.chownUid, o.chownU = id, true
		} else {
			users = append(users, ch.User)
		}
	}
	if ch.Group != "" {
		if id, ok := perm.ID(ch.Group); ok {
			o.chownGid, o.chownG = id, true
		} else {
			groups = append(groups, ch.Group)
		}
	}
	if len(users)+len(groups) == 0 && ch.IsZero() {
		return nil
	}
	host, err := p.m.Resolve(ctx, users, groups)
	if err != nil {
		return err
	}
	known, knownG, self := host.Users, host.Groups, host.Uid
	o.selfUid, o.selfGid = host.Uid, host.Gid
	o.uids, o.gids = map[uint32]uint32{}, map[uint32]uint32{}
	for id, n := range uname {
		if v, ok := known[n]; ok {
			o.uids[id] = v
		}
	}
	for id, n := range gname {
		if v, ok := knownG[n]; ok {
			o.gids[id] = v
		}
	}
	name := p.m.Name()
	if ch.User != "" && !o.chownU {
		v, ok := known[ch.User]
		if !ok {
			return refuseOwners("%s: --chown: no user %q on the mirror's host; nothing was changed", name, ch.User)
		}
		o.chownUid, o.chownU = v, true
	}
	if ch.Group != "" && !o.chownG {
		v, ok := knownG[ch.Group]
		if !ok {
			return refuseOwners("%s: --chown: no group %q on the mirror's host; nothing was changed", name, ch.Group)
		}
		o.chownGid, o.chownG = v, true
	}
	if p.owner {
		return nil
	}
	// A normal user keeps its files and may give them only its groups.
	if o.chownU && o.chownUid != self {
		return refuseOwners("%s: --chown %s: the mirror's agent runs as uid %d, not root, and cannot give files to another user "+
			"(run it as root, e.g. --remote-sudo, or drop the user from --chown); nothing was changed", name, ch.User, self)
	}
	if o.chownG && !p.m.SetsGroup(o.chownGid) {
		return refuseOwners("%s: --chown :%s: the mirror's agent (uid %d, not root) is not a member of group %s (gid %d) "+
			"or does not set groups; add the user to it or run the agent as root; nothing was changed", name, ch.Group, self, ch.Group, o.chownGid)
	}
	return nil
}

// ErrOwnerRefused is wrapped (with ErrRefused) when a mirror cannot apply
// --chown: its host does not know a name, or its agent may not give
// files that owner or group. Trying again does not help.
var ErrOwnerRefused = errors.New("--chown cannot be applied on this mirror")

type ownerRefusal struct{ msg string }

func (e *ownerRefusal) Error() string { return ErrRefused.Error() + ": " + e.msg }
func (e *ownerRefusal) Is(target error) bool {
	return target == ErrRefused || target == ErrOwnerRefused
}

func refuseOwners(format string, args ...any) error {
	return &ownerRefusal{msg: fmt.Sprintf(format, args...)}
}

// CheckOwners resolves opt.Chown on m's host and refuses, with an error
// wrapping ErrOwnerRefused, what m cannot apply: watch checks it once
// connected, so a --chown that can never work ends it at once instead of
// being retried.
func CheckOwners(ctx context.Context, m Mirror, opt Options) error {
	if opt.Chown.IsZero() {
		return nil
	}
	opt.NumericIDs = true // only --chown matters here
	p := &plan{m: m, opt: opt, owner: m.SetsOwner()}
	return p.prepareOwners(ctx, nil)
}

// sourceNames are the names of the source host's ids, looked up once
// per id for the life of the process.
var sourceNames = &nameCache{users: map[uint32]*lookup{}, groups: map[uint32]*lookup{}}

// lookupWait bounds one look-up: a slow name service (NSS over the
// network) does not hold a sync up; the id then keeps its number.
var lookupWait = 3 * time.Second

type nameCache struct {
	mu            sync.Mutex
	users, groups map[uint32]*lookup
}

type lookup struct {
	done chan struct{}
	name string
	ok   bool
}

func (c *nameCache) user(id uint32) (string, bool) {
	return c.get(c.users, id, func(s string) (string, error) {
		u, err := user.LookupId(s)
		if err != nil {
			return "", err
		}
		return u.Username, nil
	})
}

func (c *nameCache) group(id uint32) (string, bool) {
	return c.get(c.groups, id, func(s string) (string, error) {
		g, err := user.LookupGroupId(s)
		if err != nil {
			return "", err
		}
		return g.Name, nil
	})
}

func (c *nameCache) get(m map[uint32]*lookup, id uint32, find func(string) (string, error)) (string, bool) {
	c.mu.Lock()
	l := m[id]
	first := l == nil
	if first {
		l = &lookup{done: make(chan struct{})}
		m[id] = l
	}
	c.mu.Unlock()
	if first {
		got := make(chan lookup, 1)
		go func() {
			n, err := find(strconv.FormatUint(uint64(id), 10))
			got <- lookup{name: n, ok: err == nil && n != "" && len(n) <= wire.MaxName}
		}()
		t := time.NewTimer(lookupWait)
		select {
		case r := <-got:
			l.name, l.ok = r.name, r.ok
		case <-t.C: // the id keeps its number for the life of the process
		}
		t.Stop()
		close(l.done)
	}
	<-l.done
	return l.name, l.ok
}
