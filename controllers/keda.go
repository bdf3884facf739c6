package controllers

import (
	"context"
	"sync/atomic"
	"time"

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

// DefaultKEDACheckInterval is how often the manager looks for KEDA's ScaledObject kind
// until it is served; from then on ScaledObjects are watched.
const DefaultKEDACheckInterval = 30 * time.Second

// kedaWatch watches KEDA's ScaledObjects, as the HPAs are watched, once their kind is
// served: a ScaledObject created for an autoscaled workload puts its policy in Conflict at
// once, and its removal lifts it. KEDA is optional, and may be installed after the
// manager starts, so the watch starts only when the kind is served (checked every
// interval until then); until it has started, a conflict check lists ScaledObjects from
// the API server.
type kedaWatch struct {
	r        *AppReconciler
	ctrl     controller.Controller
	cache    cache.Cache
	interval time.Duration
	// watching is set once the watch is registered; from then on ScaledObjects are read
	// from the cache.
	watching atomic.Bool
}

// scaledObjectKind is KEDA's ScaledObject.
var scaledObjectKind = schema.GroupVersionKind{Group: "keda.sh", Version: "v1alpha1", Kind: "ScaledObject"}

// Start checks for the ScaledObject kind every interval until it is served, then
// registers the watch and returns.
func (k *kedaWatch) Start(ctx context.Context) error {
	log := logf.FromContext(ctx).WithName("keda")
	t := time.NewTicker(k.interval)
	defer t.Stop()
	for {
		if kedaServed(k.r) {
			so := &unstructured.Unstructured{}
			so.SetGroupVersionKind(scaledObjectKind)
			err := k.ctrl.Watch(source.Kind[client.Object](k.cache, so,
				handler.EnqueueRequestsFromMapFunc(k.r.appsOfScaledObject), predicate.GenerationChangedPredicate{}))
			if err == nil {
				k.watching.Store(true)
				log.Info("KEDA's ScaledObjects are served: watching them for autoscaling conflicts")
				return nil
			}
			log.Error(err, "Watching KEDA's ScaledObjects failed; trying again", "in", k.interval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// NeedLeaderElection is false: a watch registered before the controller starts waits
// for it, so a standby replica is ready when it takes over.
func (k *kedaWatch) NeedLeaderElection() bool { return false }

// reader is where ScaledObjects are read from: the cache once they are watched.
func (k *kedaWatch) reader() (client.Reader, bool) {
	if k == nil || !k.watching.Load() {
		return nil, false
	}
	return k.cache, true
}

// kedaServed says whether the API server serves KEDA's ScaledObject kind.
func kedaServed(r *AppReconciler) bool {
	_, err := r.RESTMapper().RESTMapping(scaledObjectKind.GroupKind(), scaledObjectKind.Version)
	return err == nil
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
