package controllers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/homeostat-dev/homeostat/internal/knowledge"
)

// cacheCatchUp is how long an informer is still counted stale after its list or watch
// succeeds again: the time to replace its store with the list, or to deliver the events
// it missed.
const cacheCatchUp = time.Second

// staleCacheRecheck is how soon an action held by a stale cache is looked at again.
const staleCacheRecheck = time.Second

// cacheHealth knows when the manager's informer cache may be stale. When the API server
// is unreachable, an informer's watch breaks and its reflector retries with a backoff
// that grows to 30-60 s (k8s.io/client-go/tools/cache/reflector.go); a refused
// connection does not even count as a watch error, so nothing is logged or reported.
// Reads from the cache go on succeeding, with data that can be a minute old after the
// API server is back. The benchmark TestBenchFaultsAPIServerOutage (test/bench) caught a
// restartPods intent, written then, that named pods deleted 56 s earlier.
//
// Every informer's list and watch calls pass through watching, which records a call
// that failed (the informer's type is down from then) and one that succeeded again (the
// type catches up within cacheCatchUp). While a type is down or catching up, the guards
// hold every action.
type cacheHealth struct {
	clock clock.PassiveClock

	mu sync.Mutex
	// down holds, per informer type, when its list or watch first failed; caughtUp, when
	// a type that was down will have caught up.
	down     map[string]time.Time
	caughtUp map[string]time.Time
	lastErr  string
}

func newCacheHealth(c clock.PassiveClock) *cacheHealth {
	return &cacheHealth{clock: c, down: map[string]time.Time{}, caughtUp: map[string]time.Time{}}
}

// defaultCacheHealth is the manager's: ConfigureCache wraps the informers' list and
// watch calls with it and Setup gives it to the reconciler.
var defaultCacheHealth = newCacheHealth(clock.RealClock{})

// newInformer is the cache's informer constructor (cache.Options.NewInformer): the
// default one, with the list and watch calls observed.
func (h *cacheHealth) newInformer(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
	return toolscache.NewSharedIndexInformer(h.watching(lw, fmt.Sprintf("%T", obj)), obj, resync, indexers)
}

// watching returns lw with every list and watch call reported as what.
func (h *cacheHealth) watching(lw toolscache.ListerWatcher, what string) toolscache.ListerWatcher {
	inner := toolscache.ToListerWatcherWithContext(lw)
	return &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			obj, err := inner.ListWithContext(ctx, opts)
			h.called(what, err)
			return obj, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			w, err := inner.WatchWithContext(ctx, opts)
			h.called(what, err)
			return w, err
		},
	}
}

// called records the outcome of one list or watch call of an informer. An expired
// resource version (the reflector lists again at once) and a call canceled because the
// manager stops are not failures.
func (h *cacheHealth) called(what string, err error) {
	if err != nil && (errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) ||
		apierrors.IsResourceExpired(err) || apierrors.IsGone(err)) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.clock.Now()
	if err != nil {
		if _, ok := h.down[what]; !ok {
			h.down[what] = now
		}
		h.lastErr = err.Error()
		return
	}
	if _, ok := h.down[what]; ok {
		delete(h.down, what)
		h.caughtUp[what] = now.Add(cacheCatchUp)
	}
}

// stale says, in a sentence, why the cache may be stale now, or "" when it is not, and
// when to look again.
func (h *cacheHealth) stale() (string, time.Time) {
	if h == nil {
		return "", time.Time{}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.clock.Now()
	var down, catching []string
	var since time.Time
	for what, t := range h.down {
		down = append(down, what)
		if since.IsZero() || t.Before(since) {
			since = t
		}
	}
	for what, t := range h.caughtUp {
		if now.Before(t) {
			catching = append(catching, what)
		} else {
			delete(h.caughtUp, what)
		}
	}
	recheck := now.Add(staleCacheRecheck)
	switch {
	case len(down) > 0:
		slices.Sort(down)
		return fmt.Sprintf("The manager's watches of %s have failed since %s (last error: %s), so its view of the cluster may be stale; the informers retry with a backoff of up to a minute.",
			strings.Join(down, ", "), since.UTC().Format(time.RFC3339), knowledge.Truncate(h.lastErr, 256)), recheck
	case len(catching) > 0:
		slices.Sort(catching)
		return fmt.Sprintf("The manager's watches of %s are back and catching up with what they missed.", strings.Join(catching, ", ")), recheck
	}
	return "", time.Time{}
}
