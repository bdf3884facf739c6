package execute

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/rights"
)

func init() { register(KindRolloutRestart, rolloutRestart{}) }

// RestartedAtAnnotation is the pod template annotation `kubectl rollout restart` sets.
const RestartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// rolloutRestart restarts a workload the way `kubectl rollout restart` does: it changes a
// pod template annotation, and the workload's controller rolls every pod.
type rolloutRestart struct{}

func (rolloutRestart) prepare(req Request) (Prepared, error) {
	w, err := workloadOf(req)
	if err != nil {
		return Prepared{}, err
	}
	if err := canRollOut(w, w.obj); err != nil {
		return Prepared{}, err
	}
	return Prepared{Target: w.String(), Disruptive: true, Pods: rolloutPods(w.obj)}, nil
}

// accesses are the patch of the workload's pod template.
func (rolloutRestart) accesses(req Request) ([]rights.Access, error) {
	w, err := workloadOf(req)
	if err != nil {
		return nil, nil
	}
	return []rights.Access{workloadAccess(w, "patch", "")}, nil
}

// canRollOut says why a template change of the workload would not roll its pods.
func canRollOut(w workload, obj client.Object) error {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		if o.Spec.Paused {
			return fmt.Errorf("%s is paused, so a rollout would not start; resume it first", w)
		}
		return nil
	case *appsv1.StatefulSet:
		if o.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
			return fmt.Errorf("%s uses the OnDelete update strategy, so a rollout restart would not replace its pods; use restartPods", w)
		}
		return nil
	}
	return fmt.Errorf("%s cannot be restarted by a rollout: only Deployments and StatefulSets roll out; use restartPods", w)
}

func (rolloutRestart) execute(ctx context.Context, e *Effectors, req Request) Outcome {
	w, err := workloadOf(req)
	if err != nil {
		return failed("%v", err)
	}
	if w.kind != kindDeployment && w.kind != kindStatefulSet {
		return failed("%v", canRollOut(w, w.obj))
	}
	obj, err := e.readWorkload(ctx, w)
	if err != nil {
		return failed("%v", err)
	}
	id := req.Record.ID
	at := e.recordTime(req.Record).UTC().Format(time.RFC3339)
	if out, done := restartedBy(w, obj, id); done {
		return out
	}
	if err := canRollOut(w, obj); err != nil {
		return failed("%v", err)
	}

	// The same record yields the same bytes, so a repeated patch is a no-op on the server.
	body := mustJSON(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{v1alpha1.ActionIDAnnotation: id}},
		"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{"annotations": map[string]string{
			RestartedAtAnnotation:       at,
			v1alpha1.ActionIDAnnotation: id,
		}}}},
	})
	log.FromContext(ctx).Info("Restarting workload", "workload", klog.KObj(obj), "kind", w.kind, "actionID", id)
	if err := e.patch(ctx, obj, types.MergePatchType, body); err != nil {
		return failed("Could not restart %s: %v", w, err)
	}
	return succeeded("Started a rolling restart of %s (restartedAt %s)", w, at)
}

// observe reports a rolling restart as done once the workload's pod template carries the
// action id, which the same patch writes with restartedAt. That change is the whole
// effect: like execute, it does not wait for the rollout it starts.
func (rolloutRestart) observe(ctx context.Context, e *Effectors, req Request) (Outcome, bool) {
	w, err := workloadOf(req)
	if err != nil || (w.kind != kindDeployment && w.kind != kindStatefulSet) {
		return Outcome{}, false
	}
	obj, err := e.readWorkload(ctx, w)
	if err != nil {
		return Outcome{}, false
	}
	return restartedBy(w, obj, req.Record.ID)
}

// restartedBy reports whether the workload's pod template carries the action id, that is
// whether the action has restarted it, and the outcome that says so.
func restartedBy(w workload, obj client.Object, id string) (Outcome, bool) {
	tmpl := podTemplate(obj)
	if tmpl == nil || tmpl.Annotations[v1alpha1.ActionIDAnnotation] != id {
		return Outcome{}, false
	}
	return succeeded("%s was already restarted by this action (restartedAt %s)", w, tmpl.Annotations[RestartedAtAnnotation]), true
}

// recordTime is when the intent was recorded, which makes times an effector writes
// deterministic; the clock stands in only for a record without a time.
func (e *Effectors) recordTime(rec *v1alpha1.ActionRecord) time.Time {
	if rec.Time.IsZero() && e.Clock != nil {
		return e.Clock.Now()
	}
	return rec.Time.Time
}

// podTemplate is the pod template of a workload.
func podTemplate(obj client.Object) *corev1.PodTemplateSpec {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return &o.Spec.Template
	case *appsv1.StatefulSet:
		return &o.Spec.Template
	case *appsv1.ReplicaSet:
		return &o.Spec.Template
	}
	return nil
}
