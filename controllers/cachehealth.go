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
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/homeostat-dev/homeostat/internal/knowledge"
)

// reflectorRetryBound is the longest a client-go reflector waits before it retries a
// failed list or watch: its backoff grows from 0.8 s to a cap of 30 s with up to 100%
// jitter (k8s.io/client-go/tools/cache/reflector.go), so under 60 s, and a few seconds
// more for the list itself. A watch that failed has either listed again by then or
// failed again.
const reflectorRetryBound = 65 * time.Second

// staleCacheRecheck is how soon an action held by a stale cache is looked at again.
const staleCacheRecheck = time.Second

// cacheHealth knows when the manager's cache may be stale. The informers' watches break
// when the API server is unreachable; each reflector then retries after a backoff that
// grows to 30-60 s, so a cache can lag the cluster by up to a minute after the API server
// is back, while reads from it succeed. The benchmark TestBenchFaultsAPIServerOutage
// (test/bench) caught an action taken in that window on pods deleted a minute before.
//
// The cache's watch error handler reports each failure here. A watch counts as failed
// until its reflector has listed or watched something newer than what it held when it
// failed (its last synced resource version moves), or, at the latest,
// reflectorRetryBound after the last failure of any watch. While one does, the guards
// hold every action.
type cacheHealth struct {
	clock clock.PassiveClock

	mu      sync.Mutex
	failing map[any]failedWatch
	last    time.Time
	lastErr string
}

type failedWatch struct {
	what string
	// rv is the reflector's last synced resource version when it failed; current reads it now.
	rv      string
	current func() string
}

func newCacheHealth(c clock.PassiveClock) *cacheHealth {
	return &cacheHealth{clock: c, failing: map[any]failedWatch{}}
}

// defaultCacheHealth is the manager's: ConfigureCache installs its handler on the cache
// and Setup gives it to the reconciler.
var defaultCacheHealth = newCacheHealth(clock.RealClock{})

// handleWatchError is the cache's watch error handler: it logs as client-go's default
// handler does and records the failure.
func (h *cacheHealth) handleWatchError(ctx context.Context, r *toolscache.Reflector, err error) {
	toolscache.DefaultWatchErrorHandler(ctx, r, err)
	h.failed(r, r.TypeDescription(), r.LastSyncResourceVersion, err)
}

// failed records a failed list or watch of one reflector (key). A watch that ended
// normally, one whose resource version expired (the reflector lists again at once) and
// one stopped because the manager stops are not failures.
func (h *cacheHealth) failed(key any, what string, rv func() string, err error) {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) ||
		apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.failing[key]; !ok {
		h.failing[key] = failedWatch{what: what, rv: rv(), current: rv}
	}
	h.last, h.lastErr = h.clock.Now(), err.Error()
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
	var what []string
	for k, f := range h.failing {
		if f.current() != f.rv || !now.Before(h.last.Add(reflectorRetryBound)) {
			delete(h.failing, k)
			continue
		}
		what = append(what, f.what)
	}
	if len(what) == 0 {
		return "", time.Time{}
	}
	slices.Sort(what)
	what = slices.Compact(what)
	return fmt.Sprintf("The manager's watches of %s failed (last at %s: %s) and have not listed again since, so its view of the cluster may be stale; they retry within %s.",
		strings.Join(what, ", "), h.last.UTC().Format(time.RFC3339), knowledge.Truncate(h.lastErr, 256), reflectorRetryBound), now.Add(staleCacheRecheck)
}
