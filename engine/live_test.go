package engine_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/wire"
	"github.com/gosync/gosync/engine/wire/wiretest"
	"github.com/gosync/gosync/ignore"
	"github.com/gosync/gosync/queue"
)

// logRecorder keeps the records logged, for tests of what a user reads.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// attrs returns the given attribute of every record with message msg.
func (r *logRecorder) attrs(msg, key string) []slog.Value {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []slog.Value
	for _, rec := range r.recs {
		if rec.Message != msg {
			continue
		}
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == key {
				out = append(out, a.Value)
			}
			return true
		})
	}
	return out
}

// runLive runs l until the test ends, each dial reaching a new crafted
// peer running script.
func runLive(t *testing.T, l *engine.Live, script wiretest.Script) *atomic.Int32 {
	t.Helper()
	var dials atomic.Int32
	l.Dial = func(ctx context.Context) (engine.Mirror, error) {
		dials.Add(1)
		p := wiretest.Start(t, script)
		return engine.NewClient(ctx, l.Name, p.R, p.W, p.Transport, engine.ClientOptions{})
	}
	if l.Queue == nil {
		l.Queue = queue.New(100)
	}
	l.SourceDir = t.TempDir()
	l.Ignore = new(atomic.Pointer[ignore.Matcher])
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(hung):
			t.Error("Live.Run did not return after cancel")
		}
	})
	return &dials
}

// A mirror that drops right after each handshake is redialled ever more
// slowly, and the log shows the schedule.
func TestLiveBackoffGrowsWhenMirrorDropsAfterHandshake(t *testing.T) {
	rec := &logRecorder{}
	l := &engine.Live{Name: peerName, Log: slog.New(rec)}
	runLive(t, l, func(p *wiretest.Peer, conn *wire.Conn) error { return nil })
	waitFor(t, "four losses", func() bool { return len(rec.attrs("mirror lost", "retry_in")) >= 4 })
	got := rec.attrs("mirror lost", "retry_in")
	want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second}
	for i, w := range want {
		if d := got[i].Duration(); d != w {
			t.Fatalf("retry %d in %s, want %s (schedule %v)", i, d, w, got)
		}
	}
}

// A connection that lasted the healthy period resets the backoff.
func TestLiveBackoffResetsAfterHealthyPeriod(t *testing.T) {
	rec := &logRecorder{}
	l := &engine.Live{Name: peerName, Log: slog.New(rec), Healthy: 100 * time.Millisecond}
	dials := runLive(t, l, func(p *wiretest.Peer, conn *wire.Conn) error {
		// Answer the full sync, stay a while, then drop.
		m, err := wiretest.Next(conn, wire.TScan)
		if err != nil {
			return nil
		}
		if err := wiretest.Send(conn, &wire.ScanEnd{ID: m.(*wire.Scan).ID}); err != nil {
			return nil
		}
		if m, err = wiretest.Next(conn, wire.TBarrier); err != nil {
			return nil
		}
		if err := wiretest.Send(conn, &wire.Done{ID: m.(*wire.Barrier).ID}); err != nil {
			return nil
		}
		select {
		case <-time.After(300 * time.Millisecond):
		case <-p.Stopped():
		}
		return nil
	})
	waitFor(t, "three connections", func() bool { return dials.Load() >= 3 && len(rec.attrs("mirror lost", "retry_in")) >= 2 })
	for _, v := range rec.attrs("mirror lost", "retry_in") {
		if v.Duration() != 250*time.Millisecond {
			t.Fatalf("retry in %s after a healthy connection, want 250ms", v.Duration())
		}
	}
}
