package status

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gosync/gosync/engine"
)

// Render writes queries for people: one block per watch, two lines per
// mirror. Every string that came through a socket is escaped before it
// reaches the terminal.
func Render(w io.Writer, qs []Query, now time.Time) {
	if len(qs) == 0 {
		fmt.Fprintln(w, "no gosync watch is running")
		return
	}
	for i, q := range qs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if q.Err != nil {
			fmt.Fprintf(w, "a watch at %s did not answer: %s\n", engine.QuotePath(q.Socket), engine.Printable(q.Err.Error()))
			continue
		}
		wa := q.Watch
		fmt.Fprintf(w, "watch %s  pid %d  up %s\n", engine.QuotePath(wa.Source), wa.PID, age(now.Sub(wa.Started)))
		for _, m := range wa.Mirrors {
			fmt.Fprintf(w, "  %s: %s\n", engine.QuotePath(m.Name), connection(m, now))
			fmt.Fprintf(w, "      %s\n", activity(m, now))
		}
	}
}

func connection(m Mirror, now time.Time) string {
	var b strings.Builder
	if m.Connected {
		fmt.Fprintf(&b, "connected since %s (%s)", clock(m.Since, now), age(now.Sub(m.Since)))
		return b.String()
	}
	state := m.State
	switch state {
	case "lost", "unreachable", "failed":
		state = "not connected (" + state + ")"
	case "syncing":
		state = "reconnected, comparing everything; not up to date"
		if m.LastBatch == nil {
			state = "connected, initial sync under way"
		}
	}
	fmt.Fprintf(&b, "%s since %s (%s)", engine.Printable(state), clock(m.Since, now), age(now.Sub(m.Since)))
	if m.RetryAt != nil {
		if m.RetryAt.After(now) {
			fmt.Fprintf(&b, ", next try in %s", age(m.RetryAt.Sub(now)))
		} else {
			b.WriteString(", trying now")
		}
	}
	if m.Error != "" {
		fmt.Fprintf(&b, ": %s", engine.Printable(m.Error))
	}
	return b.String()
}

func activity(m Mirror, now time.Time) string {
	var parts []string
	if lb := m.LastBatch; lb != nil {
		parts = append(parts, fmt.Sprintf("last %s %s: %d %s in %s", kindName(lb.Kind), clock(lb.Time, now), lb.Changes, plural(lb.Changes, "change", "changes"), latency(lb.LatencyMS)))
	} else {
		parts = append(parts, "nothing applied yet")
	}
	parts = append(parts, fmt.Sprintf("%d pending", m.Pending))
	if m.Retrying > 0 {
		s := fmt.Sprintf("%d failed, retrying", m.Retrying)
		if m.NextRetry != nil {
			s += " in " + age(m.NextRetry.Sub(now))
		}
		parts = append(parts, s)
	} else {
		parts = append(parts, "0 failed")
	}
	if m.DeletesWaiting > 0 {
		parts = append(parts, fmt.Sprintf("%d deletes waiting", m.DeletesWaiting))
	}
	if m.Held > 0 {
		parts = append(parts, fmt.Sprintf("%d held while written", m.Held))
	}
	parts = append(parts, "sent "+Bytes(m.BytesSent))
	if m.NextReconcile != nil {
		parts = append(parts, "reconcile in "+age(m.NextReconcile.Sub(now)))
	}
	return strings.Join(parts, ", ")
}

// clock shows a time of day, with the date when it is not today.
func clock(t, now time.Time) string {
	t = t.Local()
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04:05")
}

// age shows a duration to the second, in the largest two units.
func age(d time.Duration) string {
	if d > 0 && d < time.Second/2 {
		return "<1s" // a retry at 250 ms is not "in 0s"
	}
	d = max(d, 0).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

func latency(ms float64) string {
	if ms < 10000 {
		return fmt.Sprintf("%.0f ms", ms)
	}
	return age(time.Duration(ms * float64(time.Millisecond)))
}

// Bytes shows a byte count in binary units.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// kindName names a kind of batch for people.
func kindName(kind string) string {
	switch kind {
	case "initial", "catch-up":
		return kind + " sync"
	case "reconcile":
		return "reconciliation"
	case "delete":
		return "delete pass"
	}
	return engine.Printable(kind)
}
