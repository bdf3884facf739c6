package execute

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	"k8s.io/apimachinery/pkg/types"
	acautoscalingv1 "k8s.io/client-go/applyconfigurations/autoscaling/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
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
	n, err := targetReplicas(a, current)
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

// targetReplicas is the absolute count a scale action sets from the current count:
// replicas as given, current plus delta, or current times factor rounded up (computed
// exactly, so 10 × 1.1 is 11, not 12). The result is at least 0 and at most maxReplicas
// when that is set.
func targetReplicas(a *v1alpha1.ScaleAction, current int32) (int32, error) {
	var n int64
	switch {
	case a.Replicas != nil:
		n = int64(*a.Replicas)
	case a.Delta != nil:
		n = int64(current) + int64(*a.Delta)
	case a.Factor != nil:
		f, ok := new(big.Rat).SetString(*a.Factor)
		if !ok || f.Sign() <= 0 {
			return 0, fmt.Errorf("factor %q is not a positive decimal", *a.Factor)
		}
		p := new(big.Rat).Mul(f, new(big.Rat).SetInt64(int64(current)))
		q, r := new(big.Int).QuoRem(p.Num(), p.Denom(), new(big.Int))
		if r.Sign() > 0 {
			q.Add(q, big.NewInt(1))
		}
		if !q.IsInt64() || q.Int64() > math.MaxInt32 {
			n = math.MaxInt32
		} else {
			n = q.Int64()
		}
	default:
		return 0, errors.New("the scale action sets none of replicas, delta, factor")
	}
	n = max(n, 0)
	if a.MaxReplicas != nil {
		n = min(n, int64(*a.MaxReplicas))
	}
	return int32(min(n, math.MaxInt32)), nil
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
