package harness

import (
	"math"
	"strconv"
	"strings"
)

// Metrics are the samples of a Prometheus text exposition, by metric name (a histogram's
// series appear under <name>_bucket, <name>_sum and <name>_count).
type Metrics map[string][]Sample

// Sample is one series' value.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// ParseMetrics reads the Prometheus text format; lines it does not understand are skipped.
func ParseMetrics(text string) Metrics {
	out := Metrics{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels, rest := line, map[string]string{}, ""
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			name, labels, rest = line[:i], parseLabels(line[i+1:j]), strings.TrimSpace(line[j+1:])
		} else {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, rest = f[0], f[1]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		out[name] = append(out[name], Sample{Labels: labels, Value: v})
	}
	return out
}

func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			break
		}
		key := strings.TrimSpace(strings.TrimPrefix(s[:eq], ","))
		var val strings.Builder
		i := eq + 2
		for ; i < len(s); i++ {
			c := s[i]
			if c == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[i])
				}
				continue
			}
			if c == '"' {
				break
			}
			val.WriteByte(c)
		}
		out[key] = val.String()
		s = strings.TrimPrefix(strings.TrimSpace(s[min(i+1, len(s)):]), ",")
	}
	return out
}

// Sum adds the values of the series of name whose labels include every pair of match
// ("" as a value matches any; a value "a|b" matches either).
func (m Metrics) Sum(name string, match map[string]string) float64 {
	var sum float64
	for _, s := range m[name] {
		if matches(s.Labels, match) {
			sum += s.Value
		}
	}
	return sum
}

// Value is the value of the one series of name with the given labels; NaN when absent.
func (m Metrics) Value(name string, match map[string]string) float64 {
	for _, s := range m[name] {
		if matches(s.Labels, match) {
			return s.Value
		}
	}
	return math.NaN()
}

func matches(labels, match map[string]string) bool {
	for k, v := range match {
		if v == "" {
			continue
		}
		got, ok := labels[k]
		if !ok {
			return false
		}
		found := false
		for _, alt := range strings.Split(v, "|") {
			if got == alt {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// The manager's counters the benchmarks read.
const (
	// MetricRequests is client-go's request counter, by code, host and method.
	MetricRequests = "rest_client_requests_total"
	// MetricReconciles is controller-runtime's reconcile counter, by controller and result.
	MetricReconciles = "controller_runtime_reconcile_total"
	// MetricDetectToAct is Homeostat's histogram of the time from a change to an action.
	MetricDetectToAct = "homeostat_detect_to_act_seconds"
	// MetricQueueDepth is controller-runtime's work queue depth, by name.
	MetricQueueDepth = "workqueue_depth"
)

// WriteMethods are the methods that change something.
const WriteMethods = "POST|PUT|PATCH|DELETE"

// Counts is a snapshot of the counters the benchmarks difference.
type Counts struct {
	Requests, Writes, Reconciles, DetectToActSum, DetectToActCount float64
}

// CountsOf reads the counters of the AutonomicApp controller from a scrape.
func CountsOf(m Metrics) Counts {
	return Counts{
		Requests:         m.Sum(MetricRequests, nil),
		Writes:           m.Sum(MetricRequests, map[string]string{"method": WriteMethods}),
		Reconciles:       m.Sum(MetricReconciles, map[string]string{"controller": "autonomicapp"}),
		DetectToActSum:   m.Sum(MetricDetectToAct+"_sum", nil),
		DetectToActCount: m.Sum(MetricDetectToAct+"_count", nil),
	}
}

// Sub is c - o, counter by counter.
func (c Counts) Sub(o Counts) Counts {
	return Counts{c.Requests - o.Requests, c.Writes - o.Writes, c.Reconciles - o.Reconciles,
		c.DetectToActSum - o.DetectToActSum, c.DetectToActCount - o.DetectToActCount}
}
