package controllers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/homeostat-dev/homeostat/internal/text"
)

// cacheCatchUp is how long an informer is still counted stale after its list or watch
// succeeds again: the time to replace its store with the list, or to deliver the events
// it missed.
const cacheCatchUp = time.Second

// watchRestart is how soon a reflector watches again after its watch ended normally
// (the API server ends every watch after a few minutes); a type not watched again by
// then is backing off.
const watchRestart = 2 * time.Second

// staleCacheRecheck is how soon an action held by a cache whose watch is down is looked
// at again; one held while a watch catches up is looked at again when it has caught up.
const staleCacheRecheck = time.Second

// cacheRetryFirst and cacheRetryMax bound how an informer retries a list or watch call
// that failed because the API server could not be reached or was not ready: at once
// after cacheRetryFirst, then twice as long each time, never longer than cacheRetryMax;
// a 429 is retried after the Retry-After it gives (cacheRetryMax without one).
// client-go's reflector would back off for up to a minute, and keep acting on a cache
// that old well after the API server is back.
const (
	cacheRetryFirst = 100 * time.Millisecond
	cacheRetryMax   = time.Second
)

// cacheHealth knows when the manager's informer cache may be stale. When the API server
// is unreachable, an informer's watch breaks and its reflector retries with a backoff
// that grows to 30-60 s (k8s.io/client-go/tools/cache/reflector.go); neither a refused
// connection nor a resumed watch that the restarted API server ends at once with "too
// old resource version" counts as a watch error, so nothing is logged or reported, and
// the reflector lists again only after its backoff. Reads from the cache go on
// succeeding, with data that can be a minute old after the API server is back. The
// benchmark TestBenchFaultsAPIServerOutage (test/bench) caught a restartPods intent,
// written then, that named pods deleted 56 s earlier.
//
// Every informer's list and watch calls, and the watch streams, pass through watching:
// a failed call or an error event in a stream puts the informer's type down, and so does
// a stream that ended and was not watched again within watchRestart; a list, or a stream
// that delivers an event or stays open without an error for cacheCatchUp, brings it
// back. While a type is down, or back for less than cacheCatchUp, the guards hold every
// action.
type cacheHealth struct {
	clock clock.PassiveClock
	// sleep waits d, or until ctx ends (then it returns false); nil waits on a timer.
	sleep func(ctx context.Context, d time.Duration) bool

	mu sync.Mutex
	// down holds, per informer type, when its list or watch first failed; caughtUp, when
	// a type that was down will have caught up.
	down     map[string]time.Time
	ended    map[string]time.Time
	caughtUp map[string]time.Time
	lastErr  string
	// informers numbers the informers; lastUnreachable is when a call last found the API
	// server out of reach.
	informers       int
	lastUnreachable time.Time
}

// cacheLog says when an informer goes down and comes back.
var cacheLog = logf.Log.WithName("cache-health")

func newCacheHealth(c clock.PassiveClock) *cacheHealth {
	return &cacheHealth{clock: c, down: map[string]time.Time{}, ended: map[string]time.Time{}, caughtUp: map[string]time.Time{}}
}

// defaultCacheHealth is the manager's: ConfigureCache wraps the informers' list and
// watch calls with it and Setup gives it to the reconciler.
var defaultCacheHealth = newCacheHealth(clock.RealClock{})

// newInformer is the cache's informer constructor (cache.Options.NewInformer): the
// default one, with the list and watch calls observed.
func (h *cacheHealth) newInformer(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
	// A cache of several namespaces has an informer per type and namespace: each is down
	// or up on its own, and is named by its type.
	h.mu.Lock()
	h.informers++
	what := fmt.Sprintf("%T%s%d", obj, informerSep, h.informers)
	h.mu.Unlock()
	var inf toolscache.SharedIndexInformer
	rl := &relister{example: obj, store: func() toolscache.Store { return inf.GetStore() }}
	inf = toolscache.NewSharedIndexInformer(h.watchingWith(lw, what, rl), obj, resync, indexers)
	return inf
}

