package controllers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
)

// outageAPI serves an informer's list and watch calls: each fails with a refused
// connection, as when the API server is down, while refusals is positive.
type outageAPI struct {
	mu        sync.Mutex
	refusals  int
	lists     int
	watchers  []*watch.FakeWatcher
	newWatch  chan struct{}
	callCount int
}

var errConnRefused = &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}

func (a *outageAPI) refuse() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.callCount++
	if a.refusals > 0 {
		a.refusals--
		return true
	}
	return false
}

func (a *outageAPI) lw() *toolscache.ListWatch {
	return &toolscache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
			if a.refuse() {
				return nil, errConnRefused
			}
			a.mu.Lock()
			a.lists++
			a.mu.Unlock()
			return &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: "1"},
				Items: []corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", ResourceVersion: "1"}}}}, nil
		},
		WatchFuncWithContext: func(_ context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			if a.refuse() {
				return nil, errConnRefused
			}
			if opts.SendInitialEvents != nil && *opts.SendInitialEvents {
				// A server without streaming lists: the reflector lists instead.
				return nil, apierrors.NewBadRequest("sendInitialEvents is not supported")
			}
			w := watch.NewFake()
			a.mu.Lock()
			a.watchers = append(a.watchers, w)
			a.mu.Unlock()
			a.newWatch <- struct{}{}
			return w, nil
		},
	}
}

// TestInformerRetriesWithinTheBoundWhileTheAPIServerIsDown runs a client-go informer
// through the cache's list and watch wrapper while the API server refuses connections:
// first its initial list, then a watch that broke. Every refused call is retried inside
// the wrapper after at most cacheRetryMax (plus jitter), so the reflector never sees the
// error and never starts its own backoff of up to a minute.
func TestInformerRetriesWithinTheBoundWhileTheAPIServerIsDown(t *testing.T) {
	var mu sync.Mutex
	var delays []time.Duration
	h := newCacheHealth(clock.RealClock{})
	h.sleep = func(ctx context.Context, d time.Duration) bool {
		mu.Lock()
		delays = append(delays, d)
		mu.Unlock()
		return ctx.Err() == nil
	}
	api := &outageAPI{refusals: 12, newWatch: make(chan struct{}, 10)}
	inf := h.newInformer(api.lw(), &corev1.Pod{}, 0, toolscache.Indexers{})
	var handlerErrs []error
	if err := inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *toolscache.Reflector, err error) {
		mu.Lock()
		handlerErrs = append(handlerErrs, err)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go inf.RunWithContext(ctx)

	select {
	case <-api.newWatch:
	case <-time.After(30 * time.Second):
		t.Fatal("the informer never listed and watched after 12 refused calls")
	}
	eventually(t, "the informer watches but has not synced", inf.HasSynced)
	checkDelays := func(phase string, want int) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if len(delays) != want {
			t.Errorf("%s: %d waits between retries, want one per refused call (%d)", phase, len(delays), want)
		}
		for i, d := range delays {
			if d > cacheRetryMax*12/10 {
				t.Errorf("%s: retry %d waited %s, more than the bound %s and its jitter", phase, i+1, d, cacheRetryMax)
			}
		}
		if n := len(delays); n >= 6 && delays[n-1] < cacheRetryMax*8/10 {
			t.Errorf("%s: after %d refusals the wait is %s, not backed off to about %s", phase, n, delays[n-1], cacheRetryMax)
		}
		if len(handlerErrs) > 0 {
			t.Errorf("%s: the reflector saw %d errors (%v); it would back off for them", phase, len(handlerErrs), handlerErrs)
		}
		delays = nil
	}
	checkDelays("initial list", 12)
	if reason, _ := h.stale(); reason == "" {
		t.Error("right after the list came back the cache is not reported catching up")
	}

	// The watch breaks (the API server went away) and every new watch is refused for a while.
	api.mu.Lock()
	api.refusals = 8
	w := api.watchers[0]
	api.mu.Unlock()
	w.Error(&apierrors.NewServiceUnavailable("shutting down").ErrStatus)
	w.Stop()
	select {
	case <-api.newWatch:
	case <-time.After(30 * time.Second):
		t.Fatal("the informer never watched again after 8 refused calls")
	}
	// A 503 in the stream makes the reflector list again at once; the refusals that follow
	// are retried by the wrapper.
	checkDelays("watch", 8)
}

