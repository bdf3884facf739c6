package controllers

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/leader"
)

type blockingReconciler struct {
	calls   int
	entered chan context.Context
	release chan struct{}
}

func (b *blockingReconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	b.calls++
	b.entered <- ctx
	<-b.release
	return reconcile.Result{}, ctx.Err()
}

// A standby reconciles nothing; a leader's reconcile runs under a context that ends
// with its term, and the gate closes only once that reconcile has returned.
func TestGatedReconcilerRunsOnlyOnTheLeader(t *testing.T) {
	g := leader.NewGate()
	inner := &blockingReconciler{entered: make(chan context.Context, 1), release: make(chan struct{})}
	r := gate(g, inner)
	if _, err := r.Reconcile(t.Context(), reconcile.Request{}); err != nil || inner.calls != 0 {
		t.Fatalf("a standby reconciled (%d calls, %v)", inner.calls, err)
	}
	g.Gain(context.Background())
	done := make(chan error, 1)
	go func() { _, err := r.Reconcile(t.Context(), reconcile.Request{}); done <- err }()
	ctx := <-inner.entered
	lost := make(chan struct{})
	go func() { g.Lose(); close(lost) }()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the reconcile's context did not end when the replica lost the Lease")
	}
	select {
	case <-lost:
		t.Fatal("the gate closed while a reconcile was still running")
	case <-time.After(50 * time.Millisecond):
	}
	close(inner.release)
	<-done
	<-lost
}

// A replica that becomes the leader asks for every app, whether it led before its
// controller started or only later.
func TestLeadershipSourceAsksForEveryAppOnEachTerm(t *testing.T) {
	scheme := runtime.NewScheme()
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		&v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "one"}},
		&v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "two"}},
	).Build()
	drain := func(q workqueue.TypedRateLimitingInterface[reconcile.Request]) map[types.NamespacedName]bool {
		got := map[types.NamespacedName]bool{}
		for q.Len() > 0 {
			r, _ := q.Get()
			got[r.NamespacedName] = true
			q.Done(r)
			q.Forget(r)
		}
		return got
	}
	for _, ledFirst := range []bool{false, true} {
		gate := leader.NewGate()
		if ledFirst {
			gate.Gain(context.Background())
		}
		q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
		src := leadershipSource{gate: gate, list: func(ctx context.Context) []reconcile.Request { return appRequests(ctx, c) }}
		if err := src.Start(t.Context(), q); err != nil {
			t.Fatal(err)
		}
		if !ledFirst && q.Len() != 0 {
			t.Fatalf("a standby asked for %d apps", q.Len())
		}
		gate.Lose()
		gate.Gain(context.Background())
		if got := drain(q); len(got) != 2 {
			t.Fatalf("led first %v: the new leader asked for %v, want both apps", ledFirst, got)
		}
		q.ShutDown()
	}
}
