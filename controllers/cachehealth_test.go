package controllers

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestCacheHealthHoldsUntilEveryFailedWatchHasListedAgain(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	h := newCacheHealth(clk)
	if msg, _ := h.stale(); msg != "" {
		t.Fatalf("a new cache is stale: %s", msg)
	}
	podsRV, appsRV := "100", "100"
	refused := errors.New(`Get "https://127.0.0.1:6443/api/v1/pods": dial tcp 127.0.0.1:6443: connect: connection refused`)
	h.failed("pods", "*v1.Pod", func() string { return podsRV }, refused)
	h.failed("apps", "*v1alpha1.AutonomicApp", func() string { return appsRV }, refused)

	msg, recheck := h.stale()
	if !strings.Contains(msg, "*v1.Pod, *v1alpha1.AutonomicApp") || !strings.Contains(msg, "connection refused") {
		t.Fatalf("stale() = %q", msg)
	}
	if want := clk.Now().Add(staleCacheRecheck); !recheck.Equal(want) {
		t.Fatalf("recheck at %s, want %s", recheck, want)
	}

	appsRV = "180" // the apps' reflector listed again
	if msg, _ := h.stale(); !strings.Contains(msg, "*v1.Pod") || strings.Contains(msg, "AutonomicApp") {
		t.Fatalf("after the apps re-listed: %q", msg)
	}
	clk.SetTime(clk.Now().Add(30 * time.Second))
	h.failed("pods", "*v1.Pod", func() string { return podsRV }, refused) // the pods' retry failed again
	clk.SetTime(clk.Now().Add(reflectorRetryBound - time.Second))
	if msg, _ := h.stale(); msg == "" {
		t.Fatal("the pods' watch failed again less than the retry bound ago: still stale")
	}
	clk.SetTime(clk.Now().Add(time.Second))
	if msg, _ := h.stale(); msg != "" {
		t.Fatalf("past the retry bound after the last failure, every reflector has listed again: %q", msg)
	}
}

func TestCacheHealthIgnoresWatchesThatEndNormally(t *testing.T) {
	h := newCacheHealth(clocktesting.NewFakePassiveClock(time.Now()))
	rv := func() string { return "1" }
	for _, err := range []error{
		io.EOF,
		context.Canceled,
		apierrors.NewResourceExpired("too old resource version"),
		apierrors.NewGone("gone"),
	} {
		h.failed(err, "*v1.Pod", rv, err)
		if msg, _ := h.stale(); msg != "" {
			t.Errorf("%v made the cache stale: %s", err, msg)
		}
	}
	var nilHealth *cacheHealth
	if msg, _ := nilHealth.stale(); msg != "" {
		t.Fatal("no tracker, no guard")
	}
}
