package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
)

// Prometheus' timing in the e2e specs. A target is scraped once a second, so a new value
// of the exporter's gauge reaches Prometheus within scrapeInterval of being set (plus the
// scrape's own few milliseconds). An instant query returns the newest sample no older
// than lookbackDelta: small, so a series that stopped being scraped (Prometheus was
// down) reads as absent within a few seconds instead of repeating an old value for the
// default five minutes.
const (
	scrapeInterval = time.Second
	lookbackDelta  = 3 * time.Second
)

// loadMetric is the gauge the test's exporter serves, one series per scenario label.
const loadMetric = "homeostat_e2e_load"

// loadExporter serves loadMetric on 127.0.0.1 with client_golang's promhttp: the load
// of an application, as the test sets it.
type loadExporter struct {
	addr string
	load *prometheus.GaugeVec
	srv  *http.Server
}

func startExporter() *loadExporter {
	reg := prometheus.NewRegistry()
	load := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: loadMetric, Help: "The load the e2e test sets."}, []string{"scenario"})
	reg.MustRegister(load)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	e := &loadExporter{addr: l.Addr().String(), load: load, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	go func() { _ = e.srv.Serve(l) }()
	DeferCleanup(func() { _ = e.srv.Close() })
	return e
}

// set sets the scenario's load and returns the moment it did: the start of every
// latency the specs measure.
func (e *loadExporter) set(scenario string, v float64) time.Time {
	e.load.WithLabelValues(scenario).Set(v)
	return time.Now()
}

// promServer is a real Prometheus, Debian's package, on 127.0.0.1 at a port of its own,
// scraping the test's exporter. It keeps its data directory and port across stop and
// start, as a restarted server does.
type promServer struct {
	bin, dir, addr string
	api            promv1.API

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error
}

// startPrometheus writes a configuration that scrapes target (job e2e), and the
// manager's metrics endpoints in managers (job homeostat), every scrapeInterval, starts
// Prometheus on a free loopback port, and waits until it has scraped them all.
// It stops with the spec container (DeferCleanup) and, like the manager, is killed if
// the test process dies.
func startPrometheus(target string, managers ...string) *promServer {
	out, err := exec.Command("bash", filepath.Join(repoRoot, "hack", "tools.sh"), "path", "prometheus").Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		Fail(fmt.Sprintf("Prometheus is needed for the autoscaling specs (make test-e2e installs it): %s", ee.Stderr))
	}
	Expect(err).NotTo(HaveOccurred())
	port, err := freePort()
	Expect(err).NotTo(HaveOccurred())
	p := &promServer{bin: strings.TrimSpace(string(out)), dir: GinkgoT().TempDir(), addr: fmt.Sprintf("127.0.0.1:%d", port)}
	config := fmt.Sprintf(`global:
  scrape_interval: %s
  scrape_timeout: %s
  evaluation_interval: %s
scrape_configs:
- job_name: e2e
  static_configs:
  - targets: [%q]
`, model.Duration(scrapeInterval), model.Duration(scrapeInterval), model.Duration(scrapeInterval), target)
	if len(managers) > 0 {
		quoted := make([]string, len(managers))
		for i, m := range managers {
			quoted[i] = fmt.Sprintf("%q", m)
		}
		config += fmt.Sprintf("- job_name: homeostat\n  static_configs:\n  - targets: [%s]\n", strings.Join(quoted, ", "))
	}
	Expect(os.WriteFile(filepath.Join(p.dir, "prometheus.yml"), []byte(config), 0o644)).To(Succeed())
	client, err := api.NewClient(api.Config{Address: p.url()})
	Expect(err).NotTo(HaveOccurred())
	p.api = promv1.NewAPI(client)

	Expect(p.start()).To(Succeed())
	DeferCleanup(p.stop)
	p.waitScraped()
	for _, m := range managers {
		Eventually(func() (float64, error) { return p.value(fmt.Sprintf(`up{job="homeostat",instance=%q}`, m)) }).
			WithTimeout(30*time.Second).WithPolling(50*time.Millisecond).Should(Equal(1.0), "Prometheus scrapes the manager at %s", m)
	}
	return p
}

