package controllers

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// triggers remembers, per app, when the first watch event since its last reconcile
// arrived, so an action can say how long it took from the change to the act.
type triggers struct {
	mu    sync.Mutex
	first map[types.NamespacedName]time.Time
}

func newTriggers() *triggers { return &triggers{first: map[types.NamespacedName]time.Time{}} }

func (t *triggers) mark(key types.NamespacedName, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.first[key]; !ok {
		t.first[key] = at
	}
}

// take returns the first event time since the last take, or fallback when none.
func (t *triggers) take(key types.NamespacedName, fallback time.Time) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.first[key]
	delete(t.first, key)
	if !ok {
		return fallback
	}
	return at
}

// reset forgets every app's first event: those seen while the replica stood by do not
// date what it decides when it leads.
func (t *triggers) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.first)
}

func (t *triggers) forget(key types.NamespacedName) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.first, key)
}
