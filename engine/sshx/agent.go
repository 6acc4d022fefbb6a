package sshx

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/crypto/ssh"

	"github.com/gosync/gosync/engine/sshx/agents"
	"github.com/gosync/gosync/engine/wire"
)

// Binary is what a client can run on a remote host as its agent.
type Binary struct {
	Path string // the running executable
	Hash string // hex SHA-256 of the file at Path
	// Protocol is the wire protocol version the binary speaks; a gosync
	// found on the remote PATH is used only if it reports the same one.
	Protocol int
	// Agents are executables for server platforms: a release build's
	// embedded ones (SelfBinary), or any a caller adds. For a host of the
	// client's own platform that none of them fits, the client uploads
	// itself.
	Agents []agents.Agent
}

// SelfBinary describes the running executable and the agents built into it.
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
	embedded, err := agents.Embedded()
	if err != nil {
		return Binary{}, fmt.Errorf("embedded agents: %w", err)
	}
	return Binary{Path: exe, Hash: hex.EncodeToString(h.Sum(nil)), Protocol: protocol, Agents: embedded}, nil
}

// uploadable lists the agents this binary can upload, at most one per
// platform: the carried ones, then itself for its own platform.
func (b Binary) uploadable() []agents.Agent {
	list := slices.Clone(b.Agents)
	own := slices.ContainsFunc(list, func(a agents.Agent) bool { return a.GOOS == runtime.GOOS && a.GOARCH == runtime.GOARCH })
	if !own && b.Path != "" && b.Hash != "" {
		path := b.Path
		list = append(list, agents.Agent{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Hash: b.Hash,
			Open: func() (io.ReadCloser, error) { return os.Open(path) }})
	}
	return list
}

// errUploadDone stops the compressor of an upload that ended.
var errUploadDone = errors.New("upload ended")

// ErrAgent wraps failures to find, upload or start the remote agent.
var ErrAgent = errors.New("remote agent")

// cacheDir is where uploaded agents live on the remote host, one
// directory per agent hash, so different versions and platforms never
// collide.
const cacheDir = `${XDG_CACHE_HOME:-$HOME/.cache}/gosync`

// kernels and machines map `uname -s` and `uname -m` to Go's names. The
// start script uses them too, to consider only cached agents of the
// host's platform. armv6l maps to arm although the release agent is
// built for ARMv7 (GOARM=7): such a host needs --remote-gosync.
var (
	kernels  = map[string]string{"linux": "Linux", "darwin": "Darwin", "freebsd": "FreeBSD"}
	machines = map[string][]string{
		"amd64": {"x86_64", "amd64"},
		"arm64": {"aarch64", "arm64"},
		"arm":   {"armv7l", "armv6l"},
		"386":   {"i386", "i686"},
	}
)

// Platform maps `uname -sm` output to Go's GOOS and GOARCH names; an
// unknown kernel or machine is returned lower-cased or as it is, so an
// error can name it.
func Platform(uname string) (goos, goarch string) {
	f := strings.Fields(uname)
	if len(f) != 2 {
		return "", ""
	}
	goos, goarch = strings.ToLower(f[0]), f[1]
	for arch, names := range machines {
		if slices.Contains(names, f[1]) {
			goarch = arch
		}
	}
	return goos, goarch
}

// unamePattern is a shell case pattern matching the `uname -sm` of
// goos/goarch hosts.
func unamePattern(goos, goarch string) string {
	kernel, ok := kernels[goos]
	if !ok || len(machines[goarch]) == 0 {
		return ""
	}
	var alts []string
	for _, m := range machines[goarch] {
		alts = append(alts, shellQuote(kernel+" "+m))
	}
	return strings.Join(alts, "|")
}

// prelude defines what the start and upload scripts share. gosync_safe
// refuses a cache directory another user owns or that group or others
// can write (they could swap the agent between its check and its start);
// ls -ldn is the one portable way to read owner and mode in POSIX sh.
// gosync_sha hashes a file or stops the script: a host without a hash
// tool gets no unverified agent. No umask here: the agent inherits the
// start script's, and creates the mirror directory with it.
const prelude = `set -f; b="` + cacheDir + `"; ` +
	`gosync_safe() { l=$(LC_ALL=C ls -ldn "$1") || exit 3; set -- "$1" $l; ` +
	`case $2 in d????w*|d???????w*) echo "gosync: refusing the agent cache $1: group or others can write it (chmod 700 it)" >&2; exit 3;; d*) ;; ` +
	`*) echo "gosync: refusing the agent cache $1: not a directory" >&2; exit 3;; esac; ` +
	`if [ "$4" != "$(id -u)" ]; then echo "gosync: refusing the agent cache $1: owned by uid $4, not by you (uid $(id -u))" >&2; exit 3; fi; }; ` +
	`gosync_sha() { if command -v sha256sum >/dev/null 2>&1; then gosync_h=$(sha256sum <"$1"); ` +
	`elif command -v shasum >/dev/null 2>&1; then gosync_h=$(shasum -a 256 <"$1"); ` +
	`elif command -v sha256 >/dev/null 2>&1; then gosync_h=$(sha256 -q <"$1"); ` +
	`else echo "gosync: cannot verify the agent: this host has no sha256sum, shasum or sha256; install coreutils (sha256sum) or perl (shasum)" >&2; exit 3; fi; ` +
	`gosync_h=${gosync_h%% *}; }; `

