package cli

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// fakeSeries is one series a fake Prometheus answers: its labels and its value at each
// step time (absent when ok is false).
type fakeSeries struct {
	labels map[string]string
	value  func(t time.Time) (v float64, ok bool)
}

// fakeRange is one range query the fake Prometheus received.
type fakeRange struct {
	query      string
	start, end time.Time
	step       time.Duration
}

// fakePrometheus serves /api/v1/query_range on 127.0.0.1 from series given by query.
type fakePrometheus struct {
	mu       sync.Mutex
	series   map[string][]fakeSeries
	failing  map[string]string // query -> error message, answered as bad_data
	requests []fakeRange
}

func newFakePrometheus(t *testing.T, f *fakePrometheus) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv
}

func (f *fakePrometheus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query_range" || r.ParseForm() != nil {
		http.NotFound(w, r)
		return
	}
	q := r.Form.Get("query")
	start, end, step := promTime(r.Form.Get("start")), promTime(r.Form.Get("end")), r.Form.Get("step")
	stepSec, _ := strconv.ParseFloat(step, 64)
	d := time.Duration(stepSec * float64(time.Second))
	f.mu.Lock()
	f.requests = append(f.requests, fakeRange{query: q, start: start, end: end, step: d})
	msg, failing := f.failing[q]
	series := f.series[q]
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if failing {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "error", "errorType": "bad_data", "error": msg})
		return
	}
	result := []map[string]any{}
	for _, s := range series {
		var values [][]any
		for t := start; !t.After(end); t = t.Add(d) {
			if v, ok := s.value(t); ok {
				values = append(values, []any{float64(t.UnixMilli()) / 1000, strconv.FormatFloat(v, 'g', -1, 64)})
			}
		}
		if len(values) > 0 {
			result = append(result, map[string]any{"metric": s.labels, "values": values})
		}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": "matrix", "result": result}})
}

func promTime(s string) time.Time {
	f, _ := strconv.ParseFloat(s, 64)
	return time.UnixMilli(int64(math.Round(f * 1000))).UTC()
}

func (f *fakePrometheus) queries() []fakeRange {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRange{}, f.requests...)
}

// componentSeries are the manager's homeostat_component_sensor series of one component.
func componentSeries(ns, app, component string, numbers func(t time.Time) (map[string]float64, bool)) []fakeSeries {
	var out []fakeSeries
	for _, name := range []string{"desiredReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas", "restarts",
		"crashLoopingPods", "oomKilledPods", "pendingPods", "readyRatio", "rolloutStuck", "healthy", "found"} {
		out = append(out, fakeSeries{
			labels: map[string]string{"__name__": metricComponentSensor, "namespace": ns, "app": app, "component": component, "sensor": name},
			value: func(t time.Time) (float64, bool) {
				n, ok := numbers(t)
				if !ok {
					return 0, false
				}
				return n[name], true
			},
		})
	}
	return out
}

func steady(desired, ready float64) func(time.Time) (map[string]float64, bool) {
	return func(time.Time) (map[string]float64, bool) {
		return map[string]float64{"desiredReplicas": desired, "readyReplicas": ready, "availableReplicas": ready,
			"readyRatio": ready / desired, "healthy": 1, "found": 1}, true
	}
}

func sensorValueSeries(ns, app, sensor string, value func(time.Time) (float64, bool)) fakeSeries {
	return fakeSeries{labels: map[string]string{"__name__": metricSensorValue, "namespace": ns, "app": app, "sensor": sensor}, value: value}
}

const (
	shopComponents = `homeostat_component_sensor{namespace="shop",app="shop"}`
	shopPhases     = `homeostat_component_phase{namespace="shop",app="shop"}`
	shopSensors    = `homeostat_sensor_value{namespace="shop",app="shop"}`
)

