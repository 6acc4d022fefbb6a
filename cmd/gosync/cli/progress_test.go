package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-runewidth"

	"github.com/gosync/gosync/engine/treetest"
)

// fakeClock is the time a test says it is.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock           { return &fakeClock{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

// logProgress is a progressOut in log mode on a fake clock; its lines go
// to the returned buffer.
func logProgress(t *testing.T, jsonLogs bool) (*progressOut, *fakeClock, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	var h slog.Handler = slog.NewTextHandler(&buf, nil)
	if jsonLogs {
		h = slog.NewJSONHandler(&buf, nil)
	}
	clock := newFakeClock()
	o := newProgressOut(progressLog, &buf, jsonLogs)
	o.log, o.now = slog.New(h), clock.now
	return o, clock, &buf
}

func TestProgressFormatETA(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{-1, "?"},
		{0, "0s"},
		{200 * time.Millisecond, "1s"},
		{4 * time.Second, "4s"},
		{59 * time.Second, "59s"},
		{60 * time.Second, "1m00s"},
		{185 * time.Second, "3m05s"},
		{time.Hour + 7*time.Minute + 30*time.Second, "1h07m"},
		{100 * time.Hour, "100h00m"},
	} {
		if got := formatETA(c.d); got != c.want {
			t.Errorf("formatETA(%v) = %q, want %q", c.d, got, c.want)
		}
	}
	if got := formatRate(8.1 * 1024 * 1024); got != "8.1 MiB/s" {
		t.Errorf("formatRate = %q", got)
	}
	if got := formatRate(0); got != "0 B/s" {
		t.Errorf("formatRate(0) = %q", got)
	}
}

func TestProgressRateETA(t *testing.T) {
	o, clock, _ := logProgress(t, false)
	m := o.mirror("/srv/www")
	m.Plan(2, 100<<20)
	m.File("a", 50<<20)
	clock.add(2 * time.Second)
	m.Read(20 << 20)
	m.mu.Lock()
	s := m.snapshotLocked(clock.now())
	m.mu.Unlock()
	if s.rate != 10<<20 {
		t.Fatalf("rate after 20 MiB in 2 s = %v, want 10 MiB/s", s.rate)
	}
	if s.eta != 8*time.Second {
		t.Fatalf("eta with 80 MiB to go at 10 MiB/s = %v, want 8s", s.eta)
	}
	// One sample a second for 20 s at 1 MiB/s: the rate follows the
	// last rateWindow only, not the fast start.
	for range 20 {
		clock.add(time.Second)
		m.Read(1 << 20)
		m.mu.Lock()
		s = m.snapshotLocked(clock.now())
		m.mu.Unlock()
	}
	if s.rate != 1<<20 {
		t.Fatalf("rate after 20 s at 1 MiB/s = %v, want 1 MiB/s", s.rate)
	}
	if n := len(m.samples); n > int(rateWindow/rateSample)+2 {
		t.Fatalf("%d rate samples kept, want at most %d", n, int(rateWindow/rateSample)+2)
	}
	if s.eta != 60*time.Second {
		t.Fatalf("eta with 60 MiB to go at 1 MiB/s = %v, want 1m", s.eta)
	}
	// Nothing moves: the rate falls to 0 and the ETA is unknown.
	clock.add(rateWindow + rateSample)
	m.mu.Lock()
	s = m.snapshotLocked(clock.now())
	m.mu.Unlock()
	clock.add(rateSample)
	m.mu.Lock()
	s = m.snapshotLocked(clock.now())
	m.mu.Unlock()
	if s.rate != 0 || s.eta != -1 || formatETA(s.eta) != "?" {
		t.Fatalf("stalled: rate %v eta %v, want 0 and unknown", s.rate, s.eta)
	}
}

