package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gosync/gosync/engine"
	"github.com/mattn/go-runewidth"
	"github.com/vbauerster/cupwriter"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// progressInterval is how often a sync that is not shown on a terminal
// logs how far it got; tests lower it.
var progressInterval = 5 * time.Second

const (
	// rateWindow is how far back the transfer rate looks: long enough to
	// smooth over small files, short enough to follow a link that slows.
	rateWindow = 10 * time.Second
	// rateSample is the least time between two points of the rate window.
	rateSample = time.Second
	// barWidthFrom is the terminal width from which a bar is drawn; below
	// it the numbers and the path need the room.
	barWidthFrom = 100
	barCells     = 20
)

type progressMode int

const (
	progressOff  progressMode = iota
	progressBars              // live lines on the terminal
	progressLog               // a log line every progressInterval
)

// progressModeFor decides how a command shows progress: not at all for a
// dry run or --no-progress; bars when stderr is a terminal, unless the
// logs are JSON (someone wants machine-readable output); log lines
// elsewhere (CI, systemd, a redirect).
func progressModeFor(f syncFlags, stderr io.Writer) progressMode {
	switch {
	case f.dryRun || f.noProgress:
		return progressOff
	case f.logFormat != "json" && isTerminal(stderr):
		return progressBars
	}
	return progressLog
}

// fdWriter is an *os.File, or a writer standing in for one.
type fdWriter interface{ Fd() uintptr }

