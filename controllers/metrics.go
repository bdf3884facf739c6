package controllers

import (
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/analyze"
	"github.com/homeostat-dev/homeostat/internal/monitor"
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
	// SensorValue is the last available reading of each polled sensor of an app.
	SensorValue prometheus.Collector
	// ComponentSensor is each built-in sensor of each component of an app, as
	// analyze.ComponentNumbers gives it.
	ComponentSensor prometheus.Collector
	// ComponentPhase is 1 for the current phase of each child-app component.
	ComponentPhase prometheus.Collector

	// AppPhase is 1 for the current phase of each app.
	AppPhase *prometheus.GaugeVec
	// SensorUp is 1 while a declared polled sensor of an app is available, 0 while not.
	SensorUp *prometheus.GaugeVec
	// PolicyState is 1 for the current state and reason of each policy of an app.
	PolicyState *prometheus.GaugeVec
	// AutoscaleDesiredReplicas is each autoscale policy's last recommendation.
	AutoscaleDesiredReplicas *prometheus.GaugeVec

	// series holds the three sensor gauge families' records, built into series when
	// scraped.
	series *sensorGauges
	// status remembers the series of the four status gauges set for each app.
	status statusSeries
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
	m.series = newSensorGauges()
	m.SensorValue = gaugeFamily{m.series, m.series.value}
	m.ComponentSensor = gaugeFamily{m.series, m.series.component}
	m.ComponentPhase = gaugeFamily{m.series, m.series.phase}
	m.AppPhase = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "homeostat_app_phase",
		Help: "1 for the current phase of an app (status.phase: Healthy, Degraded, Remediating, NeedsAttention, Paused); the other phases have no series.",
	}, []string{"namespace", "app", "phase"})
	m.SensorUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "homeostat_sensor_up",
		Help: "1 while a polled sensor of an app is available, 0 while it is unavailable or not polled yet (status.sensors[].error is set).",
	}, []string{"namespace", "app", "sensor"})
	m.PolicyState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "homeostat_policy_state",
		Help: "1 for the current state and reason of a policy of an app (status.policies[]: Idle, Waiting, Acting, Held, GaveUp, Conflict, Invalid); the others have no series.",
	}, []string{"namespace", "app", "policy", "state", "reason"})
	m.AutoscaleDesiredReplicas = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "homeostat_autoscale_desired_replicas",
		Help: "An autoscale policy's last recommendation (status.policies[].desiredReplicas); no series before its first.",
	}, []string{"namespace", "app", "policy"})
	reg.MustRegister(m.Actions, m.ActionOutcomes, m.Decisions, m.DetectToAct, m.SymptomActive, m.StormActive, m.NodesUncordoned,
		m.SensorValue, m.ComponentSensor, m.ComponentPhase, m.AppPhase, m.SensorUp, m.PolicyState, m.AutoscaleDesiredReplicas)
	return m
}

// sensorGauges holds, per app, what the three sensor gauge families export, and builds
// their series when they are scraped. A GaugeVec keeps a metric object, its label pairs
// and its hash for every series: about 680 bytes each, 13 series an app, 85 MiB of live
// heap at 10,000 apps. Here an app's record is a few slices of names and numbers, and
// the series exist only for the length of a scrape. It is also the manager's only
// record of what it exports, so a sensor, a component or an app that goes away loses
// exactly its series.
type sensorGauges struct {
	mu   sync.RWMutex
	apps map[types.NamespacedName]*appGauges

	value, component, phase *prometheus.Desc
}

// appGauges is one app's record. Exports replace it whole and never change one in
// place, so a scrape reads the records it took under the lock without holding it.
type appGauges struct {
	// sensors are the available polled sensors, in spec order: homeostat_sensor_value.
	sensors []namedValue
	// components: homeostat_component_sensor and homeostat_component_phase.
	components []componentGauges
}

type namedValue struct {
	name  string
	value float64
}

type componentGauges struct {
	name string
	// isApp: a child app, whose sensors are healthy and found, and a phase.
	isApp bool
	// numbers are analyze.ComponentNumbers, by name.
	numbers []namedValue
	// phase is a child app's phase; "" for none.
	phase v1alpha1.Phase
}

func newSensorGauges() *sensorGauges {
	return &sensorGauges{
		apps: map[types.NamespacedName]*appGauges{},
		value: prometheus.NewDesc("homeostat_sensor_value",
			"The last available reading of a polled sensor of an app (spec.sensors and the shared policies' sensors): what symptoms and autoscalers read. No series while the sensor is unavailable.",
			[]string{"namespace", "app", "sensor"}, nil),
		component: prometheus.NewDesc("homeostat_component_sensor",
			"A built-in sensor of a component of an app (components.<component>.<sensor> in CEL), bools as 0 or 1.",
			[]string{"namespace", "app", "component", "sensor"}, nil),
		phase: prometheus.NewDesc("homeostat_component_phase",
			"1 for the current phase of a child-app component of an app; the other phases have no series.",
			[]string{"namespace", "app", "component", "phase"}, nil),
	}
}