func TestProgressFileReadAgain(t *testing.T) {
	o, clock, _ := logProgress(t, false)
	m := o.mirror("m")
	m.Plan(2, 300)
	m.File("a", 100)
	m.Read(60)
	m.File("a", 100) // read again from the start
	m.Read(100)
	m.File("b", 200)
	m.Read(250) // grew since the scan
	m.mu.Lock()
	s := m.snapshotLocked(clock.now())
	m.mu.Unlock()
	if s.files != 2 || s.bytes != 300 || s.path != "b" {
		t.Fatalf("got files=%d bytes=%d path=%q, want 2, 300 (capped at the plan), b", s.files, s.bytes, s.path)
	}
	if s.eta != 0 {
		t.Fatalf("eta when all is read = %v, want 0", s.eta)
	}
}

func TestProgressLine(t *testing.T) {
	s := progressSnapshot{files: 120, filesTotal: 2003, bytes: 1258291, bytesTotal: 40 << 20, rate: 8.1 * (1 << 20), eta: 4 * time.Second, path: "css/site.css"}
	for _, c := range []struct {
		name  string
		s     progressSnapshot
		width int
		want  string
	}{
		{"fits", s, 90, "/srv/www 120/2003 files  1.2 MiB/40.0 MiB  8.1 MiB/s  ETA 4s  css/site.css"},
		{"bar from 100 columns", s, 120, "/srv/www [>                   ] 120/2003 files  1.2 MiB/40.0 MiB  8.1 MiB/s  ETA 4s  css/site.css"},
		{"path cut from the left", s, 72, "/srv/www 120/2003 files  1.2 MiB/40.0 MiB  8.1 MiB/s  ETA 4s  …/site.css"},
		{"no room for a path", s, 64, "/srv/www 120/2003 files  1.2 MiB/40.0 MiB  8.1 MiB/s  ETA 4s"},
		{"numbers cut", s, 30, "/srv/www 120/2003 files  1.2 …"},
		{"control characters escaped", progressSnapshot{files: 1, filesTotal: 1, bytes: 1, bytesTotal: 1, eta: 0, path: "a\x1b[2Jb\n.txt"}, 80,
			`/srv/www 1/1 files  1 B/1 B  0 B/s  ETA 0s  "a\x1b[2Jb\n.txt"`},
		{"invalid UTF-8 escaped", progressSnapshot{files: 1, filesTotal: 1, eta: -1, path: "a\x9bb"}, 80,
			`/srv/www 1/1 files  0 B/0 B  0 B/s  ETA ?  "a\x9bb"`},
		{"wide runes cut by cells", progressSnapshot{files: 1, filesTotal: 1, eta: -1, path: "日本語の名前.txt"}, 50,
			"/srv/www 1/1 files  0 B/0 B  0 B/s  ETA ?  …前.txt"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := c.s.line("/srv/www", c.width)
			if got != c.want {
				t.Errorf("line(%d) =\n%q\nwant\n%q", c.width, got, c.want)
			}
			if w := runewidth.StringWidth(got); w > c.width {
				t.Errorf("line is %d cells, wider than %d", w, c.width)
			}
			if strings.ContainsAny(got, "\x1b\n\r") {
				t.Errorf("line holds control characters: %q", got)
			}
		})
	}
	if got := bar(20, 20, 10); got != "[==========]" {
		t.Errorf("full bar = %q", got)
	}
	if got := bar(5, 10, 10); got != "[=====>    ]" {
		t.Errorf("half bar = %q", got)
	}
}

