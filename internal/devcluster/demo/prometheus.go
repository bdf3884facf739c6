package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/homeostat-dev/homeostat/internal/devcluster"
)

// DefaultPrometheusAddress is where the samples' Prometheus sensors look, and so where
// make run's Prometheus listens unless told otherwise.
const DefaultPrometheusAddress = "127.0.0.1:9090"

// scrapeInterval is how often Prometheus scrapes the exporter: often enough that the
// samples' queries answer a few seconds after the start, and that a change of the load
// shows within a sensor's poll.
const scrapeInterval = 2 * time.Second

// managerScrapeInterval is how often Prometheus scrapes the manager's metrics.
const managerScrapeInterval = 10 * time.Second

// CheckAddress says whether Prometheus can listen on addr: a free port of a loopback
// address. devcluster checks it before it starts anything, to fail at once and clearly.
func CheckAddress(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("the Prometheus address %q is not host:port: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("the Prometheus address %q is not on a loopback address such as 127.0.0.1", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("%s is in use by another program, so the demo's Prometheus cannot listen there: "+
				"stop that program, or choose another port with devcluster's --prometheus-address "+
				"(make run DEVCLUSTER_FLAGS=--prometheus-address=127.0.0.1:19090; the samples' Prometheus sensors "+
				"are pointed there), or run without the demo (--demo=false)", addr)
		}
		return fmt.Errorf("the demo's Prometheus cannot listen on %s: %w", addr, err)
	}
	return l.Close()
}

// FindPrometheus returns the path of the prometheus on PATH, or an error that says how to
// get one.
func FindPrometheus() (string, error) {
	path, err := exec.LookPath("prometheus")
	if err != nil {
		return "", errors.New("the demo needs prometheus, and none is on PATH: run `bash hack/tools.sh prometheus` " +
			"(Debian's package, installed when run as root), or put a prometheus binary on PATH; or run without the demo (--demo=false)")
	}
	return path, nil
}

// PrometheusURL is the URL of a Prometheus that listens on addr.
func PrometheusURL(addr string) string { return "http://" + addr }

// PointSamplesAt sets the address of every Prometheus sensor of the AutonomicApps among
// objs that points at DefaultPrometheusAddress to the Prometheus at addr, and returns
// the names of the sensors it changed (namespace/app/sensor). Sensors that point
// elsewhere are left alone.
func PointSamplesAt(objs []*unstructured.Unstructured, addr string) []string {
	from, to := PrometheusURL(DefaultPrometheusAddress), PrometheusURL(addr)
	var changed []string
	for _, o := range objs {
		if o.GetKind() != "AutonomicApp" {
			continue
		}
		sensors, _, _ := unstructured.NestedSlice(o.Object, "spec", "sensors")
		touched := false
		for _, s := range sensors {
			m, ok := s.(map[string]any)
			if !ok {
				continue
			}
			address, _, _ := unstructured.NestedString(m, "prometheus", "address")
			if strings.TrimSuffix(address, "/") != from || from == to {
				continue
			}
			_ = unstructured.SetNestedField(m, to, "prometheus", "address")
			changed = append(changed, o.GetNamespace()+"/"+o.GetName()+"/"+fmt.Sprint(m["name"]))
			touched = true
		}
		if touched {
			_ = unstructured.SetNestedSlice(o.Object, sensors, "spec", "sensors")
		}
	}
	return changed
}

// prometheusConfig scrapes the exporter as job api, the job of the pods it stands for,
// and, when managerMetrics is set, the manager's metrics as job homeostat.
func prometheusConfig(exporter, managerMetrics string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by devcluster for make run's demo; rewritten at every start.\n")
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  evaluation_interval: %s\n", managerScrapeInterval, managerScrapeInterval)
	fmt.Fprintf(&b, "scrape_configs:\n")
	fmt.Fprintf(&b, "# The demo load's exporter: http_request_duration_seconds as the api Deployment's pods would serve it.\n")
	fmt.Fprintf(&b, "- job_name: api\n  scrape_interval: %s\n  scrape_timeout: %s\n  static_configs:\n  - targets: [%q]\n",
		scrapeInterval, scrapeInterval, exporter)
	if managerMetrics != "" {
		fmt.Fprintf(&b, "# The manager's metrics (its --metrics-bind-address, plain HTTP).\n")
		fmt.Fprintf(&b, "- job_name: homeostat\n  static_configs:\n  - targets: [%q]\n", managerMetrics)
	}
	return b.String()
}

// startPrometheus writes the configuration into <cluster dir>/prometheus, starts
// Prometheus as a process of the cluster (logs/prometheus.log) with its data there, fresh,
// and waits until it is ready.
func startPrometheus(ctx context.Context, c *devcluster.Cluster, binary, addr, exporter, managerMetrics string) error {
	dir := filepath.Join(c.Dir(), "prometheus")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte(prometheusConfig(exporter, managerMetrics)), 0o644); err != nil {
		return err
	}
	err := c.StartComponent("prometheus", binary, []string{
		"--config.file=" + config,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--storage.tsdb.retention.time=1d",
		"--web.listen-address=" + addr,
		"--log.level=warn",
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	url := PrometheusURL(addr) + "/-/ready"
	err = c.WaitFor(ctx, "Prometheus to be ready at "+PrometheusURL(addr), func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	})
	if err != nil && strings.Contains(err.Error(), "address already in use") {
		return fmt.Errorf("prometheus could not listen on %s, which another program took: choose another port with "+
			"--prometheus-address (make run DEVCLUSTER_FLAGS=--prometheus-address=127.0.0.1:19090): %w", addr, err)
	}
	return err
}

// hostPort turns a bind address such as :8080 or 0.0.0.0:8080 into one to dial on
// loopback; "" when addr is not host:port with a port.
func hostPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || host == "localhost" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// ManagerMetrics reads the manager's metrics endpoint from its arguments, as main.go's
// flags take them: --metrics-bind-address (default "0", off) and --metrics-secure
// (default true). It returns the address Prometheus scrapes, on loopback, or "" and why
// it cannot: off, served over HTTPS with authentication, or not on loopback.
func ManagerMetrics(args []string) (addr, why string) {
	bind, secure := "0", "true"
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") {
			continue
		}
		switch name {
		case "metrics-bind-address":
			if !hasValue && i+1 < len(args) {
				i++
				value = args[i]
			}
			bind = value
		case "metrics-secure":
			if !hasValue {
				value = "true" // a bool flag takes its value only after =
			}
			secure = value
		}
	}
	if bind == "0" || bind == "" {
		return "", "the manager serves no metrics (--metrics-bind-address is 0)"
	}
	if b, err := strconv.ParseBool(secure); err != nil || b {
		return "", "the manager serves its metrics over HTTPS with authentication (--metrics-secure=false serves them plainly, as make run does)"
	}
	addr = hostPort(bind)
	if addr == "" {
		return "", fmt.Sprintf("--metrics-bind-address %q is not host:port", bind)
	}
	host, _, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", fmt.Sprintf("--metrics-bind-address %q is not on loopback, and the demo only ever connects to loopback", bind)
	}
	return addr, ""
}
