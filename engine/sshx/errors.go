package sshx

import (
	"context"
	"errors"

	"github.com/gosync/gosync/engine"
)

// Permanent reports whether a failure to reach a mirror (an error from
// Dial, DialMirror or anything wrapping theirs with %w) cannot go away by
// itself, so retrying is pointless and the user must act: a refused host
// key, refused authentication, a broken ssh config, no algorithm in
// common with the server, an agent that cannot
// be found, uploaded or started, a mirror directory the agent refuses.
//
// Everything else is taken for transient: refused and reset connections,
// timeouts, name resolution failures, a server that stopped answering,
// a connection lost in the middle of the set-up, and errors this package
// does not know. A watch that gave up on an unknown error would leave a
// live mirror stale until someone notices, while one retrying in vain
// only logs; so the doubt goes to retrying.
func Permanent(err error) bool {
	if err == nil || transient(err) {
		return false
	}
	var refused *engine.HandshakeError
	var overlap *engine.OverlapError
	return errors.Is(err, ErrHostKey) || errors.Is(err, ErrAuth) || errors.Is(err, ErrConfig) || errors.Is(err, ErrNegotiation) ||
		errors.Is(err, ErrAgent) || errors.Is(err, ErrRemotePath) || errors.Is(err, ErrSudoProgram) || errors.As(err, &refused) || errors.As(err, &overlap)
}

// transient errors win over a permanent class around them: an agent
// upload (ErrAgent) cut by a lost connection can succeed next time.
func transient(err error) bool {
	return errors.Is(err, errConnLost) || errors.Is(err, ErrUnresponsive) ||
		errors.Is(err, engine.ErrMirrorLost) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded)
}