// Lines the start script prints before it starts an agent or ends.
const (
	markStart = "gosync-start " // then "cached" or "path"; the agent's stream follows
	markUname = "gosync-uname "
	markPath  = "gosync-path " // a gosync in PATH that speaks another protocol
	markGzip  = "gosync-gzip"  // the host can take the upload gzip-compressed
)

// startScript is the one remote command that starts an agent when the
// host has one to use, checking it there and then, and otherwise reports
// what the client needs to choose one to upload: in this order, a cached
// upload of one of bin's agents for the host's platform whose SHA-256
// still matches (a mismatch is removed, to be uploaded again), then a
// gosync in PATH speaking protocol bin.Protocol exactly.
func startScript(bin Binary, setup, rootArg string) string {
	var s strings.Builder
	s.WriteString(prelude + setup + `u=$(uname -sm); if [ -d "$b" ]; then `)
	for _, a := range bin.uploadable() {
		pat := unamePattern(a.GOOS, a.GOARCH)
		if pat == "" {
			continue
		}
		d := `"$b/` + a.Hash[:16] + `"`
		fmt.Fprintf(&s, `case $u in %s) if [ -f %s/gosync ]; then gosync_safe "$b"; gosync_safe %s; gosync_sha %s/gosync; `+
			`if [ "$gosync_h" = %s ]; then echo %scached; exec %s/gosync agent %s; fi; rm -f %s/gosync; fi;; esac; `,
			pat, d, d, d, a.Hash, markStart, d, rootArg, d)
	}
	fmt.Fprintf(&s, `fi; if g=$(command -v gosync 2>/dev/null); then v=$("$g" version </dev/null 2>/dev/null | head -n 1); `+
		`case " $v " in *" protocol %d "*) echo %spath; exec "$g" agent %s;; esac; echo "%s$v"; fi; `+
		`if command -v gzip >/dev/null 2>&1; then echo %s; fi; echo "%s$u"`,
		bin.Protocol, markStart, rootArg, markPath, markGzip, markUname)
	return s.String()
}

// uploadScript stores stdin as the agent with the given hash, verified
// before it is renamed into place, and checks that it runs there (a
// noexec home fails here, with a message saying so). With gz, stdin is
// gzip-compressed; the hash is checked on what gzip wrote.
func uploadScript(hash string, gz bool) string {
	receive := `cat`
	if gz {
		receive = `gzip -dc`
	}
	return prelude + `d="$b/` + hash[:16] + `"; umask 077; mkdir -p "$d" || exit 3; gosync_safe "$b"; gosync_safe "$d"; ` +
		`t="$d/.upload.$$"; trap 'rm -f "$t"' EXIT; ` + receive + ` >"$t" || exit 3; gosync_sha "$t"; ` +
		`if [ "$gosync_h" != ` + hash + ` ]; then echo "gosync: agent upload corrupted: SHA-256 $gosync_h" >&2; exit 3; fi; ` +
		`chmod 700 "$t" && mv -f "$t" "$d/gosync" || exit 3; trap - EXIT; "$d/gosync" version >/dev/null || exit; ` + pruneScript
}

// KeepAgents is how many uploaded agents an upload leaves in the host's
// cache, itself included: every gosync build uploads another 10 MB.
const KeepAgents = 3

// pruneScript runs after a successful upload (in $d): it removes the
// cache's agent directories beyond the KeepAgents newest by upload time
// (the directory's mtime), never $d itself, and looks only at entries
// named like agent directories (16 hex digits) that are directories,
// not symlinks (ls -t sorts by the entry's own mtime; rm -r never
// follows a symlink inside). An agent still running from a removed
// directory runs on; a session that starts an old build later uploads
// it again. A failed removal does not fail the upload.
var pruneScript = `n=1; for e in $(LC_ALL=C ls -t "$b"); do ` +
	`case $e in ` + strings.Repeat("[0-9a-f]", 16) + `) ;; *) continue;; esac; ` +
	`[ "$b/$e" = "$d" ] && continue; [ -L "$b/$e" ] && continue; [ -d "$b/$e" ] || continue; ` +
	`n=$((n+1)); [ $n -le ` + strconv.Itoa(KeepAgents) + ` ] && continue; rm -rf "$b/$e"; done; exit 0`

