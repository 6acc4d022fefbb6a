package engine_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/wire"
	"github.com/gosync/gosync/engine/wire/wiretest"
)

// Status follows a mirror that connects, stays a while and drops, over
// and over: connected with a reconciliation due, then lost with the next
// try and the count of lost connections. It is read all along from
// another goroutine (the race detector checks the locking).
func TestLiveStatusFollowsConnection(t *testing.T) {
	l := &engine.Live{Name: peerName, Log: slog.New(slog.DiscardHandler), Reconcile: time.Hour}
	if s := l.Status(); s.State != "connecting" || s.Connected {
		t.Fatalf("before Run: %+v", s)
	}
	start := time.Now()
	runLive(t, l, func(p *wiretest.Peer, conn *wire.Conn) error {
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
	var connected, lost engine.MirrorStatus
	waitFor(t, "connected, then lost", func() bool {
		s := l.Status()
		if s.Connected && connected.Since.IsZero() {
			connected = s
		}
		if !connected.Since.IsZero() && !s.Connected && s.State == "lost" {
			lost = s
			return true
		}
		return false
	})
	if connected.Name != peerName || connected.State != "connected" || connected.Since.Before(start) ||
		connected.FullSyncs != 1 || connected.LastBatchKind != "initial" || connected.NextReconcile.Sub(connected.Since) < 59*time.Minute {
		t.Errorf("connected: %+v", connected)
	}
	if !lost.Since.After(connected.Since) || lost.ConnFailures != 1 || lost.RetryAt.IsZero() || !lost.NextReconcile.IsZero() || lost.LastError == "" {
		t.Errorf("lost: %+v", lost)
	}
}
