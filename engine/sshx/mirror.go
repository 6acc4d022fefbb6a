package sshx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/endpoint"
)

// DialMirror connects to a remote mirror: SSH, the agent (found or
// uploaded, or with RemoteSudo the root-owned one started through sudo),
// and the protocol handshake.
func DialMirror(ctx context.Context, ep endpoint.Endpoint, opt Options, bin Binary, copt engine.ClientOptions) (*engine.Client, error) {
	return DialMirrorWith(ctx, ep, opt, func() (Binary, error) { return bin, nil }, copt)
}

// DialMirrorWith is DialMirror asking for the binary only once SSH is
// up, and only if opt.NeedsBinary: a caller that hashes its own
// executable (SelfBinary, 18-23 ms for 19 MB here) can do so while the
// connection is made.
// An error from bin ends the dial, naming the mirror.
func DialMirrorWith(ctx context.Context, ep endpoint.Endpoint, opt Options, bin func() (Binary, error), copt engine.ClientOptions) (*engine.Client, error) {
	root := ep.Path
	if root == "" {
		root = "."
	}
	if opt.RemoteSudo {
		r, err := SudoRoot(opt.RemoteGosync, ep.Path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ep.Raw, err)
		}
		root = r
	}
	o := opt
	if ep.User != "" && o.User == "" {
		o.User = ep.User
	}
	if ep.Port != 0 && o.Port == 0 {
		o.Port = ep.Port
	}
	c, err := Dial(ctx, ep.Host, o)
	if err != nil {
		return nil, err
	}
	var st *Stream
	if opt.RemoteSudo {
		st, err = StartAgent(c, sudoCommand(opt.RemoteGosync, root))
	} else {
		var b Binary
		if opt.NeedsBinary() {
			if b, err = bin(); err != nil {
				c.Close()
				return nil, fmt.Errorf("%s: %w", ep.Raw, err)
			}
		}
		st, err = OpenAgent(ctx, c, b, root, opt.RemoteGosync)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	copt.Root = root
	m, err := engine.NewClient(ctx, ep.Raw, st.Stdout, st.Stdin, st, copt)
	if err != nil {
		// An agent that could not start said why on stderr, which is
		// copied by its own goroutine: let it finish before reading.
		st.waitExit(2 * time.Second)
		st.Close()
		// An agent that never answered: sudo may have refused to start it.
		if opt.RemoteSudo && ctx.Err() == nil && errors.Is(err, engine.ErrMirrorLost) {
			redial := func(ctx context.Context) (*Client, error) { return Dial(ctx, ep.Host, o) }
			if serr := sudoError(ctx, redial, c.Name, c.User(), opt.RemoteGosync, root, st.stderr.String()); serr != nil {
				return nil, serr
			}
		}
		var he *engine.HandshakeError
		if errors.As(err, &he) {
			return nil, fmt.Errorf("%s: %w", ep.Raw, err)
		}
		if msg := st.stderr.LastLine(); msg != "" {
			return nil, fmt.Errorf("%w on %s: %s", ErrAgent, c.Name, msg)
		}
		return nil, fmt.Errorf("%s: %w", ep.Raw, err)
	}
	return m, nil
}
