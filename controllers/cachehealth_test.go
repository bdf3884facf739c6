package controllers

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"
)

// fakeAPI serves the list and watch calls of informers: refused while down, else a list
// and a fake watch the test drives.
type fakeAPI struct {
	down    bool
	watches []*watch.FakeWatcher
}

var errRefused = errors.New(`dial tcp 127.0.0.1:6443: connect: connection refused`)

func (a *fakeAPI) lw() *toolscache.ListWatch {
	return &toolscache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
			if a.down {
				return nil, errRefused
			}
			return &metav1.List{}, nil
		},
		WatchFuncWithContext: func(_ context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			if a.down {
				return nil, errRefused
			}
			if opts.SendInitialEvents != nil && *opts.SendInitialEvents {
				return nil, apierrors.NewBadRequest("sendInitialEvents is not supported") // the reflector lists instead
			}
			w := watch.NewFake()
			a.watches = append(a.watches, w)
			return w, nil
		},
	}
}

// eventually waits for the stream goroutine of an observed watch.
func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for range 200 {
		if ok() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal(what)
}

func TestCacheHealthHoldsWhileAWatchIsDownAndUntilItHasCaughtUp(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	h := newCacheHealth(clk)
	api := &fakeAPI{}
	pods := toolscache.ToListerWatcherWithContext(h.watching(api.lw(), "*v1.Pod"))
	apps := toolscache.ToListerWatcherWithContext(h.watching(api.lw(), "*v1alpha1.AutonomicApp"))
	ctx := context.Background()
	stale := func() string { msg, _ := h.stale(); return msg }

	w, err := pods.WatchWithContext(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if msg := stale(); msg != "" {
		t.Fatalf("a watch that works made the cache stale: %s", msg)
	}

	// The API server stops: the stream ends, and the reflector's next call is refused.
	api.watches[0].Stop()
	eventually(t, "the end of the stream is seen", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		_, ended := h.ended["*v1.Pod"]
		return ended
	})
	if msg := stale(); msg != "" {
		t.Fatalf("a stream that just ended normally made the cache stale: %s", msg)
	}
	api.down = true
	_, _ = pods.WatchWithContext(ctx, metav1.ListOptions{})
	_, _ = apps.ListWithContext(ctx, metav1.ListOptions{})
	msg, recheck := h.stale()
	if !strings.Contains(msg, "*v1.Pod, *v1alpha1.AutonomicApp have been down since 2026-11-25T10:00:00Z") || !strings.Contains(msg, "connection refused") {
		t.Fatalf("stale() = %q", msg)
	}
	if want := clk.Now().Add(staleCacheRecheck); !recheck.Equal(want) {
		t.Fatalf("recheck at %s, want %s", recheck, want)
	}
	w.Stop()

	// Back: the apps list again, the pods' watch resumes and the restarted API server ends
	// it at once with "too old resource version", so the pods are down until they list.
	api.down = false
	clk.SetTime(clk.Now().Add(40 * time.Second))
	_, _ = apps.ListWithContext(ctx, metav1.ListOptions{})
	w, _ = pods.WatchWithContext(ctx, metav1.ListOptions{})
	if msg := stale(); !strings.Contains(msg, "*v1.Pod are back and catching up") && !strings.Contains(msg, "AutonomicApp are back") {
		t.Fatalf("right after the calls succeeded: %q", msg)
	}
	api.watches[1].Error(&apierrors.NewResourceExpired("too old resource version: 100 (200)").ErrStatus)
	<-w.ResultChan()
	eventually(t, "the error event is seen", func() bool { return strings.Contains(stale(), "*v1.Pod have been down") })
	w.Stop()
	clk.SetTime(clk.Now().Add(cacheCatchUp))
	if msg := stale(); !strings.Contains(msg, "*v1.Pod have been down") || strings.Contains(msg, "AutonomicApp") {
		t.Fatalf("the apps caught up, the pods must list again: %q", msg)
	}
	clk.SetTime(clk.Now().Add(30 * time.Second))
	_, _ = pods.ListWithContext(ctx, metav1.ListOptions{})
	w, _ = pods.WatchWithContext(ctx, metav1.ListOptions{})
	if msg := stale(); !strings.Contains(msg, "*v1.Pod are back and catching up") {
		t.Fatalf("after the pods listed again: %q", msg)
	}
	api.watches[2].Add(&metav1.PartialObjectMetadata{})
	<-w.ResultChan()
	eventually(t, "an event means caught up", func() bool { return stale() == "" })

	// A stream the reflector stops itself is no failure.
	w.Stop()
	clk.SetTime(clk.Now().Add(time.Minute))
	if msg := stale(); msg != "" {
		t.Fatalf("a watch the reflector stopped made the cache stale: %s", msg)
	}
}

func TestCacheHealthIgnoresCallsThatEndNormally(t *testing.T) {
	h := newCacheHealth(clocktesting.NewFakePassiveClock(time.Now()))
	for _, err := range []error{
		io.EOF,
		context.Canceled,
		apierrors.NewResourceExpired("too old resource version"),
	} {
		h.called("*v1.Pod", err)
		if msg, _ := h.stale(); msg != "" {
			t.Errorf("%v made the cache stale: %s", err, msg)
		}
	}
	var none *cacheHealth
	if msg, _ := none.stale(); msg != "" {
		t.Fatal("no tracker, no guard")
	}
}
