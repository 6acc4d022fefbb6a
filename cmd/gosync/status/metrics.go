package status

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gosync/gosync/engine"
)

// Metrics serves a watch's state for Prometheus on /metrics. Counters
// and gauges are read from the mirrors' snapshots at each scrape (the
// same numbers `gosync status` shows); only the latency histogram is
// fed as batches are applied.
type Metrics struct {
	reg     *prometheus.Registry
	latency *prometheus.HistogramVec
}

// NewMetrics registers gosync's metrics, with the Go runtime's and the
// process's (resident memory, open files), in a registry of its own.
func NewMetrics(mirrors func() []engine.MirrorStatus) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gosync_batch_latency_seconds",
			Help: "Time from the first change of a batch to its being applied on the mirror.",
			// 5 ms to about 40 s: a save lands in tens of ms; a
			// batch after a reconnection may take seconds.
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"mirror"}),
	}
	m.reg.MustRegister(m.latency, mirrorCollector{mirrors},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveBatch feeds the latency histogram; call it from Live.OnBatch.
// Full syncs only make the mirror's series appear: their time is that
// of a whole tree.
func (m *Metrics) ObserveBatch(r engine.BatchReport) {
	h := m.latency.WithLabelValues(r.Mirror) // from the initial sync on, with a count of 0
	if r.Kind == "batch" || r.Kind == "delete" {
		h.Observe(r.Latency.Seconds())
	}
}

// Handler serves the metrics in Prometheus's formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Timeout: 5 * time.Second, MaxRequestsInFlight: 4})
}

// ListenMetrics opens addr (host:port; ":9100" is every interface) for
// Serve, so a taken port is an error before the watch starts.
func ListenMetrics(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w (choose another address, e.g. 127.0.0.1:9465)", addr, err)
	}
	return l, nil
}

// Serve serves /metrics on l until ctx ends.
func (m *Metrics) Serve(ctx context.Context, l net.Listener, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    8 << 10,
	}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	defer stop()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("metrics server stopped", slog.String("err", err.Error()))
	}
}

var (
	labels        = []string{"mirror"}
	descUp        = prometheus.NewDesc("gosync_mirror_up", "1 while the mirror is connected, else 0.", labels, nil)
	descBatches   = prometheus.NewDesc("gosync_batches_total", "Batches of changes applied while watching.", labels, nil)
	descFull      = prometheus.NewDesc("gosync_full_syncs_total", "Full comparisons: the initial sync, catch-ups after reconnecting, reconciliations.", labels, nil)
	descSent      = prometheus.NewDesc("gosync_sent_bytes_total", "Bytes written to the mirror's stream, after compression.", labels, nil)
	descChanges   = prometheus.NewDesc("gosync_changes_total", "Entries created, updated, renamed or deleted on the mirror.", labels, nil)
	descPathFail  = prometheus.NewDesc("gosync_path_failures_total", "Attempts to mirror a path that failed (each is retried with backoff).", labels, nil)
	descConnFail  = prometheus.NewDesc("gosync_connection_failures_total", "Connections to the mirror that failed or were lost.", labels, nil)
	descPending   = prometheus.NewDesc("gosync_pending_paths", "Changed paths queued and not yet applied.", labels, nil)
	descRetrying  = prometheus.NewDesc("gosync_retrying_paths", "Failed paths waiting for their retry.", labels, nil)
	descLastBatch = prometheus.NewDesc("gosync_last_batch_timestamp_seconds", "When a change was last applied (Unix time).", labels, nil)
)

// mirrorCollector turns the mirrors' snapshots into metrics at scrape time.
type mirrorCollector struct{ mirrors func() []engine.MirrorStatus }

func (c mirrorCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descBatches, descFull, descSent, descChanges, descPathFail, descConnFail, descPending, descRetrying, descLastBatch} {
		ch <- d
	}
}

func (c mirrorCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.mirrors() {
		up := 0.0
		if s.Connected {
			up = 1
		}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, s.Name)
		}
		counter := func(d *prometheus.Desc, v int64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), s.Name)
		}
		gauge(descUp, up)
		counter(descBatches, s.Batches)
		counter(descFull, s.FullSyncs)
		counter(descSent, s.BytesSent)
		counter(descChanges, s.Changes)
		counter(descPathFail, s.PathFailures)
		counter(descConnFail, s.ConnFailures)
		gauge(descPending, float64(s.Pending))
		gauge(descRetrying, float64(s.Retrying))
		if !s.LastBatch.IsZero() {
			gauge(descLastBatch, float64(s.LastBatch.UnixNano())/1e9)
		}
	}
}
