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
	SymptomActive prometheus.Collector
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
	AppPhase prometheus.Collector
	// SensorUp is 1 while a declared polled sensor of an app is available, 0 while not.
	SensorUp prometheus.Collector
	// PolicyState is 1 for the current state and reason of each policy of an app.
	PolicyState prometheus.Collector
	// AutoscaleDesiredReplicas is each autoscale policy's last recommendation.
	AutoscaleDesiredReplicas prometheus.Collector

	// series holds the three sensor gauge families' records, built into series when
	// scraped.
	series *sensorGauges
	// status holds the five status gauge families' records, built into series when
	// scraped.
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
	m.SensorValue = gaugeFamily{m.series.value, m.series.each}
	m.ComponentSensor = gaugeFamily{m.series.component, m.series.each}
	m.ComponentPhase = gaugeFamily{m.series.phase, m.series.each}
	st := &m.status
	st.apps = map[types.NamespacedName]*appStatusSeries{}
	st.phase = prometheus.NewDesc("homeostat_app_phase",
		"1 for the current phase of an app (status.phase: Healthy, Degraded, Remediating, NeedsAttention, Paused); the other phases have no series.",
		[]string{"namespace", "app", "phase"}, nil)
	st.sensorUp = prometheus.NewDesc("homeostat_sensor_up",
		"1 while a polled sensor of an app is available, 0 while it is unavailable or not polled yet (status.sensors[].error is set).",
		[]string{"namespace", "app", "sensor"}, nil)
	st.symptom = prometheus.NewDesc("homeostat_symptom_active",
		"1 while a symptom of an app is active, else 0.",
		[]string{"namespace", "app", "symptom"}, nil)
	st.policy = prometheus.NewDesc("homeostat_policy_state",
		"1 for the current state and reason of a policy of an app (status.policies[]: Idle, Waiting, Acting, Held, GaveUp, Conflict, Invalid); the others have no series.",
		[]string{"namespace", "app", "policy", "state", "reason"}, nil)
	st.desired = prometheus.NewDesc("homeostat_autoscale_desired_replicas",
		"An autoscale policy's last recommendation (status.policies[].desiredReplicas); no series before its first.",
		[]string{"namespace", "app", "policy"}, nil)
	m.AppPhase = gaugeFamily{st.phase, st.each}
	m.SensorUp = gaugeFamily{st.sensorUp, st.each}
	m.SymptomActive = gaugeFamily{st.symptom, st.each}
	m.PolicyState = gaugeFamily{st.policy, st.each}
	m.AutoscaleDesiredReplicas = gaugeFamily{st.desired, st.each}
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

// gaugeFamily is one gauge family built at scrape time, a collector of its own: each
// emits the series of the family desc from its records.
type gaugeFamily struct {
	desc *prometheus.Desc
	each func(desc *prometheus.Desc, emit func(v float64, labels ...string))
}

func (f gaugeFamily) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }

func (f gaugeFamily) Collect(ch chan<- prometheus.Metric) {
	f.each(f.desc, func(v float64, labels ...string) {
		// A series that cannot be built (a label value that is not UTF-8) is left out
		// rather than failing the scrape.
		if m, err := prometheus.NewConstMetric(f.desc, prometheus.GaugeValue, v, labels...); err == nil {
			ch <- m
		}
	})
}

// snapshot returns the records of a map of apps, taken under the lock, so a scrape of
// 10,000 apps emits its series without holding up an export. Records are replaced
// whole, never changed in place.
func snapshot[R any](mu *sync.RWMutex, apps map[types.NamespacedName]*R) []appRecord[R] {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]appRecord[R], 0, len(apps))
	for k, a := range apps {
		out = append(out, appRecord[R]{k, a})
	}
	return out
}

type appRecord[R any] struct {
	key types.NamespacedName
	r   *R
}

