package controllers

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/monitor"
)

var gaugeShopKey = types.NamespacedName{Namespace: "shop", Name: "shop"}

// gaugeShop is the shop namespace with Deployments web (2 replicas) and api (1), a
// ConfigMap queue whose depth is 42.5, the app shop on both with an object sensor backlog
// that reads the depth, and a HealingPolicy that adds a sensor, doubled, reading twice the
// depth, to every app of the namespace: the app's merged view has both sensors.
func gaugeShop() []client.Object {
	deployment := func(name string, replicas int32) *appsv1.Deployment {
		labels := map[string]string{"app": name}
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Generation: 1},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas), Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}}}},
		}
	}
	app := &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop"},
		Spec: v1alpha1.AutonomicAppSpec{
			Mode: v1alpha1.ModeActive,
			Components: []v1alpha1.Component{
				{Name: "web", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}},
				{Name: "api", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "api"}},
			},
			Healing: v1alpha1.Healing{Sensors: []v1alpha1.Sensor{queueSensor("backlog", "double(object.data.depth)")}},
		},
	}
	shared := &v1alpha1.HealingPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "team"},
		Spec: v1alpha1.HealingPolicySpec{Healing: v1alpha1.Healing{
			Sensors: []v1alpha1.Sensor{queueSensor("doubled", "2.0 * double(object.data.depth)")}}},
	}
	queue := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "queue"}, Data: map[string]string{"depth": "42.5"}}
	return []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
		deployment("web", 2), deployment("api", 1), queue, app, shared}
}

// queueSensor is an object sensor over the ConfigMap queue, polled every second.
func queueSensor(name, expr string) v1alpha1.Sensor {
	return v1alpha1.Sensor{Name: name, Interval: &metav1.Duration{Duration: time.Second}, Object: &v1alpha1.ObjectSensor{
		Ref: v1alpha1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Name: "queue"}, Expression: expr}}
}

// newGaugeReconciler is a fake reconciler over objs with its sensor gauges on or off and
// a poller on the fake client, as Setup wires it, that polls until the test ends.
func newGaugeReconciler(t *testing.T, gauges bool, objs ...client.Object) (client.Client, *AppReconciler) {
	t.Helper()
	c, r := newFakeReconciler(t, clock.RealClock{}, objs...)
	r.SensorGauges = gauges
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(corev1.SchemeGroupVersion.WithKind("ConfigMap"), meta.RESTScopeNamespace)
	r.Readings = monitor.NewReadings()
	r.Poller = &monitor.Poller{Readings: r.Readings, Reader: c, APIReader: c, RESTMapper: mapper}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Poller.Start(ctx) }()
	t.Cleanup(func() { stop(); <-done })
	return c, r
}

// reconcileWhen waits until the app's readings (polled in the background) satisfy ok,
// then reconciles the app.
func reconcileWhen(t *testing.T, r *AppReconciler, key types.NamespacedName, what string, ok func(map[string]monitor.Reading) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok(r.Readings.Get(key)) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: the readings are %+v", what, r.Readings.Get(key))
		}
		time.Sleep(10 * time.Millisecond)
	}
	reconcileOnce(t, r, key)
}

func reconcileOnce(t *testing.T, r *AppReconciler, key types.NamespacedName) {
	t.Helper()
	if _, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: key}); err != nil {
		t.Fatal(err)
	}
}

// available says whether every named sensor has an available reading.
func available(names ...string) func(map[string]monitor.Reading) bool {
	return func(rds map[string]monitor.Reading) bool {
		for _, n := range names {
			if !rds[n].Available() {
				return false
			}
		}
		return true
	}
}

// seriesOf lists the series a collector exports, as the text format writes them, sorted.
func seriesOf(t *testing.T, c prometheus.Collector) []string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(&text, f); err != nil {
			t.Fatal(err)
		}
	}
	var out []string
	for _, line := range strings.Split(text.String(), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	slices.Sort(out)
	return out
}

