package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/replay"
)

// PrometheusEnv names the environment variable that gives Prometheus' address when
// --prometheus is not set.
const PrometheusEnv = "HOMEOSTAT_PROMETHEUS"

// The series the manager exports for replays (with --sensor-gauges, on by default).
const (
	metricSensorValue     = "homeostat_sensor_value"
	metricComponentSensor = "homeostat_component_sensor"
	metricComponentPhase  = "homeostat_component_phase"
)

const (
	// maxPointsPerSeries is how many points Prometheus returns per series for one range
	// query; longer ranges are read in chunks.
	maxPointsPerSeries = 11000
	// maxSimulatedSteps bounds the steps of one simulation: a longer range raises the
	// step, with a warning.
	maxSimulatedSteps = 100000
	// queryTimeout bounds each range query.
	queryTimeout = 2 * time.Minute
)

// errNoPrometheus is the error of a simulation without a Prometheus address.
var errNoPrometheus = withCode(ExitPrometheus, fmt.Errorf("simulate replays the history a Prometheus holds: "+
	"give its address with --prometheus URL or the %s environment variable "+
	"(a Prometheus that scrapes the manager's metrics endpoint; for one in the cluster, "+
	"`kubectl port-forward -n monitoring svc/prometheus 9090` makes it http://127.0.0.1:9090)", PrometheusEnv))

// prometheusAddress is --prometheus, else $HOMEOSTAT_PROMETHEUS, checked to be an
// http(s) URL.
func prometheusAddress(flag string) (string, error) {
	addr, from := flag, "--prometheus"
	if addr == "" {
		addr, from = os.Getenv(PrometheusEnv), PrometheusEnv
	}
	if addr == "" {
		return "", errNoPrometheus
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usageError(fmt.Sprintf("%s %q is not an http or https URL of Prometheus, for example http://127.0.0.1:9090", from, addr))
	}
	return addr, nil
}

// historyReader reads range queries from one Prometheus over one range and step.
type historyReader struct {
	api promv1.API
	// shown is the address with any password redacted, for messages.
	shown    string
	from, to time.Time
	step     time.Duration
	// queries are the queries run, for the result.
	queries []string
}

func newHistoryReader(address string, from, to time.Time, step time.Duration) (*historyReader, error) {
	c, err := api.NewClient(api.Config{Address: address})
	if err != nil {
		return nil, withCode(ExitPrometheus, fmt.Errorf("prometheus address %s is not usable: %w", address, err))
	}
	shown := address
	if u, err := url.Parse(address); err == nil {
		shown = u.Redacted()
	}
	return &historyReader{api: promv1.NewAPI(c), shown: shown, from: from, to: to, step: step}, nil
}

// times are the step times of the range: from, from+step, ..., up to to.
func (h *historyReader) times() []time.Time {
	var out []time.Time
	for t := h.from; !t.After(h.to); t = t.Add(h.step) {
		out = append(out, t)
	}
	return out
}

// sampleSeries is one time series' values by step time (Unix milliseconds).
type sampleSeries map[int64]float64

// rangeQuery runs query over the range, in chunks of at most maxPointsPerSeries steps,
// and returns each series' values keyed by its labels.
func (h *historyReader) rangeQuery(ctx context.Context, query string) (map[string]labeledSeries, error) {
	h.queries = append(h.queries, query)
	out := map[string]labeledSeries{}
	chunk := time.Duration(maxPointsPerSeries-1) * h.step
	for start := h.from; !start.After(h.to); start = start.Add(chunk + h.step) {
		end := start.Add(chunk)
		if end.After(h.to) {
			end = h.to
		}
		qctx, cancel := context.WithTimeout(ctx, queryTimeout)
		v, _, _, err := h.api.QueryRange(qctx, query, promv1.Range{Start: start, End: end, Step: h.step})
		cancel()
		if err != nil {
			return nil, h.queryError(query, err)
		}
		m, ok := v.(model.Matrix)
		if !ok {
			return nil, withCode(ExitPrometheus, fmt.Errorf("prometheus at %s answered the range query %s with a %s, not a matrix", h.shown, query, v.Type()))
		}
		for _, s := range m {
			key := s.Metric.String()
			ls, ok := out[key]
			if !ok {
				ls = labeledSeries{labels: s.Metric, values: sampleSeries{}}
				out[key] = ls
			}
			for _, p := range s.Values {
				ls.values[int64(p.Timestamp)] = float64(p.Value)
			}
		}
	}
	return out, nil
}

