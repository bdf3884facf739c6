package controllers

import (
	"context"
	"maps"
	"slices"
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

// DefaultStormMinNamespaces is how many namespaces must be in a storm of their own before
// the storm breaker engages: one namespace, one tenant, cannot stop healing cluster-wide.
const DefaultStormMinNamespaces = 2

// appHealth is what the storm breaker knows of one app: whether its health could be
// judged (its spec is valid, its components resolve, its hierarchy holds) and, if so,
// whether it is healthy.
type appHealth struct{ judged, healthy bool }

// notJudged is the health of an app that cannot be judged: it counts nowhere.
var notJudged = appHealth{}

// judgedAs is the health of an app that could be judged.
func judgedAs(healthy bool) appHealth { return appHealth{judged: true, healthy: healthy} }

// stormBreaker keeps the health last seen of every managed app, counted by namespace,
// and applies the storm rule (plan.Storm) to it on each change: when too many namespaces
// have too many unhealthy apps at once, the problem is bigger than any one app (a zone,
// the network, a bad shared dependency) and restarting things would only add load, so
// disruptive actions stop cluster-wide until the share falls back. It owns the
// bookkeeping: the counts, the gauge, and the flips.
type stormBreaker struct {
	threshold     float64
	minUnhealthy  int
	minNamespaces int
	// managed counts the managed apps by namespace, including those not reconciled yet
	// since a start.
	managed func(ctx context.Context) map[string]int
	// gauge is homeostat_storm_active.
	gauge interface{ Set(float64) }

	mu   sync.Mutex
	apps map[types.NamespacedName]appHealth
	// namespaces holds the counts of apps, kept in step with apps.
	namespaces map[string]*plan.NamespaceHealth
	active     bool
	// flips carries an event each time the breaker engages or releases, so every app
	// is reconciled again to hold or resume and to say so in its Suspended condition.
	flips chan event.GenericEvent
}

func newStormBreaker(threshold float64, minUnhealthy, minNamespaces int, managed func(context.Context) map[string]int,
	gauge interface{ Set(float64) }) *stormBreaker {
	return &stormBreaker{threshold: threshold, minUnhealthy: minUnhealthy, minNamespaces: minNamespaces,
		managed: managed, gauge: gauge, apps: map[types.NamespacedName]appHealth{},
		namespaces: map[string]*plan.NamespaceHealth{}, flips: make(chan event.GenericEvent, 16)}
}

// known are the apps whose health the breaker holds.
func (b *stormBreaker) known() []types.NamespacedName {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Collect(maps.Keys(b.apps))
}

// observe records an app's health and returns whether the breaker is engaged.
func (b *stormBreaker) observe(ctx context.Context, key types.NamespacedName, h appHealth) bool {
	b.mu.Lock()
	if old, ok := b.apps[key]; ok {
		b.count(key.Namespace, old, -1)
	}
	b.apps[key] = h
	b.count(key.Namespace, h, 1)
	b.mu.Unlock()
	return b.evaluate(ctx)
}

func (b *stormBreaker) forget(ctx context.Context, key types.NamespacedName) {
	b.mu.Lock()
	if old, ok := b.apps[key]; ok {
		b.count(key.Namespace, old, -1)
		delete(b.apps, key)
	}
	b.mu.Unlock()
	b.evaluate(ctx)
}

// count adds delta apps of health h to the counts of namespace ns. It is called with
// b.mu held.
func (b *stormBreaker) count(ns string, h appHealth, delta int) {
	c := b.namespaces[ns]
	if c == nil {
		c = &plan.NamespaceHealth{}
		b.namespaces[ns] = c
	}
	switch {
	case !h.judged:
		c.Unjudged += delta
	case h.healthy:
		c.Healthy += delta
	default:
		c.Unhealthy += delta
	}
	if *c == (plan.NamespaceHealth{}) {
		delete(b.namespaces, ns)
	}
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
	in := plan.StormInput{Threshold: b.threshold, MinUnhealthy: b.minUnhealthy, MinNamespaces: b.minNamespaces}
	b.mu.Lock()
	seen := make(map[string]plan.NamespaceHealth, len(b.namespaces))
	for ns, c := range b.namespaces {
		seen[ns] = *c
		in.Namespaces = append(in.Namespaces, *c)
	}
	b.mu.Unlock()
	v := plan.Storm(in)
	if !v.Engaged || b.managed == nil {
		return v
	}
	// Counting the apps not seen yet lists the cache: it is done only when the apps seen
	// make a storm, as more apps unseen can only make it smaller.
	in.Namespaces = in.Namespaces[:0]
	managed := b.managed(ctx)
	for ns, c := range seen {
		c.Unseen = max(0, managed[ns]-c.Unhealthy-c.Healthy-c.Unjudged)
		in.Namespaces = append(in.Namespaces, c)
	}
	for ns, n := range managed {
		if _, ok := seen[ns]; !ok {
			in.Namespaces = append(in.Namespaces, plan.NamespaceHealth{Unseen: n})
		}
	}
	return plan.Storm(in)
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
		return appRequests(ctx, r)
	})
}

// appRequests asks for every app in the cache.
func appRequests(ctx context.Context, r client.Reader) []reconcile.Request {
	var apps v1alpha1.AutonomicAppList
	if err := r.List(ctx, &apps, client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(apps.Items))
	for _, a := range apps.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: a.Namespace, Name: a.Name}})
	}
	return out
}

// countApps counts the managed apps in the cache, by namespace.
func countApps(r client.Reader) func(context.Context) map[string]int {
	return func(ctx context.Context) map[string]int {
		var apps v1alpha1.AutonomicAppList
		if err := r.List(ctx, &apps, client.UnsafeDisableDeepCopy); err != nil {
			return nil
		}
		out := map[string]int{}
		for _, a := range apps.Items {
			out[a.Namespace]++
		}
		return out
	}
}
