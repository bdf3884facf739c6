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
	"github.com/homeostat-dev/homeostat/internal/knowledge"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch
// +kubebuilder:rbac:groups=keda.sh,resources=scaledobjects,verbs=get;list;watch
// +kubebuilder:rbac:groups=metrics.k8s.io,resources=pods,verbs=get;list
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get

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

// decideAutoscale gathers what an autoscale policy's decision reads and asks plan:
//
//	target       the component's workload, and another autoscaler of it (HPA, KEDA)
//	recommender  the sensors' readings (and forecasts), the current replicas, and the
//	             recommendations and scale events this manager remembers
//	ledger       the newest scale not judged yet
//
// The recommendations it returns are remembered at once; the scale event only once the
// scale has been carried out (rememberScale).
func (r *AppReconciler) decideAutoscale(ctx context.Context, s *session, pol v1alpha1.Policy, old v1alpha1.PolicyStatus) (plan.Decision, error) {
	a := pol.Autoscale
	in := plan.AutoscalePolicyInput{Name: pol.Name, Previous: old, Recommender: plan.AutoscaleInput{Now: s.now, Policy: *a}}
	var c *monitor.Component
	if a.Component != "*" {
		c = s.component(a.Component)
	}
	if c == nil || c.Workload == nil {
		d, _ := plan.DecideAutoscale(in)
		return d, nil
	}
	in.Target = plan.AutoscaleTarget{Found: true, Workload: c.Ref.Kind + "/" + c.Ref.Name}
	owner, err := r.otherAutoscaler(ctx, c)
	if err != nil {
		return plan.Decision{}, err
	}
	in.Target.Conflict = owner

	key := types.NamespacedName{Namespace: s.app.Namespace, Name: s.app.Name}
	readings := r.readings(key)
	rin := plan.AutoscaleInput{
		Now: s.now, Policy: *a, CurrentReplicas: c.Status.DesiredReplicas,
		ConsecutiveFailures: map[string]int32{}, Forecasts: map[string]float64{},
	}
	for _, m := range a.Metrics {
		rd, ok := readings[m.Sensor]
		rin.Metrics = append(rin.Metrics, metricInput(m.Sensor, rd, ok))
		rin.ConsecutiveFailures[m.Sensor] = int32(rd.ConsecutiveFailures)
		if a.Predictive != nil && r.Readings != nil {
			var samples []plan.Sample
			for _, h := range r.Readings.History(key, m.Sensor) {
				samples = append(samples, plan.Sample{Time: h.At, Value: h.Value})
			}
			if f, ok := plan.Forecast(*a.Predictive, samples, s.now); ok {
				rin.Forecasts[m.Sensor] = f
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
	rin.History, rin.ScaleEvents = mem.history, mem.events
	in.Recommender = rin
	in.LastScale = plan.LastScaleOf(knowledge.LastUnjudged(&s.app.Status, pol.Name), mem.events)

	d, rec := plan.DecideAutoscale(in)
	if owner == "" {
		mem.history = rec.History
		r.autoscalers.put(memKey, mem)
	}
	if d.Intent != nil {
		if s.scales == nil {
			s.scales = map[string]plan.AutoscaleDecision{}
		}
		s.scales[pol.Name] = rec
	}
	return d, nil
}

// rememberScale keeps the scale event of a scale the policy carried out, for its rate
// policies.
func (r *AppReconciler) rememberScale(s *session, pol v1alpha1.Policy) {
	rec, ok := s.scales[pol.Name]
	if !ok {
		return
	}
	memKey := types.NamespacedName{Namespace: s.app.Namespace, Name: s.app.Name}.String() + "/" + pol.Name
	mem := r.autoscalers.get(memKey)
	mem.events = plan.RecordScaleEvent(plan.ResolveBehavior(pol.Autoscale.Behavior), mem.events, s.now, rec.Current, rec.Desired)
	r.autoscalers.put(memKey, mem)
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
