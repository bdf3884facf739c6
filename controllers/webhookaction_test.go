package controllers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/egress/egresstest"
	"github.com/homeostat-dev/homeostat/internal/execute"
)

// slowReceiver is a webhook receiver on 127.0.0.1 that answers 200 after a delay and
// keeps the Idempotency-Key of each request.
type slowReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	keys []string
}

func newSlowReceiver(t *testing.T, delay time.Duration) *slowReceiver {
	s := &slowReceiver{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.keys = append(s.keys, r.Header.Get(execute.IdempotencyKeyHeader))
		s.mu.Unlock()
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *slowReceiver) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.keys...)
}

// webhookApp is unreadyWeb whose first step POSTs to url.
func webhookApp(url string) []client.Object {
	return unreadyWeb("web:bad",
		v1alpha1.RemediationStep{Action: v1alpha1.Action{Webhook: &v1alpha1.WebhookAction{URL: url, AllowInsecure: true}},
			Timeout: &metav1.Duration{Duration: time.Hour}},
		v1alpha1.RemediationStep{Action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "web is still unready"}}})
}

// webhookRecords are the app's webhook records.
func webhookRecords(a *v1alpha1.AutonomicApp) []v1alpha1.ActionRecord {
	var out []v1alpha1.ActionRecord
	for _, r := range a.Status.History {
		if r.Action == execute.KindWebhook {
			out = append(out, r)
		}
	}
	return out
}

// withRunner gives the reconciler's effectors a webhook runner that allows loopback and
// signals on woken each time it wakes the app.
func withRunner(t *testing.T, r *AppReconciler) <-chan types.NamespacedName {
	woken := make(chan types.NamespacedName, 16)
	r.Effectors.Egress = egresstest.AllowLoopback(t)
	r.Effectors.Webhooks = &execute.WebhookRunner{Notify: func(k types.NamespacedName) { woken <- k }}
	return woken
}

// TestAWebhookToASlowReceiverNeverHoldsTheReconcileAndIsRecordedOnce: the reconcile
// that acts returns at once with the record Pending; the runner wakes the app when the
// POST ends, and the next reconcile records the outcome, once, whatever reconciles follow.
func TestAWebhookToASlowReceiverNeverHoldsTheReconcileAndIsRecordedOnce(t *testing.T) {
	ctx := context.Background()
	hook := newSlowReceiver(t, time.Second)
	c, r := newFakeReconciler(t, clock.RealClock{}, webhookApp(hook.URL+"/page")...)
	woken := withRunner(t, r)
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "shop", Name: "shop"}}
	get := appGetter(t, c, req.NamespacedName)

	start := time.Now()
	res, err := r.Reconcile(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("the reconcile took %s with a receiver that answers after 1s", d)
	}
	if res.RequeueAfter <= 0 || res.RequeueAfter > 30*time.Second {
		t.Errorf("RequeueAfter = %s; want a safety net of at most 30s", res.RequeueAfter)
	}
	recs := webhookRecords(get())
	if len(recs) != 1 || recs[0].Result != v1alpha1.ResultPending || !strings.HasPrefix(recs[0].Message, "Background POST to "+hook.URL+"/page: ") {
		t.Fatalf("after the first reconcile the webhook records are %+v; want one Pending with its progress", recs)
	}
	id := recs[0].ID

	// Reconcile whenever the runner wakes the app, as the notifier makes the manager do.
	deadline := time.After(10 * time.Second)
	for webhookRecords(get())[0].Result == v1alpha1.ResultPending {
		select {
		case <-woken:
		case <-deadline:
			t.Fatal("the webhook was still Pending after 10s")
		}
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	recs = webhookRecords(get())
	if len(recs) != 1 || recs[0].ID != id || recs[0].Result != v1alpha1.ResultSucceeded ||
		recs[0].Message != "POST "+hook.URL+"/page returned 200 OK" {
		t.Fatalf("webhook records %+v; want the one record Succeeded", recs)
	}
	if got := hook.received(); len(got) != 1 || got[0] != id {
		t.Fatalf("the receiver got Idempotency-Keys %v; want one POST with %s", got, id)
	}
}

// TestAWebhookLeftPendingByADeadManagerIsSentAgainWithTheSameKey: the manager that
// started the POST is gone with its runner; the next manager sends the record again,
// with the same Idempotency-Key, so a receiver that keeps its keys sees one request.
func TestAWebhookLeftPendingByADeadManagerIsSentAgainWithTheSameKey(t *testing.T) {
	ctx := context.Background()
	hook := newSlowReceiver(t, 300*time.Millisecond)
	c, first := newFakeReconciler(t, clock.RealClock{}, webhookApp(hook.URL+"/page")...)
	withRunner(t, first)
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "shop", Name: "shop"}}
	get := appGetter(t, c, req.NamespacedName)
	if _, err := first.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	id := webhookRecords(get())[0].ID

	next := reconcilerOn(c, clock.RealClock{})
	woken := withRunner(t, next)
	deadline := time.After(10 * time.Second)
	for {
		if _, err := next.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
		if webhookRecords(get())[0].Result != v1alpha1.ResultPending {
			break
		}
		select {
		case <-woken:
		case <-deadline:
			t.Fatal("the resumed webhook was still Pending after 10s")
		}
	}
	recs := webhookRecords(get())
	if len(recs) != 1 || recs[0].ID != id || recs[0].Result != v1alpha1.ResultSucceeded ||
		!strings.Contains(recs[0].Message, "sent again after a manager restart, with the same Idempotency-Key") {
		t.Fatalf("webhook records %+v; want the one record Succeeded, saying it was sent again", recs)
	}
	for _, k := range hook.received() {
		if k != id {
			t.Fatalf("the receiver got Idempotency-Keys %v; every POST must carry %s", hook.received(), id)
		}
	}
}