func expectSeries(t *testing.T, c prometheus.Collector, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := seriesOf(t, c); !slices.Equal(got, want) {
		t.Errorf("series:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// workloadSeries are the 12 component sensor series of a Deployment of the given
// replicas that exists and has no pod (as the fake client keeps it: no status), so
// every replica is unavailable.
func workloadSeries(component string, replicas int) []string {
	p := `homeostat_component_sensor{app="shop",component="` + component + `",namespace="shop",sensor="`
	d := strconv.Itoa(replicas)
	return []string{
		p + `availableReplicas"} 0`, p + `crashLoopingPods"} 0`, p + `desiredReplicas"} ` + d, p + `found"} 1`,
		p + `healthy"} 0`, p + `oomKilledPods"} 0`, p + `pendingPods"} 0`, p + `readyRatio"} 0`, p + `readyReplicas"} 0`,
		p + `restarts"} 0`, p + `rolloutStuck"} 0`, p + `unavailableReplicas"} ` + d,
	}
}

func TestSensorGaugesExportTheMergedViewsReadingsAndEveryComponentSensor(t *testing.T) {
	_, r := newGaugeReconciler(t, true, gaugeShop()...)
	reconcileOnce(t, r, gaugeShopKey)
	reconcileWhen(t, r, gaugeShopKey, "both sensors to be read", available("backlog", "doubled"))

	expectSeries(t, r.Metrics.SensorValue,
		`homeostat_sensor_value{app="shop",namespace="shop",sensor="backlog"} 42.5`,
		`homeostat_sensor_value{app="shop",namespace="shop",sensor="doubled"} 85`)
	expectSeries(t, r.Metrics.ComponentSensor, append(workloadSeries("web", 2), workloadSeries("api", 1)...)...)
	expectSeries(t, r.Metrics.ComponentPhase)
}

func TestSensorValueGaugeVanishesWhileTheSensorIsUnavailableAndWhenItIsRemoved(t *testing.T) {
	c, r := newGaugeReconciler(t, true, gaugeShop()...)
	ctx := t.Context()
	reconcileOnce(t, r, gaugeShopKey)
	reconcileWhen(t, r, gaugeShopKey, "both sensors to be read", available("backlog", "doubled"))

	// The depth is no number: both sensors fail, and keep their last value in status only.
	queue := &corev1.ConfigMap{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "queue"}, queue); err != nil {
		t.Fatal(err)
	}
	queue.Data["depth"] = "deep"
	if err := c.Update(ctx, queue); err != nil {
		t.Fatal(err)
	}
	reconcileWhen(t, r, gaugeShopKey, "both sensors to fail", func(rds map[string]monitor.Reading) bool {
		return rds["backlog"].Err != "" && rds["doubled"].Err != ""
	})
	expectSeries(t, r.Metrics.SensorValue)

	// Available again, at a new value.
	queue.Data["depth"] = "7"
	if err := c.Update(ctx, queue); err != nil {
		t.Fatal(err)
	}
	reconcileWhen(t, r, gaugeShopKey, "both sensors to read 7", func(rds map[string]monitor.Reading) bool {
		return available("backlog", "doubled")(rds) && rds["backlog"].Value == 7
	})
	expectSeries(t, r.Metrics.SensorValue,
		`homeostat_sensor_value{app="shop",namespace="shop",sensor="backlog"} 7`,
		`homeostat_sensor_value{app="shop",namespace="shop",sensor="doubled"} 14`)

	// The app's own sensor leaves the spec; the shared one stays.
	app := &v1alpha1.AutonomicApp{}
	if err := c.Get(ctx, gaugeShopKey, app); err != nil {
		t.Fatal(err)
	}
	app.Spec.Sensors = nil
	if err := c.Update(ctx, app); err != nil {
		t.Fatal(err)
	}
	reconcileOnce(t, r, gaugeShopKey)
	expectSeries(t, r.Metrics.SensorValue, `homeostat_sensor_value{app="shop",namespace="shop",sensor="doubled"} 14`)
}

func TestComponentSensorGaugesOfARemovedComponentVanish(t *testing.T) {
	c, r := newGaugeReconciler(t, true, gaugeShop()...)
	ctx := t.Context()
	reconcileOnce(t, r, gaugeShopKey)
	expectSeries(t, r.Metrics.ComponentSensor, append(workloadSeries("web", 2), workloadSeries("api", 1)...)...)

	app := &v1alpha1.AutonomicApp{}
	if err := c.Get(ctx, gaugeShopKey, app); err != nil {
		t.Fatal(err)
	}
	app.Spec.Components = app.Spec.Components[:1]
	if err := c.Update(ctx, app); err != nil {
		t.Fatal(err)
	}
	reconcileOnce(t, r, gaugeShopKey)
	expectSeries(t, r.Metrics.ComponentSensor, workloadSeries("web", 2)...)
}

func TestSensorGaugesOfADeletedAppVanish(t *testing.T) {
	c, r := newGaugeReconciler(t, true, gaugeShop()...)
	ctx := t.Context()
	reconcileOnce(t, r, gaugeShopKey)
	reconcileWhen(t, r, gaugeShopKey, "both sensors to be read", available("backlog", "doubled"))
	if n := len(seriesOf(t, r.Metrics.SensorValue)) + len(seriesOf(t, r.Metrics.ComponentSensor)); n != 26 {
		t.Fatalf("%d series before the app is deleted, want 2 sensors + 2 x 12 component sensors", n)
	}

	if err := c.Delete(ctx, &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	reconcileOnce(t, r, gaugeShopKey)
	expectSeries(t, r.Metrics.SensorValue)
	expectSeries(t, r.Metrics.ComponentSensor)
	expectSeries(t, r.Metrics.ComponentPhase)
	if len(r.Metrics.series.apps) != 0 {
		t.Errorf("the record of the deleted app's series is kept: %+v", r.Metrics.series.apps)
	}
}

// childShop is the shop app whose one component, payments, is the child app payments in
// the given phase, and whose other component web is a Deployment.
func childShop(phase v1alpha1.Phase) []client.Object {
	objs := gaugeShop()
	app := objs[4].(*v1alpha1.AutonomicApp)
	app.Spec.Components[1] = v1alpha1.Component{Name: "payments", AppRef: &v1alpha1.AppReference{Name: "payments"}}
	child := &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "payments"},
		Spec: v1alpha1.AutonomicAppSpec{Components: []v1alpha1.Component{
			{Name: "api", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "api"}}}},
		Status: v1alpha1.AutonomicAppStatus{Phase: phase, Conditions: []metav1.Condition{{Type: v1alpha1.ConditionHealthy,
			Status: metav1.ConditionTrue, Reason: "AllHealthy", LastTransitionTime: metav1.Now()}}},
	}
	return append(objs, child)
}