func isTerminal(w io.Writer) bool {
	f, ok := w.(fdWriter)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressOut shows the progress of every mirror of one command.
type progressOut struct {
	mode   progressMode
	log    *slog.Logger
	json   bool
	now    func() time.Time
	screen *screen // progressBars only
}

func newProgressOut(mode progressMode, stderr io.Writer, json bool) *progressOut {
	o := &progressOut{mode: mode, json: json, now: time.Now}
	if mode == progressBars {
		o.screen = &screen{out: stderr}
	}
	return o
}

// writer is where lines meant for w go: above the bars while they are
// shown on a terminal that w shares, w itself otherwise.
func (o *progressOut) writer(w io.Writer) io.Writer {
	if o.screen == nil || !isTerminal(w) {
		return w
	}
	return screenWriter{o.screen, w}
}

// mirror returns the progress of one mirror's sync, nil when progress is
// not shown.
func (o *progressOut) mirror(name string) *mirrorProgress {
	if o == nil || o.mode == progressOff {
		return nil
	}
	return &mirrorProgress{name: name, out: o}
}

// mirrorProgress follows the file data of one mirror's sync
// (engine.Progress). Plan, File, Read and done are called from the
// mirror's goroutine; the bar's line is drawn from the screen's.
type mirrorProgress struct {
	name string
	out  *progressOut

	mu         sync.Mutex
	files      int // started, the current one included
	filesTotal int
	bytes      int64 // read, the current file's too
	bytesTotal int64
	path       string // the current file
	curRead    int64  // of the current file, taken back if it is read again
	samples    []progressSample
	nextLog    time.Time
	logged     bool // a log line was written, so the end gets one too

	bar *mpb.Bar // mirror's goroutine only
}

type progressSample struct {
	t     time.Time
	bytes int64
}

var _ engine.Progress = (*mirrorProgress)(nil)

func (m *mirrorProgress) Plan(files int, bytes int64) {
	now := m.out.now()
	m.mu.Lock()
	m.files, m.filesTotal, m.bytes, m.bytesTotal = 0, files, 0, bytes
	m.path, m.curRead = "", 0
	m.samples = append(m.samples[:0], progressSample{now, 0})
	m.nextLog = now.Add(progressInterval)
	m.mu.Unlock()
	// A plan again is a retry (watch's first sync after a lost
	// connection): the same bar goes on with the new numbers.
	switch s := m.out.screen; {
	case s == nil:
	case files > 0 && m.bar == nil:
		m.bar = s.add(m.line)
	case files == 0 && m.bar != nil:
		s.remove(m.bar)
		m.bar = nil
	}
}

// More adds the files of a later part of the same sync to the totals.
func (m *mirrorProgress) More(files int, bytes int64) {
	m.mu.Lock()
	m.filesTotal += files
	m.bytesTotal += bytes
	m.mu.Unlock()
	if s := m.out.screen; s != nil && files > 0 && m.bar == nil {
		m.bar = s.add(m.line)
	}
}

func (m *mirrorProgress) File(path string, size int64) {
	m.mu.Lock()
	if path == m.path && m.files > 0 {
		m.bytes -= m.curRead // read again from the start
	} else {
		m.files++
		m.path = path
	}
	m.curRead = 0
	m.mu.Unlock()
	m.maybeLog()
}

func (m *mirrorProgress) Read(n int64) {
	m.mu.Lock()
	m.bytes += n
	m.curRead += n
	m.mu.Unlock()
	m.maybeLog()
}

// maybeLog writes a log line when progressInterval has passed since the
// plan or the last line. It is called as data moves, so a transfer that
// is stuck logs nothing until it moves again (the session's own
// timeouts end one that stays stuck).
func (m *mirrorProgress) maybeLog() {
	if m.out.mode != progressLog {
		return
	}
	now := m.out.now()
	m.mu.Lock()
	if m.filesTotal == 0 || now.Before(m.nextLog) {
		m.mu.Unlock()
		return
	}
	m.nextLog = now.Add(progressInterval)
	m.logged = true
	s := m.snapshotLocked(now)
	m.mu.Unlock()
	m.out.logLine(m.name, s)
}

// done ends the display of this mirror's sync: its bar is removed (and
// the bars with it when it was the last), and a mirror that logged
// progress logs where it ended. It may be called more than once.
func (m *mirrorProgress) done() {
	if m == nil {
		return
	}
	if m.bar != nil {
		m.out.screen.remove(m.bar)
		m.bar = nil
	}
	m.mu.Lock()
	logged := m.logged
	m.logged = false
	s := m.snapshotLocked(m.out.now())
	m.mu.Unlock()
	if logged {
		m.out.logLine(m.name, s)
	}
}

// line is the mirror's line on the terminal, at most width cells.
func (m *mirrorProgress) line(width int) string {
	now := m.out.now()
	m.mu.Lock()
	s := m.snapshotLocked(now)
	m.mu.Unlock()
	return s.line(m.name, width)
}

// progressSnapshot is how far one mirror's sync got at one moment.
type progressSnapshot struct {
	files, filesTotal int
	bytes, bytesTotal int64
	rate              float64       // bytes per second; 0 when nothing moved
	eta               time.Duration // -1: unknown
	path              string
}

func (m *mirrorProgress) snapshotLocked(now time.Time) progressSnapshot {
	s := progressSnapshot{
		files: m.files, filesTotal: m.filesTotal,
		bytes: m.bytes, bytesTotal: m.bytesTotal,
		path: m.path, eta: -1,
	}
	// Files that grew since the scan may overshoot the plan.
	s.files = min(s.files, s.filesTotal)
	s.bytes = min(max(s.bytes, 0), s.bytesTotal)
	if n := len(m.samples); n > 0 && now.Sub(m.samples[n-1].t) >= rateSample {
		m.samples = append(m.samples, progressSample{now, m.bytes})
	}
	for len(m.samples) > 1 && now.Sub(m.samples[1].t) >= rateWindow {
		m.samples = m.samples[1:]
	}
	s.rate, s.eta = rateETA(m.samples, now, m.bytes, s.bytesTotal-s.bytes)
	return s
}

// rateETA is the rate over the oldest sample still in the window (the
// plan, early on) and the time the rest takes at that rate.
func rateETA(samples []progressSample, now time.Time, bytes, rest int64) (float64, time.Duration) {
	var rate float64
	if len(samples) > 0 {
		if dt := now.Sub(samples[0].t); dt > 0 {
			rate = max(float64(bytes-samples[0].bytes)/dt.Seconds(), 0)
		}
	}
	switch {
	case rest <= 0:
		return rate, 0
	case rate <= 0:
		return rate, -1
	}
	secs := float64(rest) / rate
	if secs > float64(math.MaxInt64/int64(time.Second)) {
		return rate, -1
	}
	return rate, time.Duration(secs * float64(time.Second))
}

// line lays the snapshot out for a terminal of width cells: the numbers
// first, then as much of the end of the path as fits.
func (s progressSnapshot) line(name string, width int) string {
	var b strings.Builder
	b.WriteString(displayPath(name))
	if width >= barWidthFrom {
		b.WriteString(" " + bar(s.bytes, s.bytesTotal, barCells))
	}
	fmt.Fprintf(&b, " %d/%d files  %s/%s  %s  ETA %s",
		s.files, s.filesTotal, humanBytes(s.bytes), humanBytes(s.bytesTotal), formatRate(s.rate), formatETA(s.eta))
	head := b.String()
	hw := runewidth.StringWidth(head)
	if hw >= width {
		return runewidth.Truncate(head, width, "…")
	}
	if s.path == "" || width-hw < 2+4 {
		return head
	}
	return head + "  " + runewidth.TruncatePrefix(displayPath(s.path), width-hw-2, "…")
}

// bar draws done of total in cells between brackets.
func bar(done, total int64, cells int) string {
	n := cells
	if total > 0 {
		n = int(float64(cells) * float64(done) / float64(total))
	}
	n = min(max(n, 0), cells)
	if n == cells {
		return "[" + strings.Repeat("=", cells) + "]"
	}
	return "[" + strings.Repeat("=", n) + ">" + strings.Repeat(" ", cells-n-1) + "]"
}

func formatRate(bps float64) string {
	return humanBytes(int64(bps)) + "/s"
}

// formatETA is short and stable: 42s, 3m05s, 2h07m; "?" when unknown.
func formatETA(d time.Duration) string {
	if d < 0 {
		return "?"
	}
	secs := int64((d + time.Second - 1) / time.Second) // 0.2 s to go is 1s, not 0s
	switch {
	case secs < 60:
		return fmt.Sprintf("%ds", secs)
	case secs < 3600:
		return fmt.Sprintf("%dm%02ds", secs/60, secs%60)
	}
	return fmt.Sprintf("%dh%02dm", secs/3600, secs%3600/60)
}

// displayPath is p as it can be shown on a terminal: quoted with escapes
// when it holds control characters, other unprintable runes or bytes
// that are not UTF-8, so a name cannot move the cursor or end a line.
func displayPath(p string) string { return engine.QuotePath(p) }

// logLine logs one mirror's progress: strings a person reads in text
// logs, counts as numbers in JSON.
func (o *progressOut) logLine(mirror string, s progressSnapshot) {
	attrs := []slog.Attr{slog.String("mirror", mirror)}
	if o.json {
		attrs = append(attrs,
			slog.Int("files", s.files), slog.Int("files_total", s.filesTotal),
			slog.Int64("bytes", s.bytes), slog.Int64("bytes_total", s.bytesTotal),
			slog.Int64("bytes_per_s", int64(s.rate)))
		if s.eta >= 0 {
			attrs = append(attrs, slog.Int64("eta_s", int64((s.eta+time.Second-1)/time.Second)))
		}
	} else {
		attrs = append(attrs,
			slog.String("files", fmt.Sprintf("%d/%d", s.files, s.filesTotal)),
			slog.String("bytes", humanBytes(s.bytes)+"/"+humanBytes(s.bytesTotal)),
			slog.String("rate", formatRate(s.rate)),
			slog.String("eta", formatETA(s.eta)))
	}
	attrs = append(attrs, slog.String("path", displayPath(s.path)))
	o.log.LogAttrs(context.Background(), slog.LevelInfo, "progress", attrs...)
}

// screen owns the terminal while bars are shown. The bar container
// exists only while at least one mirror's sync sends data; log lines
// (and -i lines, when stdout is the same terminal) go through it then, so
// they are printed above the bars instead of across them.
type screen struct {
	out io.Writer // stderr, a terminal

	// mu guards what follows and is held while a line is written
	// through the container, so none is written while it shuts down.
	mu   sync.Mutex
	p    *mpb.Progress
	cw   *cupwriter.Writer
	bars int
}

func (s *screen) add(line func(width int) string) *mpb.Bar {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p == nil {
		s.cw = cupwriter.New(s.out, false)
		s.p = mpb.New(mpb.WithOutput(s.out), mpb.WithConsoleWriter(s.cw), mpb.WithRefreshRate(200*time.Millisecond))
	}
	s.bars++
	// total 0: the bar never completes by itself; remove aborts it.
	return s.p.New(0, mpb.NopStyle(), mpb.BarFillerTrim(),
		mpb.PrependDecorators(decor.Any(func(st decor.Statistics) string { return line(st.AvailableWidth) })))
}

func (s *screen) remove(b *mpb.Bar) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b.Abort(true)
	s.bars--
	if s.bars > 0 {
		return
	}
	// The last frame drawn without bars clears them. Lines written after
	// it wait in the console writer's buffer: print them.
	s.p.Wait()
	if s.cw.Len() > 0 {
		_ = s.cw.Flush(0)
	}
	s.p, s.cw = nil, nil
}

// screenWriter writes to w, or above the bars while they are shown.
type screenWriter struct {
	s *screen
	w io.Writer
}

func (sw screenWriter) Write(b []byte) (int, error) {
	sw.s.mu.Lock()
	defer sw.s.mu.Unlock()
	if sw.s.p != nil {
		return sw.s.p.Write(b)
	}
	return sw.w.Write(b)
}

// Fd lets the logger see the terminal behind the writer, for colour.
func (sw screenWriter) Fd() uintptr {
	if f, ok := sw.w.(fdWriter); ok {
		return f.Fd()
	}
	return ^uintptr(0)
}

var _ fdWriter = (*os.File)(nil)
