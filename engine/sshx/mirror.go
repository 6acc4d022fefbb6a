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
// uploaded), and the protocol handshake.
func DialMirror(ctx context.Context, ep endpoint.Endpoint, opt Options, bin Binary, copt engine.ClientOptions) (*engine.Client, error) {
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
	root := ep.Path
	if root == "" {
		root = "."
	}
	st, err := OpenAgent(ctx, c, bin, root, opt.RemoteGosync)
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