func TestComponentPhaseGaugeFollowsTheChildAppsPhase(t *testing.T) {
	c, r := newGaugeReconciler(t, true, childShop(v1alpha1.PhaseHealthy)...)
	ctx := t.Context()
	reconcileOnce(t, r, gaugeShopKey)
	expectSeries(t, r.Metrics.ComponentPhase,
		`homeostat_component_phase{app="shop",component="payments",namespace="shop",phase="Healthy"} 1`)
	expectSeries(t, r.Metrics.ComponentSensor, append(workloadSeries("web", 2),
		`homeostat_component_sensor{app="shop",component="payments",namespace="shop",sensor="found"} 1`,
		`homeostat_component_sensor{app="shop",component="payments",namespace="shop",sensor="healthy"} 1`)...)

	child := &v1alpha1.AutonomicApp{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "payments"}, child); err != nil {
		t.Fatal(err)
	}
	child.Status.Phase = v1alpha1.PhaseDegraded
	meta.SetStatusCondition(&child.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionHealthy,
		Status: metav1.ConditionFalse, Reason: "ComponentsUnhealthy"})
	if err := c.Status().Update(ctx, child); err != nil {
		t.Fatal(err)
	}
	reconcileOnce(t, r, gaugeShopKey)
	expectSeries(t, r.Metrics.ComponentPhase,
		`homeostat_component_phase{app="shop",component="payments",namespace="shop",phase="Degraded"} 1`)
	if !slices.Contains(seriesOf(t, r.Metrics.ComponentSensor),
		`homeostat_component_sensor{app="shop",component="payments",namespace="shop",sensor="healthy"} 0`) {
		t.Errorf("payments healthy is not 0: %v", seriesOf(t, r.Metrics.ComponentSensor))
	}

	// The component becomes a workload: its child-app series go, a workload's come.
	app := &v1alpha1.AutonomicApp{}
	if err := c.Get(ctx, gaugeShopKey, app); err != nil {
		t.Fatal(err)
	}
	app.Spec.Components[1] = v1alpha1.Component{Name: "payments", WorkloadRef: &v1alpha1.WorkloadReference{
		APIVersion: "apps/v1", Kind: "Deployment", Name: "api"}}
	if err := c.Update(ctx, app); err != nil {
		t.Fatal(err)
	}
	reconcileOnce(t, r, gaugeShopKey)
	expectSeries(t, r.Metrics.ComponentPhase)
	expectSeries(t, r.Metrics.ComponentSensor, append(workloadSeries("web", 2), workloadSeries("payments", 1)...)...)
}

func TestSensorGaugesOffExportNoSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, r := newGaugeReconciler(t, false, childShop(v1alpha1.PhaseHealthy)...)
	r.Metrics = newMetrics(reg)
	reconcileOnce(t, r, gaugeShopKey)
	reconcileWhen(t, r, gaugeShopKey, "both sensors to be read", available("backlog", "doubled"))

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		switch f.GetName() {
		case "homeostat_sensor_value", "homeostat_component_sensor", "homeostat_component_phase":
			t.Errorf("%s has %d series with --sensor-gauges=false", f.GetName(), len(f.GetMetric()))
		}
	}
	if len(r.Metrics.series.apps) != 0 {
		t.Errorf("series are recorded with --sensor-gauges=false: %+v", r.Metrics.series.apps)
	}
}
