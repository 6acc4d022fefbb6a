package sshx

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/gosync/gosync/engine"
)

// Binary is the gosync executable that can be uploaded as an agent.
type Binary struct {
	Path string
	Hash string // hex SHA-256 of the file
	// Protocol is the wire protocol version the binary speaks; a gosync
	// found on the remote PATH is used only if it reports the same one.
	Protocol int
}

// SelfBinary describes the running executable.
func SelfBinary(protocol int) (Binary, error) {
	exe, err := os.Executable()
	if err != nil {
		return Binary{}, err
	}
	f, err := os.Open(exe)
	if err != nil {
		return Binary{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return Binary{}, err
	}
	return Binary{Path: exe, Hash: hex.EncodeToString(h.Sum(nil)), Protocol: protocol}, nil
}

// ErrAgent wraps failures to find, upload or start the remote agent.
var ErrAgent = errors.New("remote agent")

// cacheDir is where uploaded agents live on the remote host, one
// directory per binary hash, so different gosync versions never collide.
const cacheDir = `${XDG_CACHE_HOME:-$HOME/.cache}/gosync`

// AgentCommand finds or uploads gosync on the remote host and returns the
// shell command that starts `gosync agent root` there.
func AgentCommand(ctx context.Context, c *Client, bin Binary, root, remoteGosync string) (string, error) {
	if remoteGosync != "" {
		return shellQuote(remoteGosync) + " agent " + shellQuote(root), nil
	}
	short := bin.Hash[:16]
	cached := cacheDir + "/" + short + "/gosync"
	probe := `c="` + cached + `"; if [ -x "$c" ]; then echo "cached"; fi; ` +
		`if g=$(command -v gosync 2>/dev/null); then echo "path $("$g" version 2>/dev/null)"; fi; ` +
		`echo "uname $(uname -sm)"`
	out, err := run(ctx, c, probe, nil)
	if err != nil {
		return "", fmt.Errorf("%w: probe %s: %w", ErrAgent, c.Name, err)
	}
	var uname string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		switch {
		case line == "cached":
			return `"` + cached + `" agent ` + shellQuote(root), nil
		case strings.HasPrefix(line, "path ") && strings.Contains(line, fmt.Sprintf(" protocol %d", bin.Protocol)):
			return "gosync agent " + shellQuote(root), nil
		case strings.HasPrefix(line, "uname "):
			uname = strings.TrimPrefix(line, "uname ")
		}
	}
	goos, goarch := platform(uname)
	if goos != runtime.GOOS || goarch != runtime.GOARCH {
		return "", fmt.Errorf("%w: %s is %q, this gosync is built for %s/%s and cannot be uploaded; install gosync (same version) on %s in PATH, or pass --remote-gosync PATH",
			ErrAgent, c.Name, uname, runtime.GOOS, runtime.GOARCH, c.Name)
	}
	if err := upload(ctx, c, bin, cacheDir+"/"+short); err != nil {
		return "", err
	}
	return `"` + cached + `" agent ` + shellQuote(root), nil
}

// upload copies the binary into dir atomically: a temporary name, a hash
// check on the remote side, then a rename.
func upload(ctx context.Context, c *Client, bin Binary, dir string) error {
	f, err := os.Open(bin.Path)
	if err != nil {
		return fmt.Errorf("%w: open own binary: %w", ErrAgent, err)
	}
	defer f.Close()
	script := `set -e; d="` + dir + `"; mkdir -p "$d"; t="$d/.gosync-upload.$$"; trap 'rm -f "$t"' EXIT; cat > "$t"; ` +
		`if command -v sha256sum >/dev/null 2>&1; then h=$(sha256sum "$t"); elif command -v shasum >/dev/null 2>&1; then h=$(shasum -a 256 "$t"); else h="` + bin.Hash + `"; fi; ` +
		`h=${h%% *}; if [ "$h" != "` + bin.Hash + `" ]; then echo "upload corrupted: hash $h" >&2; exit 3; fi; ` +
		`chmod 755 "$t"; mv -f "$t" "$d/gosync"; trap - EXIT; "$d/gosync" version >/dev/null`
	if _, err := run(ctx, c, script, f); err != nil {
		msg := err.Error()
		switch {
		case strings.Contains(msg, "No space left") || strings.Contains(msg, "Disk quota"):
			return fmt.Errorf("%w: upload to %s failed, the disk is full: %s", ErrAgent, c.Name, msg)
		case strings.Contains(msg, "Permission denied"):
			return fmt.Errorf("%w: cannot run an uploaded agent on %s (is the home directory mounted noexec?): %s; install gosync there in PATH or pass --remote-gosync PATH", ErrAgent, c.Name, msg)
		}
		return fmt.Errorf("%w: upload to %s: %s", ErrAgent, c.Name, msg)
	}
	return nil
}

func platform(uname string) (goos, goarch string) {
	f := strings.Fields(uname)
	if len(f) != 2 {
		return "", ""
	}
	goos = strings.ToLower(f[0])
	switch f[1] {
	case "x86_64", "amd64":
		goarch = "amd64"
	case "aarch64", "arm64":
		goarch = "arm64"
	case "i386", "i686":
		goarch = "386"
	case "armv7l", "armv6l":
		goarch = "arm"
	default:
		goarch = f[1]
	}
	return goos, goarch
}

// run executes a shell command on the host and returns its stdout; a
// failure carries the last line of stderr.
func run(ctx context.Context, c *Client, cmd string, stdin io.Reader) (string, error) {
	sess, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	var out bytes.Buffer
	errb := &engine.StderrBuffer{Max: 16 << 10}
	sess.Stdout, sess.Stderr, sess.Stdin = &out, errb, stdin
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	if err := sess.Run(cmd); err != nil {
		if msg := errb.LastLine(); msg != "" {
			return out.String(), errors.New(msg)
		}
		return out.String(), err
	}
	return out.String(), nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Stream is a running remote agent: its stdin and stdout.
type Stream struct {
	Stdin  io.WriteCloser
	Stdout io.Reader
	sess   *ssh.Session
	stderr *engine.StderrBuffer
	once   sync.Once
	client *Client
}

// StartAgent runs cmd (from AgentCommand) in a new session.
func StartAgent(c *Client, cmd string) (*Stream, error) {
	sess, err := c.NewSession()
	if err != nil {
		return nil, fmt.Errorf("%w: open session on %s: %w", ErrAgent, c.Name, err)
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	st := &Stream{Stdin: stdin, Stdout: stdout, sess: sess, stderr: &engine.StderrBuffer{Max: 16 << 10}, client: c}
	sess.Stderr = st.stderr
	if err := sess.Start(cmd); err != nil {
		sess.Close()
		return nil, fmt.Errorf("%w: start on %s: %w", ErrAgent, c.Name, err)
	}
	return st, nil
}

// Close ends the agent session and the SSH connection.
func (s *Stream) Close() error {
	s.once.Do(func() {
		s.Stdin.Close()
		s.sess.Close()
		s.client.Close()
	})
	return nil
}

// Platform maps `uname -sm` output to Go's GOOS and GOARCH names.
func Platform(uname string) (goos, goarch string) { return platform(uname) }