// informerSep separates an informer's type from its number in the keys of cacheHealth.
const informerSep = "#"

// typeOf is the type an informer's key names.
func typeOf(what string) string {
	t, _, _ := strings.Cut(what, informerSep)
	return t
}

// watching returns lw with every list and watch call reported as what. A call that
// failed because the API server is unreachable or not ready is tried again within
// cacheRetryMax, inside the call: the reflector never sees that error, so it never
// backs off for it.
func (h *cacheHealth) watching(lw toolscache.ListerWatcher, what string) toolscache.ListerWatcher {
	return h.watchingWith(lw, what, nil)
}

// watchingWith is watching, and with a relister it also answers a watch the API server
// finds too old by listing again inside the watch (see relister), and abandons a watch
// call the API server holds unanswered while the informer is down (watchWithin).
func (h *cacheHealth) watchingWith(lw toolscache.ListerWatcher, what string, rl *relister) toolscache.ListerWatcher {
	inner := toolscache.ToListerWatcherWithContext(lw)
	return &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			var obj runtime.Object
			err := h.retry(ctx, what, func() (err error) {
				obj, err = inner.ListWithContext(ctx, opts)
				return err
			})
			h.called(what, err)
			return obj, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			// The watch's own context, ended when the reflector stops it: a relist
			// inside it stops with it.
			wctx, stop := context.WithCancel(ctx)
			w, err := h.watchCall(wctx, what, inner, opts, rl != nil)
			var relist func() ([]watch.Event, watch.Interface, error)
			if rl != nil && resumed(opts) {
				relist = func() ([]watch.Event, watch.Interface, error) { return h.relistAndWatch(wctx, inner, what, rl, opts) }
			}
			if err != nil && relist != nil && expired(err) {
				h.failed(what, err)
				if events, rw, rerr := relist(); rerr == nil {
					return h.observeWith(what, rw, stop, events, relist, rl), nil
				}
			}
			if err != nil {
				stop()
				h.called(what, err)
				return w, err
			}
			return h.observeWith(what, w, stop, nil, relist, rl), nil
		},
	}
}

// resumed says whether a watch resumes from a version the informer has seen: the only
// kind the relister answers. The initial events of a watch-list go to the reflector's
// own temporary store and end with a bookmark of its own; a 410 there is the
// reflector's to answer.
func resumed(opts metav1.ListOptions) bool {
	return (opts.SendInitialEvents == nil || !*opts.SendInitialEvents) && opts.ResourceVersion != "" && opts.ResourceVersion != "0"
}

// watchCall makes a watch call under retry. With bounded, while the informer is down
// and the API server was out of reach within startingGrace (a restart), a call not
// answered within watchBound is abandoned and made again, each time waiting twice as
// long, up to watchBoundMax. An API server that is merely slow or overloaded (429s) is
// waited for.
func (h *cacheHealth) watchCall(ctx context.Context, what string, inner toolscache.ListerWatcherWithContext,
	opts metav1.ListOptions, bounded bool) (watch.Interface, error) {
	var w watch.Interface
	bound := watchBound
	err := h.retry(ctx, what, func() (err error) {
		if !bounded || !h.restarting(what) {
			w, err = inner.WatchWithContext(ctx, opts)
			return err
		}
		w, err = watchWithin(ctx, bound, func(ctx context.Context) (watch.Interface, error) {
			return inner.WatchWithContext(ctx, opts)
		})
		if errors.Is(err, errUnanswered) {
			bound = min(2*bound, watchBoundMax)
		}
		return err
	})
	return w, err
}

