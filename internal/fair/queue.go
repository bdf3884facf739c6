package fair

import (
	"slices"
	"sync"
)

// Queue is a work queue shared fairly among tenants. Items wait in one first-in,
// first-out list per tenant; Get takes the first item of the first tenant in turn whose
// items in flight are under PerTenant, and moves that tenant to the back of the turn.
// A tenant at its share keeps its place and is skipped, so its waiting items hold no
// worker. Done ends an item taken by Get.
//
//	Add(t, x) ──> t's list ──┐
//	                         ├─ turn: t1 → t2 → t3 → (served tenant to the back)
//	Get() <── first tenant in turn with inFlight < perTenant ── inFlight++
//	Done(t) ──> inFlight-- ──> wakes a waiting Get
//
// A Queue is safe for concurrent use. The zero value is not usable: call New.
type Queue[T any] struct {
	perTenant int

	mu       sync.Mutex
	wake     *sync.Cond
	tenants  map[string]*tenant[T]
	turn     []string // tenants with waiting items, in the order they are served
	shutdown bool
}

type tenant[T any] struct {
	waiting  []T
	inFlight int
}

// New returns a Queue that hands out at most perTenant items of one tenant at once; 0
// or less means no bound.
func New[T any](perTenant int) *Queue[T] {
	q := &Queue[T]{perTenant: perTenant, tenants: map[string]*tenant[T]{}}
	q.wake = sync.NewCond(&q.mu)
	return q
}

// Add appends item to tenant's list. Items added after ShutDown are dropped.
func (q *Queue[T]) Add(tenantName string, item T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown {
		return
	}
	t := q.tenant(tenantName)
	if len(t.waiting) == 0 {
		q.turn = append(q.turn, tenantName)
	}
	t.waiting = append(t.waiting, item)
	q.wake.Signal()
}

// Get blocks until an item of a tenant under its share is waiting, and returns it with
// its tenant; ok is false once the queue is shut down. The caller must call Done with
// the tenant when it has finished with the item.
func (q *Queue[T]) Get() (tenantName string, item T, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if q.shutdown {
			var zero T
			return "", zero, false
		}
		for i, name := range q.turn {
			t := q.tenants[name]
			if q.perTenant > 0 && t.inFlight >= q.perTenant {
				continue
			}
			item = t.waiting[0]
			var zero T
			t.waiting[0] = zero
			t.waiting = t.waiting[1:]
			t.inFlight++
			q.turn = slices.Delete(q.turn, i, i+1)
			if len(t.waiting) > 0 {
				q.turn = append(q.turn, name)
			}
			return name, item, true
		}
		q.wake.Wait()
	}
}

// Done ends an item of tenant that Get returned, so another of its items may be taken.
func (q *Queue[T]) Done(tenantName string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	t := q.tenants[tenantName]
	if t == nil || t.inFlight == 0 {
		return
	}
	t.inFlight--
	q.forgetIdle(tenantName, t)
	q.wake.Signal()
}

// Remove drops the waiting items of tenant that match, and says whether it dropped any.
// Items taken by Get are not affected.
func (q *Queue[T]) Remove(tenantName string, match func(T) bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	t := q.tenants[tenantName]
	if t == nil {
		return false
	}
	n := len(t.waiting)
	t.waiting = slices.DeleteFunc(t.waiting, match)
	if len(t.waiting) == 0 {
		q.turn = slices.DeleteFunc(q.turn, func(s string) bool { return s == tenantName })
	}
	q.forgetIdle(tenantName, t)
	return len(t.waiting) < n
}

// Waiting counts the items of tenant that wait, not counting those in flight.
func (q *Queue[T]) Waiting(tenantName string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if t := q.tenants[tenantName]; t != nil {
		return len(t.waiting)
	}
	return 0
}

// InFlight counts the items of tenant taken by Get and not yet Done.
func (q *Queue[T]) InFlight(tenantName string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if t := q.tenants[tenantName]; t != nil {
		return t.inFlight
	}
	return 0
}

// ShutDown makes every Get, waiting or to come, return ok false, and drops what waits.
func (q *Queue[T]) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.shutdown = true
	q.tenants = map[string]*tenant[T]{}
	q.turn = nil
	q.wake.Broadcast()
}

func (q *Queue[T]) tenant(name string) *tenant[T] {
	t := q.tenants[name]
	if t == nil {
		t = &tenant[T]{}
		q.tenants[name] = t
	}
	return t
}

// forgetIdle drops a tenant with nothing waiting and nothing in flight, so the map holds
// only tenants with work.
func (q *Queue[T]) forgetIdle(name string, t *tenant[T]) {
	if len(t.waiting) == 0 && t.inFlight == 0 {
		delete(q.tenants, name)
	}
}
