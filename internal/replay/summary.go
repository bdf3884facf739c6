package replay

import (
	"math"
	"time"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// FailoverNotSimulated is why a failover policy is not replayed.
const FailoverNotSimulated = "Failover policies are not simulated: the election reads the Service's selector and the " +
	"candidates' workload selectors and pod labels, which are not recorded, and where traffic went shaped the " +
	"recorded health of the candidates."

// policyStats counts what one policy did.
type policyStats struct {
	actions, held, episodes, flaps int
	lastScale                      *scaleMark
	metrics                        map[string]*MetricSummary
	order                          []string
}

// scaleMark is a policy's previous scale, for flaps.
type scaleMark struct {
	at time.Time
	up bool
}

func (s *policyStats) metric(m v1alpha1.AutoscaleMetric) *MetricSummary {
	ms, ok := s.metrics[m.Sensor]
	if !ok {
		ms = &MetricSummary{Sensor: m.Sensor, Goal: Goal(m), Model: Model(m)}
		s.metrics[m.Sensor] = ms
		s.order = append(s.order, m.Sensor)
	}
	return ms
}

// replicaAcc accumulates a component's replicas over the steps.
type replicaAcc struct {
	n        int
	min, max int32
	sum      float64
}

func (a *replicaAcc) add(v int32) {
	if a.n == 0 || v < a.min {
		a.min = v
	}
	if a.n == 0 || v > a.max {
		a.max = v
	}
	a.n++
	a.sum += float64(v)
}

func (a *replicaAcc) stats(start int32) ReplicaStats {
	if a.n == 0 {
		return ReplicaStats{Min: start, Max: start, Mean: float64(start)}
	}
	return ReplicaStats{Min: a.min, Max: a.max, Mean: math.Round(a.sum/float64(a.n)*100) / 100}
}

// result assembles the run's result: the replica series and the per-policy summaries.
func (r *run) result() Result {
	res := r.res
	for _, c := range r.tracked {
		s := *r.series[c]
		s.ReplicaStats = r.replicaAcc[c].stats(s.Start)
		res.Replicas = append(res.Replicas, s)
	}
	res.Policies = []PolicySummary{}
	for _, p := range r.app.Spec.Policies {
		st := r.stats[p.Name]
		ps := PolicySummary{Policy: p.Name, Kind: policyKind(p), Simulated: p.Failover == nil,
			Actions: st.actions, Held: st.held, Episodes: st.episodes, Flaps: st.flaps}
		if r.in.Merged != nil {
			ps.Source = r.in.Merged.Sources[plan.EntryPolicy+"/"+p.Name]
		}
		if p.Failover != nil {
			res.NotSimulated = append(res.NotSimulated, NotSimulated{Policy: p.Name, Reason: FailoverNotSimulated})
		}
		if a := p.Autoscale; a != nil {
			ps.Component = a.Component
			ps.FlapWindow = Duration(flapWindow(a))
			if acc, ok := r.replicaAcc[a.Component]; ok {
				stats := acc.stats(r.series[a.Component].Start)
				ps.Replicas = &stats
			}
			for _, m := range a.Metrics {
				ps.Metrics = append(ps.Metrics, *st.metric(m))
			}
		}
		res.Policies = append(res.Policies, ps)
	}
	return res
}
