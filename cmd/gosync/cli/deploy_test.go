package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosync/gosync/engine/sshx/sshtest"
	"github.com/gosync/gosync/engine/treetest"
)

// Production-safety tests of gosync watch: a rebuild never blanks the
// mirror, startup keeps what only the mirror has, nothing half-written is
// published, failures are retried.

// mirrorSampler watches a mirror while a test changes the source: every
// couple of milliseconds it checks that each of the stable paths (files
// the site has before and after a rebuild) is on the mirror with one of
// its allowed contents, and remembers the worst moment.
type mirrorSampler struct {
	dst     string
	allowed map[string]func([]byte) bool // stable path -> is this content acceptable
	stop    chan struct{}
	done    chan struct{}
	samples atomic.Int64
	mu      sync.Mutex
	minSeen int
	worst   []string // missing or wrong paths at the worst sample
}

func sampleMirror(dst string, allowed map[string]func([]byte) bool) *mirrorSampler {
	s := &mirrorSampler{dst: dst, allowed: allowed, stop: make(chan struct{}), done: make(chan struct{}), minSeen: len(allowed)}
	go s.run()
	return s
}

func (s *mirrorSampler) run() {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		present := 0
		var bad []string
		for p, good := range s.allowed {
			b, err := os.ReadFile(filepath.Join(s.dst, p))
			if err == nil && good(b) {
				present++
			} else if len(bad) < 5 {
				bad = append(bad, p)
			}
		}
		s.samples.Add(1)
		s.mu.Lock()
		if present < s.minSeen {
			s.minSeen, s.worst = present, bad
		}
		s.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
}

// finish stops sampling and fails the test if a stable path was ever
// missing or wrong on the mirror.
func (s *mirrorSampler) finish(t *testing.T, log *syncBuffer, what string) {
	t.Helper()
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Logf("%s: %d samples, minimum %d of %d stable files on the mirror", what, s.samples.Load(), s.minSeen, len(s.allowed))
	if s.minSeen < len(s.allowed) {
		t.Fatalf("%s: the mirror had only %d of the %d files that exist before and after (missing or torn: %v)\nlog:\n%s",
			what, s.minSeen, len(s.allowed), s.worst, log.String())
	}
}

// site is a generated static site: round r drops every 7th page on odd
// rounds, adds a few pages of its own, and changes half of the pages.
func site(round, pages int) map[string]string {
	files := map[string]string{
		"index.html":     fmt.Sprintf("<h1>home, build %d</h1>", round),
		"css/site.css":   "body{}",
		"img/logo.svg":   "<svg/>",
		"feeds/atom.xml": fmt.Sprintf("<feed build=%d/>", round),
	}
	for i := range pages {
		if round%2 == 1 && i%7 == 3 {
			continue
		}
		content := fmt.Sprintf("<p>page %d</p>", i)
		if i%2 == 0 {
			content += fmt.Sprintf(" build %d", round)
		}
		files[fmt.Sprintf("posts/p%03d/index.html", i)] = content
	}
	for i := range 3 {
		files[fmt.Sprintf("posts/new-%d-%d/index.html", round, i)] = "new"
	}
	return files
}

// regenerate writes files the way a generator does after rm -rf: one by
// one, with short pauses, each file written in place.
func regenerate(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	n := 0
	for p, c := range files {
		write(t, filepath.Join(dir, p), c)
		if n++; n%25 == 0 {
			time.Sleep(3 * time.Millisecond)
		}
	}
}

// stableAllowed maps the paths in both trees to their old and new content.
func stableAllowed(before, after map[string]string) map[string]func([]byte) bool {
	m := map[string]func([]byte) bool{}
	for p, c := range before {
		if n, ok := after[p]; ok {
			m[p] = func(b []byte) bool { return string(b) == c || string(b) == n }
		}
	}
	return m
}

