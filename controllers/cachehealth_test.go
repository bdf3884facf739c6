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

func TestCacheHealthHoldsWhileAWatchIsDownAndUntilItHasCaughtUp(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	h := newCacheHealth(clk)
	if msg, _ := h.stale(); msg != "" {
		t.Fatalf("a new cache is stale: %s", msg)
	}
	var apiDown bool
	refused := errors.New(`Get "https://127.0.0.1:6443/api/v1/pods?watch=true": dial tcp 127.0.0.1:6443: connect: connection refused`)
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
			if apiDown {
				return nil, refused
			}
			return &metav1.List{}, nil
		},
		WatchFuncWithContext: func(context.Context, metav1.ListOptions) (watch.Interface, error) {
			if apiDown {
				return nil, refused
			}
			return watch.NewFake(), nil
		},
	}
	pods := toolscache.ToListerWatcherWithContext(h.watching(lw, "*v1.Pod"))
	apps := toolscache.ToListerWatcherWithContext(h.watching(lw, "*v1alpha1.AutonomicApp"))
	ctx := context.Background()
	if _, err := pods.WatchWithContext(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if msg, _ := h.stale(); msg != "" {
		t.Fatalf("a watch that works made the cache stale: %s", msg)
	}

	apiDown = true
	_, _ = pods.WatchWithContext(ctx, metav1.ListOptions{})
	_, _ = apps.ListWithContext(ctx, metav1.ListOptions{})
	msg, recheck := h.stale()
	if !strings.Contains(msg, "*v1.Pod, *v1alpha1.AutonomicApp have failed since 2026-11-25T10:00:00Z") || !strings.Contains(msg, "connection refused") {
		t.Fatalf("stale() = %q", msg)
	}
	if want := clk.Now().Add(staleCacheRecheck); !recheck.Equal(want) {
		t.Fatalf("recheck at %s, want %s", recheck, want)
	}

	apiDown = false
	clk.SetTime(clk.Now().Add(40 * time.Second))
	_, _ = apps.ListWithContext(ctx, metav1.ListOptions{})
	if msg, _ := h.stale(); !strings.Contains(msg, "watches of *v1.Pod have failed") {
		t.Fatalf("the apps came back, the pods did not: %q", msg)
	}
	clk.SetTime(clk.Now().Add(20 * time.Second))
	_, _ = pods.WatchWithContext(ctx, metav1.ListOptions{})
	if msg, _ := h.stale(); !strings.Contains(msg, "*v1.Pod are back and catching up") {
		t.Fatalf("right after its watch came back: %q", msg)
	}
	clk.SetTime(clk.Now().Add(cacheCatchUp))
	if msg, _ := h.stale(); msg != "" {
		t.Fatalf("every watch is back and caught up: %q", msg)
	}
}

func TestCacheHealthIgnoresCallsThatEndNormally(t *testing.T) {
	h := newCacheHealth(clocktesting.NewFakePassiveClock(time.Now()))
	for _, err := range []error{
		io.EOF,
		context.Canceled,
		apierrors.NewResourceExpired("too old resource version"),
		apierrors.NewGone("gone"),
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