func TestProgressLogLines(t *testing.T) {
	defer setProgressInterval(5 * time.Second)()
	o, clock, buf := logProgress(t, false)
	m := o.mirror("/srv/www")
	m.Plan(3, 3<<20)
	m.File("a.bin", 1<<20)
	clock.add(4 * time.Second)
	m.Read(1 << 20)
	if buf.Len() != 0 {
		t.Fatalf("logged before the interval:\n%s", buf)
	}
	clock.add(time.Second)
	m.File("b.bin", 1<<20)
	m.Read(512 << 10)
	want := `level=INFO msg=progress mirror=/srv/www files=2/3 bytes="1.0 MiB/3.0 MiB" rate="204.8 KiB/s" eta=10s path=b.bin`
	if got := lastLine(buf); !strings.HasSuffix(got, want) {
		t.Fatalf("first line\n%s\nwant it to end in\n%s", got, want)
	}
	m.Read(512 << 10)
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Fatalf("%d lines within one interval, want 1:\n%s", n, buf)
	}
	clock.add(2 * time.Second)
	m.File("c\n.bin", 1<<20)
	m.Read(1 << 20)
	m.done()
	want = `level=INFO msg=progress mirror=/srv/www files=3/3 bytes="3.0 MiB/3.0 MiB" rate="438.9 KiB/s" eta=0s path="\"c\\n.bin\""`
	if got := lastLine(buf); !strings.HasSuffix(got, want) {
		t.Fatalf("last line\n%s\nwant it to end in\n%s", got, want)
	}
	if n := strings.Count(buf.String(), "\n"); n != 2 {
		t.Fatalf("%d lines, want the one at 5 s and the final one:\n%s", n, buf)
	}
	m.done()
	if n := strings.Count(buf.String(), "\n"); n != 2 {
		t.Fatalf("a second done logged again:\n%s", buf)
	}
}

func TestProgressLogLinesJSON(t *testing.T) {
	defer setProgressInterval(5 * time.Second)()
	o, clock, buf := logProgress(t, true)
	m := o.mirror("web1:/var/www")
	m.Plan(2, 2000)
	m.File("a", 1000)
	clock.add(5 * time.Second)
	m.Read(1000)
	var rec map[string]any
	if err := json.Unmarshal([]byte(lastLine(buf)), &rec); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"msg": "progress", "mirror": "web1:/var/www", "files": 1.0, "files_total": 2.0, "bytes": 1000.0, "bytes_total": 2000.0, "bytes_per_s": 200.0, "eta_s": 5.0, "path": "a"}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %#v, want %#v (line %s)", k, rec[k], v, lastLine(buf))
		}
	}
}

func TestProgressQuiet(t *testing.T) {
	defer setProgressInterval(5 * time.Second)()
	t.Run("sync shorter than the interval", func(t *testing.T) {
		o, clock, buf := logProgress(t, false)
		m := o.mirror("m")
		m.Plan(1, 10)
		m.File("a", 10)
		clock.add(4 * time.Second)
		m.Read(10)
		m.done()
		if buf.Len() != 0 {
			t.Fatalf("logged:\n%s", buf)
		}
	})
	t.Run("nothing to send", func(t *testing.T) {
		o, clock, buf := logProgress(t, false)
		m := o.mirror("m")
		m.Plan(0, 0)
		clock.add(time.Minute)
		m.done()
		if buf.Len() != 0 {
			t.Fatalf("logged:\n%s", buf)
		}
	})
	t.Run("modes", func(t *testing.T) {
		var buf bytes.Buffer
		for _, c := range []struct {
			f    syncFlags
			want progressMode
		}{
			{syncFlags{logFormat: "auto"}, progressLog}, // not a terminal
			{syncFlags{logFormat: "json"}, progressLog},
			{syncFlags{logFormat: "auto", dryRun: true}, progressOff},
			{syncFlags{logFormat: "auto", noProgress: true}, progressOff},
			{syncFlags{logFormat: "auto", verbose: true}, progressLog},
		} {
			if got := progressModeFor(c.f, &buf); got != c.want {
				t.Errorf("%+v: mode %d, want %d", c.f, got, c.want)
			}
		}
		if newProgressOut(progressOff, &buf, false).mirror("m") != nil {
			t.Errorf("a mirror's progress when progress is off")
		}
	})
}