func rebuildScenario(t *testing.T, dest func(string) string, removeRoot bool) {
	base := t.TempDir()
	src := filepath.Join(base, "public")
	const pages = 300
	cur := site(0, pages)
	treetest.Write(t, src, cur)
	dst := filepath.Join(t.TempDir(), "www")
	log := watching(t, "-i", "--settle", "700ms", "--max-delay", "300ms", "--reconcile", "0", src, dest(dst))
	converge(t, src, dst, log, "initial sync")
	for round := 1; round <= 3; round++ {
		next := site(round, pages)
		s := sampleMirror(dst, stableAllowed(cur, next))
		if removeRoot {
			must(t, os.RemoveAll(src)) // rm -rf public && generate -d public
		} else {
			for _, d := range []string{"posts", "feeds", "index.html"} {
				must(t, os.RemoveAll(filepath.Join(src, d)))
			}
		}
		regenerate(t, src, next)
		converge(t, src, dst, log, fmt.Sprintf("rebuild %d", round))
		s.finish(t, log, fmt.Sprintf("rebuild %d", round))
		cur = next
	}
}

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
	log := watching(t, "-i", "--settle", "700ms", "--max-delay", "300ms", "--reconcile", "0", src, dst)
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

func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		m[filepath.ToSlash(rel)] = string(b)
		return err
	})
	must(t, err)
	return m
}

// The start of a watch keeps what only the mirror has (user uploads) and
// says so; what is deleted in SRC while watching is deleted; reconciling
// keeps the uploads too. --delete removes them at the start.
func TestWatchStartupKeepsMirrorOnly(t *testing.T) {
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "v1", "old.html": "old"})
	dst := filepath.Join(t.TempDir(), "www")
	treetest.Write(t, dst, map[string]string{"uploads/cat.jpg": "meow", ".env.production": "SECRET=1", "index.html": "v0"})

	// -n shows what the start would do and changes nothing.
	code, out, errOut := gosync(t, "watch", "-n", src, dst)
	if code != 0 || !strings.Contains(out, "kept 2 entries that only "+dst+" has: .env.production, uploads") ||
		!strings.Contains(out, "created  file    old.html") || !strings.Contains(out, "updated  file    index.html") {
		t.Fatalf("watch -n: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if exists(filepath.Join(dst, "old.html")) {
		t.Fatal("watch -n changed the mirror")
	}

	log := watching(t, "--settle", "200ms", "--reconcile", "300ms", src, dst)
	waitFor(t, log, func() bool { return exists(filepath.Join(dst, "old.html")) }, "initial sync")
	waitFor(t, log, func() bool {
		return strings.Contains(log.String(), "kept 2 entries that only the mirror has: .env.production, uploads/; --delete removes them")
	}, "kept entries reported")
	must(t, os.Remove(filepath.Join(src, "old.html")))
	write(t, filepath.Join(src, "new.html"), "new")
	waitFor(t, log, func() bool { return !exists(filepath.Join(dst, "old.html")) && exists(filepath.Join(dst, "new.html")) }, "delete while running")
	// A file uploaded on the server while watching, then reconciliations.
	write(t, filepath.Join(dst, "uploads/dog.jpg"), "woof")
	waitFor(t, log, func() bool { return strings.Count(log.String(), "reconcile") >= 2 }, "two reconciliations")
	for _, p := range []string{"uploads/cat.jpg", "uploads/dog.jpg", ".env.production"} {
		if !exists(filepath.Join(dst, p)) {
			t.Fatalf("%s only on the mirror was deleted\nlog:\n%s", p, log.String())
		}
	}
	// A path the mirror had first, then the source made its own, then
	// deleted: the delete propagates.
	write(t, filepath.Join(src, ".env.production"), "SECRET=2")
	waitFor(t, log, func() bool {
		b, _ := os.ReadFile(filepath.Join(dst, ".env.production"))
		return string(b) == "SECRET=2"
	}, "claimed by the source")
	must(t, os.Remove(filepath.Join(src, ".env.production")))
	waitFor(t, log, func() bool { return !exists(filepath.Join(dst, ".env.production")) }, "deleted after the source claimed it")
}

func TestWatchDeleteRemovesMirrorOnlyAtStart(t *testing.T) {
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "v1"})
	dst := filepath.Join(t.TempDir(), "www")
	treetest.Write(t, dst, map[string]string{"uploads/cat.jpg": "meow"})
	log := watching(t, "--delete", "--settle", "100ms", src, dst)
	converge(t, src, dst, log, "--delete at start")
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

