package demo

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// LatencyMetric is the histogram the exporter serves, the name client libraries and
// most HTTP middlewares give a server's request latency.
const LatencyMetric = "http_request_duration_seconds"

// latencyBuckets are the histogram's upper bounds, in seconds: fine around the sample's
// band of 100ms to 300ms, so histogram_quantile reads the p95 back closely.
var latencyBuckets = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 10}

// ln20 turns an exponential distribution's mean into its p95: P(X > 3 mean) = 1/20.
var ln20 = math.Log(20)

// exporter is the histogram of the api Deployment's requests, as its pods would export
// it, served by an HTTP server on 127.0.0.1 for Prometheus to scrape. It counts the
// requests of the load it is given as time passes: rps requests a second, each with a
// latency drawn from an exponential distribution of the load's p95. The counts are
// expectations, not draws, so the histogram is exactly the model's.
type exporter struct {
	desc *prometheus.Desc
	now  func() time.Time

	mu      sync.Mutex
	last    time.Time // when the counts were last brought up to date
	rps     float64   // the requests a second served since last
	p95     float64   // their p95 latency, seconds
	buckets []float64 // cumulative counts per bound of latencyBuckets
	count   float64
	sum     float64

	srv  *http.Server
	addr string
}

func newExporter(now func() time.Time) *exporter {
	return &exporter{
		desc: prometheus.NewDesc(LatencyMetric,
			"Latency of the api Deployment's requests, as make run's demo load (ConfigMap homeostat-demo/demo-load) models them.",
			nil, nil),
		now:     now,
		last:    now(),
		buckets: make([]float64, len(latencyBuckets)),
	}
}

// set changes the load from now on: rps requests a second in all, with the p95 of l.
func (e *exporter) set(rps float64, l PodLoad) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.advance()
	e.rps, e.p95 = rps, l.P95
	if l.RPS == 0 {
		e.rps = 0 // no serving pod: nothing is served
	}
}

// advance counts the requests served since last; e.mu is held.
func (e *exporter) advance() {
	now := e.now()
	dt := now.Sub(e.last).Seconds()
	e.last = now
	if dt <= 0 || e.rps <= 0 || e.p95 <= 0 {
		return
	}
	n := e.rps * dt
	mean := e.p95 / ln20
	for i, le := range latencyBuckets {
		e.buckets[i] += n * (1 - math.Exp(-le/mean))
	}
	e.count += n
	e.sum += n * mean
}

// Describe and Collect make the exporter a prometheus.Collector.
func (e *exporter) Describe(ch chan<- *prometheus.Desc) { ch <- e.desc }

func (e *exporter) Collect(ch chan<- prometheus.Metric) {
	e.mu.Lock()
	e.advance()
	buckets := make(map[float64]uint64, len(latencyBuckets))
	for i, le := range latencyBuckets {
		buckets[le] = uint64(e.buckets[i])
	}
	count, sum := uint64(e.count), e.sum
	e.mu.Unlock()
	ch <- prometheus.MustNewConstHistogram(e.desc, count, sum, buckets)
}

// serve serves /metrics on a free port of 127.0.0.1.
func (e *exporter) serve() error {
	reg := prometheus.NewRegistry()
	if err := reg.Register(e); err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	e.addr = l.Addr().String()
	e.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := e.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = l.Close()
		}
	}()
	return nil
}

func (e *exporter) stop(ctx context.Context) {
	if e.srv == nil {
		return
	}
	if err := e.srv.Shutdown(ctx); err != nil {
		_ = e.srv.Close()
	}
}
