package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/wire"
	"github.com/gosync/gosync/engine/wire/wiretest"
)

// scanPeer answers one Scan with batches, then serves Barriers.
func scanPeer(batches [][]fstree.Entry) wiretest.Script {
	return func(p *wiretest.Peer, conn *wire.Conn) error {
		m, err := wiretest.Next(conn, wire.TScan)
		if err != nil {
			return err
		}
		id := m.(*wire.Scan).ID
		for _, b := range batches {
			if err := wiretest.Send(conn, &wire.Entries{ID: id, Entries: b}); err != nil {
				return nil
			}
		}
		if err := wiretest.Send(conn, &wire.ScanEnd{ID: id}); err != nil {
			return nil
		}
		return serveBarriers(conn)
	}
}

// A streamed listing is bounded per batch, not as a whole: a listing far
// over MaxScanEntries arrives, in order, and the session stays usable.
func TestScanEachStreamsPastTheWholeListingBound(t *testing.T) {
	var batches [][]fstree.Entry
	for i := range 5 {
		batches = append(batches, entries(string(rune('a'+i)), 600))
	}
	c, _ := dialPeer(t, engine.ClientOptions{MaxScanEntries: 1000}, scanPeer(batches))
	var got []string
	_, err := within(t, "ScanEach", func() scanResult {
		errs, err := c.ScanEach(context.Background(), "", false, func(b []fstree.Entry) error {
			for _, e := range b {
				got = append(got, e.Path)
			}
			return nil
		})
		return scanResult{errs, err}
	}).unpack()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3000 || got[0] != "a0" || got[2999] != "e599" {
		t.Fatalf("got %d entries, first %q, last %q", len(got), got[0], got[len(got)-1])
	}
	if _, err := c.Barrier(context.Background()); err != nil {
		t.Fatalf("session after the listing: %v", err)
	}
}

type scanResult struct {
	errs []engine.OpError
	err  error
}

func (r scanResult) unpack() ([]engine.OpError, error) { return r.errs, r.err }

// A consumer slower than the idle deadline is not the mirror's silence.
func TestScanEachSlowConsumerDoesNotTrip(t *testing.T) {
	t.Parallel()
	const idle = 300 * time.Millisecond
	var batches [][]fstree.Entry
	for i := range 12 { // more than the stream and the pipe hold
		batches = append(batches, entries(string(rune('a'+i)), 4000))
	}
	c, _ := dialPeer(t, engine.ClientOptions{IdleTimeout: idle}, scanPeer(batches))
	n := 0
	_, err := within(t, "ScanEach", func() scanResult {
		errs, err := c.ScanEach(context.Background(), "", false, func(b []fstree.Entry) error {
			if n == 0 {
				time.Sleep(4 * idle)
			}
			n += len(b)
			return nil
		})
		return scanResult{errs, err}
	}).unpack()
	if err != nil {
		t.Fatalf("a slow consumer ended the session: %v", err)
	}
	if n != 12*4000 {
		t.Fatalf("got %d entries, want %d", n, 12*4000)
	}
}

// A consumer that gives up gets its error back; the rest of the listing
// is read and dropped, and the session goes on.
func TestScanEachConsumerErrorKeepsSession(t *testing.T) {
	batches := [][]fstree.Entry{entries("a", 100), entries("b", 100), entries("c", 100)}
	c, _ := dialPeer(t, engine.ClientOptions{}, scanPeer(batches))
	stop := errors.New("enough")
	calls := 0
	_, err := within(t, "ScanEach", func() scanResult {
		errs, err := c.ScanEach(context.Background(), "", false, func(b []fstree.Entry) error {
			calls++
			return stop
		})
		return scanResult{errs, err}
	}).unpack()
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("err %v after %d calls, want %v after 1", err, calls, stop)
	}
	if _, err := c.Barrier(context.Background()); err != nil {
		t.Fatalf("session after an abandoned listing: %v", err)
	}
}

// A mirror listing out of walk order cannot be paired in one pass: the
// sync fails and says so. A path listed twice counts once.
func TestSyncTreeMirrorOrder(t *testing.T) {
	src := t.TempDir()
	t.Run("out of order", func(t *testing.T) {
		c, _ := dialPeer(t, engine.ClientOptions{}, scanPeer([][]fstree.Entry{{
			{Path: "b", Kind: fstree.File, Perm: 0o644}, {Path: "a", Kind: fstree.File, Perm: 0o644}}}))
		res := within(t, "SyncTree", func() engine.Result {
			return engine.SyncTree(context.Background(), engine.SourceSpec{Dir: src}, c, engine.Options{MaxDelete: -1, DryRun: true})
		})
		if res.Err == nil || !strings.Contains(res.Err.Error(), "out of order") {
			t.Fatalf("err = %v, want one saying the listing is out of order", res.Err)
		}
	})
	t.Run("twice", func(t *testing.T) {
		c, _ := dialPeer(t, engine.ClientOptions{}, scanPeer([][]fstree.Entry{{
			{Path: "a", Kind: fstree.File, Perm: 0o644}, {Path: "a", Kind: fstree.File, Perm: 0o644}}}))
		res := within(t, "SyncTree", func() engine.Result {
			return engine.SyncTree(context.Background(), engine.SourceSpec{Dir: src}, c, engine.Options{MaxDelete: -1, DryRun: true, Delete: true, AllowEmptySource: true})
		})
		if res.Err != nil || res.Stats.Deleted != 1 {
			t.Fatalf("err %v, %d deleted; want 1 deletion of the path listed twice", res.Err, res.Stats.Deleted)
		}
	})
}
