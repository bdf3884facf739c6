package controllers

import (
	"context"
	"fmt"
	"strings"
	"sync"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/plan"
	"github.com/homeostat-dev/homeostat/internal/text"
)

// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch
// +kubebuilder:rbac:groups=keda.sh,resources=scaledobjects,verbs=get;list;watch
// +kubebuilder:rbac:groups=metrics.k8s.io,resources=pods,verbs=get;list
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get

// ReasonConflict says another autoscaler owns the workload's replicas.
const ReasonConflict = "Conflict"

// scaledObjectGVK is the list kind of KEDA's ScaledObjects, read only when KEDA is installed.
var scaledObjectGVK = schema.GroupVersionKind{Group: "keda.sh", Version: "v1alpha1", Kind: "ScaledObjectList"}

// autoscaleMemory is what autoscalers remember between reconciles, in memory as the HPA
// does: recent recommendations (for stabilization windows) and scale events (for rate
// policies). After a restart or a change of leader it starts from the current replicas,
// which only makes scaling down wait one window longer.
type autoscaleMemory struct {
	mu    sync.Mutex
	state map[string]*autoscalerState
}

type autoscalerState struct {
	history []plan.Recommendation
	events  []plan.ScaleEvent
}

func (m *autoscaleMemory) get(key string) autoscalerState {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.state[key]; ok {
		return autoscalerState{history: append([]plan.Recommendation{}, s.history...), events: append([]plan.ScaleEvent{}, s.events...)}
	}
	return autoscalerState{}
}

func (m *autoscaleMemory) put(key string, s autoscalerState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == nil {
		m.state = map[string]*autoscalerState{}
	}
	m.state[key] = &s
}

func (m *autoscaleMemory) forget(app types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	prefix := app.String() + "/"
	for k := range m.state {
		if strings.HasPrefix(k, prefix) {
			delete(m.state, k)
		}
	}
}

// autoscale plans one autoscale policy from its sensors and scales through the ledger:
// the scale action is recorded, guarded and executed as any other action, by
// server-side apply of spec.replicas as the homeostat field manager.
func (r *AppReconciler) autoscale(ctx context.Context, s *session, pol v1alpha1.Policy, old v1alpha1.PolicyStatus) (v1alpha1.PolicyStatus, error) {
	a := pol.Autoscale
	st := v1alpha1.PolicyStatus{Name: pol.Name, LastAction: old.LastAction}
	if a.Component == "*" {
		st.State, st.Reason = v1alpha1.PolicyInvalid, "Unsupported"
		st.Message = `An autoscale policy with component "*" is not supported: name the component to scale.`
		return st, nil
	}
	c := s.component(a.Component)
	if c == nil || c.Workload == nil {
		st.State, st.Reason = v1alpha1.PolicyWaiting, v1alpha1.ReasonComponentNotFound
		st.Message = fmt.Sprintf("Component %q has no workload to scale yet.", a.Component)
		return st, nil
	}
	if owner, err := r.otherAutoscaler(ctx, c); err != nil {
		return old, err
	} else if owner != "" {
		st.State, st.Reason = v1alpha1.PolicyConflict, ReasonConflict
		st.Message = fmt.Sprintf("%s already scales %s/%s: Homeostat does not fight it and leaves the replicas alone. Remove one of the two autoscalers.",
			owner, c.Ref.Kind, c.Ref.Name)
		return st, nil
	}

	key := types.NamespacedName{Namespace: s.app.Namespace, Name: s.app.Name}
	readings := r.readings(key)
	in := plan.AutoscaleInput{
		Now: s.now, Policy: *a, CurrentReplicas: c.Status.DesiredReplicas,
		ConsecutiveFailures: map[string]int32{}, Forecasts: map[string]float64{},
	}
	for _, m := range a.Metrics {
		rd, ok := readings[m.Sensor]
		in.Metrics = append(in.Metrics, metricInput(m.Sensor, rd, ok))
		in.ConsecutiveFailures[m.Sensor] = int32(rd.ConsecutiveFailures)
		if a.Predictive != nil && r.Readings != nil {
			var samples []plan.Sample
			for _, h := range r.Readings.History(key, m.Sensor) {
				samples = append(samples, plan.Sample{Time: h.At, Value: h.Value})
			}
			if f, ok := plan.Forecast(*a.Predictive, samples, s.now); ok {
				in.Forecasts[m.Sensor] = f
			}
		}
	}
	memKey := key.String() + "/" + pol.Name
	mem := r.autoscalers.get(memKey)
	if n := len(mem.history); n > 0 {
		// The app is reconciled whenever a reading or the replicas change, so the last
		// recommendation stood until now: record it again, or a load that held longer
		// than the scale-down window would scale down at once when it falls.
		mem.history = append(mem.history, plan.Recommendation{Time: s.now, Replicas: mem.history[n-1].Replicas})
	}
	in.History, in.ScaleEvents = mem.history, mem.events
	d := plan.Autoscale(in)
	mem.history = d.History
	s.requeueAt(d.NextCheck)

	desired := d.Desired
	st.DesiredReplicas = &desired
	st.Reason, st.Message = d.Reason, text.Truncate(d.Message, 1024)
	st.State = v1alpha1.PolicyIdle
	if d.Reason == plan.ReasonSensorUnavailable || d.Reason == plan.ReasonFallback {
		st.State = v1alpha1.PolicyHeld
	}
	if !d.Scale() {
		r.autoscalers.put(memKey, mem)
		return st, nil
	}

	res, err := r.act(ctx, s, actInput{Policy: pol.Name, Action: v1alpha1.Action{Scale: &v1alpha1.ScaleAction{
		Component: a.Component, Replicas: &desired}}, Reason: d.Message})
	if err != nil {
		return old, err
	}
	if res.Held.Held {
		st.State, st.Reason = v1alpha1.PolicyHeld, res.Held.Reason
		st.Message = text.Truncate(fmt.Sprintf("Scaling %s from %d to %d is held: %s", a.Component, d.Current, d.Desired, res.Held.Message), 1024)
		s.requeueAt(res.Held.Until)
		r.autoscalers.put(memKey, mem)
		return st, nil
	}
	st.State, st.LastAction = v1alpha1.PolicyActing, res.LastID
	if !res.RecordOnly {
		mem.events = plan.RecordScaleEvent(plan.ResolveBehavior(a.Behavior), mem.events, s.now, d.Current, d.Desired)
	}
	r.autoscalers.put(memKey, mem)
	return st, nil
}

