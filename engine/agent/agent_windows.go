package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"
)

// Options configure one agent session.
type Options struct {
	Root      string
	BuildID   string
	Logger    *slog.Logger
	Heartbeat time.Duration
	// RunTimeout and WalkHelpers are as on Unix.
	RunTimeout  time.Duration
	WalkHelpers int
	Restriction
}

// DefaultHeartbeat is as on Unix.
const DefaultHeartbeat = 5 * time.Second

// ErrUnsupported: Windows is a client only. The agent is written on the
// *at system calls that keep it inside the mirror directory without
// following symlinks; Windows has no such calls, and gosync does not
// mirror to Windows hosts or to local directories on a Windows machine.
var ErrUnsupported = errors.New("the gosync agent does not run on Windows: mirror to a Linux, macOS or FreeBSD host")

// Serve refuses: see ErrUnsupported.
func Serve(ctx context.Context, r io.Reader, w io.Writer, opt Options) error { return ErrUnsupported }