func TestUnreachableErrors(t *testing.T) {
	gr := schema.GroupResource{Resource: "pods"}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{errConnRefused, true},
		{fmt.Errorf("Get \"https://127.0.0.1:6443/api/v1/pods\": %w", errConnRefused), true},
		{&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{io.ErrUnexpectedEOF, true},
		{apierrors.NewServiceUnavailable("starting"), true},
		{&net.DNSError{Err: "timeout", Name: "api", IsTimeout: true}, true},
		// Server errors are retried a few times, but do not mean the server is away.
		{apierrors.NewInternalError(errors.New("etcdserver: leader changed")), false},
		{apierrors.NewTimeoutError("slow", 1), false},
		{apierrors.NewTooManyRequests("slow down", 1), false},
		{apierrors.NewForbidden(gr, "", errors.New("no")), false},
		{apierrors.NewNotFound(gr, "x"), false},
		{apierrors.NewResourceExpired("too old resource version"), false},
		{context.Canceled, false},
		{errors.New("something else"), false},
	} {
		if got := unreachable(c.err); got != c.want {
			t.Errorf("unreachable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// A restarted API server answers 404 for custom resources until it serves them again,
// and 403 until its RBAC caches have synced: right after the server was out of reach
// those are retried like a refused connection, and otherwise returned at once.
func TestNotFoundIsRetriedOnlyWhileTheAPIServerIsStarting(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC))
	h := newCacheHealth(clk)
	h.sleep = func(ctx context.Context, _ time.Duration) bool { return ctx.Err() == nil }
	gr := schema.GroupResource{Group: "autonomic.homeostat.dev", Resource: "autonomicapps"}
	calls := 0
	errs := []error{errConnRefused, apierrors.NewNotFound(gr, ""), apierrors.NewForbidden(gr, "", errors.New("RBAC starting"))}
	err := h.retry(t.Context(), "*v1alpha1.AutonomicApp#1", func() error {
		calls++
		if calls <= len(errs) {
			return errs[calls-1]
		}
		return nil
	})
	if err != nil || calls != 4 {
		t.Fatalf("after a refused connection, a 404 and a 403: %d calls, %v; want 4 calls and success", calls, err)
	}
	clk.Step(startingGrace + time.Second)
	calls = 0
	err = h.retry(t.Context(), "*v1alpha1.AutonomicApp#1", func() error {
		calls++
		return apierrors.NewNotFound(gr, "")
	})
	if !apierrors.IsNotFound(err) || calls != 1 {
		t.Fatalf("long after the server was out of reach a 404 was retried (%d calls, %v); it means the CRD is not installed", calls, err)
	}
}

// With --watch-namespaces the cache has an informer per type and namespace: one that is
// back does not make the type fresh while another is still down.
func TestEachInformerOfATypeIsDownOnItsOwn(t *testing.T) {
	h := newCacheHealth(clock.RealClock{})
	down, up := &fakeAPI{down: true}, &fakeAPI{}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go h.newInformer(down.lw(), &corev1.Pod{}, 0, toolscache.Indexers{}).RunWithContext(ctx)
	eventually(t, "the refused informer never tried", func() bool { r, _ := h.stale(); return r != "" })
	upInf := h.newInformer(up.lw(), &corev1.Pod{}, 0, toolscache.Indexers{})
	go upInf.RunWithContext(ctx)
	eventually(t, "the other informer never synced", upInf.HasSynced)
	time.Sleep(cacheCatchUp + 100*time.Millisecond)
	if reason, _ := h.stale(); !strings.Contains(reason, "watches of *v1.Pod have been down") {
		t.Fatalf("one of two pod informers is still down, yet the cache says: %q", reason)
	}
}

// A restarted API server answers 429 "storage is (re)initializing", Retry-After 1, to the
// watches of a type until its watch cache is filled: the call waits what the server
// asks, and is not handed to the reflector, whose backoff would grow past it.
func TestTooManyRequestsIsRetriedAfterWhatTheServerAsks(t *testing.T) {
	h := newCacheHealth(clock.RealClock{})
	var waits []time.Duration
	h.sleep = func(ctx context.Context, d time.Duration) bool { waits = append(waits, d); return ctx.Err() == nil }
	calls := 0
	err := h.retry(t.Context(), "*v1alpha1.AutonomicApp#1", func() error {
		calls++
		if calls <= 3 {
			return apierrors.NewTooManyRequests("storage is (re)initializing", 1)
		}
		return nil
	})
	if err != nil || calls != 4 {
		t.Fatalf("%d calls, %v; want 3 retries and success", calls, err)
	}
	for _, w := range waits {
		if w < 800*time.Millisecond || w > 1200*time.Millisecond {
			t.Errorf("waited %s after a 429 with Retry-After 1s; want about a second", w)
		}
	}
}

// A 500 or 504 is retried a few times and then left to the reflector, and a "too large
// resource version" (a 504 too) or an expired one at once: the reflector lists again
// from another version, which retrying the same call never would.
func TestServerErrorsAreRetriedBoundedAndVersionErrorsNot(t *testing.T) {
	h := newCacheHealth(clock.RealClock{})
	h.sleep = func(ctx context.Context, _ time.Duration) bool { return ctx.Err() == nil }
	gr := schema.GroupResource{Resource: "pods"}
	tooLarge := apierrors.NewTimeoutError("Too large resource version", 1)
	tooLarge.ErrStatus.Details = &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: metav1.CauseTypeResourceVersionTooLarge}}}
	for _, c := range []struct {
		name  string
		err   error
		calls int
	}{
		{"a lasting 500", apierrors.NewInternalError(errors.New("conversion webhook failed")), 1 + cacheRetryServerErrors},
		{"a lasting 504", apierrors.NewServerTimeout(gr, "list", 1), 1 + cacheRetryServerErrors},
		{"too large resource version", tooLarge, 1},
		{"expired", apierrors.NewResourceExpired("too old resource version"), 1},
	} {
		calls := 0
		err := h.retry(t.Context(), "*v1.Pod#1", func() error { calls++; return c.err })
		if err == nil || calls != c.calls {
			t.Errorf("%s: %d calls, %v; want %d calls and the error", c.name, calls, err, c.calls)
		}
	}
	if !h.lastUnreachable.IsZero() {
		t.Error("a server error counted as the API server being out of reach")
	}
}