// TestProgressSync runs `gosync sync` of a few MB with stderr that is not
// a terminal: progress lines appear (the interval is lowered so every
// read may log one) and the last says every file was sent.
func TestProgressSync(t *testing.T) {
	treetest.NeedAgent(t)
	defer setProgressInterval(time.Nanosecond)()
	src := t.TempDir()
	const files = 24
	data := bytes.Repeat([]byte("0123456789abcdef"), 256<<10/16)
	for i := range files {
		p := filepath.Join(src, fmt.Sprintf("d%d/f%02d.bin", i%3, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "www")

	code, stdout, stderr := gosync(t, "sync", "--log-format", "json", src, dst)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	lines := progressRecords(t, stderr)
	if len(lines) < 2 {
		t.Fatalf("%d progress lines, want several:\n%s", len(lines), stderr)
	}
	last := lines[len(lines)-1]
	total := float64(files * len(data))
	if last["files"] != float64(files) || last["files_total"] != float64(files) || last["bytes"] != total || last["bytes_total"] != total || last["mirror"] != dst {
		t.Fatalf("last progress line %v, want files %d/%d, bytes %v/%v", last, files, files, total, total)
	}
	if !strings.HasPrefix(stdout, "synced "+dst+": 27 created") {
		t.Fatalf("summary: %q", stdout)
	}

	// Text logs say the same as strings.
	dst2 := filepath.Join(t.TempDir(), "www")
	code, _, stderr = gosync(t, "sync", "--log-format", "text", src, dst2)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	var lastText string
	for l := range strings.Lines(stderr) {
		if strings.Contains(l, " progress ") {
			lastText = l
		}
	}
	if !strings.Contains(lastText, "files=24/24") || !strings.Contains(lastText, `bytes="6.0 MiB/6.0 MiB"`) {
		t.Fatalf("last progress line %q, want files=24/24 and 6.0 MiB of 6.0 MiB:\n%s", lastText, stderr)
	}

	// Nothing to send, a dry run, --no-progress: no progress at all.
	if err := os.WriteFile(filepath.Join(src, "new.txt"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-n", src, dst},
		{"--no-progress", src, dst},
		{"-v", "--no-progress", src, dst2},
		{src, dst}, // new.txt was sent by --no-progress
	} {
		code, _, stderr := gosync(t, append([]string{"sync", "--log-format", "json"}, args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d:\n%s", args, code, stderr)
		}
		if n := len(progressRecords(t, stderr)); n != 0 {
			t.Errorf("%v: %d progress lines, want none:\n%s", args, n, stderr)
		}
	}
}

func progressRecords(t *testing.T, log string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("not JSON: %q", sc.Text())
		}
		if rec["msg"] == "progress" {
			recs = append(recs, rec)
		}
	}
	return recs
}

func lastLine(buf *bytes.Buffer) string {
	s := strings.TrimRight(buf.String(), "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// setProgressInterval sets progressInterval and returns what restores it.
func setProgressInterval(d time.Duration) func() {
	old := progressInterval
	progressInterval = d
	return func() { progressInterval = old }
}

// TestProgressScreenLines checks that lines written while bars are shown
// are kept and printed, in order, and that the container comes and goes
// with the bars. (The terminal drawing itself is mpb's; it was checked by
// hand under tmux.)
func TestProgressScreenLines(t *testing.T) {
	var out syncBuffer
	s := &screen{out: &out}
	w := screenWriter{s, &out}
	fmt.Fprintln(w, "before")
	for round := range 2 {
		a := s.add(func(int) string { return "a" })
		b := s.add(func(int) string { return "b" })
		fmt.Fprintf(w, "during %d\n", round)
		s.remove(a)
		fmt.Fprintf(w, "one bar left %d\n", round)
		s.remove(b)
		if s.p != nil {
			t.Fatalf("bar container still there after its last bar")
		}
	}
	fmt.Fprintln(w, "after")
	want := "before\nduring 0\none bar left 0\nduring 1\none bar left 1\nafter\n"
	if got := out.String(); got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
}