// A log that is appended to forever and never closed still reaches the
// mirror every --max-hold, as a consistent prefix.
func TestWatchNeverClosedFileSentAtCap(t *testing.T) {
	src := t.TempDir()
	dst := filepath.Join(t.TempDir(), "www")
	treetest.Write(t, src, map[string]string{"index.html": "v1"})
	log := watching(t, "--reconcile", "0", "--max-hold", "400ms", src, dst)
	converge(t, src, dst, log, "initial sync")
	f, err := os.Create(filepath.Join(src, "app.log"))
	must(t, err)
	defer f.Close()
	var written bytes.Buffer
	var mu sync.Mutex
	stop := make(chan struct{})
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			line := fmt.Sprintf("line %d\n", i)
			mu.Lock()
			f.WriteString(line)
			written.WriteString(line)
			mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() { close(stop); <-wrote }()
	var sizes []int
	deadline := time.Now().Add(15 * time.Second)
	for len(sizes) < 3 && time.Now().Before(deadline) {
		b, err := os.ReadFile(filepath.Join(dst, "app.log"))
		if err == nil && (len(sizes) == 0 || len(b) > sizes[len(sizes)-1]) {
			mu.Lock()
			prefix := bytes.HasPrefix(written.Bytes(), b)
			mu.Unlock()
			if !prefix {
				t.Fatalf("the mirror's app.log (%d bytes) is not a prefix of what was written", len(b))
			}
			sizes = append(sizes, len(b))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(sizes) < 3 {
		t.Fatalf("a log appended to forever reached the mirror %d times in 15 s, want at least 3\nlog:\n%s", len(sizes), log.String())
	}
}

// A path that fails is retried with backoff, without waiting for an
// event or a reconciliation: here a non-empty directory on the mirror is
// in the way of a file until someone removes it by hand.
func TestWatchRetriesFailedPath(t *testing.T) {
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "v1"})
	dst := filepath.Join(t.TempDir(), "www")
	treetest.Write(t, dst, map[string]string{"report/keep.txt": "mirror only"})
	log := watching(t, "--reconcile", "0", src, dst)
	waitFor(t, log, func() bool { return exists(filepath.Join(dst, "index.html")) }, "initial sync")
	write(t, filepath.Join(src, "report"), "the new report")
	waitFor(t, log, func() bool { return strings.Contains(log.String(), "will retry") }, "failure logged with a retry")
	must(t, os.RemoveAll(filepath.Join(dst, "report"))) // the admin clears the way
	waitFor(t, log, func() bool { b, _ := os.ReadFile(filepath.Join(dst, "report")); return string(b) == "the new report" }, "retried without a new event")
}

// At the start, an error that cannot fix itself ends watch with exit 1
// and the message, as sync would; a refused connection is retried.
func TestWatchPermanentErrorAtStartEnds(t *testing.T) {
	srv := sshtest.Start(t)
	os.Remove(srv.KnownHosts)
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"f": "f"})
	dst := filepath.Join(t.TempDir(), "www")
	done := make(chan struct{})
	var code int
	var stderr string
	go func() {
		defer close(done)
		code, _, stderr = gosync(t, "watch", src, sshtest.Alias+":"+dst)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("watch kept running after the host key was refused")
	}
	if code != ExitFatal || !strings.Contains(stderr, "unknown host key ssh-ed25519 SHA256:") {
		t.Fatalf("exit %d, want %d with the host key message; stderr:\n%s", code, ExitFatal, stderr)
	}
	if exists(dst) {
		t.Fatal("mirror written although the host key was refused")
	}
}

func TestWatchRefusedConnectionRetried(t *testing.T) {
	srv := sshtest.Start(t)
	srv.AppendConfig(t, "\nHost later\n  HostName 127.0.0.1\n  Port 1\n")
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"f": "f"})
	dst := filepath.Join(t.TempDir(), "www")
	log := watching(t, src, "later:"+dst, filepath.Join(t.TempDir(), "local"))
	waitFor(t, log, func() bool { return strings.Count(log.String(), "mirror unreachable") >= 1 }, "refused connection logged")
	time.Sleep(600 * time.Millisecond) // past the first retries: watch must still run (the harness checks exit 0 at the end)
	if strings.Contains(log.String(), "stopped") {
		t.Fatalf("watch stopped on a refused connection:\n%s", log.String())
	}
}

