package controllers

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// notifier is a source of reconcile requests for apps whose sensors changed. Notify
// never blocks: keys gather in a set that the source drains into the work queue.
type notifier struct {
	mu      sync.Mutex
	pending map[types.NamespacedName]struct{}
	signal  chan struct{}
	mark    func(types.NamespacedName)
}

var _ source.Source = &notifier{}

func newNotifier(mark func(types.NamespacedName)) *notifier {
	return &notifier{pending: map[types.NamespacedName]struct{}{}, signal: make(chan struct{}, 1), mark: mark}
}

// Notify asks for the app to be reconciled because something it watches changed (a
// sensor's reading): the change counts as the trigger of what the reconcile decides.
func (n *notifier) Notify(key types.NamespacedName) {
	if n.mark != nil {
		n.mark(key)
	}
	n.Wake(key)
}

// Wake asks for the app to be reconciled to collect the progress of its own action (a
// webhook's POST), which is no trigger of a new decision.
func (n *notifier) Wake(key types.NamespacedName) {
	n.mu.Lock()
	n.pending[key] = struct{}{}
	n.mu.Unlock()
	select {
	case n.signal <- struct{}{}:
	default:
	}
}

// Start drains notifications into the queue until ctx ends.
func (n *notifier) Start(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-n.signal:
			}
			n.mu.Lock()
			keys := n.pending
			n.pending = map[types.NamespacedName]struct{}{}
			n.mu.Unlock()
			for k := range keys {
				q.Add(reconcile.Request{NamespacedName: k})
			}
		}
	}()
	return nil
}
