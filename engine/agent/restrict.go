//go:build !windows

package agent

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/wire"
)

// policy is a Restriction applied to one session.
type policy struct {
	// fixedRoot: ROOT is the server's choice, not the client's.
	fixedRoot bool
	restrict  bool
	setsOwner bool
	setsGroup bool // not root: gives files its user's groups
	run       bool
	perm      uint32 // mode bits the agent applies to files, symlinks and specials
	dirPerm   uint32 // and to directories
	flags     uint64 // what its Hello says of it
}

func (r Restriction) policy(isRoot bool) policy {
	p := policy{
		fixedRoot: r.Restrict || r.Forced,
		restrict:  r.Restrict,
		setsOwner: isRoot && !r.NoOwner && (!r.Restrict || r.AllowOwner),
		setsGroup: !isRoot && !r.NoOwner && (!r.Restrict || r.AllowOwner),
		run:       !r.Restrict || r.AllowRun,
		perm:      0o7777,
		dirPerm:   0o7777,
	}
	if r.Restrict {
		// setuid, setgid and sticky could make a file run as its owner;
		// on a directory setgid and sticky grant nothing (a 2775 web
		// root's subdirectories keep their group inheritance), and
		// setuid, which some systems honour on directories, goes.
		p.perm, p.dirPerm = 0o777, 0o3777
		p.flags |= wire.FlagRestricted
		if r.AllowRun {
			p.flags |= wire.FlagAllowRun
		}
	}
	if r.Forced {
		p.flags |= wire.FlagForced
	}
	if p.setsOwner {
		p.flags |= wire.FlagRoot
	}
	return p
}

// admit is the one place where the policy meets a message, before it is
// handled: it strips from metadata what the agent does not apply, and
// returns the answer to a message it refuses (nil: handle it).
func (s *server) admit(m wire.Msg) wire.Msg {
	var meta *wire.Meta
	dir := false
	switch m := m.(type) {
	case *wire.Mkdir:
		meta, dir = &m.Meta, true
	case *wire.Symlink:
		meta = &m.Meta
	case *wire.SetMeta:
		meta, dir = &m.Meta, m.Kind == fstree.Dir
	case *wire.FileBegin:
		meta = &m.Meta
	case *wire.Run:
		if !s.policy.run {
			return &wire.RunDone{ID: m.ID, Code: -1, Output: "refused: this agent is restricted (gosync agent --restrict) and runs no commands; " +
				"add --allow-run to the command in authorized_keys to allow --on-sync"}
		}
	}
	if meta != nil {
		if dir {
			meta.Perm &= s.policy.dirPerm
		} else {
			meta.Perm &= s.policy.perm
		}
		if !s.policy.setsOwner && !s.policy.setsGroup {
			meta.Owner = false
		}
	}
	return nil
}

// check refuses a session whose client asked for another directory than
// the root the server fixed. The client names it as the user wrote it in
// DEST: "" or "." (HOST: alone) means the fixed root; ~, ~user and a
// relative path are resolved as the shell that starts an agent would, and
// the result must be the root itself. Unlike rrsync, a path is not taken
// as relative to the root: a sync meant for /var/www must not land in
// /srv/www/var/www.
func (p policy) check(root, asked string) error {
	if !p.fixedRoot {
		return nil
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	if p.restrict {
		if err := containsHome(abs); err != nil {
			return err
		}
	}
	if asked == "" || asked == "." {
		return nil
	}
	want, err := resolveAsked(asked)
	if err == nil && samePath(want, abs) {
		return nil
	}
	return fmt.Errorf("refused: this SSH key serves only %s (the command in authorized_keys fixes it), and the client asked for %s; "+
		"use HOST:%s, or HOST: alone, as the destination", abs, asked, abs)
}

// resolveAsked turns what the client asked for into an absolute path, as
// the shell that starts an agent would: ~ and ~user are homes, a relative
// path is below the session's directory (sshd starts it in the home),
// as a relative ROOT is.
func resolveAsked(asked string) (string, error) {
	if !strings.HasPrefix(asked, "~") {
		return filepath.Abs(asked)
	}
	name, rest, _ := strings.Cut(asked[1:], "/")
	var home string
	if name == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		home = h
	} else {
		u, err := user.Lookup(name)
		if err != nil {
			return "", err
		}
		home = u.HomeDir
	}
	return filepath.Join(home, rest), nil
}

// samePath compares two absolute paths as written, then as resolved.
func samePath(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

// containsHome refuses a restricted root that holds the agent user's
// home: the client could rewrite ~/.ssh/authorized_keys, and with it the
// restriction, or the shell start-up files that run before the forced
// command.
func containsHome(root string) error {
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return nil
	}
	r, h := resolved(root), resolved(home)
	if h == r || strings.HasPrefix(h, strings.TrimSuffix(r, "/")+"/") {
		return fmt.Errorf("refusing to serve %s restricted: it contains the home directory %s, whose .ssh/authorized_keys a client could rewrite; give a directory outside it", root, home)
	}
	return nil
}
