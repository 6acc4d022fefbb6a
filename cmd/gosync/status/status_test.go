//go:build !windows

package status

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gosync/gosync/engine"
)

// serve starts a status server in dir answering with w until the test
// ends.
func serve(t *testing.T, dir string, w Watch) *Server {
	t.Helper()
	srv, err := Listen(dir, func() Watch { return w }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv
}

func privateDir(t *testing.T) string {
	t.Helper()
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestDirAndSocketArePrivate(t *testing.T) {
	dir := privateDir(t)
	if want := filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "gosync"); dir != want {
		t.Fatalf("Dir() = %s, want %s", dir, want)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("status directory: %v %v, want mode 0700", fi.Mode(), err)
	}
	srv := serve(t, dir, Watch{Source: "/src", PID: 1})
	fi, err = os.Lstat(srv.Path())
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v, want a socket with mode 0600", fi.Mode(), err)
	}
}

func TestDirFallsBackToPrivateTempDir(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(tmp, "gosync-"+userID()); dir != want {
		t.Fatalf("Dir() = %s, want %s", dir, want)
	}
	// Another user (or a careless chmod) opened it: refused, not used.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Dir(); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Fatalf("an open status directory was accepted: %v", err)
	}
	// A symlink planted in its place is refused too.
	os.Remove(dir)
	if err := os.Symlink(t.TempDir(), dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Dir(); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("a symlinked status directory was accepted: %v", err)
	}
}

// deadSocket leaves a socket file that nobody listens on, as a watch
// killed with SIGKILL does, made old enough to be taken for stale.
func deadSocket(t *testing.T, path string, age time.Duration) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	old := time.Now().Add(-age)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

func TestStaleSocketRemoved(t *testing.T) {
	dir := privateDir(t)
	live := serve(t, dir, Watch{Source: "/live", PID: os.Getpid(), Started: time.Now()})
	stale := filepath.Join(dir, "watch-999999-1.sock")
	deadSocket(t, stale, time.Minute)
	young := filepath.Join(dir, "watch-999999-2.sock") // bound a moment ago: may be about to listen
	deadSocket(t, young, 0)
	notSocket := filepath.Join(dir, "watch-999999-3.sock")
	if err := os.WriteFile(notSocket, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	qs := List(context.Background(), dir)
	if _, err := os.Lstat(stale); !os.IsNotExist(err) {
		t.Errorf("the socket of a dead watch was kept: %v", err)
	}
	for _, p := range []string{young, notSocket, live.Path()} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	var sources []string
	for _, q := range qs {
		if q.Err == nil {
			sources = append(sources, q.Watch.Source)
		}
	}
	if len(sources) != 1 || sources[0] != "/live" {
		t.Fatalf("answers %+v, want the live watch only", qs)
	}
	// A new watch cleans up too, without any status being run.
	deadSocket(t, stale, time.Minute)
	serve(t, dir, Watch{})
	if _, err := os.Lstat(stale); !os.IsNotExist(err) {
		t.Errorf("a starting watch kept the socket of a dead one: %v", err)
	}
}

// A request is one short line: anything longer or different gets no
// snapshot, and the server does not wait past its deadline.
func TestServerBoundsRequests(t *testing.T) {
	dir := privateDir(t)
	srv := serve(t, dir, Watch{Source: "/src"})
	ask := func(req string) string {
		c, err := net.Dial("unix", srv.Path())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, req)
		b, _ := io.ReadAll(c)
		return string(b)
	}
	if got := ask(strings.Repeat("x", 1<<20)); got != "" {
		t.Errorf("an oversized request was answered: %.80q", got)
	}
	if got := ask("status 2\n"); !strings.Contains(got, `"error":"unknown request status 2"`) {
		t.Errorf("an unknown request: %q", got)
	}
	start := time.Now()
	if got := ask("status 1"); got != "" { // never ends its line
		t.Errorf("an unfinished request was answered: %q", got)
	}
	if d := time.Since(start); d > deadline+5*time.Second {
		t.Errorf("server held a silent client %v", d)
	}
	if got := ask(request); !strings.Contains(got, `"source":"/src"`) {
		t.Errorf("the status request: %q", got)
	}
}

// What a watch answers reaches the terminal escaped: a source or mirror
// name cannot move the cursor or forge lines.
func TestRenderEscapes(t *testing.T) {
	now := time.Now()
	since := now.Add(-90 * time.Second)
	ms := engine.MirrorStatus{Name: "web\x1b[2J:/srv", State: "lost", Since: since, LastError: "reset\nforged line", RetryAt: now.Add(250 * time.Millisecond)}
	var b strings.Builder
	Render(&b, []Query{{Watch: Watch{Source: "/src\x1b]0;x\a", PID: 7, Started: since, Mirrors: []Mirror{FromEngine(ms)}}}}, now)
	out := b.String()
	if strings.ContainsAny(out, "\x1b\a") || strings.Count(out, "\n") != 3 {
		t.Fatalf("unescaped output:\n%s", out)
	}
	for _, want := range []string{"not connected (lost) since", "(1m30s)", "next try in <1s", "nothing applied yet"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// A project's settings groups run in one process, one socket each; status
// shows them as one watch with all their mirrors, in start order. Another
// process watching the same source stays apart.
func TestOneWatchPerProcessAndSource(t *testing.T) {
	dir := privateDir(t)
	t0 := time.Now().Add(-time.Minute)
	serve(t, dir, Watch{Source: "/proj", PID: os.Getpid(), Started: t0, Mirrors: []Mirror{{Name: "prod"}}})
	serve(t, dir, Watch{Source: "/proj", PID: os.Getpid(), Started: t0.Add(time.Millisecond), Mirrors: []Mirror{{Name: "preview"}, {Name: "staging"}}})
	serve(t, dir, Watch{Source: "/proj", PID: os.Getpid() + 1, Started: t0.Add(2 * time.Millisecond), Mirrors: []Mirror{{Name: "other"}}})
	qs := List(context.Background(), dir)
	var got []string
	for _, q := range qs {
		if q.Err != nil {
			t.Fatalf("%s did not answer: %v", q.Socket, q.Err)
		}
		var names []string
		for _, m := range q.Watch.Mirrors {
			names = append(names, m.Name)
		}
		got = append(got, fmt.Sprintf("%d %v", q.Watch.PID-os.Getpid(), names))
	}
	want := []string{"0 [prod preview staging]", "1 [other]"}
	if !slices.Equal(got, want) {
		t.Errorf("watches %q, want %q", got, want)
	}
}