// relistAndWatch lists the informer's objects afresh and watches from the list: the
// events that bring its store to the list, and the new watch.
func (h *cacheHealth) relistAndWatch(ctx context.Context, inner toolscache.ListerWatcherWithContext, what string, rl *relister,
	opts metav1.ListOptions) ([]watch.Event, watch.Interface, error) {
	var events []watch.Event
	var rv string
	err := h.retry(ctx, what, func() (err error) {
		events, rv, err = rl.events(ctx, inner.ListWithContext, opts)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	wopts := opts
	wopts.ResourceVersion, wopts.ResourceVersionMatch, wopts.SendInitialEvents = rv, "", nil
	w, err := h.watchCall(ctx, what, inner, wopts, true)
	if err != nil {
		return nil, nil, err
	}
	cacheLog.Info("A watch was too old for the API server; listed again inside the watch", "type", typeOf(what),
		"changes", max(len(events)-1, 0), "resourceVersion", rv)
	return events, w, nil
}

// isDown says whether the informer's list or watch is failing.
func (h *cacheHealth) isDown(what string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.down[what]
	return ok
}

// restarting says whether the informer is down and the API server was out of reach
// within startingGrace.
func (h *cacheHealth) restarting(what string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, down := h.down[what]
	return down && !h.lastUnreachable.IsZero() && h.clock.Since(h.lastUnreachable) < startingGrace
}

// retry calls call until it succeeds, fails otherwise than with the API server out of
// reach (unreachable), or ctx ends; each failure puts the type down.
func (h *cacheHealth) retry(ctx context.Context, what string, call func() error) error {
	delay := cacheRetryFirst
	serverErrors := 0
	for {
		err := call()
		if err == nil || ctx.Err() != nil {
			return err
		}
		wait := delay
		switch {
		case apierrors.HasStatusCause(err, metav1.CauseTypeResourceVersionTooLarge) || apierrors.IsResourceExpired(err) || apierrors.IsGone(err):
			// The reflector's own answer is right: list again, from another version.
			return err
		case apierrors.IsTooManyRequests(err):
			// The server says when: a restarted API server answers 429 to the watches
			// of a type while it fills its watch cache, with Retry-After 1.
			wait = cacheRetryMax
			if s, ok := apierrors.SuggestsClientDelay(err); ok && s > 0 {
				wait = time.Duration(s) * time.Second
			}
		case errors.Is(err, errUnanswered):
			// Abandoned after its bound: made again at once.
			wait = cacheRetryFirst
		case h.unreachable(err):
			delay = min(2*delay, cacheRetryMax)
		case serverError(err) && serverErrors < cacheRetryServerErrors:
			// A 500 or 504 may last (a failing conversion webhook): retried a few
			// times, then left to the reflector's backoff.
			serverErrors++
			delay = min(2*delay, cacheRetryMax)
		default:
			return err
		}
		h.called(what, err)
		cacheLog.V(1).Info("Retrying a list or watch of the cache", "type", typeOf(what), "in", wait.String(), "err", err.Error())
		// ±20%, so that the informers do not all call at once.
		if !h.wait(ctx, time.Duration(float64(wait)*(0.8+0.4*rand.Float64()))) {
			return ctx.Err()
		}
	}
}

func (h *cacheHealth) wait(ctx context.Context, d time.Duration) bool {
	if h.sleep != nil {
		return h.sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// startingGrace is how long after the API server was last out of reach a 404, 401 or
// 403 of a list or watch still counts as the server starting: a restarted API server
// serves custom resources only once its CRD informers have synced, and authorizes only
// once its RBAC caches have, and answers those meanwhile.
const startingGrace = time.Minute

// unreachable is the package's unreachable, and a 404, 401 or 403 within startingGrace of
// an unreachable server.
func (h *cacheHealth) unreachable(err error) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if unreachable(err) {
		h.lastUnreachable = h.clock.Now()
		return true
	}
	starting := !h.lastUnreachable.IsZero() && h.clock.Since(h.lastUnreachable) < startingGrace
	return starting && (apierrors.IsNotFound(err) || apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err))
}

// unreachable says whether err means that the API server could not be reached or is
// not ready yet: a connection refused, reset or cut short, a network timeout, a 503.
// 429 is not: the server asks for a delay, and retry waits the Retry-After it gives.
func unreachable(err error) bool {
	var ne net.Error
	return utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) ||
		(errors.As(err, &ne) && ne.Timeout()) || apierrors.IsServiceUnavailable(err)
}

// cacheRetryServerErrors is how many 500s and 504s one call retries before it leaves
// them to the reflector.
const cacheRetryServerErrors = 10

// serverError is a 500 (etcd unavailable while the API server starts) or a 504.
func serverError(err error) bool {
	return apierrors.IsInternalError(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err)
}

// observedWatch passes a watch's events through, reporting what the stream says about
// the informer: an event delivered, an error event, the end of the stream. With a
// relist, it answers a "too old resource version" error event by listing again and
// watching on (see relister), at most relistsPerWatch times.
type observedWatch struct {
	mu    sync.Mutex
	inner watch.Interface
	out   chan watch.Event
	done  chan struct{}
	once  sync.Once
	// cancel ends the watch's context, and a relist inside it.
	cancel context.CancelFunc
}

// relistsPerWatch bounds the lists one watch makes for the error events it answers;
// past it the error goes to the reflector.
const relistsPerWatch = 3

func (h *cacheHealth) observe(what string, w watch.Interface) watch.Interface {
	return h.observeWith(what, w, func() {}, nil, nil, nil)
}

// observeWith is observe, with first (a relist's events) handed to the reflector
// before the stream's own, and relist answering "too old resource version"; rl tells
// when the informer's store has a relist's events. cancel ends the watch's context.
func (h *cacheHealth) observeWith(what string, w watch.Interface, cancel context.CancelFunc, first []watch.Event,
	relist func() ([]watch.Event, watch.Interface, error), rl *relister) watch.Interface {
	o := &observedWatch{inner: w, out: make(chan watch.Event), done: make(chan struct{}), cancel: cancel}
	// A stream that stays quiet without an error has nothing to catch up with.
	quiet := h.clock.Now()
	if first == nil {
		h.opened(what, quiet)
	}
	go func() {
		defer close(o.out)
		send := func(ev watch.Event) bool {
			select {
			case o.out <- ev:
				return true
			case <-o.done:
				return false
			}
		}
		// caughtUp hands the reflector a relist's events, the informer still down, and
		// brings it back once its store holds them.
		caughtUp := func(evs []watch.Event) bool {
			for _, ev := range evs {
				if !send(ev) {
					return false
				}
			}
			if rl != nil && rl.stored(o.done, evs, cacheCatchUp) {
				h.caughtUpNow(what)
			} else {
				quiet = h.clock.Now()
				h.opened(what, quiet)
			}
			return true
		}
		relists := 0
		if first != nil {
			relists++
			if !caughtUp(first) {
				return
			}
		}
		for {
			cur := o.current()
			select {
			case <-o.done:
				return
			case ev, ok := <-cur.ResultChan():
				if !ok {
					select {
					case <-o.done: // the reflector stopped it
					default:
						h.streamEnded(what)
					}
					return
				}
				if ev.Type != watch.Error {
					h.delivered(what, quiet)
					if !send(ev) {
						return
					}
					continue
				}
				err := apierrors.FromObject(ev.Object)
				h.failed(what, err)
				if relist != nil && expired(err) && relists < relistsPerWatch {
					relists++
					cur.Stop()
					evs, next, rerr := relist()
					if rerr == nil {
						if !o.swap(next) {
							return
						}
						if !caughtUp(evs) {
							return
						}
						continue
					}
				}
				send(ev)
				return
			}
		}
	}()
	return o
}

func (o *observedWatch) current() watch.Interface {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.inner
}

// swap makes next the watch passed through; false, with next stopped, when the
// reflector has stopped this one meanwhile.
func (o *observedWatch) swap(next watch.Interface) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	select {
	case <-o.done:
		next.Stop()
		return false
	default:
	}
	o.inner = next
	return true
}

