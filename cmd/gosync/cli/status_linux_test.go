//go:build linux

// Linux only: it needs a real sshd started by engine/sshx/sshtest and
// Pdeathsig, which the CI machine (Linux) has.

package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gosync/gosync/cmd/gosync/status"
	"github.com/gosync/gosync/engine/sshx/sshtest"
	"github.com/gosync/gosync/engine/treetest"
)

// statusJSON runs `gosync status --json` and parses what it prints,
// checking that sizes and durations are JSON numbers.
func statusJSON(t *testing.T) []status.Watch {
	t.Helper()
	code, stdout, stderr := gosync(t, "status", "--json")
	if code != 0 {
		t.Fatalf("gosync status --json exited %d: %s", code, stderr)
	}
	var raw []map[string]any
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatalf("status --json: %v\n%s", err, stdout)
	}
	for _, w := range raw {
		for _, k := range []string{"pid", "uptime_seconds"} {
			if _, ok := w[k].(float64); !ok {
				t.Fatalf("status --json: %s is %T, want a number\n%s", k, w[k], stdout)
			}
		}
		for _, m := range w["mirrors"].([]any) {
			if _, ok := m.(map[string]any)["bytes_sent"].(float64); !ok {
				t.Fatalf("status --json: bytes_sent is not a number\n%s", stdout)
			}
		}
	}
	var ws []status.Watch
	if err := json.Unmarshal([]byte(stdout), &ws); err != nil {
		t.Fatal(err)
	}
	return ws
}

// waitStatus polls `gosync status --json` until ok holds for the one
// watch running, and returns what satisfied it.
func waitStatus(t *testing.T, p *process, what string, ok func(w status.Watch) bool) status.Watch {
	t.Helper()
	var last []status.Watch
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !p.exited(); time.Sleep(50 * time.Millisecond) {
		last = statusJSON(t)
		if len(last) == 1 && ok(last[0]) {
			return last[0]
		}
	}
	t.Fatalf("%s: not seen in gosync status; last: %+v\nwatch log:\n%s", what, last, p.out.String())
	return status.Watch{}
}

func mirrorNamed(w status.Watch, name string) status.Mirror {
	for _, m := range w.Mirrors {
		if m.Name == name {
			return m
		}
	}
	return status.Mirror{}
}

var metricsURL = regexp.MustCompile(`serving metrics url=(http://\S+/metrics)`)

// metricsOf waits for the watch to log where it serves metrics.
func metricsOf(t *testing.T, p *process) string {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := metricsURL.FindStringSubmatch(p.out.String()); m != nil {
			return m[1]
		}
	}
	t.Fatalf("watch did not say where it serves metrics:\n%s", p.out.String())
	return ""
}

// scrape gets url and parses it with Prometheus's own text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return fams
}

// metric returns the value of name for a mirror (a histogram: its count).
func metric(t *testing.T, fams map[string]*dto.MetricFamily, name, mirror string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
	for _, m := range f.Metric {
		for _, l := range m.Label {
			if l.GetName() == "mirror" && l.GetValue() == mirror {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
	}
	t.Fatalf("no %s for mirror %s", name, mirror)
	return 0
}

// gosync status against a running watch with an SSH mirror and a local
// one: both connected; the SSH link goes silent (lost: status says so,
// with the change waiting for it, while the local mirror goes on); the
// link comes back (connected again, the change arrives).
func TestStatusWatchSSHLostAndBack(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	srv := sshtest.Start(t)
	proxy := srv.ViaProxy(t, "flaky", "  ServerAliveInterval 1\n  ServerAliveCountMax 2\n")
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "v1"})
	local, remote := filepath.Join(t.TempDir(), "local"), filepath.Join(t.TempDir(), "www")
	sshName := "flaky:" + remote
	p := startGosync(t, "watch", "--log-format", "text", "--reconcile", "1h", "--metrics", "127.0.0.1:0", src, local, sshName)

	w := waitStatus(t, p, "both mirrors connected", func(w status.Watch) bool {
		return mirrorNamed(w, local).Connected && mirrorNamed(w, sshName).Connected
	})
	if w.PID != p.cmd.Process.Pid || w.Source != src || len(w.Mirrors) != 2 {
		t.Fatalf("status: pid %d source %q mirrors %d; want pid %d source %q and 2 mirrors", w.PID, w.Source, len(w.Mirrors), p.cmd.Process.Pid, src)
	}
	if m := mirrorNamed(w, sshName); m.LastBatch == nil || m.LastBatch.Kind != "initial" || m.NextReconcile == nil || m.BytesSent == 0 {
		t.Fatalf("ssh mirror after the initial sync: %+v", m)
	}
	url := metricsOf(t, p)
	if up := metric(t, scrape(t, url), "gosync_mirror_up", sshName); up != 1 {
		t.Fatalf("gosync_mirror_up = %v while connected", up)
	}

	proxy.Freeze()
	lost := waitStatus(t, p, "ssh mirror lost", func(w status.Watch) bool { return !mirrorNamed(w, sshName).Connected })
	if m := mirrorNamed(lost, local); !m.Connected {
		t.Fatalf("the local mirror is shown lost too: %+v", m)
	}
	if m := mirrorNamed(lost, sshName); m.ConnFailures < 1 || m.State != "lost" {
		t.Fatalf("lost ssh mirror: %+v", m)
	}
	write(t, filepath.Join(src, "index.html"), "v2 while the link is down")
	waitStatus(t, p, "the change waits for the lost mirror", func(w status.Watch) bool {
		return !mirrorNamed(w, sshName).Connected && mirrorNamed(w, sshName).Pending >= 1
	})
	converge(t, src, local, p.out, "local mirror while the ssh one is lost")
	if up := metric(t, scrape(t, url), "gosync_mirror_up", sshName); up != 0 {
		t.Fatalf("gosync_mirror_up = %v while lost", up)
	}
	code, human, stderr := gosync(t, "status")
	if code != 0 || !strings.Contains(human, "not connected (lost) since") || !strings.Contains(human, "1 pending") {
		t.Fatalf("gosync status while lost: exit %d\n%s%s", code, human, stderr)
	}
	t.Logf("gosync status while the ssh mirror is lost:\n%s", human)

	proxy.Thaw()
	back := waitStatus(t, p, "ssh mirror back", func(w status.Watch) bool { return mirrorNamed(w, sshName).Connected })
	if m := mirrorNamed(back, sshName); !m.Since.After(mirrorNamed(lost, sshName).Since) || m.Pending != 0 {
		t.Fatalf("ssh mirror back: %+v", m)
	}
	converge(t, src, remote, p.out, "ssh mirror after the link came back")
	code, human, _ = gosync(t, "status")
	t.Logf("gosync status after the reconnect (exit %d):\n%s", code, human)
}

