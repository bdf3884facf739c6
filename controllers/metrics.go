package controllers

import (
	"slices"
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
	SensorValue *prometheus.GaugeVec
	// ComponentSensor is each built-in sensor of each component of an app, as
	// analyze.ComponentNumbers gives it.
	ComponentSensor *prometheus.GaugeVec
	// ComponentPhase is 1 for the current phase of each child-app component.
	ComponentPhase *prometheus.GaugeVec

	// AppPhase is 1 for the current phase of each app.
	AppPhase *prometheus.GaugeVec
	// SensorUp is 1 while a declared polled sensor of an app is available, 0 while not.
	SensorUp *prometheus.GaugeVec
	// PolicyState is 1 for the current state and reason of each policy of an app.
	PolicyState *prometheus.GaugeVec
	// AutoscaleDesiredReplicas is each autoscale policy's last recommendation.
	AutoscaleDesiredReplicas *prometheus.GaugeVec

	// series remembers the series of the three sensor gauges set for each app.
	series sensorSeries
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
	m.SensorValue = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "homeostat_sensor_value",
		Help: "The last available reading of a polled sensor of an app (spec.sensors and the shared policies' sensors): what symptoms and autoscalers read. No series while the sensor is unavailable.",
	}, []string{"namespace", "app", "sensor"})
	m.ComponentSensor = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "homeostat_component_sensor",
		Help: "A built-in sensor of a component of an app (components.<component>.<sensor> in CEL), bools as 0 or 1.",
	}, []string{"namespace", "app", "component", "sensor"})
	m.ComponentPhase = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "homeostat_component_phase",
		Help: "1 for the current phase of a child-app component of an app; the other phases have no series.",
	}, []string{"namespace", "app", "component", "phase"})
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

// sensorSeries is, per app, what the sensor gauges hold for it: the manager's only
// record of them, so that a sensor, a component or an app that goes away loses exactly
// its series. Deleting them by name is a map lookup each; a partial match would walk
// every series of the family, a hundred thousand of them at 10,000 apps.
type sensorSeries struct {
	mu   sync.Mutex
	apps map[types.NamespacedName]*appSeries
}

// appSeries are the series of one app.
type appSeries struct {
	// sensors are the sensors with a homeostat_sensor_value series.
	sensors []string
	// components are the components with homeostat_component_sensor series.
	components []componentSeries
}

type componentSeries struct {
	name string
	// isApp: a child app, whose sensors are healthy and found, and a phase.
	isApp bool
	// phase has the homeostat_component_phase series; "" for none.
	phase v1alpha1.Phase
}

// app returns the app's record, made empty if there is none. Call it with mu held.
func (s *sensorSeries) app(key types.NamespacedName) *appSeries {
	a := s.apps[key]
	if a == nil {
		if s.apps == nil {
			s.apps = map[types.NamespacedName]*appSeries{}
		}
		a = &appSeries{}
		s.apps[key] = a
	}
	return a
}

// exportSensors sets homeostat_sensor_value of every sensor of the app that has an
// available reading, and deletes the series of any other it set before: a sensor that
// became unavailable, or left the spec. A sensor not polled yet has none.
func (m *Metrics) exportSensors(key types.NamespacedName, sensors []v1alpha1.Sensor, readings map[string]monitor.Reading) {
	available := func(name string) (float64, bool) {
		rd, ok := readings[name]
		if !ok || !rd.Available() {
			return 0, false
		}
		for i := range sensors {
			if sensors[i].Name == name {
				return rd.Value, true
			}
		}
		return 0, false
	}
	m.series.mu.Lock()
	defer m.series.mu.Unlock()
	a := m.series.app(key)
	for _, name := range a.sensors {
		if _, ok := available(name); !ok {
			m.SensorValue.DeleteLabelValues(key.Namespace, key.Name, name)
		}
	}
	a.sensors = a.sensors[:0]
	for i := range sensors {
		if v, ok := available(sensors[i].Name); ok {
			m.SensorValue.WithLabelValues(key.Namespace, key.Name, sensors[i].Name).Set(v)
			a.sensors = append(a.sensors, sensors[i].Name)
		}
	}
	m.series.dropEmpty(key, a)
}

// exportComponents sets homeostat_component_sensor of every built-in sensor of every
// component of the app, and homeostat_component_phase of every child app's phase. It
// deletes the series of a component that left the spec, of one that changed between a
// workload and a child app, and of a child's phase that is no longer current.
func (m *Metrics) exportComponents(key types.NamespacedName, components []monitor.Component) {
	m.series.mu.Lock()
	defer m.series.mu.Unlock()
	a := m.series.app(key)
	for _, old := range a.components {
		i := slices.IndexFunc(components, func(c monitor.Component) bool { return c.Name == old.name })
		switch {
		case i < 0 || (components[i].Ref == nil) != old.isApp:
			m.deleteComponent(key, old)
		case old.phase != "" && old.phase != components[i].Status.Phase:
			m.ComponentPhase.DeleteLabelValues(key.Namespace, key.Name, old.name, string(old.phase))
		}
	}
	a.components = a.components[:0]
	for i := range components {
		c := &components[i]
		cur := componentSeries{name: c.Name, isApp: c.Ref == nil}
		for sensor, v := range analyze.ComponentNumbers(c.Status, cur.isApp) {
			m.ComponentSensor.WithLabelValues(key.Namespace, key.Name, c.Name, sensor).Set(v)
		}
		if cur.isApp && c.Status.Phase != "" {
			cur.phase = c.Status.Phase
			m.ComponentPhase.WithLabelValues(key.Namespace, key.Name, c.Name, string(cur.phase)).Set(1)
		}
		a.components = append(a.components, cur)
	}
	m.series.dropEmpty(key, a)
}

// forgetSensorSeries deletes every series of the sensor gauges of an app.
func (m *Metrics) forgetSensorSeries(key types.NamespacedName) {
	m.series.mu.Lock()
	defer m.series.mu.Unlock()
	a := m.series.apps[key]
	if a == nil {
		return
	}
	for _, name := range a.sensors {
		m.SensorValue.DeleteLabelValues(key.Namespace, key.Name, name)
	}
	for _, c := range a.components {
		m.deleteComponent(key, c)
	}
	delete(m.series.apps, key)
}

// deleteComponent deletes the series of one component of an app. Call it with
// series.mu held.
func (m *Metrics) deleteComponent(key types.NamespacedName, c componentSeries) {
	for sensor := range analyze.ComponentNumbers(v1alpha1.ComponentStatus{}, c.isApp) {
		m.ComponentSensor.DeleteLabelValues(key.Namespace, key.Name, c.name, sensor)
	}
	if c.phase != "" {
		m.ComponentPhase.DeleteLabelValues(key.Namespace, key.Name, c.name, string(c.phase))
	}
}

// dropEmpty forgets the record of an app that has no series left. Call it with mu held.
func (s *sensorSeries) dropEmpty(key types.NamespacedName, a *appSeries) {
	if len(a.sensors) == 0 && len(a.components) == 0 {
		delete(s.apps, key)
	}
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