// labeledSeries is one series of a range query's answer.
type labeledSeries struct {
	labels model.Metric
	values sampleSeries
}

func (h *historyReader) queryError(query string, err error) error {
	var perr *promv1.Error
	if errors.As(err, &perr) {
		msg := perr.Msg
		if msg == "" {
			msg = perr.Detail
		}
		return withCode(ExitPrometheus, fmt.Errorf("prometheus at %s failed the range query %s: %s: %s", h.shown, query, perr.Type, msg))
	}
	return withCode(ExitPrometheus, fmt.Errorf("prometheus at %s cannot be reached: %w", h.shown, err))
}

// sensorSource is where a sensor's history is read: its own PromQL expression for a
// prometheus sensor (replayed at the --prometheus address), else the manager's
// homeostat_sensor_value.
type sensorSource struct {
	name  string
	query string
}

func sourceOf(s v1alpha1.Sensor) sensorSource {
	if s.Prometheus != nil {
		return sensorSource{name: s.Name, query: s.Prometheus.Query}
	}
	return sensorSource{name: s.Name}
}

// recordedHistory is what was read for one app: the step times and the recorded series.
type recordedHistory struct {
	times []time.Time
	// components holds each component's sensors (homeostat_component_sensor), and
	// phases each child app's phases (homeostat_component_phase, 1 while in the phase).
	components map[string]map[string]sampleSeries
	phases     map[string]map[string]sampleSeries
	// sensors holds homeostat_sensor_value by sensor; queries each prometheus sensor's
	// own expression by query (a step where it had no single sample is absent).
	sensors map[string]sampleSeries
	queries map[string]sampleSeries
}

// readHistory reads the app's component sensors and the history of the given sensors.
// A series without any sample in the range is a warning; an app without any component
// series is an error (ExitPrometheus) that says what must run.
func (h *historyReader) readHistory(ctx context.Context, ns, app string, sensors []sensorSource) (*recordedHistory, []string, error) {
	hist := &recordedHistory{times: h.times(), components: map[string]map[string]sampleSeries{}, phases: map[string]map[string]sampleSeries{},
		sensors: map[string]sampleSeries{}, queries: map[string]sampleSeries{}}
	sel := fmt.Sprintf("{namespace=%s,app=%s}", strconv.Quote(ns), strconv.Quote(app))
	var warnings []string
	between := fmt.Sprintf("between %s and %s", simStamp(h.from), simStamp(h.to))

	comps, err := h.rangeQuery(ctx, metricComponentSensor+sel)
	if err != nil {
		return nil, nil, err
	}
	if len(comps) == 0 {
		// A scrape that does not honor the gauges' own labels (a ServiceMonitor without
		// honorLabels) moves the app's namespace to exported_namespace.
		exported := fmt.Sprintf("{exported_namespace=%s,app=%s}", strconv.Quote(ns), strconv.Quote(app))
		if comps, err = h.rangeQuery(ctx, metricComponentSensor+exported); err != nil {
			return nil, nil, err
		}
		if len(comps) > 0 {
			sel = exported
			warnings = append(warnings, "Prometheus keeps the app's namespace as exported_namespace: its scrape of the manager "+
				"overrides the gauges' namespace label (set honorLabels: true on the ServiceMonitor)")
		}
	}
	// A manager that restarted (another pod, another instance label) left a series of
	// each: their samples are one history.
	for _, s := range comps {
		c, sensor := string(s.labels["component"]), string(s.labels["sensor"])
		if hist.components[c] == nil {
			hist.components[c] = map[string]sampleSeries{}
		}
		hist.components[c][sensor] = mergeSamples(hist.components[c][sensor], s.values)
	}
	phases, err := h.rangeQuery(ctx, metricComponentPhase+sel)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range phases {
		c, phase := string(s.labels["component"]), string(s.labels["phase"])
		if hist.phases[c] == nil {
			hist.phases[c] = map[string]sampleSeries{}
		}
		hist.phases[c][phase] = mergeSamples(hist.phases[c][phase], s.values)
	}
	if len(hist.components) == 0 && len(hist.phases) == 0 {
		return nil, nil, withCode(ExitPrometheus, fmt.Errorf("prometheus at %s has no %s series of AutonomicApp %s/%s %s: "+
			"Prometheus must scrape the manager's metrics endpoint, and the manager must run with --sensor-gauges (on by default)",
			h.shown, metricComponentSensor, ns, app, between))
	}

	var values map[string]labeledSeries
	for _, s := range sensors {
		switch {
		case s.query != "":
			if _, done := hist.queries[s.query]; done {
				continue
			}
			res, err := h.rangeQuery(ctx, s.query)
			if err != nil {
				return nil, nil, err
			}
			hist.queries[s.query] = singleSample(res)
			if len(hist.queries[s.query]) == 0 {
				warnings = append(warnings, fmt.Sprintf("sensor %s has no samples %s: its history is its own query, run at %s; "+
					"does that Prometheus hold what the query reads?", s.name, between, h.shown))
			}
		default:
			if values == nil {
				if values, err = h.rangeQuery(ctx, metricSensorValue+sel); err != nil {
					return nil, nil, err
				}
				for _, v := range values {
					name := string(v.labels["sensor"])
					hist.sensors[name] = mergeSamples(hist.sensors[name], v.values)
				}
			}
			if len(hist.sensors[s.name]) == 0 {
				warnings = append(warnings, fmt.Sprintf("sensor %s has no samples %s; is Prometheus scraping the manager?", s.name, between))
				hist.sensors[s.name] = sampleSeries{}
			}
		}
	}
	return hist, warnings, nil
}

