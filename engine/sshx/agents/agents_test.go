package agents_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/gosync/gosync/engine/sshx/agents"
)

// What Pack writes, Load reads back byte for byte, with the hash and size
// of the uncompressed executable; Clean leaves the directory as it was.
func TestPackLoadRoundTrip(t *testing.T) {
	src := t.TempDir()
	want := map[string][]byte{
		"linux/amd64": bytes.Repeat([]byte("\x7fELF amd64 agent "), 40000),
		"linux/arm64": []byte("\x7fELF tiny arm64 agent"),
	}
	var exes []agents.Executable
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		path := filepath.Join(src, filepath.Base(p))
		if err := os.WriteFile(path, want[p], 0o755); err != nil {
			t.Fatal(err)
		}
		exes = append(exes, agents.Executable{GOOS: "linux", GOARCH: filepath.Base(p), Path: path})
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "gosync-agent-linux-386.zst"), []byte("stale"), 0o644)
	if err := agents.Pack(dir, exes); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "gosync-agent-linux-386.zst")); err == nil {
		t.Fatal("Pack kept an agent of an earlier build")
	}
	list, err := agents.Load(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("loaded %d agents", len(list))
	}
	for _, a := range list {
		r, err := a.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, want[a.Platform()]) {
			t.Fatalf("%s: %d bytes back, want %d (%v)", a.Platform(), len(got), len(want[a.Platform()]), err)
		}
		direct, err := agents.FromFile(a.GOOS, a.GOARCH, filepath.Join(src, a.GOARCH))
		if err != nil {
			t.Fatal(err)
		}
		if a.Hash != direct.Hash || a.Size != int64(len(got)) {
			t.Fatalf("%s: manifest says %s %d, file is %s %d", a.Platform(), a.Hash, a.Size, direct.Hash, len(got))
		}
	}
	if err := agents.Clean(dir); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("Clean left %v", left)
	}
}

// A plain build carries no agents, and says so without an error.
func TestPlainBuildEmbedsNothing(t *testing.T) {
	list, err := agents.Embedded()
	if err != nil || len(list) != 0 {
		t.Fatalf("Embedded() = %d agents, %v", len(list), err)
	}
}

func TestLoadRejectsBrokenManifest(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, agents.Manifest), []byte("linux/amd64 abc 12 missing.zst\n"), 0o644)
	if _, err := agents.Load(os.DirFS(dir)); err == nil {
		t.Fatal("a malformed manifest was accepted")
	}
}
