package cli

import (
	"context"
	"io"
	"log/slog"
	"sync"
)

// journalHandler writes log lines for systemd's journal, which reads a
// service's stderr line by line: each line starts with its syslog
// priority (<3> error, <4> warning, <6> info, <7> debug; journalctl -p
// filters by it), and has no time (the journal stamps every line) and no
// colours. The lines themselves are the text format's.
type journalHandler struct {
	h  slog.Handler
	pw *prefixWriter
}

// prefixWriter puts the priority of the record being written before
// each write; the text handler writes a record in one write.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, p.prefix); err != nil {
		return 0, err
	}
	return p.w.Write(b)
}

// syslogPrefix is sd-daemon(3)'s prefix for a level.
func syslogPrefix(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>"
	case l >= slog.LevelWarn:
		return "<4>"
	case l >= slog.LevelInfo:
		return "<6>"
	}
	return "<7>"
}

func newJournalHandler(w io.Writer, newText func(io.Writer) slog.Handler) journalHandler {
	pw := &prefixWriter{w: w}
	return journalHandler{h: newText(pw), pw: pw}
}

func (j journalHandler) Enabled(ctx context.Context, l slog.Level) bool { return j.h.Enabled(ctx, l) }

func (j journalHandler) Handle(ctx context.Context, r slog.Record) error {
	j.pw.mu.Lock()
	defer j.pw.mu.Unlock()
	j.pw.prefix = syslogPrefix(r.Level)
	return j.h.Handle(ctx, r)
}

func (j journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return journalHandler{h: j.h.WithAttrs(as), pw: j.pw}
}

func (j journalHandler) WithGroup(name string) slog.Handler {
	return journalHandler{h: j.h.WithGroup(name), pw: j.pw}
}

// noTime drops the record's time (the journal has its own).
func noTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// byteCount is a number of bytes in a log record: "1.2 KiB" in text,
// a number in JSON (escapeAttr passes it through unchanged).
type byteCount int64

func (b byteCount) String() string { return humanBytes(int64(b)) }
