package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics are the Prometheus metrics the controllers export.
type Metrics struct {
	// Actions counts action records by policy, action and result.
	Actions *prometheus.CounterVec
	// ActionOutcomes counts judged actions by action and outcome.
	ActionOutcomes *prometheus.CounterVec
	// Decisions counts decisions by kind: act, wait, held reasons, give-ups, heals.
	Decisions *prometheus.CounterVec
	// DetectToAct is the time from the change that triggered an action to the action.
	DetectToAct prometheus.Histogram
	// SymptomActive is 1 while a symptom is active.
	SymptomActive *prometheus.GaugeVec
	// StormActive is 1 while the storm breaker holds disruptive actions cluster-wide.
	StormActive prometheus.Gauge
	// NodesUncordoned counts the cordons of node actions the node controller lifted.
	NodesUncordoned prometheus.Counter
}

// DefaultMetrics are registered with controller-runtime's registry, served on the
// manager's metrics endpoint.
var DefaultMetrics = newMetrics(metrics.Registry)

func newMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homeostat_actions_total",
			Help: "Actions recorded in the ledger, by policy, action and result (Succeeded, Failed, Skipped for DryRun, Cancelled, Forbidden).",
		}, []string{"policy", "action", "result"}),
		ActionOutcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homeostat_action_outcomes_total",
			Help: "Actions judged, by action and outcome: Verified (the symptoms stayed clear), Ineffective (they came back or never cleared), Unknown (nothing changed, or superseded).",
		}, []string{"action", "outcome"}),
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homeostat_decisions_total",
			Help: "Policy decisions, by decision: Act, Wait, Held:<guard>, Exhausted, GiveUp, Healed.",
		}, []string{"decision"}),
		DetectToAct: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "homeostat_detect_to_act_seconds",
			Help:    "Seconds from the observed change that triggered an action to the effector's first call.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
		SymptomActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "homeostat_symptom_active",
			Help: "1 while a symptom of an app is active, else 0.",
		}, []string{"namespace", "app", "symptom"}),
	}
	m.StormActive = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "homeostat_storm_active",
		Help: "1 while the storm breaker stops disruptive actions cluster-wide: more than --storm-threshold of the namespaces have more than --storm-threshold of their apps unhealthy.",
	})
	m.NodesUncordoned = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "homeostat_nodes_uncordoned_total",
		Help: "Nodes a cordonNode or drainNode action cordoned that Homeostat uncordoned once they were Ready for --node-uncordon-after.",
	})
	reg.MustRegister(m.Actions, m.ActionOutcomes, m.Decisions, m.DetectToAct, m.SymptomActive, m.StormActive, m.NodesUncordoned)
	return m
}