var hT0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestHistoryReaderReadsTheAppsSeries(t *testing.T) {
	fp := &fakePrometheus{series: map[string][]fakeSeries{
		shopComponents: componentSeries("shop", "shop", "web", steady(3, 3)),
		shopPhases: {{labels: map[string]string{"namespace": "shop", "app": "shop", "component": "payments", "phase": "Degraded"},
			value: func(t time.Time) (float64, bool) { return 1, t.Sub(hT0) >= time.Minute }}},
		shopSensors: {sensorValueSeries("shop", "shop", "cpu", func(t time.Time) (float64, bool) {
			// Unavailable for the second minute.
			return 42, t.Sub(hT0) < time.Minute || t.Sub(hT0) >= 2*time.Minute
		})},
		"sum(rate(latency[1m]))": {{labels: map[string]string{}, value: func(time.Time) (float64, bool) { return 0.25, true }}},
		// Two series at once: a sensor would be unavailable.
		"latency_by_pod": {
			{labels: map[string]string{"pod": "a"}, value: func(time.Time) (float64, bool) { return 1, true }},
			{labels: map[string]string{"pod": "b"}, value: func(t time.Time) (float64, bool) { return 2, t.Sub(hT0) < time.Minute }},
		},
	}}
	srv := newFakePrometheus(t, fp)
	h, err := newHistoryReader(srv.URL, hT0, hT0.Add(3*time.Minute), 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	spec := &v1alpha1.AutonomicApp{Spec: v1alpha1.AutonomicAppSpec{
		Components: []v1alpha1.Component{{Name: "web"}, {Name: "payments", AppRef: &v1alpha1.AppReference{Name: "payments"}}},
		Healing: v1alpha1.Healing{Sensors: []v1alpha1.Sensor{
			{Name: "cpu", Resource: &v1alpha1.ResourceSensor{Component: "web", Resource: "cpu"}},
			{Name: "latency", Prometheus: &v1alpha1.PrometheusSensor{Address: "http://prometheus.monitoring:9090", Query: "sum(rate(latency[1m]))"}},
			{Name: "byPod", Prometheus: &v1alpha1.PrometheusSensor{Address: "http://prometheus.monitoring:9090", Query: "latency_by_pod"}},
			{Name: "probe", HTTP: &v1alpha1.HTTPSensor{URL: "http://web/healthz"}},
		}},
	}}
	var sources []sensorSource
	for _, s := range spec.Spec.Sensors {
		sources = append(sources, sourceOf(s))
	}
	hist, warnings, err := h.readHistory(context.Background(), "shop", "shop", sources)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "sensor probe has no samples between 2025-03-01T12:00:00Z and 2025-03-01T12:03:00Z; is Prometheus scraping the manager?") {
		t.Errorf("warnings %q", warnings)
	}
	frames := hist.frames(spec)
	if len(frames) != 13 {
		t.Fatalf("%d frames, want 13 (3m at 15s, both ends)", len(frames))
	}
	f0, f5, f9 := frames[0], frames[5], frames[9]
	if f0.Components["web"].Numbers["desiredReplicas"] != 3 || f0.Components["web"].Numbers["healthy"] != 1 {
		t.Errorf("web at the start: %+v", f0.Components["web"])
	}
	if _, ok := f0.Components["payments"]; ok || f5.Components["payments"].Phase != "Degraded" {
		t.Errorf("payments' phase: %+v, then %+v", f0.Components["payments"], f5.Components["payments"])
	}
	if f0.Sensors["cpu"] != 42 || f0.Sensors["latency"] != 0.25 {
		t.Errorf("sensors at the start: %v", f0.Sensors)
	}
	if _, ok := f5.Sensors["cpu"]; ok {
		t.Errorf("cpu is available while it was not recorded: %v", f5.Sensors)
	}
	if _, ok := f0.Sensors["byPod"]; ok {
		t.Errorf("a query answering two series is read as a value: %v", f0.Sensors)
	}
	if f9.Sensors["byPod"] != 1 || f9.Sensors["cpu"] != 42 {
		t.Errorf("sensors later: %v", f9.Sensors)
	}
	if got := hist.startReplicas()["web"]; got != 3 {
		t.Errorf("start replicas %d, want 3", got)
	}
	if w := hist.componentWarnings(spec, hT0, hT0.Add(time.Minute)); len(w) != 0 {
		t.Errorf("component warnings %q", w)
	}
}

