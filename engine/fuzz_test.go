package engine_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/delta"
	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/wire"
	"github.com/gosync/gosync/engine/wire/wiretest"
)

// fuzzRequests are what the client has asked when the agent's answers
// arrive, with the ids the client gives them.
const (
	fuzzMkdir = 1 // a write operation
	fuzzScan  = 2 // of "a"
	fuzzSigF  = 3 // 5000 bytes
	fuzzSigG  = 4 // 0 bytes
	fuzzRun   = 5
	fuzzBar   = 6
)

func fuzzStream(ms ...wire.Msg) []byte {
	var b bytes.Buffer
	c := wire.NewConn(nil, &b)
	for _, m := range ms {
		c.WriteMsg(m)
	}
	c.Flush()
	return b.Bytes()
}

// FuzzClientAnswers feeds arbitrary answer streams to a client with every
// kind of request outstanding: whatever arrives, the client must neither
// panic nor hang, every failure must end the session as lost, and what it
// accepts must be bounded by what it asked.
func FuzzClientAnswers(f *testing.F) {
	sig := func(size int64) []byte {
		s, _ := delta.Sign(context.Background(), bytes.NewReader(make([]byte, size)), size)
		b, _ := s.AppendBinary(nil)
		return b
	}
	f.Add(fuzzStream(
		&wire.Error{ID: fuzzMkdir, Path: "d", Code: wire.CodeNoSpace, Msg: "full"},
		&wire.Entries{ID: fuzzScan, Entries: []fstree.Entry{{Path: "a", Kind: fstree.Dir, Perm: 0o755}, {Path: "a/x", Kind: fstree.File, Perm: 0o644, Size: 3}}},
		&wire.Error{ID: fuzzScan, Path: "a/y", Code: wire.CodePermission, Msg: "denied"},
		&wire.ScanEnd{ID: fuzzScan},
		&wire.Heartbeat{},
		&wire.Sig{ID: fuzzSigF, Sig: sig(5000)},
		&wire.Sig{ID: fuzzSigG, Err: "gone"},
		&wire.RunDone{ID: fuzzRun, Code: 0, Output: "ok\n"},
		&wire.Done{ID: fuzzBar},
	))
	f.Add(fuzzStream(&wire.Done{ID: fuzzBar}, &wire.Done{ID: fuzzBar}))
	f.Add(fuzzStream(&wire.Entries{ID: fuzzScan, Entries: []fstree.Entry{{Path: "b", Kind: fstree.File}}}))
	f.Add(fuzzStream(&wire.Sig{ID: fuzzSigG, Sig: sig(5000)}))
	f.Add([]byte{byte(wire.TDone), 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, stream []byte) {
		seen := make(chan wire.Type, 16)
		p := wiretest.Start(t, func(p *wiretest.Peer, conn *wire.Conn) error {
			for n := 0; n < 6; n++ {
				m, err := conn.ReadMsg()
				if err != nil {
					return err
				}
				seen <- m.Type()
			}
			if err := p.WriteRaw(stream); err != nil {
				return nil // the client already gave up
			}
			return wiretest.Drain(conn)
		})
		c, err := engine.NewClient(context.Background(), peerName, p.R, p.W, p.Transport, engine.ClientOptions{IdleTimeout: hung, MaxScanEntries: 100})
		if err != nil {
			t.Fatal(err)
		}
		defer closeWithin(t, c)
		ctx := context.Background()
		results := make(chan error, 5)
		check := func(err error) {
			if err != nil && !errors.Is(err, engine.ErrMirrorLost) {
				t.Errorf("error that does not end the session: %v", err)
			}
		}
		await := func(want ...wire.Type) {
			for _, w := range want {
				select {
				case got := <-seen:
					if got != w {
						t.Fatalf("peer saw message type %d, want %d", got, w)
					}
				case <-time.After(hung):
					t.Fatal("the request did not reach the peer")
				}
			}
		}
		if err := c.Writer().Mkdir("d", wire.Meta{Perm: 0o755}); err != nil {
			t.Fatal(err)
		}
		go func() {
			es, _, err := c.Scan(ctx, "a", false)
			for _, e := range es {
				if e.Path != "a" && (len(e.Path) < 2 || e.Path[:2] != "a/") {
					t.Errorf("accepted %q in a scan of a", e.Path)
				}
			}
			if len(es) > 100 {
				t.Errorf("accepted %d entries, limit 100", len(es))
			}
			results <- err
		}()
		await(wire.TMkdir, wire.TScan)
		go func() {
			sigs, _, err := c.Signatures(ctx, []engine.SigRequest{{Path: "f", Size: 5000}, {Path: "g", Size: 0}})
			for i, want := range []int64{5000, 0} {
				if err == nil && sigs[i] != nil && sigs[i].Size != want {
					t.Errorf("accepted a signature of %d bytes for %d", sigs[i].Size, want)
				}
			}
			results <- err
		}()
		await(wire.TSigReq, wire.TSigReq)
		go func() { _, _, err := c.Run(ctx, "true", nil); results <- err }()
		await(wire.TRun)
		go func() {
			errs, err := c.Barrier(ctx)
			for _, e := range errs {
				if e.Path != "d" {
					t.Errorf("accepted an error for %q, which was never written", e.Path)
				}
			}
			results <- err
		}()
		await(wire.TBarrier)
		for range 4 {
			select {
			case err := <-results:
				check(err)
			case <-time.After(hung):
				t.Fatal("a request hung after the stream ended")
			}
		}
	})
}

