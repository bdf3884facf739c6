package controllers

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func TestStatusGaugesFollowTheAppsPhaseAndSensorsAndVanishWithTheApp(t *testing.T) {
	c, r := newGaugeReconciler(t, true, gaugeShop()...)
	// Neither Deployment has a ready pod: the app is Degraded, and its sensors are not
	// polled yet.
	reconcileOnce(t, r, gaugeShopKey)
	expectSeries(t, r.Metrics.AppPhase, `homeostat_app_phase{app="shop",namespace="shop",phase="Degraded"} 1`)
	if got := seriesOf(t, r.Metrics.SensorUp); len(got) != 2 {
		t.Fatalf("sensor_up series %q, want one per declared sensor (backlog, doubled)", got)
	}

	reconcileWhen(t, r, gaugeShopKey, "both sensors to be read", available("backlog", "doubled"))
	expectSeries(t, r.Metrics.SensorUp,
		`homeostat_sensor_up{app="shop",namespace="shop",sensor="backlog"} 1`,
		`homeostat_sensor_up{app="shop",namespace="shop",sensor="doubled"} 1`)

	// Paused: the Degraded series goes, the Paused one comes.
	app := &v1alpha1.AutonomicApp{}
	if err := c.Get(t.Context(), gaugeShopKey, app); err != nil {
		t.Fatal(err)
	}
	app.Spec.Mode = v1alpha1.ModePaused
	if err := c.Update(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	reconcileOnce(t, r, gaugeShopKey)
	expectSeries(t, r.Metrics.AppPhase, `homeostat_app_phase{app="shop",namespace="shop",phase="Paused"} 1`)

	if err := c.Delete(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	reconcileOnce(t, r, gaugeShopKey)
	expectSeries(t, r.Metrics.AppPhase)
	expectSeries(t, r.Metrics.SensorUp)
	if len(r.Metrics.status.apps) != 0 {
		t.Errorf("the record of the deleted app's status series is kept: %+v", r.Metrics.status.apps)
	}
}

func TestStatusGaugesKeepOnlyTheCurrentPolicyStateAndRecommendation(t *testing.T) {
	m := newMetrics(prometheus.NewRegistry())
	st := &v1alpha1.AutonomicAppStatus{
		Phase: v1alpha1.PhaseRemediating,
		Sensors: []v1alpha1.SensorStatus{
			{Name: "cpu", Value: "50"},
			{Name: "latency", Error: "Prometheus answered 503."},
		},
		Policies: []v1alpha1.PolicyStatus{
			{Name: "heal", State: v1alpha1.PolicyWaiting, Reason: "WaitingForRecovery", Step: 1},
			{Name: "scale", State: v1alpha1.PolicyIdle, Reason: "Stable", DesiredReplicas: ptr.To(int32(4))},
		},
	}
	m.exportStatus(gaugeShopKey, st)
	expectSeries(t, m.AppPhase, `homeostat_app_phase{app="shop",namespace="shop",phase="Remediating"} 1`)
	expectSeries(t, m.SensorUp,
		`homeostat_sensor_up{app="shop",namespace="shop",sensor="cpu"} 1`,
		`homeostat_sensor_up{app="shop",namespace="shop",sensor="latency"} 0`)
	expectSeries(t, m.PolicyState,
		`homeostat_policy_state{app="shop",namespace="shop",policy="heal",reason="WaitingForRecovery",state="Waiting"} 1`,
		`homeostat_policy_state{app="shop",namespace="shop",policy="scale",reason="Stable",state="Idle"} 1`)
	expectSeries(t, m.AutoscaleDesiredReplicas, `homeostat_autoscale_desired_replicas{app="shop",namespace="shop",policy="scale"} 4`)

	// Healed: heal changes state, scale recommends 6, the latency sensor leaves the spec.
	st.Phase = v1alpha1.PhaseHealthy
	st.Sensors = st.Sensors[:1]
	st.Policies[0] = v1alpha1.PolicyStatus{Name: "heal", State: v1alpha1.PolicyIdle, Reason: "Healed"}
	st.Policies[1].DesiredReplicas = ptr.To(int32(6))
	m.exportStatus(gaugeShopKey, st)
	expectSeries(t, m.AppPhase, `homeostat_app_phase{app="shop",namespace="shop",phase="Healthy"} 1`)
	expectSeries(t, m.SensorUp, `homeostat_sensor_up{app="shop",namespace="shop",sensor="cpu"} 1`)
	expectSeries(t, m.PolicyState,
		`homeostat_policy_state{app="shop",namespace="shop",policy="heal",reason="Healed",state="Idle"} 1`,
		`homeostat_policy_state{app="shop",namespace="shop",policy="scale",reason="Stable",state="Idle"} 1`)
	expectSeries(t, m.AutoscaleDesiredReplicas, `homeostat_autoscale_desired_replicas{app="shop",namespace="shop",policy="scale"} 6`)

	// The autoscaler leaves the spec; another app's series are untouched by any of this.
	other := gaugeShopKey
	other.Name = "other"
	m.exportStatus(other, &v1alpha1.AutonomicAppStatus{Phase: v1alpha1.PhaseHealthy})
	st.Policies = st.Policies[:1]
	m.exportStatus(gaugeShopKey, st)
	expectSeries(t, m.AutoscaleDesiredReplicas)
	expectSeries(t, m.PolicyState,
		`homeostat_policy_state{app="shop",namespace="shop",policy="heal",reason="Healed",state="Idle"} 1`)

	m.forgetStatusSeries(gaugeShopKey)
	expectSeries(t, m.AppPhase, `homeostat_app_phase{app="other",namespace="shop",phase="Healthy"} 1`)
	expectSeries(t, m.SensorUp)
	expectSeries(t, m.PolicyState)
}

// A status with no phase yet (never summarized) exports no phase series.
func TestStatusGaugesExportNoPhaseBeforeTheFirstSummary(t *testing.T) {
	m := newMetrics(prometheus.NewRegistry())
	m.exportStatus(gaugeShopKey, &v1alpha1.AutonomicAppStatus{Conditions: []metav1.Condition{}})
	expectSeries(t, m.AppPhase)
}

func TestSymptomActiveFollowsTheSymptomsOfTheSpecAndVanishesWithTheApp(t *testing.T) {
	m := newMetrics(prometheus.NewRegistry())
	st := &v1alpha1.AutonomicAppStatus{Symptoms: []v1alpha1.SymptomStatus{{Name: "CrashLooping", Active: true}, {Name: "Slow"}}}
	m.exportStatus(gaugeShopKey, st)
	expectSeries(t, m.SymptomActive,
		`homeostat_symptom_active{app="shop",namespace="shop",symptom="CrashLooping"} 1`,
		`homeostat_symptom_active{app="shop",namespace="shop",symptom="Slow"} 0`)

	// CrashLooping leaves the spec while active (a shared policy stops selecting the app):
	// its series goes, it does not stay at 1.
	st.Symptoms = st.Symptoms[1:]
	m.exportStatus(gaugeShopKey, st)
	expectSeries(t, m.SymptomActive, `homeostat_symptom_active{app="shop",namespace="shop",symptom="Slow"} 0`)

	m.forgetStatusSeries(gaugeShopKey)
	expectSeries(t, m.SymptomActive)
}