func (p *promServer) url() string { return "http://" + p.addr }

// start runs Prometheus and waits until it answers ready.
func (p *promServer) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return errors.New("prometheus is already running")
	}
	logf, err := os.OpenFile(filepath.Join(p.dir, "prometheus.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin,
		"--config.file="+filepath.Join(p.dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(p.dir, "data"),
		"--storage.tsdb.retention.time=1h",
		"--web.listen-address="+p.addr,
		"--query.lookback-delta="+model.Duration(lookbackDelta).String(),
		"--log.level=info")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); logf.Close() }()
	p.cmd, p.done = cmd, done

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			p.cmd = nil
			return fmt.Errorf("prometheus exited while starting (%v): %s", err, p.logTail(20))
		default:
		}
		resp, err := http.Get(p.url() + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("prometheus was not ready within 30s: %s", p.logTail(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends Prometheus with SIGTERM, as a service manager would, then SIGKILL.
func (p *promServer) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

func (p *promServer) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// waitScraped waits until Prometheus has scraped the exporter successfully.
func (p *promServer) waitScraped() {
	Eventually(func() (float64, error) { return p.value(`up{job="e2e"}`) }).
		WithTimeout(30*time.Second).WithPolling(50*time.Millisecond).Should(Equal(1.0), "Prometheus scrapes the test's exporter")
}

// value runs an instant query that returns one sample.
func (p *promServer) value(q string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	v, _, _, err := p.api.Query(ctx, q, time.Time{})
	if err != nil {
		return 0, err
	}
	vec, ok := v.(model.Vector)
	if !ok || len(vec) != 1 {
		return 0, fmt.Errorf("query %s returned %v, not one sample", q, v)
	}
	return float64(vec[0].Value), nil
}

// samples returns the raw samples of a series selector over the last window, oldest
// first, with the times Prometheus scraped them.
func (p *promServer) samples(selector string, window time.Duration) ([]model.SamplePair, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	v, _, _, err := p.api.Query(ctx, fmt.Sprintf("%s[%s]", selector, model.Duration(window)), time.Time{})
	if err != nil {
		return nil, err
	}
	m, ok := v.(model.Matrix)
	if !ok || len(m) != 1 {
		return nil, fmt.Errorf("range query of %s returned %v, not one series", selector, v)
	}
	return m[0].Values, nil
}

// firstScrapeOf is when Prometheus first scraped value at or after since: the moment a
// change of the exporter's gauge entered Prometheus.
func (p *promServer) firstScrapeOf(selector string, value float64, since time.Time) (time.Time, error) {
	ss, err := p.samples(selector, time.Since(since)+2*time.Second)
	if err != nil {
		return time.Time{}, err
	}
	for _, s := range ss {
		if t := s.Timestamp.Time(); !t.Before(since) && float64(s.Value) == value {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("no sample of %s with value %v since %s", selector, value, since.Format(time.RFC3339Nano))
}

// waitVisible polls Prometheus, every 10ms, until an instant query of selector returns
// value, and returns when it first did.
func (p *promServer) waitVisible(selector string, value float64, timeout time.Duration) time.Time {
	deadline := time.Now().Add(timeout)
	for {
		if v, err := p.value(selector); err == nil && v == value {
			return time.Now()
		}
		if time.Now().After(deadline) {
			Fail(fmt.Sprintf("Prometheus did not return %v for %s within %s", value, selector, timeout))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *promServer) logTail(n int) string {
	f, err := os.Open(filepath.Join(p.dir, "prometheus.log"))
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// resultSize runs an instant query now and returns how many samples or series it
// returned (1 for a scalar).
func (p *promServer) resultSize(q string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, _, _, err := p.api.Query(ctx, q, time.Now())
	if err != nil {
		return 0, err
	}
	switch v := v.(type) {
	case model.Vector:
		return len(v), nil
	case model.Matrix:
		return len(v), nil
	case *model.Scalar, *model.String:
		return 1, nil
	}
	return 0, fmt.Errorf("query %s returned a %s", q, v.Type())
}
