package replay

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/knowledge"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// Bounds of the values kept for a predictive autoscaler's forecast, as the manager's
// monitor keeps each sensor's history (monitor.HistoryWindow, monitor.HistoryLimit).
const (
	forecastWindow = 15 * time.Minute
	forecastLimit  = 512
)

// defaultInterval is a sensor's interval when it sets none.
const defaultInterval = 15 * time.Second

// autoscalerMemory is what the manager remembers of one autoscaler between reconciles.
type autoscalerMemory struct {
	history []plan.Recommendation
	events  []plan.ScaleEvent
}

// decideAutoscale gathers what an autoscale policy's decision reads and asks plan, as
// the controller's decideAutoscale does: the component's simulated replicas, its metrics
// under the load model, the recommendations and scale events remembered, and the newest
// unjudged scale of the simulated ledger.
func (r *run) decideAutoscale(f *Frame, now time.Time, pol v1alpha1.Policy, old v1alpha1.PolicyStatus) plan.Decision {
	a := pol.Autoscale
	in := plan.AutoscalePolicyInput{Name: pol.Name, Previous: old, Recommender: plan.AutoscaleInput{Now: now, Policy: *a}}
	ref := r.workloadRef(a.Component)
	c, recorded := f.Components[a.Component]
	if a.Component == "*" || ref == nil || !recorded || c.Numbers["found"] == 0 {
		d, _ := plan.DecideAutoscale(in)
		return d
	}
	in.Target = plan.AutoscaleTarget{Found: true, Workload: ref.Kind + "/" + ref.Name}

	cur := r.replicas[a.Component]
	rin := plan.AutoscaleInput{
		Now: now, Policy: *a, CurrentReplicas: cur,
		ConsecutiveFailures: map[string]int32{}, Forecasts: map[string]float64{},
	}
	recordedReplicas := int32(c.Numbers["desiredReplicas"])
	for _, m := range a.Metrics {
		v, ok := f.Sensors[m.Sensor]
		if ok {
			v = modelled(m, v, recordedReplicas, cur)
		}
		rin.Metrics = append(rin.Metrics, plan.MetricInput{Sensor: m.Sensor, Value: v, Available: ok})
		rin.ConsecutiveFailures[m.Sensor] = r.failures(m.Sensor, now)
		key := pol.Name + "/" + m.Sensor
		if ok {
			r.fed[key] = keepSamples(append(r.fed[key], plan.Sample{Time: now, Value: v}), now)
		}
		if a.Predictive != nil {
			if fc, ok := plan.Forecast(*a.Predictive, r.fed[key], now); ok {
				rin.Forecasts[m.Sensor] = fc
			}
		}
	}
	r.metricStats(pol, rin.Metrics, cur)

	mem := r.autoscalers[pol.Name]
	if mem == nil {
		mem = &autoscalerMemory{}
		r.autoscalers[pol.Name] = mem
	}
	if n := len(mem.history); n > 0 {
		// As the controller does: the last recommendation stood until now.
		mem.history = append(mem.history, plan.Recommendation{Time: now, Replicas: mem.history[n-1].Replicas})
	}
	rin.History, rin.ScaleEvents = mem.history, mem.events
	in.Recommender = rin
	in.LastScale = plan.LastScaleOf(knowledge.LastUnjudged(&r.app.Status, pol.Name), mem.events)

	d, rec := plan.DecideAutoscale(in)
	mem.history = rec.History
	if d.Intent != nil {
		r.scales[pol.Name] = rec
	}
	return d
}

// rememberScale keeps the scale event of a scale the policy carried out, for its rate
// policies, as the controller's rememberScale does.
func (r *run) rememberScale(now time.Time, pol v1alpha1.Policy) {
	rec, ok := r.scales[pol.Name]
	if !ok {
		return
	}
	mem := r.autoscalers[pol.Name]
	mem.events = plan.RecordScaleEvent(plan.ResolveBehavior(pol.Autoscale.Behavior), mem.events, now, rec.Current, rec.Desired)
}

// modelled is the value the simulated autoscaler reads for a metric whose sensor
// recorded v while the component had recorded replicas and now has cur: the load is
// conserved, so a per-pod average (averageUtilization) is spread over the simulated
// replicas (the load of one at zero); any other metric reads v (see Model).
func modelled(m v1alpha1.AutoscaleMetric, v float64, recorded, cur int32) float64 {
	if Model(m) != ModelLoadConserved || recorded <= 0 {
		return v
	}
	return v * float64(recorded) / float64(max(cur, 1))
}

