package status

import (
	"time"

	"github.com/gosync/gosync/engine"
)

// Watch is the state of one running watch, as `gosync status --json`
// prints it: times are RFC 3339, durations and sizes are numbers.
type Watch struct {
	Source        string    `json:"source"`
	PID           int       `json:"pid"`
	Started       time.Time `json:"started"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	Version       string    `json:"version"`
	Mirrors       []Mirror  `json:"mirrors"`
	// Socket is where it answered, Error why it did not (filled in by
	// the client).
	Socket string `json:"socket"`
	Error  string `json:"error,omitempty"`
}

// Mirror is the state of one mirror of a watch.
type Mirror struct {
	Name      string     `json:"name"`
	Connected bool       `json:"connected"`
	State     string     `json:"state"`
	Since     time.Time  `json:"since"`
	Error     string     `json:"error,omitempty"`
	RetryAt   *time.Time `json:"retry_at,omitempty"`
	LastBatch *Batch     `json:"last_batch,omitempty"`
	Pending   int        `json:"pending_paths"`
	// Retrying are failed paths waiting for their retry, at NextRetry.
	Retrying       int        `json:"retrying_paths"`
	NextRetry      *time.Time `json:"next_retry,omitempty"`
	DeletesWaiting int        `json:"deletes_waiting"`
	Held           int        `json:"held_files"`
	NextReconcile  *time.Time `json:"next_reconcile,omitempty"`
	BytesSent      int64      `json:"bytes_sent"`
	Batches        int64      `json:"batches"`
	FullSyncs      int64      `json:"full_syncs"`
	PathFailures   int64      `json:"path_failures"`
	ConnFailures   int64      `json:"connection_failures"`
}

// Batch is the last applied batch (or full sync) that changed something.
type Batch struct {
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	Changes   int       `json:"changes"`
	LatencyMS float64   `json:"latency_ms"`
}

// FromEngine converts a snapshot.
func FromEngine(s engine.MirrorStatus) Mirror {
	m := Mirror{
		Name: s.Name, Connected: s.Connected, State: s.State, Since: s.Since, Error: s.LastError,
		RetryAt: timePtr(s.RetryAt), Pending: s.Pending, Retrying: s.Retrying, NextRetry: timePtr(s.NextRetry),
		DeletesWaiting: s.DeletesWaiting, Held: s.Held, NextReconcile: timePtr(s.NextReconcile),
		BytesSent: s.BytesSent, Batches: s.Batches, FullSyncs: s.FullSyncs, PathFailures: s.PathFailures, ConnFailures: s.ConnFailures,
	}
	if !s.LastBatch.IsZero() {
		m.LastBatch = &Batch{Time: s.LastBatch, Kind: s.LastBatchKind, Changes: s.LastBatchChanges,
			LatencyMS: float64(s.LastBatchLatency.Microseconds()) / 1000}
	}
	return m
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
