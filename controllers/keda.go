package controllers

import (
	"context"
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/homeostat-dev/homeostat/internal/monitor"
)

// scaledObjectKind is KEDA's ScaledObject.
var scaledObjectKind = schema.GroupVersionKind{Group: "keda.sh", Version: "v1alpha1", Kind: "ScaledObject"}

// kedaWatch watches KEDA's ScaledObjects, as the HPAs are watched, once an autoscale
// policy has found their kind served: a ScaledObject created for an autoscaled workload
// then puts its policy in Conflict at once, and its removal lifts it. KEDA is optional and
// may be installed after the manager starts, so the watch is registered by the first
// conflict check that finds the kind, never by polling: a manager with no autoscale
// policy, or no KEDA, makes no request for it.
type kedaWatch struct {
	ctrl  controller.Controller
	cache cache.Cache
	// enqueue maps a ScaledObject to the apps that name its target.
	enqueue handler.MapFunc

	mu sync.Mutex
	// watching is set once the watch is registered; from then on ScaledObjects are read
	// from the cache.
	watching atomic.Bool
}

// scaledObjectReader returns where to read KEDA's ScaledObjects from, and false when
// KEDA is not installed. Once they are watched that is the cache; the check that finds
// the kind registers the watch and reads from the API server itself (the new informer
// has not synced yet).
func (r *AppReconciler) scaledObjectReader(ctx context.Context) (client.Reader, bool, error) {
	k := r.keda
	if k != nil && k.watching.Load() {
		return k.cache, true, nil
	}
	if _, err := r.RESTMapper().RESTMapping(scaledObjectKind.GroupKind(), scaledObjectKind.Version); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, false, nil // KEDA is not installed
		}
		return nil, false, err
	}
	if k != nil {
		k.start(ctx)
	}
	return r.Client, true, nil
}

// start registers the watch, once.
func (k *kedaWatch) start(ctx context.Context) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.watching.Load() {
		return
	}
	so := &unstructured.Unstructured{}
	so.SetGroupVersionKind(scaledObjectKind)
	if err := k.ctrl.Watch(source.Kind[client.Object](k.cache, so,
		handler.EnqueueRequestsFromMapFunc(k.enqueue), predicate.GenerationChangedPredicate{})); err != nil {
		// The next conflict check tries again; until then it reads the API server.
		logf.FromContext(ctx).Error(err, "Watching KEDA's ScaledObjects failed")
		return
	}
	k.watching.Store(true)
	logf.FromContext(ctx).Info("KEDA's ScaledObjects are served: watching them for autoscaling conflicts")
}

// appsOfScaledObject enqueues the apps whose components name the ScaledObject's scale
// target (KEDA's default kind is a Deployment).
func (r *AppReconciler) appsOfScaledObject(ctx context.Context, o client.Object) []reconcile.Request {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	kind, _, _ := unstructured.NestedString(u.Object, "spec", "scaleTargetRef", "kind")
	name, _, _ := unstructured.NestedString(u.Object, "spec", "scaleTargetRef", "name")
	if kind == "" {
		kind = "Deployment"
	}
	return r.enqueue(r.appsOf(ctx, u.GetNamespace(), []monitor.OwnerRef{{Kind: kind, Name: name}}))
}
