package controllers

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// TestAStepThatActedRequeuesAtItsTimeout proves that a ladder escalates when its step's
// timeout ends even if nothing watched changes: a notify step changes no workload, so
// without a requeue at the step's deadline the escalation would wait for an unrelated
// event (with a real kubelet's crash-loop back-off, minutes).
func TestAStepThatActedRequeuesAtItsTimeout(t *testing.T) {
	ctx := context.Background()
	const stepTimeout = 45 * time.Second
	objs := unreadyWeb("web:1",
		v1alpha1.RemediationStep{Action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "web is unready"}}, Timeout: &metav1.Duration{Duration: stepTimeout}},
		v1alpha1.RemediationStep{Action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "web is still unready"}}})
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))
	c, r := newFakeReconciler(t, clk, objs...)
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "shop", Name: "shop"}}

	res, err := r.Reconcile(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	a := &v1alpha1.AutonomicApp{}
	if err := c.Get(ctx, req.NamespacedName, a); err != nil {
		t.Fatal(err)
	}
	if p := policyNamed(a, "heal"); p.Step != 1 || p.StepStart == nil {
		t.Fatalf("step 1 did not act: policy %+v, history %+v", p, a.Status.History)
	}
	if res.RequeueAfter != stepTimeout {
		t.Fatalf("RequeueAfter = %s after step 1 acted, want its timeout %s", res.RequeueAfter, stepTimeout)
	}

	// At the deadline the requeued reconcile escalates to step 2.
	clk.Step(stepTimeout)
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, req.NamespacedName, a); err != nil {
		t.Fatal(err)
	}
	if p := policyNamed(a, "heal"); p.Step != 2 || p.StepStart == nil {
		t.Fatalf("the ladder did not escalate at the step's timeout: policy %+v", p)
	}
}