// gaugeFamily is one of the three families, as a collector of its own.
type gaugeFamily struct {
	g    *sensorGauges
	desc *prometheus.Desc
}

func (f gaugeFamily) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }

// Collect builds the family's series from the records, read under the lock and
// emitted without it, so a scrape of 10,000 apps never holds up an export.
func (f gaugeFamily) Collect(ch chan<- prometheus.Metric) {
	g := f.g
	type entry struct {
		key types.NamespacedName
		a   *appGauges
	}
	g.mu.RLock()
	entries := make([]entry, 0, len(g.apps))
	for k, a := range g.apps {
		entries = append(entries, entry{k, a})
	}
	g.mu.RUnlock()
	for _, e := range entries {
		ns, app := e.key.Namespace, e.key.Name
		// A series that cannot be built (a label value that is not UTF-8) is left out
		// rather than failing the scrape.
		send := func(desc *prometheus.Desc, v float64, labels ...string) {
			if m, err := prometheus.NewConstMetric(desc, prometheus.GaugeValue, v, labels...); err == nil {
				ch <- m
			}
		}
		switch f.desc {
		case g.value:
			for _, s := range e.a.sensors {
				send(g.value, s.value, ns, app, s.name)
			}
		case g.component:
			for _, c := range e.a.components {
				for _, n := range c.numbers {
					send(g.component, n.value, ns, app, c.name, n.name)
				}
			}
		case g.phase:
			for _, c := range e.a.components {
				if c.phase != "" {
					send(g.phase, 1, ns, app, c.name, string(c.phase))
				}
			}
		}
	}
}

// update replaces the app's record with what change makes of a copy of it, and forgets
// an app left with no series.
func (g *sensorGauges) update(key types.NamespacedName, change func(a *appGauges)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := &appGauges{}
	if old := g.apps[key]; old != nil {
		*a = *old
	}
	change(a)
	if len(a.sensors) == 0 && len(a.components) == 0 {
		delete(g.apps, key)
		return
	}
	g.apps[key] = a
}

// exportSensors records homeostat_sensor_value of every sensor of the app that has an
// available reading; a sensor that became unavailable, or left the spec, or was not
// polled yet has none.
func (m *Metrics) exportSensors(key types.NamespacedName, sensors []v1alpha1.Sensor, readings map[string]monitor.Reading) {
	var out []namedValue
	for i := range sensors {
		if rd, ok := readings[sensors[i].Name]; ok && rd.Available() {
			out = append(out, namedValue{sensors[i].Name, rd.Value})
		}
	}
	m.series.update(key, func(a *appGauges) { a.sensors = out })
}

// exportComponents records homeostat_component_sensor of every built-in sensor of every
// component of the app, and homeostat_component_phase of every child app's phase. A
// component that left the spec, or changed between a workload and a child app, loses
// its old series, and a child app its old phase.
func (m *Metrics) exportComponents(key types.NamespacedName, components []monitor.Component) {
	out := make([]componentGauges, 0, len(components))
	for i := range components {
		c := &components[i]
		cur := componentGauges{name: c.Name, isApp: c.Ref == nil}
		nums := analyze.ComponentNumbers(c.Status, cur.isApp)
		cur.numbers = make([]namedValue, 0, len(nums))
		for name, v := range nums {
			cur.numbers = append(cur.numbers, namedValue{name, v})
		}
		slices.SortFunc(cur.numbers, func(a, b namedValue) int { return strings.Compare(a.name, b.name) })
		if cur.isApp {
			cur.phase = c.Status.Phase
		}
		out = append(out, cur)
	}
	m.series.update(key, func(a *appGauges) { a.components = out })
}

// seriesApps are the apps with series in the sensor or status gauges.
func (m *Metrics) seriesApps() []types.NamespacedName {
	var out []types.NamespacedName
	m.series.mu.RLock()
	for k := range m.series.apps {
		out = append(out, k)
	}
	m.series.mu.RUnlock()
	m.status.mu.Lock()
	for k := range m.status.apps {
		out = append(out, k)
	}
	m.status.mu.Unlock()
	return out
}

// forgetAllSeries deletes the series of every app in the sensor and status gauges: a
// replica that stops leading stops reporting apps it no longer reconciles.
func (m *Metrics) forgetAllSeries() {
	for _, k := range m.seriesApps() {
		m.forgetSensorSeries(k)
		m.forgetStatusSeries(k)
	}
}

// forgetSensorSeries deletes every series of the sensor gauges of an app.
func (m *Metrics) forgetSensorSeries(key types.NamespacedName) {
	m.series.mu.Lock()
	defer m.series.mu.Unlock()
	delete(m.series.apps, key)
}

