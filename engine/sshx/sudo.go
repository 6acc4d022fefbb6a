package sshx

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gosync/gosync/engine/wire"
)

// Running the agent as root through sudo (--remote-sudo), for a mirror
// directory that the SSH user cannot write. The trust boundary: whatever
// a sudoers rule lets the SSH user run as root, that user can do. So the
// program must be one the user cannot replace (a root-owned gosync named
// by --remote-gosync, never an upload in the user's own cache), and its
// command line is fixed, so that the rule pins it whole:
//
//	deploy ALL=(root) NOPASSWD: /usr/local/bin/gosync agent --restrict --allow-owner /var/www
//
// --restrict keeps the root agent from running commands (--on-sync would
// be a root shell) and from setting setuid, setgid and sticky bits (a
// setuid-root file would be one too); --allow-owner lets it keep the
// source's owners and groups, as rsync -a run as root does.

// SudoAgentArgs are the agent's arguments before the mirror directory
// under --remote-sudo; the sudoers rule must name them exactly.
const SudoAgentArgs = "agent --restrict --allow-owner"

// ErrSudo wraps a remote sudo that did not start the agent; it is an
// ErrAgent too (the user must act, so watch does not retry).
var ErrSudo = fmt.Errorf("%w: sudo", ErrAgent)

// ErrSudoProgram wraps a --remote-gosync that --remote-sudo cannot use.
var ErrSudoProgram = errors.New("--remote-sudo")

// sudoPlain is what a sudoers rule can name literally: sudoers gives
// ',', ':', '=', '\' and the wildcard characters meanings in a command's
// arguments, and matches arguments joined by spaces, so a space could
// not be told from two arguments.
var sudoPlain = regexp.MustCompile(`^/[A-Za-z0-9/._+-]*$`)

// SudoRoot checks what --remote-sudo needs and returns the mirror
// directory as the agent's command line will carry it: remoteGosync an
// absolute, plain path (sudoers names programs by absolute path); root
// absolute and plain too (no ~, no relative path, no "." or ".."
// components, no doubled slash), trailing slashes removed, so that
// web1:/var/www and web1:/var/www/ both match the one rule.
func SudoRoot(remoteGosync, root string) (string, error) {
	switch {
	case remoteGosync == "":
		return "", fmt.Errorf("%w needs --remote-gosync PATH, a gosync that root owns on the server (for example /usr/local/bin/gosync): "+
			"sudo must not run an agent uploaded into the SSH user's own cache, which that user could replace, and which a sudoers rule cannot pin", ErrSudoProgram)
	case !sudoPlain.MatchString(remoteGosync) || path.Clean(remoteGosync) != remoteGosync:
		return "", fmt.Errorf("%w needs --remote-gosync to be an absolute path of letters, digits and / . _ - + (sudoers names the program by it), not %q", ErrSudoProgram, remoteGosync)
	}
	r := root
	for len(r) > 1 && strings.HasSuffix(r, "/") {
		r = r[:len(r)-1]
	}
	if !sudoPlain.MatchString(r) || path.Clean(r) != r {
		return "", fmt.Errorf("%w %q: with --remote-sudo the remote path must be absolute and plain, of letters, digits and / . _ - + (HOST:/var/www), "+
			"because the sudoers rule names it exactly", ErrRemotePath, root)
	}
	return r, nil
}

// SudoRule is the sudoers line that lets user run the agent for root as
// root without a password, and nothing else.
func SudoRule(user, remoteGosync, root string) string {
	return fmt.Sprintf("%s ALL=(root) NOPASSWD: %s %s %s", user, remoteGosync, SudoAgentArgs, root)
}

// sudoCommand is the remote command: sudo -n never asks for a password
// (there is no terminal to type one on); it fails at once instead.
func sudoCommand(remoteGosync, root string) string {
	return "exec sudo -n " + shellQuote(remoteGosync) + " " + SudoAgentArgs + " " + shellQuote(root)
}

// What sudo, or the shell before it, printed when it did not start the
// agent.
type sudoProblem int

const (
	sudoOK         sudoProblem = iota // not sudo's failure: the agent's, or none
	sudoPassword                      // a password is required (no rule, or one without NOPASSWD)
	sudoNotAllowed                    // rules exist, none for this command
	sudoNoTTY                         // Defaults requiretty
	sudoNoProgram                     // the program in --remote-gosync is missing
	sudoMissing                       // no sudo on the host
	sudoOther                         // another message from sudo
)

var sudoNotFound = regexp.MustCompile(`(^|[ :])sudo: (command )?not found|command not found: sudo`)