// FuzzClientBatchAnswers feeds arbitrary answers to a client that opened
// a staging batch with one file, committed it and asked for a rollback:
// a Commit may fail once per staged file and no more, a rollback answer
// is bounded, and whatever else arrives ends the session as lost.
func FuzzClientBatchAnswers(f *testing.F) {
	const batch, file, commit, roll, bar = 1, 2, 3, 4, 5
	f.Add(fuzzStream(
		&wire.Error{ID: commit, Path: "f", Code: wire.CodeMismatch, Msg: "replaced"},
		&wire.Rollback{ID: roll, Items: []wire.RollItem{{Action: wire.RollRestored, Kind: fstree.File, Path: "a"}}},
		&wire.Rollback{ID: roll, Flags: wire.RollbackEnd, Stamp: "20261201-071500.123456789", Items: []wire.RollItem{{Action: wire.RollRemoved, Kind: fstree.Dir, Path: "n"}}},
		&wire.Done{ID: bar},
	))
	f.Add(fuzzStream(
		&wire.Error{ID: batch, Code: wire.CodeOther, Msg: "bad dir"},
		&wire.Error{ID: commit, Path: "f", Msg: "x"},
		&wire.Error{ID: commit, Path: "g", Msg: "one too many"},
	))
	f.Add(fuzzStream(&wire.Rollback{ID: roll, Flags: wire.RollbackEnd | wire.RollbackAlready, Stamp: "../x"}))
	f.Fuzz(func(t *testing.T, stream []byte) {
		seen := make(chan wire.Type, 16)
		p := wiretest.Start(t, func(p *wiretest.Peer, conn *wire.Conn) error {
			for n := 0; n < 6; n++ {
				m, err := conn.ReadMsg()
				if err != nil {
					return err
				}
				seen <- m.Type()
			}
			if err := p.WriteRaw(stream); err != nil {
				return nil
			}
			return wiretest.Drain(conn)
		})
		c, err := engine.NewClient(context.Background(), peerName, p.R, p.W, p.Transport, engine.ClientOptions{IdleTimeout: hung, MaxScanEntries: 100})
		if err != nil {
			t.Fatal(err)
		}
		defer closeWithin(t, c)
		ctx := context.Background()
		w := c.Writer()
		w.Batch(true, "bk", "20261201-071500.123456789")
		w.BeginFile("f", 0, wire.Meta{Perm: 0o644}, 0)
		w.EndFile(fstree.Hash{})
		w.Commit()
		results := make(chan error, 2)
		go func() {
			res, err := c.Rollback(ctx, "bk", false)
			if len(res.Items) > 100 {
				t.Errorf("accepted %d rollback items, limit 100", len(res.Items))
			}
			for _, it := range res.Items {
				if wire.ValidPath(it.Path) != nil {
					t.Errorf("accepted rollback of %q", it.Path)
				}
			}
			if res.Stamp != "" && !wire.ValidStamp(res.Stamp) {
				t.Errorf("accepted backup name %q", res.Stamp)
			}
			results <- err
		}()
		for _, want := range []wire.Type{wire.TBatch, wire.TFileBegin, wire.TFileEnd, wire.TCommit, wire.TRollback} {
			select {
			case got := <-seen:
				if got != want {
					t.Fatalf("peer saw message type %d, want %d", got, want)
				}
			case <-time.After(hung):
				t.Fatal("the request did not reach the peer")
			}
		}
		go func() {
			errs, err := c.Barrier(ctx)
			commits := 0
			for _, e := range errs {
				if e.Op == "rename staged file into place" {
					commits++
				}
			}
			if commits > 1 {
				t.Errorf("accepted %d commit failures for one staged file", commits)
			}
			results <- err
		}()
		for range 2 {
			select {
			case err := <-results:
				if err != nil && !errors.Is(err, engine.ErrMirrorLost) {
					t.Errorf("error that does not end the session: %v", err)
				}
			case <-time.After(hung):
				t.Fatal("a request hung after the stream ended")
			}
		}
	})
}