// statusSeries is, per app, what the status gauges hold for it, so that each change of
// status deletes exactly the series it replaces, and a deleted app loses all of its.
type statusSeries struct {
	mu   sync.Mutex
	apps map[types.NamespacedName]*appStatusSeries
}

// appStatusSeries are the status gauges' series of one app.
type appStatusSeries struct {
	// phase has the homeostat_app_phase series; "" for none.
	phase v1alpha1.Phase
	// sensors have homeostat_sensor_up series.
	sensors []string
	// symptoms have homeostat_symptom_active series.
	symptoms []string
	// policies have homeostat_policy_state series, and those with desired set a
	// homeostat_autoscale_desired_replicas series.
	policies []policySeries
}

type policySeries struct {
	name, state, reason string
	desired             bool
}

// exportStatus sets the status gauges of an app from the status this reconcile decided:
// homeostat_app_phase of its phase, homeostat_sensor_up of every declared polled sensor,
// homeostat_symptom_active of every symptom, and homeostat_policy_state and homeostat_autoscale_desired_replicas of every policy. It
// deletes the series the status no longer has: a previous phase or policy state, a
// sensor, a symptom or a policy that left the spec, a recommendation that is gone.
func (m *Metrics) exportStatus(key types.NamespacedName, st *v1alpha1.AutonomicAppStatus) {
	m.status.mu.Lock()
	defer m.status.mu.Unlock()
	if m.status.apps == nil {
		m.status.apps = map[types.NamespacedName]*appStatusSeries{}
	}
	old := m.status.apps[key]
	if old == nil {
		old = &appStatusSeries{}
	}
	cur := &appStatusSeries{phase: st.Phase}
	if old.phase != "" && old.phase != cur.phase {
		m.AppPhase.DeleteLabelValues(key.Namespace, key.Name, string(old.phase))
	}
	if cur.phase != "" {
		m.AppPhase.WithLabelValues(key.Namespace, key.Name, string(cur.phase)).Set(1)
	}

	for _, s := range st.Sensors {
		cur.sensors = append(cur.sensors, s.Name)
		m.SensorUp.WithLabelValues(key.Namespace, key.Name, s.Name).Set(boolFloat(s.Error == ""))
	}
	for _, name := range old.sensors {
		if !slices.Contains(cur.sensors, name) {
			m.SensorUp.DeleteLabelValues(key.Namespace, key.Name, name)
		}
	}

	for _, sym := range st.Symptoms {
		cur.symptoms = append(cur.symptoms, sym.Name)
		m.SymptomActive.WithLabelValues(key.Namespace, key.Name, sym.Name).Set(boolFloat(sym.Active))
	}
	for _, name := range old.symptoms {
		if !slices.Contains(cur.symptoms, name) {
			m.SymptomActive.DeleteLabelValues(key.Namespace, key.Name, name)
		}
	}

	for _, p := range st.Policies {
		ps := policySeries{name: p.Name, state: string(p.State), reason: p.Reason, desired: p.DesiredReplicas != nil}
		cur.policies = append(cur.policies, ps)
		m.PolicyState.WithLabelValues(key.Namespace, key.Name, ps.name, ps.state, ps.reason).Set(1)
		if ps.desired {
			m.AutoscaleDesiredReplicas.WithLabelValues(key.Namespace, key.Name, ps.name).Set(float64(*p.DesiredReplicas))
		}
	}
	for _, o := range old.policies {
		i := slices.IndexFunc(cur.policies, func(p policySeries) bool { return p.name == o.name })
		if i < 0 || cur.policies[i].state != o.state || cur.policies[i].reason != o.reason {
			m.PolicyState.DeleteLabelValues(key.Namespace, key.Name, o.name, o.state, o.reason)
		}
		if o.desired && (i < 0 || !cur.policies[i].desired) {
			m.AutoscaleDesiredReplicas.DeleteLabelValues(key.Namespace, key.Name, o.name)
		}
	}
	m.status.apps[key] = cur
}

// forgetStatusSeries deletes every series of the status gauges of an app.
func (m *Metrics) forgetStatusSeries(key types.NamespacedName) {
	m.status.mu.Lock()
	defer m.status.mu.Unlock()
	a := m.status.apps[key]
	if a == nil {
		return
	}
	if a.phase != "" {
		m.AppPhase.DeleteLabelValues(key.Namespace, key.Name, string(a.phase))
	}
	for _, name := range a.sensors {
		m.SensorUp.DeleteLabelValues(key.Namespace, key.Name, name)
	}
	for _, name := range a.symptoms {
		m.SymptomActive.DeleteLabelValues(key.Namespace, key.Name, name)
	}
	for _, p := range a.policies {
		m.PolicyState.DeleteLabelValues(key.Namespace, key.Name, p.name, p.state, p.reason)
		if p.desired {
			m.AutoscaleDesiredReplicas.DeleteLabelValues(key.Namespace, key.Name, p.name)
		}
	}
	delete(m.status.apps, key)
}