// Model is how the replay derives a metric from its recorded value, the way plan's
// recommender reads it: AsRecorded for an averageValue target, a total that plan divides
// by the replicas itself; LoadConserved for the others, whose value plan takes as a
// per-replica figure: an averageUtilization target (a per-pod average), a value target
// (plan scales the replicas by value/target) and a band (Brooklyn's watermarks: the
// total is the value times the replicas).
func Model(m v1alpha1.AutoscaleMetric) string {
	if m.Target != nil && m.Target.AverageValue != nil {
		return ModelAsRecorded
	}
	return ModelLoadConserved
}

// failures estimates a sensor's consecutive failed polls: none while it is available;
// while it is absent, one for the first step it was and one more per interval since.
func (r *run) failures(sensor string, now time.Time) int32 {
	since, ok := r.absentSince[sensor]
	if !ok {
		return 0
	}
	interval := defaultInterval
	for _, s := range r.app.Spec.Sensors {
		if s.Name == sensor && s.Interval != nil {
			interval = max(s.Interval.Duration, MinStep)
		}
	}
	n := 1 + int64(now.Sub(since)/interval)
	return int32(min(n, math.MaxInt32))
}

// keepSamples keeps the samples within forecastWindow of now, at most forecastLimit.
func keepSamples(s []plan.Sample, now time.Time) []plan.Sample {
	i := 0
	for i < len(s) && now.Sub(s[i].Time) >= forecastWindow {
		i++
	}
	s = s[i:]
	if len(s) > forecastLimit {
		s = s[len(s)-forecastLimit:]
	}
	return s
}

// metricStats counts, for each of an autoscaler's metrics at one step, a step of time
// outside its band or target, or unavailable.
func (r *run) metricStats(pol v1alpha1.Policy, metrics []plan.MetricInput, cur int32) {
	a := pol.Autoscale
	b := plan.ResolveBehavior(a.Behavior)
	stats := r.stats[pol.Name]
	step := Duration(r.in.Step)
	for i, m := range a.Metrics {
		ms := stats.metric(m)
		in := metrics[i]
		if !in.Available || math.IsNaN(in.Value) || math.IsInf(in.Value, 0) {
			ms.Unavailable += step
			continue
		}
		switch above, below := away(m, in.Value, cur, b); {
		case above:
			ms.Above += step
			ms.Outside += step
		case below:
			ms.Below += step
			ms.Outside += step
		}
	}
}

// away says whether a metric's value is above or below its goal: outside its band, or
// its ratio to its target outside the behavior's tolerance, as plan computes the ratio.
func away(m v1alpha1.AutoscaleMetric, v float64, cur int32, b plan.Behavior) (above, below bool) {
	if m.Band != nil {
		lower, errL := strconv.ParseFloat(m.Band.Lower, 64)
		upper, errU := strconv.ParseFloat(m.Band.Upper, 64)
		if errL != nil || errU != nil {
			return false, false
		}
		return v > upper, v < lower
	}
	t := m.Target
	var ratio float64
	switch {
	case t == nil:
		return false, false
	case t.Value != nil && t.Value.AsApproximateFloat64() > 0:
		ratio = v / t.Value.AsApproximateFloat64()
	case t.AverageValue != nil && t.AverageValue.AsApproximateFloat64() > 0:
		ratio = v / (t.AverageValue.AsApproximateFloat64() * float64(max(cur, 1)))
	case t.AverageUtilization != nil && *t.AverageUtilization > 0:
		ratio = math.Floor(v) / float64(*t.AverageUtilization)
	default:
		return false, false
	}
	return ratio > 1+b.ScaleUp.Tolerance, ratio < 1-b.ScaleDown.Tolerance
}

// Goal says what a metric keeps: "band [0.1, 0.3]", "averageUtilization 70%",
// "averageValue 100", "value 500m".
func Goal(m v1alpha1.AutoscaleMetric) string {
	switch t := m.Target; {
	case m.Band != nil:
		return fmt.Sprintf("band [%s, %s]", m.Band.Lower, m.Band.Upper)
	case t == nil:
		return "none"
	case t.AverageUtilization != nil:
		return fmt.Sprintf("averageUtilization %d%%", *t.AverageUtilization)
	case t.AverageValue != nil:
		return "averageValue " + t.AverageValue.String()
	case t.Value != nil:
		return "value " + t.Value.String()
	}
	return "none"
}