// mergeSamples adds b's samples to a: the series of one gauge from two managers (one
// before a restart, one after, with different pod or instance labels). Where both have a
// sample, the larger is kept.
func mergeSamples(a, b sampleSeries) sampleSeries {
	if a == nil {
		return b
	}
	for t, v := range b {
		if old, ok := a[t]; !ok || v > old {
			a[t] = v
		}
	}
	return a
}

// singleSample is a sensor's value at each step from its query's answer: the one sample
// there was, as the sensor reads a one-sample vector; a step with several series, or a
// value that is not a finite number, is absent, as the sensor is then unavailable.
func singleSample(res map[string]labeledSeries) sampleSeries {
	count := map[int64]int{}
	out := sampleSeries{}
	for _, s := range res {
		for t, v := range s.values {
			count[t]++
			out[t] = v
		}
	}
	for t, v := range out {
		if count[t] != 1 || math.IsNaN(v) || math.IsInf(v, 0) {
			delete(out, t)
		}
	}
	return out
}

// componentWarnings names the components of a spec without any recorded sample.
func (hist *recordedHistory) componentWarnings(spec *v1alpha1.AutonomicApp, from, to time.Time) []string {
	var out []string
	for _, c := range spec.Spec.Components {
		if len(hist.components[c.Name]) == 0 && len(hist.phases[c.Name]) == 0 {
			out = append(out, fmt.Sprintf("component %s has no samples between %s and %s; it reads as not found", c.Name, simStamp(from), simStamp(to)))
		}
	}
	return out
}

// frames turns the history into the replay's frames for one spec: at each step time the
// components with a recorded sensor and the sensors of the spec with a value.
func (hist *recordedHistory) frames(spec *v1alpha1.AutonomicApp) []replay.Frame {
	out := make([]replay.Frame, 0, len(hist.times))
	for _, t := range hist.times {
		ms := t.UnixMilli()
		f := replay.Frame{Time: t, Components: map[string]replay.ComponentSample{}, Sensors: map[string]float64{}}
		for c, byName := range hist.components {
			numbers := map[string]float64{}
			for name, s := range byName {
				if v, ok := s[ms]; ok {
					numbers[name] = v
				}
			}
			if len(numbers) > 0 {
				f.Components[c] = replay.ComponentSample{Numbers: numbers}
			}
		}
		for c, byPhase := range hist.phases {
			for _, phase := range slices.Sorted(maps.Keys(byPhase)) {
				if v, ok := byPhase[phase][ms]; ok && v == 1 {
					cs := f.Components[c]
					cs.Phase = phase
					f.Components[c] = cs
					break
				}
			}
		}
		for _, s := range spec.Spec.Sensors {
			src := sourceOf(s)
			var v float64
			var ok bool
			if src.query != "" {
				v, ok = hist.queries[src.query][ms]
			} else {
				v, ok = hist.sensors[src.name][ms]
			}
			if ok {
				f.Sensors[s.Name] = v
			}
		}
		out = append(out, f)
	}
	return out
}

// startReplicas are the first recorded desiredReplicas of each component.
func (hist *recordedHistory) startReplicas() map[string]int32 {
	out := map[string]int32{}
	for c, byName := range hist.components {
		s := byName["desiredReplicas"]
		for _, t := range hist.times {
			if v, ok := s[t.UnixMilli()]; ok {
				out[c] = int32(v)
				break
			}
		}
	}
	return out
}

func simStamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