// A dry run reports the literal and matched bytes the real run then
// sends, and no "sent".
func TestDryRunReportsRealDeltaSplit(t *testing.T) {
	sshtest.Start(t)
	src := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20/16)
	must(t, os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644))
	dst := filepath.Join(t.TempDir(), "www")
	remote := sshtest.Alias + ":" + dst
	if code, _, stderr := gosync(t, "sync", src, remote); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	copy(big[500000:], "a small edit in the middle")
	must(t, os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644))
	_, dry, _ := gosync(t, "sync", "-n", "-i", src, remote)
	_, real, _ := gosync(t, "sync", "-i", src, remote)
	line := func(out string) string {
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "big.bin") {
				return l
			}
		}
		return ""
	}
	if line(dry) == "" || line(dry) != line(real) || strings.Contains(line(dry), "matched=0") {
		t.Fatalf("dry run and real run itemize big.bin differently:\ndry:  %s\nreal: %s", line(dry), line(real))
	}
	if strings.Contains(dry, " sent") || !strings.Contains(dry, "would send") {
		t.Fatalf("dry run summary:\n%s", dry)
	}
}

// A link that goes silent without a reset, while watch is idle, is noticed
// by keepalives, logged once as lost, and reconnected; an edit made while
// it was frozen arrives after.
func TestWatchFrozenLinkNoticedAndReconnected(t *testing.T) {
	srv := sshtest.Start(t)
	proxy := srv.ViaProxy(t, "flaky", "  ServerAliveInterval 1\n  ServerAliveCountMax 2\n")
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "v1"})
	dst := filepath.Join(t.TempDir(), "www")
	log := watching(t, "--reconcile", "0", src, "flaky:"+dst)
	converge(t, src, dst, log, "initial sync")
	proxy.Freeze()
	waitFor(t, log, func() bool { return strings.Contains(log.String(), "mirror lost") }, "frozen link noticed while idle")
	write(t, filepath.Join(src, "index.html"), "v2 while frozen")
	proxy.Thaw()
	converge(t, src, dst, log, "after the link came back")
	if n := strings.Count(log.String(), "mirror lost mirror="); n != 1 {
		t.Errorf("mirror lost logged %d times, want once:\n%s", n, log.String())
	}
}

// Deletes beyond --max-delete are held back and logged with what they
// would delete, not dropped: once the source changes so that fewer would
// go, they are applied.
func TestWatchMaxDeleteHoldsDeletes(t *testing.T) {
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"a.html": "a", "b.html": "b", "c.html": "c", "index.html": "i"})
	dst := filepath.Join(t.TempDir(), "www")
	log := watching(t, "--max-delete", "1", "--settle", "100ms", "--max-delay", "100ms", "--reconcile", "0", src, dst)
	converge(t, src, dst, log, "initial sync")
	for _, f := range []string{"a.html", "b.html", "c.html"} {
		must(t, os.Remove(filepath.Join(src, f)))
	}
	waitFor(t, log, func() bool {
		return strings.Contains(log.String(), "deletes held back") && strings.Contains(log.String(), `would_delete="a.html, b.html, c.html"`)
	}, "refused deletes logged with their paths")
	write(t, filepath.Join(src, "index.html"), "another change") // a new settle: refused again, logged again
	waitFor(t, log, func() bool {
		b, _ := os.ReadFile(filepath.Join(dst, "index.html"))
		return string(b) == "another change"
	}, "other changes still flow")
	time.Sleep(500 * time.Millisecond)
	for _, f := range []string{"a.html", "b.html", "c.html"} {
		if !exists(filepath.Join(dst, f)) {
			t.Fatalf("%s deleted beyond --max-delete\nlog:\n%s", f, log.String())
		}
	}
	// The user restores two of them: the one delete left is within the limit.
	write(t, filepath.Join(src, "a.html"), "a")
	write(t, filepath.Join(src, "b.html"), "b")
	converge(t, src, dst, log, "after the source changed")
}
