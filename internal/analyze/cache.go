package analyze

import (
	"container/list"
	"sync"
	"sync/atomic"
)

// DefaultCacheSize is how many compiled expressions the package keeps. An app has at
// most 32 symptoms of its own, and shared policies repeat the same expressions across
// apps, so a thousand apps rarely hold more than a few thousand distinct expressions.
const DefaultCacheSize = 4096

// programs caches compiled expressions by their text. A program does not depend on what
// an app declares (the environment is the same for every app); the references that do
// are checked against each app's Declared on every Compile, which is a short loop.
var programs = newLRU(DefaultCacheSize)

// compilations counts expressions compiled (cache misses), for tests and metrics.
var compilations atomic.Int64

// lru is a bounded, concurrency-safe least-recently-used cache of programs.
type lru struct {
	mu    sync.Mutex
	size  int
	order *list.List // of *lruEntry, most recently used first
	items map[string]*list.Element
}

type lruEntry struct {
	key  string
	prog *program
}

func newLRU(size int) *lru {
	return &lru{size: size, order: list.New(), items: make(map[string]*list.Element, size)}
}

func (c *lru) get(key string) (*program, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*lruEntry).prog, true
}

// add stores p under key unless an entry is already there, and returns the entry kept,
// so concurrent compilations of one expression end up sharing one program.
func (c *lru) add(key string, p *program) *program {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*lruEntry).prog
	}
	c.items[key] = c.order.PushFront(&lruEntry{key: key, prog: p})
	for c.order.Len() > c.size {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*lruEntry).key)
	}
	return p
}

func (c *lru) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