// metricInput is a sensor's reading as the plan reads a metric. A resource sensor's
// reading carries the pods behind its average, so the plan applies the HPA's
// missing-data rules to the pods that reported no metric or are not ready; for other
// sensors the pods are unknown and the current replicas count as ready.
func metricInput(sensor string, rd monitor.Reading, ok bool) plan.MetricInput {
	in := plan.MetricInput{Sensor: sensor, Value: rd.Value, Available: ok && rd.Available()}
	if p := rd.Pods; p != nil {
		// The pods of one workload, so within int32 as its replicas are.
		in.ReadyPods, in.MissingPods, in.UnreadyPods = int32(p.Ready), int32(p.Missing), int32(p.Unready)
	}
	return in
}

// otherAutoscaler names an HPA or a KEDA ScaledObject that targets the component's
// workload, or "".
func (r *AppReconciler) otherAutoscaler(ctx context.Context, c *monitor.Component) (string, error) {
	var hpas autoscalingv2.HorizontalPodAutoscalerList
	if err := r.List(ctx, &hpas, client.InNamespace(c.Workload.GetNamespace())); err != nil {
		return "", fmt.Errorf("listing HorizontalPodAutoscalers: %w", err)
	}
	for _, h := range hpas.Items {
		if sameTarget(h.Spec.ScaleTargetRef.APIVersion, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name, c) {
			return "HorizontalPodAutoscaler " + h.Name, nil
		}
	}
	reader, installed, err := r.scaledObjectReader(ctx)
	if err != nil || !installed {
		return "", err
	}
	var sos unstructured.UnstructuredList
	sos.SetGroupVersionKind(scaledObjectGVK)
	if err := reader.List(ctx, &sos, client.InNamespace(c.Workload.GetNamespace())); err != nil {
		return "", fmt.Errorf("listing KEDA ScaledObjects: %w", err)
	}
	for _, so := range sos.Items {
		kind, _, _ := unstructured.NestedString(so.Object, "spec", "scaleTargetRef", "kind")
		name, _, _ := unstructured.NestedString(so.Object, "spec", "scaleTargetRef", "name")
		apiVersion, _, _ := unstructured.NestedString(so.Object, "spec", "scaleTargetRef", "apiVersion")
		if kind == "" {
			// KEDA's defaults.
			kind, apiVersion = "Deployment", "apps/v1"
		}
		if sameTarget(apiVersion, kind, name, c) {
			return "KEDA ScaledObject " + so.GetName(), nil
		}
	}
	return "", nil
}

// sameTarget is true when a scale target reference (apiVersion, kind, name) names the
// component's workload: the same group (any version), kind and name.
func sameTarget(apiVersion, kind, name string, c *monitor.Component) bool {
	if kind != c.Ref.Kind || name != c.Ref.Name {
		return false
	}
	theirs, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return false
	}
	ours, err := schema.ParseGroupVersion(c.Ref.APIVersion)
	return err == nil && theirs.Group == ours.Group
}

// readings returns the app's sensor readings, or none without a poller.
func (r *AppReconciler) readings(key types.NamespacedName) map[string]monitor.Reading {
	if r.Readings == nil {
		return nil
	}
	return r.Readings.Get(key)
}
