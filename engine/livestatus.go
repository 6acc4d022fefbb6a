package engine

import (
	"sync"
	"time"
)

// MirrorStatus is a snapshot of one Live mirror, for `gosync status` and
// metrics. Times are zero when they do not apply.
type MirrorStatus struct {
	Name string
	// State is "connecting", "syncing" (connected, the full sync of a
	// (re)connection under way: not up to date yet), "connected",
	// "unreachable", "lost", "failed" or "taken over" (the words of the
	// log).
	State     string
	Connected bool
	// Since is when the mirror became connected, or stopped being so
	// (the start of the watch while the first connection is made).
	Since     time.Time
	LastError string    // why it is not connected
	RetryAt   time.Time // next connection attempt while not connected

	LastBatch        time.Time // when the last change was applied
	LastBatchKind    string    // "initial", "batch", "catch-up", "reconcile", "delete"
	LastBatchChanges int       // entries it changed
	LastBatchLatency time.Duration

	Pending        int // paths queued, not yet applied
	DeletesWaiting int // deletes waiting for the source to settle
	Held           int // files held back while being written
	Retrying       int // failed paths waiting for their retry
	NextRetry      time.Time
	NextReconcile  time.Time

	// Cumulative counters since the watch started.
	Batches      int64 // applied batches (kinds "batch" and "delete")
	FullSyncs    int64 // initial syncs, catch-ups and reconciliations
	BytesSent    int64 // bytes written to the mirror's stream, after compression
	PathFailures int64 // path attempts that failed (each retry counts)
	ConnFailures int64 // connections that failed or were lost
	Changes      int64 // entries created, updated, renamed or deleted
}

// liveStatus is what Live publishes for Status: written by Live's own
// goroutine under a short lock, read by any.
type liveStatus struct {
	mu sync.Mutex
	s  MirrorStatus
}

// Status returns a snapshot of the mirror's state. It never waits for
// the mirror's work, only for a short lock.
func (l *Live) Status() MirrorStatus {
	l.status.mu.Lock()
	s := l.status.s
	l.status.mu.Unlock()
	s.Name = l.Name
	if s.State == "" {
		s.State = "connecting"
	}
	if l.Queue != nil {
		s.Pending = l.Queue.Len()
	}
	return s
}

// publish copies the loop's own state into the snapshot.
func (l *Live) publish(update func(s *MirrorStatus)) {
	l.status.mu.Lock()
	defer l.status.mu.Unlock()
	s := &l.status.s
	if update != nil {
		update(s)
	}
	s.DeletesWaiting, s.Held, s.Retrying = len(l.deletes), len(l.held), len(l.retry)
	s.NextRetry = time.Time{}
	for _, r := range l.retry {
		if s.NextRetry.IsZero() || r.due.Before(s.NextRetry) {
			s.NextRetry = r.due
		}
	}
}

// publishState records a connection state; retry is the delay before
// the next attempt.
func (l *Live) publishState(state string, retry time.Duration, errText string) {
	now := time.Now()
	l.publish(func(s *MirrorStatus) {
		connected := state == "connected"
		if connected != s.Connected || s.Since.IsZero() {
			s.Since = now
		}
		if !connected && s.Connected || state == "unreachable" || state == "failed" {
			s.ConnFailures++
		}
		s.State, s.Connected, s.LastError = state, connected, errText
		s.RetryAt = time.Time{}
		if retry > 0 {
			s.RetryAt = now.Add(retry)
		}
		if !connected {
			s.NextReconcile = time.Time{}
		}
	})
}

// publishReport records an applied batch or full sync.
func (l *Live) publishReport(r BatchReport) {
	st := r.Result.Stats
	changes := st.Created + st.Updated + st.MetaOnly + st.Renamed + st.Deleted
	l.publish(func(s *MirrorStatus) {
		s.BytesSent += st.Sent
		s.Changes += int64(changes)
		if r.Kind == "batch" || r.Kind == "delete" {
			s.Batches++
			if changes == 0 && len(r.Result.Failed) == 0 {
				return // temporaries, ignored paths: nothing a user saved
			}
		} else {
			s.FullSyncs++
		}
		s.LastBatch, s.LastBatchKind, s.LastBatchChanges, s.LastBatchLatency = time.Now(), r.Kind, changes, r.Latency
	})
}