// each emits the series of one of the three sensor families.
func (g *sensorGauges) each(desc *prometheus.Desc, emit func(v float64, labels ...string)) {
	for _, e := range snapshot(&g.mu, g.apps) {
		ns, app := e.key.Namespace, e.key.Name
		switch desc {
		case g.value:
			for _, s := range e.r.sensors {
				emit(s.value, ns, app, s.name)
			}
		case g.component:
			for _, c := range e.r.components {
				for _, n := range c.numbers {
					emit(n.value, ns, app, c.name, n.name)
				}
			}
		case g.phase:
			for _, c := range e.r.components {
				if c.phase != "" {
					emit(1, ns, app, c.name, string(c.phase))
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
	m.status.mu.RLock()
	for k := range m.status.apps {
		out = append(out, k)
	}
	m.status.mu.RUnlock()
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

// statusSeries holds, per app, what the five status gauge families export, built into
// series when they are scraped, as sensorGauges does for the sensor families. It is the
// manager's only record of them, so a sensor, symptom or policy that leaves the spec,
// a phase or policy state that changes, and an app that goes away lose exactly their
// series.
type statusSeries struct {
	mu   sync.RWMutex
	apps map[types.NamespacedName]*appStatusSeries

	phase, sensorUp, symptom, policy, desired *prometheus.Desc
}

// appStatusSeries is one app's record, replaced whole by each export.
type appStatusSeries struct {
	// phase has the homeostat_app_phase series; "" for none.
	phase v1alpha1.Phase
	// sensors: homeostat_sensor_up, 1 for available.
	sensors []namedValue
	// symptoms: homeostat_symptom_active.
	symptoms []namedValue
	// policies: homeostat_policy_state, and homeostat_autoscale_desired_replicas of
	// those with a recommendation.
	policies []policySeries
}

type policySeries struct {
	name, state, reason string
	// desired is the recommendation; nil for none.
	desired *int32
}

// each emits the series of one of the five status families.
func (st *statusSeries) each(desc *prometheus.Desc, emit func(v float64, labels ...string)) {
	for _, e := range snapshot(&st.mu, st.apps) {
		ns, app := e.key.Namespace, e.key.Name
		switch desc {
		case st.phase:
			if e.r.phase != "" {
				emit(1, ns, app, string(e.r.phase))
			}
		case st.sensorUp:
			for _, s := range e.r.sensors {
				emit(s.value, ns, app, s.name)
			}
		case st.symptom:
			for _, s := range e.r.symptoms {
				emit(s.value, ns, app, s.name)
			}
		case st.policy:
			for _, p := range e.r.policies {
				emit(1, ns, app, p.name, p.state, p.reason)
			}
		case st.desired:
			for _, p := range e.r.policies {
				if p.desired != nil {
					emit(float64(*p.desired), ns, app, p.name)
				}
			}
		}
	}
}

// exportStatus records the status gauges of an app from the status this reconcile
// decided: homeostat_app_phase of its phase, homeostat_sensor_up of every declared polled
// sensor, homeostat_symptom_active of every symptom, and homeostat_policy_state and
// homeostat_autoscale_desired_replicas of every policy. The record replaces the last
// one, so the series the status no longer has are gone.
func (m *Metrics) exportStatus(key types.NamespacedName, st *v1alpha1.AutonomicAppStatus) {
	cur := &appStatusSeries{phase: st.Phase}
	for _, s := range st.Sensors {
		cur.sensors = append(cur.sensors, namedValue{s.Name, boolFloat(s.Error == "")})
	}
	for _, sym := range st.Symptoms {
		cur.symptoms = append(cur.symptoms, namedValue{sym.Name, boolFloat(sym.Active)})
	}
	for _, p := range st.Policies {
		ps := policySeries{name: p.Name, state: string(p.State), reason: p.Reason}
		if p.DesiredReplicas != nil {
			ps.desired = new(*p.DesiredReplicas)
		}
		cur.policies = append(cur.policies, ps)
	}
	m.status.mu.Lock()
	defer m.status.mu.Unlock()
	if m.status.apps == nil {
		m.status.apps = map[types.NamespacedName]*appStatusSeries{}
	}
	m.status.apps[key] = cur
}

// forgetStatusSeries deletes every series of the status gauges of an app.
func (m *Metrics) forgetStatusSeries(key types.NamespacedName) {
	m.status.mu.Lock()
	defer m.status.mu.Unlock()
	delete(m.status.apps, key)
}
