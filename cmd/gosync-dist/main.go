// Command gosync-dist makes a release: a gosync for every client platform,
// each carrying compressed agents for every server platform.
//
//	go run ./cmd/gosync-dist -o DIR [-platforms goos/goarch,...] [-agents goos/goarch,...]
//
// It builds the slim agent (cmd/gosync-agent) for each server platform,
// packs the agents into engine/sshx/agents, builds cmd/gosync with the
// tag gosync_agents for each client platform into
// DIR/gosync-<goos>-<goarch>[.exe], writes DIR/SHA256SUMS, and removes
// the packed agents again, so a plain build stays agent-free. Builds are
// reproducible: no cgo, -trimpath, no local paths or times; the same
// commit and Go version give the same bytes.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gosync/gosync/engine/sshx/agents"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gosync-dist:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gosync-dist", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output `dir`ectory (required)")
	clientList := fs.String("platforms", "", "client `platforms` to build, goos/goarch,... (default all: "+names(clients)+")")
	serverList := fs.String("agents", "", "server `platforms` to carry agents for (default all: "+names(servers)+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() != 0 {
		return errors.New("usage: go run ./cmd/gosync-dist -o DIR [-platforms goos/goarch,...] [-agents goos/goarch,...]")
	}
	cl, err := pick(clients, *clientList)
	if err != nil {
		return fmt.Errorf("-platforms: %w", err)
	}
	sv, err := pick(servers, *serverList)
	if err != nil {
		return fmt.Errorf("-agents: %w", err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	pkgDir, err := goList(ctx, "github.com/gosync/gosync/engine/sshx/agents")
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "gosync-dist-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	var exes []agents.Executable
	for _, p := range sv {
		exe := filepath.Join(tmp, "gosync-agent-"+p.GOOS+"-"+p.GOARCH)
		if err := build(ctx, p, exe, "github.com/gosync/gosync/cmd/gosync-agent"); err != nil {
			if skip(stderr, p, "agent", err) {
				continue
			}
			return err
		}
		exes = append(exes, agents.Executable{GOOS: p.GOOS, GOARCH: p.GOARCH, Path: exe})
	}
	if len(exes) == 0 {
		return errors.New("no agent could be built")
	}
	if err := agents.Pack(pkgDir, exes); err != nil {
		return err
	}
	defer agents.Clean(pkgDir)
	packed, err := agents.Load(os.DirFS(pkgDir))
	if err != nil {
		return err
	}
	for _, a := range packed {
		fi, err := os.Stat(filepath.Join(pkgDir, agents.FileName(a.GOOS, a.GOARCH)))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "agent  %-14s %9d bytes, %9d compressed\n", a.Platform(), a.Size, fi.Size())
	}

	var sums bytes.Buffer
	built := 0
	for _, p := range cl {
		name := "gosync-" + p.GOOS + "-" + p.GOARCH
		if p.GOOS == "windows" {
			name += ".exe"
		}
		exe := filepath.Join(*out, name)
		if err := build(ctx, p, exe, "github.com/gosync/gosync/cmd/gosync", "-tags=gosync_agents"); err != nil {
			if skip(stderr, p, "client", err) {
				continue
			}
			return err
		}
		sum, size, err := agents.HashFile(exe)
		if err != nil {
			return err
		}
		fmt.Fprintf(&sums, "%s  %s\n", sum, name)
		fmt.Fprintf(stdout, "client %-14s %9d bytes  %s\n", p, size, exe)
		built++
	}
	if built == 0 {
		return errors.New("no client could be built")
	}
	return os.WriteFile(filepath.Join(*out, "SHA256SUMS"), sums.Bytes(), 0o644)
}

// build runs go build for one platform with the release flags: no cgo
// (the agent must run on any libc, or none), no local paths (-trimpath),
// no symbol tables (-s -w: stack traces still work), and VCS stamping
// kept, since the same commit always stamps the same revision.
func build(ctx context.Context, p platform, out, pkg string, extra ...string) error {
	args := append([]string{"build", "-trimpath", "-ldflags=-s -w", "-o", out}, extra...)
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.GOOS, "GOARCH="+p.GOARCH, "GOARM="+p.GOARM, "GOFLAGS=")
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &errb, &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s for %s: %w\n%s", pkg, p, err, strings.TrimSpace(errb.String()))
	}
	return nil
}

// skip reports a pending platform that does not compile yet and says it
// was skipped; a platform that should compile is not skipped.
func skip(w io.Writer, p platform, what string, err error) bool {
	if !p.pending {
		return false
	}
	// The first compiler message says why; the rest is more of the same.
	detail := ""
	if lines := strings.Split(err.Error(), "\n"); len(lines) > 2 {
		detail = ": " + strings.TrimSpace(lines[2])
	}
	fmt.Fprintf(w, "skip   %-14s %s does not compile yet (port in progress)%s\n", p, what, detail)
	return true
}

// pick selects platforms by name from all; empty means all.
func pick(all []platform, list string) ([]platform, error) {
	if list == "" {
		return all, nil
	}
	var out []platform
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(all, func(p platform) bool { return p.String() == name })
		if i < 0 {
			return nil, fmt.Errorf("unknown platform %q (known: %s)", name, names(all))
		}
		out = append(out, all[i])
	}
	return out, nil
}

func names(ps []platform) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, ",")
}

// goList finds a package's directory in the module being built.
func goList(ctx context.Context, pkg string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-f", "{{.Dir}}", pkg).Output()
	if err != nil {
		return "", fmt.Errorf("go list %s (run gosync-dist inside the gosync module): %w", pkg, err)
	}
	return strings.TrimSpace(string(out)), nil
}
