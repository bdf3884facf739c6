package execute

import (
	"context"
	"fmt"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	"k8s.io/apimachinery/pkg/types"
	acautoscalingv1 "k8s.io/client-go/applyconfigurations/autoscaling/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/plan"
	"github.com/homeostat-dev/homeostat/internal/rights"
)

func init() { register(KindScale, scale{}) }

// scale sets a workload's replicas by server-side apply on its /scale subresource, as the
// homeostat field manager, so that Homeostat owns spec.replicas and nothing else.
type scale struct{}

func (scale) prepare(req Request) (Prepared, error) {
	w, err := workloadOf(req)
	if err != nil {
		return Prepared{}, err
	}
	current, ok := specReplicas(w.obj)
	if !ok {
		return Prepared{}, fmt.Errorf("%s has no replicas to scale", w)
	}
	a := req.Action.Scale
	n, err := plan.ScaleReplicas(a, current)
	if err != nil {
		return Prepared{}, fmt.Errorf("%s cannot be scaled: %w", w, err)
	}
	if n == current {
		if a.MaxReplicas != nil && n == *a.MaxReplicas {
			return Prepared{}, fmt.Errorf("%s already has %d replicas, its maxReplicas, so scaling would change nothing", w, n)
		}
		return Prepared{}, fmt.Errorf("%s already has %d replicas, so scaling would change nothing", w, n)
	}
	return Prepared{
		Target:     fmt.Sprintf("%s from %d to %d replicas", w, current, n),
		Replicas:   &n,
		Disruptive: n < current,
		Pods:       int(max(0, current-n)),
	}, nil
}

// accesses are the patch of the workload's /scale subresource.
func (scale) accesses(req Request) ([]rights.Access, error) {
	w, err := workloadOf(req)
	if err != nil {
		return nil, nil
	}
	return []rights.Access{workloadAccess(w, "patch", "scale")}, nil
}

func (scale) execute(ctx context.Context, e *Effectors, req Request) Outcome {
	w, err := workloadOf(req)
	if err != nil {
		return failed("%v", err)
	}
	if req.Record.Replicas == nil {
		return failed("The ledger record of the scale action has no replica count, so %s was not scaled", w)
	}
	n := *req.Record.Replicas
	obj, err := w.newObject()
	if err != nil {
		return failed("%v", err)
	}
	id := req.Record.ID

	log.FromContext(ctx).Info("Scaling workload", "workload", klog.KObj(obj), "kind", w.kind, "replicas", n, "actionID", id)
	if _, err := e.applyScale(ctx, obj, n); err != nil {
		return failed("Could not scale %s to %d replicas: %v", w, n, err)
	}
	if err := e.stamp(ctx, obj, id); err != nil {
		return failed("Scaled %s to %d replicas, but could not stamp it with the action id: %v", w, n, err)
	}
	return scaledTo(w, n)
}

// observe reports a scale as done when the workload carries the action id and its
// spec.replicas is the recorded count. Execute stamps after it applies, so a count
// without the stamp may be anyone's and is not taken as this action's; a stamped
// workload whose count has changed since no longer shows the effect.
func (scale) observe(ctx context.Context, e *Effectors, req Request) (Outcome, bool) {
	w, err := workloadOf(req)
	if err != nil || req.Record.Replicas == nil {
		return Outcome{}, false
	}
	// The replicas are the effect; the id is stamped after them, so a manager that died
	// between the two writes left the effect without the stamp.
	obj, err := e.readWorkload(ctx, w)
	if err != nil {
		return Outcome{}, false
	}
	n := *req.Record.Replicas
	if got, ok := specReplicas(obj); !ok || got != n {
		return Outcome{}, false
	}
	return scaledTo(w, n), true
}

// scaledTo is the outcome of a scale that took effect.
func scaledTo(w workload, n int32) Outcome { return succeeded("Scaled %s to %d replicas", w, n) }

// applyScale server-side applies spec.replicas on obj's /scale subresource as the
// homeostat field manager, taking ownership from any other manager. The API server maps
// the Scale's fields onto the workload's managedFields, so homeostat then owns
// f:spec.f:replicas of the workload (an Apply entry with subresource "scale") and nothing
// else. The same count applied again is a no-op: no write, no new resourceVersion.
func (e *Effectors) applyScale(ctx context.Context, obj client.Object, replicas int32) (*autoscalingv1.Scale, error) {
	body := mustJSON(acautoscalingv1.Scale().
		WithName(obj.GetName()).
		WithNamespace(obj.GetNamespace()).
		WithSpec(acautoscalingv1.ScaleSpec().WithReplicas(replicas)))
	got := &autoscalingv1.Scale{}
	err := e.Client.SubResource("scale").Patch(ctx, obj, client.RawPatch(types.ApplyPatchType, body),
		client.FieldOwner(v1alpha1.FieldManager), client.ForceOwnership, client.WithSubResourceBody(got))
	return got, err
}
