package controllers

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func TestStormBreakerEngagesReleasesAndCountsUnseenAppsAsHealthy(t *testing.T) {
	ctx := context.Background()
	cached := 10
	b := newStormBreaker(0.5, 3, func(context.Context) int { return cached }, nil)
	key := func(i int) types.NamespacedName {
		return types.NamespacedName{Namespace: "ns", Name: string(rune('a' + i))}
	}

	// Just after a start only three broken apps have been seen, of ten.
	for i := range 3 {
		if b.observe(ctx, key(i), false) {
			t.Fatalf("engaged after %d broken apps of %d managed", i+1, cached)
		}
	}
	for i := 3; i < 6; i++ {
		b.observe(ctx, key(i), false)
	}
	if !b.engaged() {
		t.Fatal("six of ten unhealthy must engage the breaker")
	}
	if len(b.flips) != 1 {
		t.Fatalf("engaging must queue one flip, got %d", len(b.flips))
	}
	b.observe(ctx, key(0), true)
	b.observe(ctx, key(1), true)
	if b.engaged() {
		t.Fatal("four of ten unhealthy must release the breaker")
	}
	if len(b.flips) != 2 {
		t.Fatalf("releasing must queue a flip, got %d", len(b.flips))
	}
	b.forget(ctx, key(2))
	if b.engaged() {
		t.Fatal("still released")
	}
}
