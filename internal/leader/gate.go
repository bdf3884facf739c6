// Package leader decides which replica of the manager acts, and lets the others stand by
// with their caches and their memory warm.
//
// controller-runtime's own leader election starts the leader's controllers once and
// ends the process when the Lease is lost: a replica that loses its Lease in an API
// server outage exits, and everything it knew (informer caches, sensor histories,
// autoscale recommendations) is rebuilt from nothing by its successor, which also waits
// for a full lease duration before it may take over. Here every replica runs its
// controllers, caches and poller all the time; a Gate lets work through only while the
// replica holds the Lease, and an Elector campaigns again, in the same process, after
// losing it.
package leader

import (
	"context"
	"sync"
)

// Gate lets the leader's work through. A nil Gate always leads: a manager without
// leader election acts alone.
//
// Work enters with Enter and leaves with the function Enter returns. When leadership
// ends, the context of every piece of work inside is cancelled, and Lose returns only
// once all of it has left: a replica that lost its Lease makes no call after it says
// so, and a replica that steps down releases its Lease only after that.
type Gate struct {
	mu      sync.Mutex
	cond    *sync.Cond
	leading bool
	term    context.Context // cancelled when the current term of leadership ends
	endTerm context.CancelFunc
	inside  int
	gained  []func()
	lost    []func()
}

// NewGate returns a gate that does not lead until Gain.
func NewGate() *Gate {
	g := &Gate{}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// Leading says whether this replica holds the Lease.
func (g *Gate) Leading() bool {
	if g == nil {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.leading
}

// Enter lets one piece of work in while this replica leads: it returns a context that
// ends with ctx or with the term of leadership, whichever ends first, and the function
// to call when the work is done. It returns false, and nothing to call, when the
// replica does not lead.
func (g *Gate) Enter(ctx context.Context) (context.Context, func(), bool) {
	if g == nil {
		return ctx, func() {}, true
	}
	g.mu.Lock()
	if !g.leading {
		g.mu.Unlock()
		return ctx, nil, false
	}
	g.inside++
	term := g.term
	g.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(term, cancel)
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			stop()
			cancel()
			g.mu.Lock()
			g.inside--
			if g.inside == 0 {
				g.cond.Broadcast()
			}
			g.mu.Unlock()
		})
	}, true
}

// OnGained registers f, called each time this replica becomes the leader, after the
// gate opens. OnLost registers f, called each time it stops leading, after the work
// inside has left. Register before the elector starts.
func (g *Gate) OnGained(f func()) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gained = append(g.gained, f)
}

// OnLost: see OnGained.
func (g *Gate) OnLost(f func()) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lost = append(g.lost, f)
}

// Gain opens the gate for a new term of leadership, which ends no later than term (the
// elector's context of the term). It does nothing while the gate is open, or once term
// has ended: client-go starts OnStartedLeading in a goroutine, which can run after the
// term it was started for has already ended and been closed by Lose.
func (g *Gate) Gain(term context.Context) {
	g.mu.Lock()
	if g.leading || term.Err() != nil {
		g.mu.Unlock()
		return
	}
	g.leading = true
	g.term, g.endTerm = context.WithCancel(context.Background())
	// A term that ends under the gate ends the gate's term too; Lose follows.
	context.AfterFunc(term, g.endTerm)
	fs := append([]func(){}, g.gained...)
	g.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

// Lose closes the gate, cancels the work inside and waits for it to leave. It does
// nothing while the gate is closed; a Lose that finds another Lose waiting returns at
// once, before the work has left.
func (g *Gate) Lose() {
	g.mu.Lock()
	if !g.leading {
		g.mu.Unlock()
		return
	}
	g.leading = false
	g.endTerm()
	for g.inside > 0 {
		g.cond.Wait()
	}
	fs := append([]func(){}, g.lost...)
	g.mu.Unlock()
	for _, f := range fs {
		f()
	}
}
