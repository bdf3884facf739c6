package controllers

import (
	"context"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/homeostat-dev/homeostat/internal/leader"
)

// gated runs a reconciler only while this replica holds the Lease (see leader.Gate),
// under a context that ends when the replica stops leading. A replica that stands by
// drops what it is asked to reconcile; when it leads, leadershipSource asks again for
// everything.
type gated struct {
	gate  *leader.Gate
	inner reconcile.Reconciler
}

func (g gated) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	ctx, done, ok := g.gate.Enter(ctx)
	if !ok {
		return reconcile.Result{}, nil
	}
	defer done()
	return g.inner.Reconcile(ctx, req)
}

// gate wraps r in the gate; without one (no leader election) r runs as it is.
func gate(g *leader.Gate, r reconcile.Reconciler) reconcile.Reconciler {
	if g == nil {
		return r
	}
	return gated{gate: g, inner: r}
}

// leadershipSource asks for every object that list returns each time the replica
// becomes the leader: what it dropped while it stood by, and what changed while no
// replica led.
type leadershipSource struct {
	gate *leader.Gate
	list func(context.Context) []reconcile.Request
}

var _ source.Source = leadershipSource{}

func (s leadershipSource) Start(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	add := func() {
		if ctx.Err() != nil {
			return
		}
		for _, r := range s.list(ctx) {
			q.Add(r)
		}
	}
	s.gate.OnGained(add)
	if s.gate.Leading() {
		// It led before this controller started. Not in Start: a read of the cache
		// waits for it to sync, and Start must not.
		go add()
	}
	return nil
}