func (o *observedWatch) Stop() {
	o.once.Do(func() { close(o.done) })
	o.cancel()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.inner.Stop()
}

func (o *observedWatch) ResultChan() <-chan watch.Event { return o.out }

// called records the outcome of a list call, or a failed watch call, of an informer. A
// call whose resource version expired leaves the informer as it was: its reflector lists
// again, and that list decides. A call canceled because the manager stops is no failure.
func (h *cacheHealth) called(what string, err error) {
	if err == nil {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.back(what, h.clock.Now())
		return
	}
	if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) || apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
		return
	}
	h.failed(what, err)
}

// failed puts an informer's type down: a call failed, or its watch stream sent an
// error; its reflector lists or watches again only after a backoff.
func (h *cacheHealth) failed(what string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.down[what]; !ok {
		h.down[what] = h.clock.Now()
		cacheLog.Info("An informer of the cache cannot list or watch; every action waits until it is back", "type", typeOf(what), "err", err.Error())
	}
	delete(h.ended, what)
	delete(h.caughtUp, what)
	h.lastErr = err.Error()
}

// streamEnded records a watch stream that ended without an error. The reflector watches again
// at once, unless it backs off: a type whose stream ended more than watchRestart ago and
// has not watched again counts as down.
func (h *cacheHealth) streamEnded(what string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.ended[what]; !ok {
		h.ended[what] = h.clock.Now()
	}
}

