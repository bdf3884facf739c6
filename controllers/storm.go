package controllers

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// DefaultStormMinUnhealthy is how many apps must be unhealthy at once, besides the share,
// before the storm breaker engages: one broken app in a small cluster is not a storm.
const DefaultStormMinUnhealthy = 3

// stormBreaker watches the health of every managed app. When more than threshold of them
// (and at least minUnhealthy) are unhealthy at once, the problem is bigger than any one
// app (a zone, the network, a bad shared dependency) and restarting things would only
// add load: disruptive actions stop cluster-wide until the share falls back.
type stormBreaker struct {
	threshold    float64
	minUnhealthy int
	// total counts the managed apps, including those not reconciled yet since a start.
	total func(ctx context.Context) int
	// gauge is homeostat_storm_active.
	gauge interface{ Set(float64) }

	mu     sync.Mutex
	health map[types.NamespacedName]bool
	active bool
	// flips carries an event each time the breaker engages or releases, so every app
	// is reconciled again to hold or resume and to say so in its Suspended condition.
	flips chan event.GenericEvent
}

func newStormBreaker(threshold float64, minUnhealthy int, total func(context.Context) int, gauge interface{ Set(float64) }) *stormBreaker {
	return &stormBreaker{threshold: threshold, minUnhealthy: minUnhealthy, total: total, gauge: gauge,
		health: map[types.NamespacedName]bool{}, flips: make(chan event.GenericEvent, 16)}
}

// observe records an app's health and returns whether the breaker is engaged.
func (b *stormBreaker) observe(ctx context.Context, key types.NamespacedName, healthy bool) bool {
	b.mu.Lock()
	b.health[key] = healthy
	b.mu.Unlock()
	return b.evaluate(ctx)
}

func (b *stormBreaker) forget(ctx context.Context, key types.NamespacedName) {
	b.mu.Lock()
	delete(b.health, key)
	b.mu.Unlock()
	b.evaluate(ctx)
}

// engaged says whether disruptive actions are stopped.
func (b *stormBreaker) engaged() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.active
}

// counts returns the unhealthy apps and the apps managed.
func (b *stormBreaker) counts(ctx context.Context) (unhealthy, total int) {
	b.mu.Lock()
	for _, ok := range b.health {
		if !ok {
			unhealthy++
		}
	}
	total = len(b.health)
	b.mu.Unlock()
	if stormy(unhealthy, total, b.threshold, b.minUnhealthy) && b.total != nil {
		// Apps not reconciled yet since a start count as healthy: the breaker must not
		// engage because the first apps seen happened to be the broken ones.
		total = max(total, b.total(ctx))
	}
	return unhealthy, total
}

// stormy is the breaker's rule: more than threshold of the apps, and at least
// minUnhealthy of them, are unhealthy.
func stormy(unhealthy, total int, threshold float64, minUnhealthy int) bool {
	return total > 0 && unhealthy >= minUnhealthy && float64(unhealthy) > threshold*float64(total)
}

func (b *stormBreaker) evaluate(ctx context.Context) bool {
	unhealthy, total := b.counts(ctx)
	now := stormy(unhealthy, total, b.threshold, b.minUnhealthy)
	b.mu.Lock()
	flipped := now != b.active
	b.active = now
	b.mu.Unlock()
	if flipped {
		if b.gauge != nil {
			b.gauge.Set(boolFloat(now))
		}
		select {
		case b.flips <- event.GenericEvent{Object: &v1alpha1.AutonomicApp{}}:
		default: // a flip is already queued; it reconciles every app anyway
		}
	}
	return now
}

// allApps maps a flip to every app.
func allApps(r client.Reader) handler.TypedEventHandler[client.Object, reconcile.Request] {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
		var apps v1alpha1.AutonomicAppList
		if err := r.List(ctx, &apps, client.UnsafeDisableDeepCopy); err != nil {
			return nil
		}
		out := make([]reconcile.Request, 0, len(apps.Items))
		for _, a := range apps.Items {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: a.Namespace, Name: a.Name}})
		}
		return out
	})
}

// countApps counts the managed apps in the cache.
func countApps(r client.Reader) func(context.Context) int {
	return func(ctx context.Context) int {
		var apps v1alpha1.AutonomicAppList
		if err := r.List(ctx, &apps, client.UnsafeDisableDeepCopy); err != nil {
			return 0
		}
		return len(apps.Items)
	}
}
