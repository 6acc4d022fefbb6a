//go:build linux && !gosync_portable

// These scenarios rely on the Linux lease check (engine/writing_lease.go):
// a file a generator is still writing is held, so the mirror never shows
// it torn. The portable build cannot tell, and sends what it reads; the
// rebuild scenarios would be flaky there, not wrong in what they test.

package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosync/gosync/engine/sshx/sshtest"
	"github.com/gosync/gosync/engine/treetest"
)

// rm -rf of the whole source and a scripted generator: the mirror keeps
// every page that exists before and after, in its old or new version, at
// every moment, and ends up as the new site (removed pages gone).
func TestWatchRebuildNeverBlanksLocal(t *testing.T) {
	rebuildScenario(t, func(d string) string { return d }, true)
}

func TestWatchRebuildNeverBlanksSSH(t *testing.T) {
	sshtest.Start(t)
	rebuildScenario(t, func(d string) string { return sshtest.Alias + ":" + d }, true)
}

// The same with subtrees removed inside a source that stays.
func TestWatchRebuildSubtreesNeverBlanks(t *testing.T) {
	rebuildScenario(t, func(d string) string { return d }, false)
}

// A real static site generator: rm -rf public && hugo -d public.
func TestWatchHugoRebuild(t *testing.T) {
	hugo, err := exec.LookPath("hugo")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("hugo is not installed (.ci/run installs it)")
		}
		t.Skip("hugo is not installed (apt-get install hugo)")
	}
	proj := t.TempDir()
	treetest.Write(t, proj, map[string]string{
		"config.toml":                    "baseURL = 'http://example.org/'\ntitle = 'Test'\ndisableKinds = ['taxonomy', 'term', 'RSS', 'sitemap', 'robotsTXT', '404']\n",
		"layouts/_default/single.html":   "<html><body><h1>{{ .Title }}</h1>{{ .Content }}</body></html>\n",
		"layouts/_default/list.html":     "<html><body>{{ range .Pages }}<a href='{{ .RelPermalink }}'>{{ .Title }}</a>{{ end }}</body></html>\n",
		"layouts/index.html":             "<html><body>{{ range .Site.RegularPages }}<a href='{{ .RelPermalink }}'>{{ .Title }}</a>{{ end }}</body></html>\n",
		"static/css/site.css":            "body{}",
		"content/posts/_index.md":        "---\ntitle: Posts\n---\n",
		"content/about.md":               "---\ntitle: About\n---\nabout\n",
		"static/img/logo.svg":            "<svg/>",
		"content/posts/first-post.md":    "---\ntitle: First\n---\nfirst\n",
		"content/posts/another-thing.md": "---\ntitle: Another\n---\nanother\n",
	})
	for i := range 400 {
		write(t, filepath.Join(proj, fmt.Sprintf("content/posts/p%03d.md", i)), fmt.Sprintf("---\ntitle: Page %d\n---\nbody %d\n", i, i))
	}
	build := func() {
		t.Helper()
		must(t, os.RemoveAll(filepath.Join(proj, "public")))
		cmd := exec.Command(hugo, "--quiet", "-d", "public")
		cmd.Dir = proj
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("hugo: %v\n%s", err, out)
		}
	}
	build()
	src := filepath.Join(proj, "public")
	dst := filepath.Join(t.TempDir(), "www")
	// The default --settle (2 s): hugo's start on a loaded machine can
	// leave SRC quiet and empty for longer than a shorter window, and
	// then the deletes would be right by the rule (README, Watching).
	log := watching(t, "-i", "--max-delay", "300ms", "--reconcile", "0", src, dst)
	converge(t, src, dst, log, "initial sync")
	for round := 1; round <= 3; round++ {
		before := readTree(t, src)
		// Each round edits one page and removes another, as a writer would.
		write(t, filepath.Join(proj, "content/posts/p001.md"), fmt.Sprintf("---\ntitle: Page 1\n---\nedited %d\n", round))
		must(t, os.RemoveAll(filepath.Join(proj, fmt.Sprintf("content/posts/p%03d.md", 100+round))))
		// The pages hugo writes again: each must be there at every
		// moment, whole (hugo's output is not known before it runs).
		allowed := map[string]func([]byte) bool{}
		for p := range before {
			if !strings.Contains(p, fmt.Sprintf("p%03d", 100+round)) && strings.HasSuffix(p, ".html") && p != "index.html" && !strings.HasPrefix(p, "posts/index") {
				allowed[p] = func(b []byte) bool { return bytes.HasSuffix(b, []byte("</html>\n")) }
			}
		}
		s := sampleMirror(dst, allowed)
		build()
		converge(t, src, dst, log, fmt.Sprintf("hugo rebuild %d", round))
		s.finish(t, log, fmt.Sprintf("hugo rebuild %d", round))
	}
}

// A file written for a while by a process that keeps it open is not
// published until it is closed, and is sent once.
func TestWatchHoldsFileOpenForWriting(t *testing.T) {
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "v1"})
	dst := filepath.Join(t.TempDir(), "www")
	log := watching(t, "--reconcile", "0", src, dst)
	converge(t, src, dst, log, "initial sync")

	const chunk, chunks = 256 << 10, 24 // 6 MiB over about 1.2 s
	want := bytes.Repeat([]byte("0123456789abcdef"), chunk*chunks/16)
	f, err := os.Create(filepath.Join(src, "video.mp4"))
	must(t, err)
	defer f.Close()
	var partial atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if b, err := os.ReadFile(filepath.Join(dst, "video.mp4")); err == nil && !bytes.Equal(b, want) {
				partial.Store(int64(len(b)))
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	for i := range chunks {
		_, err := f.Write(want[i*chunk : (i+1)*chunk])
		must(t, err)
		// Meanwhile other saves go through: the held file holds back
		// nothing else.
		if i == chunks/2 {
			write(t, filepath.Join(src, "index.html"), "v2 during the copy")
			waitFor(t, log, func() bool {
				b, _ := os.ReadFile(filepath.Join(dst, "index.html"))
				return string(b) == "v2 during the copy"
			}, "other path during the copy")
		}
		time.Sleep(50 * time.Millisecond)
	}
	must(t, f.Close())
	waitFor(t, log, func() bool { b, _ := os.ReadFile(filepath.Join(dst, "video.mp4")); return bytes.Equal(b, want) }, "complete file mirrored")
	close(stop)
	<-sampled
	if n := partial.Load(); n != 0 {
		t.Fatalf("the mirror showed video.mp4 half-written (%d bytes)\nlog:\n%s", n, log.String())
	}
	if got := strings.Count(log.String(), "video.mp4"); !strings.Contains(log.String(), "still being written") || got > 3 {
		t.Fatalf("video.mp4 should be held once and sent once; the log names it %d times:\n%s", got, log.String())
	}
}