// --metrics serves Prometheus text that Prometheus's parser reads, and
// the counters move with a save.
func TestWatchMetricsScrape(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	src := t.TempDir()
	treetest.Write(t, src, map[string]string{"index.html": "v1"})
	dst := filepath.Join(t.TempDir(), "www")
	p := startGosync(t, "watch", "--log-format", "text", "--metrics", "127.0.0.1:0", src, dst)
	url := metricsOf(t, p)
	var before map[string]*dto.MetricFamily
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		before = scrape(t, url)
		if metric(t, before, "gosync_mirror_up", dst) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gosync_mirror_up never 1\n%s", p.out.String())
		}
	}
	if _, ok := before["process_resident_memory_bytes"]; !ok {
		t.Error("no process metrics")
	}
	write(t, filepath.Join(src, "index.html"), "v2, a save")
	converge(t, src, dst, p.out, "after a save")
	// The mirror holds the save before the batch is counted: wait (up
	// to a deadline) for every metric to move.
	names := []string{"gosync_batches_total", "gosync_sent_bytes_total", "gosync_changes_total", "gosync_batch_latency_seconds"}
	var after map[string]*dto.MetricFamily
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		after = scrape(t, url)
		moved := 0
		for _, name := range names {
			if metric(t, after, name, dst) > metric(t, before, name, dst) {
				moved++
			}
		}
		if moved == len(names) {
			break
		}
	}
	for _, name := range names {
		if a, b := metric(t, after, name, dst), metric(t, before, name, dst); a <= b {
			t.Errorf("%s did not move with a save: %v then %v", name, b, a)
		}
	}
}

// No watch running is not an error; a watch that stops removes its socket.
func TestStatusNoWatch(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	code, stdout, _ := gosync(t, "status")
	if code != 0 || stdout != "no gosync watch is running\n" {
		t.Fatalf("exit %d: %q", code, stdout)
	}
	if ws := statusJSON(t); len(ws) != 0 {
		t.Fatalf("status --json: %+v", ws)
	}
	src := t.TempDir()
	p := startGosync(t, "watch", src, filepath.Join(t.TempDir(), "www"))
	waitStatus(t, p, "the watch", func(w status.Watch) bool { return len(w.Mirrors) == 1 })
	must(t, p.cmd.Process.Signal(os.Interrupt))
	<-p.done
	if ws := statusJSON(t); len(ws) != 0 {
		t.Fatalf("a stopped watch still listed: %+v", ws)
	}
	sockets, _ := filepath.Glob(filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "gosync", "*"))
	if len(sockets) != 0 {
		t.Fatalf("a stopped watch left %v", sockets)
	}
}

// status -w shows the state again every second until interrupted, and
// an interrupt is how it ends: exit 0.
func TestStatusRefreshes(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	src := t.TempDir()
	dst := filepath.Join(t.TempDir(), "www")
	log := watching(t, src, dst)
	converge(t, src, dst, log, "initial sync")
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	var out, errb syncBuffer
	if code := MainContext(ctx, []string{"status", "-w", "--json"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("status -w exited %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 2 {
		t.Fatalf("status -w showed %d times in 2.5 s, want 2 or more:\n%s", len(lines), out.String())
	}
	for _, l := range lines {
		var ws []status.Watch
		if err := json.Unmarshal([]byte(l), &ws); err != nil || len(ws) != 1 || len(ws[0].Mirrors) != 1 || ws[0].Mirrors[0].Name != dst {
			t.Fatalf("status -w --json line %q: %v", l, err)
		}
	}
}
