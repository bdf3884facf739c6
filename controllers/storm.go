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
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// DefaultStormMinUnhealthy is how many apps must be unhealthy at once, besides the share,
// before the storm breaker engages: one broken app in a small cluster is not a storm.
const DefaultStormMinUnhealthy = 3

// stormBreaker keeps the health last seen of every managed app and applies the storm
// rule (plan.Storm) to it on each change: when too many apps are unhealthy at once, the
// problem is bigger than any one app (a zone, the network, a bad shared dependency) and
// restarting things would only add load, so disruptive actions stop cluster-wide until
// the share falls back. It owns the bookkeeping: the counts, the gauge, and the flips.
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

// state is the breaker's state for an app's Suspended condition: engaged or not, as the
// guards see it, and while engaged the counts as they are now; zero when released.
func (b *stormBreaker) state(ctx context.Context) plan.StormVerdict {
	if !b.engaged() {
		return plan.StormVerdict{}
	}
	v := b.verdict(ctx)
	// The guards hold on the flag, and so does the condition; the counts may have moved
	// since the flag was set.
	v.Engaged = true
	return v
}

// verdict applies the breaker's rule (plan.Storm) to the health last seen of every app.
func (b *stormBreaker) verdict(ctx context.Context) plan.StormVerdict {
	in := plan.StormInput{Threshold: b.threshold, MinUnhealthy: b.minUnhealthy}
	b.mu.Lock()
	for _, ok := range b.health {
		if !ok {
			in.Unhealthy++
		}
	}
	in.Seen = len(b.health)
	b.mu.Unlock()
	v := plan.Storm(in)
	if v.Engaged && b.total != nil {
		// Counting the managed apps lists the cache: it is done only when the apps seen
		// make a storm, as more apps can only make the share smaller.
		in.Managed = b.total(ctx)
		v = plan.Storm(in)
	}
	return v
}

func (b *stormBreaker) evaluate(ctx context.Context) bool {
	now := b.verdict(ctx).Engaged
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