// classifySudo reads the remote command's stderr. sudo -n says "a
// password is required" both for a user without a rule and for a rule
// without NOPASSWD, and for a command no rule allows: it tells nothing
// of its rules to a user who has not authenticated. sudoListing refines
// that.
func classifySudo(stderr, remoteGosync string) (sudoProblem, string) {
	var other string
	for _, line := range strings.Split(stderr, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "sudo: "+remoteGosync+": command not found"):
			return sudoNoProgram, line
		case sudoNotFound.MatchString(line):
			return sudoMissing, line
		case strings.Contains(line, "a password is required"):
			return sudoPassword, line
		case strings.Contains(line, "is not in the sudoers file"):
			return sudoPassword, line
		case strings.Contains(line, "is not allowed to execute"):
			return sudoNotAllowed, line
		case strings.Contains(line, "must have a tty"):
			return sudoNoTTY, line
		case strings.HasPrefix(line, "sudo: ") && other == "":
			other = line
		}
	}
	if other != "" {
		return sudoOther, other
	}
	return sudoOK, ""
}

// sudoListing asks sudo, without a password, whether the command is
// allowed (sudo -n -l CMD), over a new connection (the agent's went with
// its session): it prints the command when a rule allows it, exits 1
// silently when the user has password-less rules but none for it, and
// asks for a password when the user has no password-less rule at all
// (sudo's default listpw=any). Anything else tells nothing more.
func sudoListing(ctx context.Context, dial func(context.Context) (*Client, error), remoteGosync, root string) (sudoProblem, bool) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := dial(ctx)
	if err != nil {
		return sudoPassword, false
	}
	defer c.Close()
	_, err = run(ctx, c, "sudo -n -l "+shellQuote(remoteGosync)+" "+SudoAgentArgs+" "+shellQuote(root), nil)
	var ce *commandError
	var exit *ssh.ExitError
	switch {
	case err == nil:
		return sudoPassword, true // allowed, but with a password
	case errors.As(err, &ce):
		// "a password is required", or something else: no more known
	case errors.As(err, &exit) && exit.ExitStatus() == 1:
		return sudoNotAllowed, false
	}
	return sudoPassword, false
}

// sudoError returns the error for a sudo that did not start the agent on
// host, from what the remote command printed, or nil when the failure
// was not sudo's. For "a password is required" it dials once more to ask
// sudo -n -l, which tells a missing rule from a command no rule allows.
func sudoError(ctx context.Context, dial func(context.Context) (*Client, error), host, user, remoteGosync, root, stderr string) error {
	problem, line := classifySudo(stderr, remoteGosync)
	ruleNeedsPassword := false
	if problem == sudoPassword && !strings.Contains(line, "not in the sudoers") {
		problem, ruleNeedsPassword = sudoListing(ctx, dial, remoteGosync, root)
	}
	return sudoMessage(problem, ruleNeedsPassword, line, host, user, remoteGosync, root)
}

// sudoMessage words one line per problem: the host, what happened and
// the line to add to sudoers there.
func sudoMessage(problem sudoProblem, ruleNeedsPassword bool, line, host, user, remoteGosync, root string) error {
	rule := SudoRule(user, remoteGosync, root)
	add := fmt.Sprintf(`add this line on the server with "visudo -f /etc/sudoers.d/gosync": %s`, rule)
	command := remoteGosync + " " + SudoAgentArgs + " " + root
	switch problem {
	case sudoOK:
		return nil
	case sudoPassword:
		if ruleNeedsPassword {
			return fmt.Errorf("%w on %s: a rule lets %s run %q as root, but only with a password, which gosync cannot type (it runs sudo -n); "+
				"give the rule NOPASSWD, or %s", ErrSudo, host, user, command, add)
		}
		return fmt.Errorf("%w on %s asks for a password to run %q as root: %s is not in sudoers there, or no rule lets it run this without a password; %s",
			ErrSudo, host, command, user, add)
	case sudoNotAllowed:
		return fmt.Errorf("%w on %s does not let %s run %q as root: its sudoers rules name other commands (a rule must name this program with exactly these arguments); %s",
			ErrSudo, host, user, command, add)
	case sudoNoTTY:
		return fmt.Errorf("%w on %s requires a terminal (Defaults requiretty), which gosync does not use; add %q beside the rule for gosync (%s)",
			ErrSudo, host, "Defaults:"+user+" !requiretty", rule)
	case sudoNoProgram:
		return fmt.Errorf("%w on %s: there is no %s; install gosync there, owned by root and speaking protocol %d (install -o root -g root -m 755 gosync %s), or fix --remote-gosync",
			ErrSudo, host, remoteGosync, wire.Version, remoteGosync)
	case sudoMissing:
		return fmt.Errorf("%w: %s has no sudo in the PATH of SSH sessions (%s); install it (apt-get install sudo), then %s",
			ErrSudo, host, line, add)
	}
	return fmt.Errorf("%w on %s did not start the agent: %s; the rule gosync needs: %s", ErrSudo, host, line, rule)
}