// AgentCommand returns the remote shell command that starts the agent
// for root: with remoteGosync, that program; otherwise the start script,
// which first prints a "gosync-start" line when it starts one and
// otherwise only reports the host's platform (OpenAgent handles both).
// A root starting with ~ or ~user is expanded by the remote shell, as
// scp and rsync do.
func AgentCommand(bin Binary, root, remoteGosync string) (string, error) {
	setup, rootArg, err := rootWord(root)
	if err != nil {
		return "", err
	}
	if remoteGosync != "" {
		return setup + shellQuote(remoteGosync) + " agent " + rootArg, nil
	}
	return startScript(bin, setup, rootArg), nil
}

// OpenAgent starts the agent for root on the host. Lookup order:
// remoteGosync if given; a cached upload, re-verified by its SHA-256 in
// the command that starts it; a gosync in PATH with the same protocol;
// else it uploads bin's agent for the host's `uname -sm` and starts that.
// A host that has an agent costs one SSH session; the first contact
// three (probe, upload, start). A key whose authorized_keys line forces
// `gosync agent --restrict DIR` runs that agent whatever the client asks;
// it greets at once, and its greeting in place of the script's output
// makes the first session the agent's: nothing is probed or uploaded.
func OpenAgent(ctx context.Context, c *Client, bin Binary, root, remoteGosync string) (*Stream, error) {
	cmd, err := AgentCommand(bin, root, remoteGosync)
	if err != nil {
		return nil, err
	}
	if remoteGosync != "" {
		return StartAgent(c, cmd)
	}
	st, p, err := startOrProbe(ctx, c, cmd)
	if st != nil || err != nil {
		return st, err
	}
	a, err := chooseAgent(c, bin, p)
	if err != nil {
		return nil, err
	}
	// A development build uploading itself sends it as it is: that is a
	// host of the developer's own platform, usually near, and it keeps
	// the race-instrumented tests (where compressing a 10 MB test binary
	// takes 10 s) fast. Carried agents go compressed where gzip is.
	gz := p.gzip && a.Hash != bin.Hash
	if err := upload(ctx, c, a, gz); err != nil {
		return nil, err
	}
	st, _, err = startOrProbe(ctx, c, cmd)
	if st == nil && err == nil {
		err = fmt.Errorf("%w: %s: the agent just uploaded for %s was not started from the cache", ErrAgent, c.Name, a.Platform())
	}
	return st, err
}

// probeTimeout bounds the start script until it starts an agent or ends.
var probeTimeout = 30 * time.Second

// probe is what the start script reports when it started nothing.
type probe struct {
	uname string // `uname -sm`
	path  string // `gosync version` of a gosync in PATH that did not fit
	gzip  bool   // the host has gzip
}

// startOrProbe runs the start script: a Stream if it started an agent,
// else what it reported. A script that failed (an unsafe cache, no hash
// tool, an unknown ~user) is an ErrAgent with its message.
func startOrProbe(ctx context.Context, c *Client, cmd string) (*Stream, probe, error) {
	st, err := StartAgent(c, cmd)
	if err != nil {
		return nil, probe{}, err
	}
	stop := context.AfterFunc(ctx, func() { st.sess.Close() })
	defer stop()
	// A forced command that is no gosync agent, or an old one that does
	// not greet, would leave the client waiting for ever.
	// Closing the session does not end a read while the remote command
	// runs on: the connection goes, which ends this dial anyway.
	quiet := time.AfterFunc(probeTimeout, func() { st.sess.Close(); c.Close() })
	defer quiet.Stop()
	silent := func() error {
		return fmt.Errorf("%w: %s: the remote command neither started an agent nor ended within %s; "+
			"if the key's line in authorized_keys forces a command, it must be `gosync agent --restrict DIR` of a gosync speaking protocol %d",
			ErrAgent, c.Name, probeTimeout, wire.Version)
	}
	// Small and bounded: a shell start-up file may print anything.
	br := bufio.NewReaderSize(st.Stdout, 4096)
	var p probe
	for lines := 0; lines < 256; lines++ {
		if greets(br) && quiet.Stop() {
			// sshd ran the key's forced command, an agent, instead of
			// the script (after what start-up files printed): it
			// greeted, and the session is the agent's. Nothing else is
			// probed, uploaded or started.
			st.Stdout = br
			return st, p, nil
		}
		b, err := br.ReadSlice('\n')
		line := strings.TrimSuffix(string(b), "\n")
		switch {
		case strings.HasPrefix(line, markStart):
			if !quiet.Stop() {
				st.sess.Close()
				return nil, p, silent()
			}
			st.Stdout = br // it may hold the agent's first bytes
			return st, p, nil
		case strings.HasPrefix(line, markUname):
			p.uname = strings.TrimPrefix(line, markUname)
		case strings.HasPrefix(line, markPath):
			p.path = strings.TrimPrefix(line, markPath)
		case line == markGzip:
			p.gzip = true
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			break
		}
	}
	werr := st.wait()
	st.sess.Close()
	if ctx.Err() != nil {
		return nil, p, ctx.Err()
	}
	if !quiet.Stop() {
		return nil, p, silent()
	}
	if werr != nil {
		var exit *ssh.ExitError
		if !errors.As(werr, &exit) {
			return nil, p, sessionError(c, werr)
		}
		msg := st.stderr.LastLine()
		if msg == "" {
			msg = werr.Error()
		}
		return nil, p, fmt.Errorf("%w on %s: %s", ErrAgent, c.Name, msg)
	}
	if p.uname == "" {
		return nil, p, fmt.Errorf("%w: %s: the agent probe printed no `uname -sm`", ErrAgent, c.Name)
	}
	return nil, p, nil
}

