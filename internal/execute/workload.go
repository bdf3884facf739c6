package execute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Workload kinds a component may name.
const (
	kindDeployment  = "Deployment"
	kindStatefulSet = "StatefulSet"
	kindReplicaSet  = "ReplicaSet"
)

// workload is the workload a component action targets, as the monitor saw it.
type workload struct {
	kind      string
	name      string
	namespace string
	// obj is the *appsv1.Deployment, *appsv1.StatefulSet or *appsv1.ReplicaSet from the
	// informer cache. Never write to it: write to a fresh object from newObject.
	obj client.Object
}

// String is how actions name the workload in targets and messages: Deployment/web.
func (w workload) String() string { return w.kind + "/" + w.name }

// newObject returns an empty typed object of the workload's kind, named, for a write
// whose response may be decoded into it without touching the cache.
func (w workload) newObject() (client.Object, error) {
	var obj client.Object
	switch w.kind {
	case kindDeployment:
		obj = &appsv1.Deployment{}
	case kindStatefulSet:
		obj = &appsv1.StatefulSet{}
	case kindReplicaSet:
		obj = &appsv1.ReplicaSet{}
	default:
		return nil, fmt.Errorf("%s is not a Deployment, StatefulSet or ReplicaSet", w)
	}
	obj.SetNamespace(w.namespace)
	obj.SetName(w.name)
	return obj, nil
}

// key is the workload's namespaced name.
func (w workload) key() client.ObjectKey {
	return client.ObjectKey{Namespace: w.namespace, Name: w.name}
}

// readWorkload reads the workload as it is now (through the client, so possibly from the
// cache), as a typed object of its kind. The error is a sentence for an outcome.
func (e *Effectors) readWorkload(ctx context.Context, w workload) (client.Object, error) {
	obj, err := w.newObject()
	if err != nil {
		return nil, err
	}
	if err := e.Client.Get(ctx, w.key(), obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%s no longer exists", w)
		}
		return nil, fmt.Errorf("could not read %s: %w", w, err)
	}
	return obj, nil
}

// workloadOf resolves the workload of a component action from the request.
func workloadOf(req Request) (workload, error) {
	t := req.Target
	if t == nil {
		return workload{}, errors.New("the action names no component the monitor knows")
	}
	if t.Ref == nil {
		return workload{}, fmt.Errorf("component %s is an app, not a workload", t.Name)
	}
	if t.Workload == nil {
		return workload{}, fmt.Errorf("%s/%s of component %s was not found", t.Ref.Kind, t.Ref.Name, t.Name)
	}
	return workload{
		kind:      t.Ref.Kind,
		name:      t.Workload.GetName(),
		namespace: t.Workload.GetNamespace(),
		obj:       t.Workload,
	}, nil
}

// specReplicas is the workload's spec.replicas, with the API's default of 1.
func specReplicas(obj client.Object) (int32, bool) {
	switch w := obj.(type) {
	case *appsv1.Deployment:
		return ptr.Deref(w.Spec.Replicas, 1), true
	case *appsv1.StatefulSet:
		return ptr.Deref(w.Spec.Replicas, 1), true
	case *appsv1.ReplicaSet:
		return ptr.Deref(w.Spec.Replicas, 1), true
	}
	return 0, false
}

// rolloutPods is how many pods a rollout of the workload takes down at once: what a
// rollout restart or a rollback costs the maxUnhealthyPods guard. It follows the
// controllers: a Deployment's maxUnavailable rounded down (at least 1 when maxSurge is 0
// too), all replicas for Recreate, a StatefulSet's maxUnavailable rounded up (default 1).
func rolloutPods(obj client.Object) int {
	replicas, _ := specReplicas(obj)
	n := 1
	switch w := obj.(type) {
	case *appsv1.Deployment:
		switch {
		case w.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType:
			n = int(replicas)
		case w.Spec.Strategy.RollingUpdate != nil:
			ru := w.Spec.Strategy.RollingUpdate
			unavailable := scaled(ru.MaxUnavailable, "25%", int(replicas), false)
			surge := scaled(ru.MaxSurge, "25%", int(replicas), true)
			n = unavailable
			if unavailable == 0 && surge == 0 {
				n = 1
			}
		default:
			n = scaled(nil, "25%", int(replicas), false)
		}
	case *appsv1.StatefulSet:
		if ru := w.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.MaxUnavailable != nil {
			n = max(1, scaled(ru.MaxUnavailable, "1", int(replicas), true))
		}
	}
	return min(n, int(replicas))
}

// scaled resolves an int-or-percent against total, with def when v is nil.
func scaled(v *intstr.IntOrString, def string, total int, roundUp bool) int {
	if v == nil {
		d := intstr.Parse(def)
		v = &d
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(v, total, roundUp)
	if err != nil {
		return 0
	}
	return n
}

// ownerUIDs are the controllers a pod of the component may have: the workload, and for a
// Deployment its ReplicaSets.
func ownerUIDs(req Request, w workload) map[types.UID]bool {
	uids := map[types.UID]bool{w.obj.GetUID(): true}
	if req.Target != nil {
		for i := range req.Target.ReplicaSets {
			uids[req.Target.ReplicaSets[i].UID] = true
		}
	}
	return uids
}

// mustJSON marshals a patch built from maps and strings, which cannot fail.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("execute: marshal patch: %v", err))
	}
	return b
}