func TestHistoryReaderSplitsLongRangesIntoChunks(t *testing.T) {
	fp := &fakePrometheus{series: map[string][]fakeSeries{
		shopComponents: componentSeries("shop", "shop", "web", steady(2, 2)),
	}}
	srv := newFakePrometheus(t, fp)
	to := hT0.Add(25000 * time.Second)
	h, err := newHistoryReader(srv.URL, hT0, to, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	hist, _, err := h.readHistory(context.Background(), "shop", "shop", nil)
	if err != nil {
		t.Fatal(err)
	}
	var chunks []fakeRange
	for _, q := range fp.queries() {
		if q.query == shopComponents {
			chunks = append(chunks, q)
		}
	}
	if len(chunks) != 3 {
		t.Fatalf("%d chunks, want 3 for 25001 points", len(chunks))
	}
	for i, c := range chunks {
		if n := int(c.end.Sub(c.start)/c.step) + 1; n > maxPointsPerSeries {
			t.Errorf("chunk %d has %d points", i, n)
		}
		if i > 0 && !c.start.Equal(chunks[i-1].end.Add(time.Second)) {
			t.Errorf("chunk %d starts at %s, not one step after the last", i, c.start)
		}
	}
	if got := len(hist.components["web"]["desiredReplicas"]); got != 25001 {
		t.Errorf("%d points merged, want 25001", got)
	}
}

func TestHistoryReaderErrors(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	tests := []struct {
		name    string
		fake    *fakePrometheus
		address string
		sources []sensorSource
		want    string
	}{
		{
			name: "no component series: Prometheus must scrape the manager",
			fake: &fakePrometheus{series: map[string][]fakeSeries{}},
			want: "has no homeostat_component_sensor series of AutonomicApp shop/shop between 2025-03-01T12:00:00Z and " +
				"2025-03-01T12:05:00Z: Prometheus must scrape the manager's metrics endpoint, and the manager must run with --sensor-gauges",
		},
		{
			name: "a query Prometheus refuses",
			fake: &fakePrometheus{series: map[string][]fakeSeries{shopComponents: componentSeries("shop", "shop", "web", steady(2, 2))},
				failing: map[string]string{"rate(x[": "parse error: unclosed left bracket"}},
			sources: []sensorSource{{name: "x", query: "rate(x["}},
			want:    "failed the range query rate(x[: bad_data: parse error: unclosed left bracket",
		},
		{
			name:    "an unreachable Prometheus",
			address: closedURL,
			want:    "prometheus at " + closedURL + " cannot be reached",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.address
			if tc.fake != nil {
				addr = newFakePrometheus(t, tc.fake).URL
			}
			h, err := newHistoryReader(addr, hT0, hT0.Add(5*time.Minute), 15*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = h.readHistory(context.Background(), "shop", "shop", tc.sources)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
			if code := exitCode(err); code != ExitPrometheus {
				t.Errorf("exit code %d, want %d", code, ExitPrometheus)
			}
		})
	}
}

func TestPrometheusAddress(t *testing.T) {
	tests := []struct {
		name, flag, env string
		want            string
		code            int
	}{
		{name: "the flag", flag: "http://127.0.0.1:9090", env: "http://elsewhere:9090", want: "http://127.0.0.1:9090"},
		{name: "the environment variable", env: "https://127.0.0.1:9091", want: "https://127.0.0.1:9091"},
		{name: "neither: say how to give it", code: ExitPrometheus},
		{name: "not a URL", flag: "127.0.0.1:9090", code: ExitUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(PrometheusEnv, tc.env)
			got, err := prometheusAddress(tc.flag)
			if tc.code != 0 {
				if err == nil || exitCode(err) != tc.code {
					t.Fatalf("err = %v (exit %d), want exit %d", err, exitCode(err), tc.code)
				}
				if tc.code == ExitPrometheus && (!strings.Contains(err.Error(), "--prometheus URL") || !strings.Contains(err.Error(), PrometheusEnv)) {
					t.Errorf("the message does not say how to give the address: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestSingleSampleDropsStepsWithSeveralSeriesOrNoNumber(t *testing.T) {
	res := map[string]labeledSeries{
		"a": {values: sampleSeries{1: 1, 2: 2, 3: math.NaN()}},
		"b": {values: sampleSeries{2: 5}},
	}
	got := singleSample(res)
	if len(got) != 1 || got[1] != 1 {
		t.Errorf("got %v, want only step 1", got)
	}
}

func TestHistoryReaderJoinsTheSeriesOfARestartedManager(t *testing.T) {
	half := hT0.Add(30 * time.Second)
	before := componentSeries("shop", "shop", "web", func(t time.Time) (map[string]float64, bool) {
		return map[string]float64{"desiredReplicas": 2, "found": 1}, t.Before(half)
	})
	after := componentSeries("shop", "shop", "web", func(t time.Time) (map[string]float64, bool) {
		return map[string]float64{"desiredReplicas": 4, "found": 1}, !t.Before(half)
	})
	for i := range after {
		after[i].labels["instance"] = "10.0.0.2:8080"
	}
	fp := &fakePrometheus{series: map[string][]fakeSeries{shopComponents: append(before, after...)}}
	srv := newFakePrometheus(t, fp)
	h, err := newHistoryReader(srv.URL, hT0, hT0.Add(time.Minute), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	hist, _, err := h.readHistory(context.Background(), "shop", "shop", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := hist.components["web"]["desiredReplicas"]
	if len(got) != 61 {
		t.Fatalf("%d samples of desiredReplicas, want the 61 of both managers' series", len(got))
	}
	if got[hT0.UnixMilli()] != 2 || got[hT0.Add(time.Minute).UnixMilli()] != 4 {
		t.Errorf("desiredReplicas at the start %v and the end %v, want 2 and 4", got[hT0.UnixMilli()], got[hT0.Add(time.Minute).UnixMilli()])
	}
}

func TestHistoryReaderFindsAnAppWhoseNamespaceTheScrapeRenamed(t *testing.T) {
	renamed := componentSeries("shop", "shop", "web", steady(3, 3))
	for i := range renamed {
		renamed[i].labels["exported_namespace"] = "shop"
		renamed[i].labels["namespace"] = "homeostat-system"
	}
	fp := &fakePrometheus{series: map[string][]fakeSeries{
		`homeostat_component_sensor{exported_namespace="shop",app="shop"}`: renamed,
	}}
	srv := newFakePrometheus(t, fp)
	h, err := newHistoryReader(srv.URL, hT0, hT0.Add(time.Minute), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	hist, warnings, err := h.readHistory(context.Background(), "shop", "shop", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist.components["web"]["desiredReplicas"]) == 0 {
		t.Error("no history read through exported_namespace")
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "honorLabels") {
		t.Errorf("warnings %q: want one that says to set honorLabels", warnings)
	}
}
