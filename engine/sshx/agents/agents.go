// Package agents holds the gosync agents a release build carries for
// every server platform, and the format they are stored in: one
// zstd-compressed executable per platform and a manifest (agents.txt)
// giving each one's platform, SHA-256 and size, uncompressed.
//
// cmd/gosync-dist writes those files into this directory and builds the
// release binaries with the build tag gosync_agents, which embeds them. A
// plain `go build ./cmd/gosync` embeds nothing: Embedded returns no agent
// and the client can only upload itself to a host of its own platform.
//
// The package knows nothing of SSH or of how a host is probed; engine/sshx
// chooses an agent and uploads it.
package agents

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Manifest is the name of the file listing the agents in a directory.
const Manifest = "agents.txt"

// Agent is one agent executable for one server platform.
type Agent struct {
	GOOS, GOARCH string
	Hash         string // hex SHA-256 of the executable, uncompressed
	Size         int64  // uncompressed
	// Open returns the executable's bytes, uncompressed. Each call starts
	// from the beginning.
	Open func() (io.ReadCloser, error)
}

// Platform is "goos/goarch".
func (a Agent) Platform() string { return a.GOOS + "/" + a.GOARCH }

// FileName is the name of a platform's compressed agent in a directory.
func FileName(goos, goarch string) string { return "gosync-agent-" + goos + "-" + goarch + ".zst" }

// Embedded returns the agents built into this binary (none without the
// build tag gosync_agents). A manifest that does not match the files is
// an error: it means a broken release build, not a missing platform.
func Embedded() ([]Agent, error) {
	if _, err := fs.Stat(embedded, Manifest); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return Load(embedded)
}

// Load reads the manifest in fsys and returns its agents; the executables
// are decompressed only when opened.
func Load(fsys fs.FS) ([]Agent, error) {
	m, err := fs.ReadFile(fsys, Manifest)
	if err != nil {
		return nil, err
	}
	var list []Agent
	sc := bufio.NewScanner(bytes.NewReader(m))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("%s:%d: want \"goos/goarch sha256 size file\", got %q", Manifest, n, line)
		}
		goos, goarch, ok := strings.Cut(f[0], "/")
		size, err := strconv.ParseInt(f[2], 10, 64)
		if !ok || err != nil || len(f[1]) != 64 {
			return nil, fmt.Errorf("%s:%d: malformed entry %q", Manifest, n, line)
		}
		if _, err := fs.Stat(fsys, f[3]); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", Manifest, n, err)
		}
		name := f[3]
		list = append(list, Agent{GOOS: goos, GOARCH: goarch, Hash: f[1], Size: size, Open: func() (io.ReadCloser, error) {
			return openCompressed(fsys, name)
		}})
	}
	return list, sc.Err()
}

// openCompressed streams a decompressed file: an agent is uploaded as it
// is decoded, never held in memory whole.
func openCompressed(fsys fs.FS, name string) (io.ReadCloser, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	// One goroutine and a small window: decoding is far faster than an
	// SSH upload, and a client may open one agent per mirror at once.
	d, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		f.Close()
		return nil, err
	}
	return decoder{d, f}, nil
}

type decoder struct {
	d *zstd.Decoder
	f fs.File
}

func (d decoder) Read(p []byte) (int, error) { return d.d.Read(p) }
func (d decoder) Close() error {
	d.d.Close()
	return d.f.Close()
}

// FromFile describes an uncompressed executable on disk as the agent for
// goos/goarch (tests feed a freshly built agent through the same lookup
// a release binary's embedded agents go through).
func FromFile(goos, goarch, path string) (Agent, error) {
	hash, size, err := HashFile(path)
	if err != nil {
		return Agent{}, err
	}
	return Agent{GOOS: goos, GOARCH: goarch, Hash: hash, Size: size, Open: func() (io.ReadCloser, error) { return os.Open(path) }}, nil
}

// HashFile returns the hex SHA-256 and the size of the file at path.
func HashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Executable is an agent built for a platform, to be packed.
type Executable struct {
	GOOS, GOARCH string
	Path         string
}

// Pack compresses the executables into dir and writes the manifest,
// replacing any agents packed there before. The output depends only on
// the executables' bytes, so a reproducible build stays reproducible.
func Pack(dir string, exes []Executable) error {
	old, _ := filepath.Glob(filepath.Join(dir, "gosync-agent-*.zst"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	var manifest strings.Builder
	manifest.WriteString("# goos/goarch sha256 size file (written by cmd/gosync-dist)\n")
	for _, e := range exes {
		hash, size, err := HashFile(e.Path)
		if err != nil {
			return err
		}
		name := FileName(e.GOOS, e.GOARCH)
		if err := compressFile(filepath.Join(dir, name), e.Path); err != nil {
			return fmt.Errorf("pack %s/%s: %w", e.GOOS, e.GOARCH, err)
		}
		fmt.Fprintf(&manifest, "%s/%s %s %d %s\n", e.GOOS, e.GOARCH, hash, size, name)
	}
	return os.WriteFile(filepath.Join(dir, Manifest), []byte(manifest.String()), 0o644)
}

func compressFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	// The best level: compressing happens once per release, and every
	// byte saved is a byte less in each release binary.
	enc, err := zstd.NewWriter(out, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1))
	if err != nil {
		out.Close()
		return err
	}
	if _, err := io.Copy(enc, in); err != nil {
		enc.Close()
		out.Close()
		return err
	}
	if err := enc.Close(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Clean removes packed agents and the manifest from dir, leaving the
// package as a plain build sees it.
func Clean(dir string) error {
	old, _ := filepath.Glob(filepath.Join(dir, "gosync-agent-*.zst"))
	for _, f := range append(old, filepath.Join(dir, Manifest)) {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