// greets reports whether the output starts with an agent's Hello rather
// than the script's lines (wire.FlagGreeting); it reads nothing from br.
func greets(br *bufio.Reader) bool {
	b, _ := br.Peek(1)
	if len(b) == 0 || b[0] != byte(wire.THello) {
		return false
	}
	b, _ = br.Peek(wire.HelloPrefix)
	return wire.LooksLikeHello(b)
}

// chooseAgent picks bin's agent for the host's platform, or says how to
// get one.
func chooseAgent(c *Client, bin Binary, p probe) (agents.Agent, error) {
	goos, goarch := Platform(p.uname)
	list := bin.uploadable()
	var have []string
	for _, a := range list {
		if a.GOOS == goos && a.GOARCH == goarch {
			return a, nil
		}
		have = append(have, a.Platform())
	}
	inPath := ""
	if p.path != "" {
		inPath = fmt.Sprintf(" (the gosync in its PATH says %q)", p.path)
	}
	return agents.Agent{}, fmt.Errorf("%w: %s is %s/%s (uname %q) and this gosync carries no agent for it, only for %s; "+
		"use a release build, which carries agents for every server platform (in the gosync source: go run ./cmd/gosync-dist -o dist, then dist/gosync-%s-%s%s), "+
		"or install gosync speaking protocol %d on %s in PATH%s, or pass --remote-gosync PATH",
		ErrAgent, c.Name, goos, goarch, p.uname, strings.Join(have, ", "), runtime.GOOS, runtime.GOARCH, exeSuffix(), bin.Protocol, c.Name, inPath)
}

func exeSuffix() string {
	if runtime.GOOS == "windows" {
		return ".exe"
	}
	return ""
}

// upload copies the agent into the host's cache atomically: a temporary
// name, a hash check on the remote side, then a rename. SSH does not
// compress, so when the host has gzip the agent goes gzip-compressed:
// 40% of its size, the bulk of a first contact's bytes.
func upload(ctx context.Context, c *Client, a agents.Agent, gz bool) error {
	f, err := a.Open()
	if err != nil {
		return fmt.Errorf("%w: open the %s agent: %w", ErrAgent, a.Platform(), err)
	}
	defer f.Close()
	var r io.Reader = f
	if gz {
		pr, pw := io.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			// The compressor writes in small pieces, and each write
			// to the session is an SSH packet: batch them.
			bw := bufio.NewWriterSize(pw, 64<<10)
			// Level 1 gets most of the gain for half the CPU of the
			// default (3.3 MB agent: 1.5 MB in 0.1 s here).
			zw, _ := gzip.NewWriterLevel(bw, gzip.BestSpeed)
			_, err := io.Copy(zw, f)
			if err == nil {
				err = zw.Close()
			}
			if err == nil {
				err = bw.Flush()
			}
			pw.CloseWithError(err)
		}()
		// The session may end before reading everything: unblock the
		// compressor, then wait for it, before f is closed.
		defer func() {
			pr.CloseWithError(errUploadDone)
			<-done
		}()
		r = pr
	}
	if _, err := run(ctx, c, uploadScript(a.Hash, gz), r); err != nil {
		msg := err.Error()
		switch {
		case strings.Contains(msg, "No space left") || strings.Contains(msg, "Disk quota"):
			return fmt.Errorf("%w: upload to %s failed, the disk is full: %s", ErrAgent, c.Name, msg)
		case strings.Contains(msg, "Permission denied"):
			return fmt.Errorf("%w: cannot run an uploaded agent on %s (is the home directory mounted noexec?): %s; install gosync there in PATH or pass --remote-gosync PATH", ErrAgent, c.Name, msg)
		}
		return fmt.Errorf("%w: upload of the %s agent (%s bytes) to %s: %w", ErrAgent, a.Platform(), strconv.FormatInt(a.Size, 10), c.Name, err)
	}
	return nil
}
