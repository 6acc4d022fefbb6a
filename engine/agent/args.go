package agent

import (
	"errors"
	"strings"
)

// Restriction is what the server side allows a client that reached the
// agent through an SSH key: `gosync agent --restrict [--allow-run]
// [--allow-owner] [--no-owner] ROOT` as the key's forced command in
// authorized_keys, rsync's rrsync done in the agent itself.
type Restriction struct {
	// Restrict makes the agent an endpoint that can do nothing but keep
	// ROOT a mirror: no command runs (unless AllowRun), no setuid,
	// setgid or sticky bit is set (they are stripped), no owner changes
	// (unless AllowOwner), and ROOT is the server's choice: the client
	// must name it or nothing (see Forced).
	Restrict bool
	// AllowRun lets a restricted agent run --on-sync commands.
	AllowRun bool
	// AllowOwner lets a restricted agent running as root give files the
	// owners the client sends.
	AllowOwner bool
	// NoOwner: never change owners, restricted or not.
	NoOwner bool
	// Forced is set when sshd started the agent as a forced command
	// (SSH_ORIGINAL_COMMAND is set): what the client asked to run was
	// not run, so the agent speaks first (wire.FlagGreeting) and checks
	// that the directory the client asked for is ROOT.
	Forced bool
}

// ParseArgs reads the arguments after `agent`: the restriction flags in
// any order, then ROOT. getenv tells whether sshd forced the command.
func ParseArgs(args []string, getenv func(string) string) (root string, r Restriction, err error) {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		a := args[0]
		args = args[1:]
		if a == "--" {
			break
		}
		switch strings.TrimPrefix(a, "-") {
		case "-restrict":
			r.Restrict = true
		case "-allow-run":
			r.AllowRun = true
		case "-allow-owner":
			r.AllowOwner = true
		case "-no-owner":
			r.NoOwner = true
		default:
			return "", r, errors.New("unknown agent flag " + a + " (want --restrict, --allow-run, --allow-owner, --no-owner)")
		}
	}
	switch {
	case len(args) != 1 || args[0] == "":
		return "", r, errors.New("usage: gosync agent [--restrict [--allow-run] [--allow-owner]] [--no-owner] ROOT")
	case (r.AllowRun || r.AllowOwner) && !r.Restrict:
		return "", r, errors.New("--allow-run and --allow-owner only loosen --restrict; an agent without --restrict runs commands and sets owners anyway")
	case r.AllowOwner && r.NoOwner:
		return "", r, errors.New("--allow-owner and --no-owner exclude each other")
	}
	r.Forced = getenv("SSH_ORIGINAL_COMMAND") != ""
	return args[0], r, nil
}