// back brings a type that was down back, catching up until cacheCatchUp after start, and
// forgets a stream that ended. It is called with mu held.
func (h *cacheHealth) back(what string, start time.Time) {
	endedAt, ended := h.ended[what]
	delete(h.ended, what)
	since, ok := h.down[what]
	if ok || (ended && start.Sub(endedAt) > watchRestart) {
		delete(h.down, what)
		h.caughtUp[what] = start.Add(cacheCatchUp)
		if !ok {
			since = endedAt
		}
		cacheLog.Info("An informer of the cache is back; actions wait until it has caught up", "type", typeOf(what),
			"downFor", start.Sub(since).Round(time.Millisecond).String())
	}
}

// caughtUpNow brings a type that was down back with nothing left to catch up: its
// store holds what a relist found.
func (h *cacheHealth) caughtUpNow(what string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.back(what, h.clock.Now())
	delete(h.caughtUp, what)
}

// opened records a watch stream that opened at start: a type that was down is back,
// catching up until the stream delivers an event or cacheCatchUp has passed quietly.
func (h *cacheHealth) opened(what string, start time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.back(what, start)
}

// delivered records an event of a stream opened at start: the type has caught up.
func (h *cacheHealth) delivered(what string, start time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t, ok := h.caughtUp[what]; ok && t.Equal(start.Add(cacheCatchUp)) {
		delete(h.caughtUp, what)
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
	note := func(what string, t time.Time) {
		down = append(down, typeOf(what))
		if since.IsZero() || t.Before(since) {
			since = t
		}
	}
	for what, t := range h.down {
		note(what, t)
	}
	for what, t := range h.ended {
		if now.Sub(t) > watchRestart {
			note(what, t)
		}
	}
	var caughtUpAt time.Time // when the last type that is catching up will have caught up
	for what, t := range h.caughtUp {
		if now.Before(t) {
			catching = append(catching, typeOf(what))
			if t.After(caughtUpAt) {
				caughtUpAt = t
			}
		} else {
			delete(h.caughtUp, what)
		}
	}
	recheck := now.Add(staleCacheRecheck)
	switch {
	case len(down) > 0:
		slices.Sort(down)
		down = slices.Compact(down)
		last := ""
		if h.lastErr != "" {
			last = " (last error: " + text.Truncate(h.lastErr, 256) + ")"
		}
		return fmt.Sprintf("The manager's watches of %s have been down since %s%s, so its view of the cluster may be stale; the informers retry every second.",
			strings.Join(down, ", "), since.UTC().Format(time.RFC3339), last), recheck
	case len(catching) > 0:
		slices.Sort(catching)
		catching = slices.Compact(catching)
		return fmt.Sprintf("The manager's watches of %s are back and catching up with what they missed.", strings.Join(catching, ", ")), caughtUpAt
	}
	return "", time.Time{}
}
