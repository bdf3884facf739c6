package controllers

import (
	"context"
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"github.com/homeostat-dev/homeostat/internal/plan"
)

// The rule itself is plan.Storm's, with its table test; these prove the bookkeeping: the
// counts by namespace follow each app's latest health, forgotten apps leave them, unseen
// apps are counted from the cache only to hold a storm back, and a flip is queued on each
// change of state.

func TestStormBreakerEngagesReleasesAndCountsUnseenAppsAsHealthy(t *testing.T) {
	ctx := context.Background()
	// Ten apps in each of two namespaces, a and b.
	managed := map[string]int{"a": 10, "b": 10}
	b := newStormBreaker(0.5, 3, 2, func(context.Context) map[string]int { return managed }, nil)
	key := func(ns string, i int) types.NamespacedName {
		return types.NamespacedName{Namespace: ns, Name: fmt.Sprintf("app%d", i)}
	}

	// Just after a start only three broken apps of each namespace have been seen.
	for i := range 3 {
		for _, ns := range []string{"a", "b"} {
			if b.observe(ctx, key(ns, i), judgedAs(false)) {
				t.Fatalf("engaged after %d broken apps of 10 in namespace %s", i+1, ns)
			}
		}
	}
	for i := 3; i < 6; i++ {
		b.observe(ctx, key("a", i), judgedAs(false))
		b.observe(ctx, key("b", i), judgedAs(false))
	}
	if !b.engaged() {
		t.Fatal("six of ten unhealthy in two namespaces of two must engage the breaker")
	}
	if len(b.flips) != 1 {
		t.Fatalf("engaging must queue one flip, got %d", len(b.flips))
	}
	if v := b.state(ctx); v.Stormy != 2 || v.Namespaces != 2 || v.Unhealthy != 12 || v.Total != 20 {
		t.Fatalf("state = %+v, want 2 of 2 namespaces, 12 of 20 apps", v)
	}
	// Fixed twice: 4 of 10 in namespace a is no storm there, and one namespace of two is
	// not more than half.
	b.observe(ctx, key("a", 0), judgedAs(true))
	b.observe(ctx, key("a", 1), judgedAs(true))
	if b.engaged() {
		t.Fatal("namespace a at four of ten unhealthy must release the breaker")
	}
	if len(b.flips) != 2 {
		t.Fatalf("releasing must queue a flip, got %d", len(b.flips))
	}
	if v := b.state(ctx); v != (plan.StormVerdict{}) {
		t.Fatalf("state while released = %+v, want zero", v)
	}
	b.forget(ctx, key("b", 2))
	if b.engaged() {
		t.Fatal("still released")
	}
}

func TestStormBreakerCountsNeitherUnjudgedAppsNorOneNamespace(t *testing.T) {
	ctx := context.Background()
	b := newStormBreaker(0.5, 3, 2, nil, nil)
	key := func(ns string, i int) types.NamespacedName {
		return types.NamespacedName{Namespace: ns, Name: fmt.Sprintf("app%d", i)}
	}
	// A healthy app in each of three namespaces.
	for _, ns := range []string{"a", "b", "c"} {
		b.observe(ctx, key(ns, 0), judgedAs(true))
	}
	// Six ghost apps in namespace ghosts: their workloads do not exist.
	for i := range 6 {
		if b.observe(ctx, key("ghosts", i), notJudged) {
			t.Fatalf("engaged on %d ghost apps", i+1)
		}
	}
	// The same namespace's apps judged unhealthy are still one namespace.
	for i := range 6 {
		if b.observe(ctx, key("ghosts", i), judgedAs(false)) {
			t.Fatalf("engaged on %d broken apps of one namespace", i+1)
		}
	}
	// An app judged before and not judged now leaves the counts.
	for i := range 6 {
		b.observe(ctx, key("ghosts", i), notJudged)
	}
	if got := b.namespaces["ghosts"]; got == nil || got.Unhealthy != 0 || got.Unjudged != 6 {
		t.Fatalf("counts of namespace ghosts = %+v, want 6 unjudged", got)
	}
	// 1,000 healthy apps in namespace dummies do not hide a storm across a, b and c.
	for i := range 1000 {
		b.observe(ctx, key("dummies", i), judgedAs(true))
	}
	for _, ns := range []string{"a", "b", "c"} {
		b.observe(ctx, key(ns, 1), judgedAs(false))
		b.observe(ctx, key(ns, 2), judgedAs(false))
	}
	if !b.engaged() {
		t.Fatalf("a storm in three namespaces of four must engage the breaker: %+v", b.verdict(ctx))
	}
	for i := range 6 {
		b.forget(ctx, key("ghosts", i))
	}
	if _, ok := b.namespaces["ghosts"]; ok {
		t.Fatal("a namespace whose apps are all forgotten must leave the counts")
	}
}
