package controllers

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// builderIndexer registers monitor's cache indexes on a fake client builder.
type builderIndexer struct{ b *fake.ClientBuilder }

func (i builderIndexer) IndexField(_ context.Context, obj client.Object, field string, fn client.IndexerFunc) error {
	i.b.WithIndex(obj, field, fn)
	return nil
}

// errDied stands for the manager process dying: a panic no one recovers in a manager.
type errDied struct{}

// TestAStepActsOnceWhenTheManagerDiesBetweenIntentAndEffect reproduces what the SIGKILL
// benchmark (test/bench, TestBenchFaultsSIGKILL) found: a manager that died after writing
// an intent and before writing its outcome left the policy at its previous step, so the
// next manager finished the intent and then acted on the same step again, under a new id
// (a second rollout restart). The policy's step is now written with the intent.
func TestAStepActsOnceWhenTheManagerDiesBetweenIntentAndEffect(t *testing.T) {
	ctx := context.Background()
	objs := unreadyWeb("web:bad",
		v1alpha1.RemediationStep{Action: v1alpha1.Action{RolloutRestart: &v1alpha1.ComponentAction{Component: "web"}}, Timeout: &metav1.Duration{Duration: time.Hour}},
		v1alpha1.RemediationStep{Action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "web is still unready"}}})
	web := objs[1]
	var dying atomic.Bool
	died := interceptor.Funcs{Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
		if _, ok := obj.(*appsv1.Deployment); ok && dying.Load() {
			panic(errDied{}) // the effector's first write: the intent is recorded, nothing changed yet
		}
		return c.Patch(ctx, obj, p, opts...)
	}}
	c, _ := newFakeReconcilerWith(t, clock.RealClock{}, died, objs...)
	// Each call is a new process: nothing in memory, the same cluster.
	newManager := func() *AppReconciler { return reconcilerOn(c, clock.RealClock{}) }
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "shop", Name: "shop"}}
	get := appGetter(t, c, req.NamespacedName)

	dying.Store(true)
	untilDeath(func() {
		_, _ = newManager().Reconcile(ctx, req)
		t.Fatal("the manager did not reach the effector")
	})
	a := get()
	if len(a.Status.History) != 1 || a.Status.History[0].Result != v1alpha1.ResultPending {
		t.Fatalf("after the death the ledger holds %+v; want one Pending intent", a.Status.History)
	}
	intent := a.Status.History[0]
	if p := policyNamed(a, "heal"); p.Step != 1 || p.StepStart == nil || p.LastAction != intent.ID {
		t.Fatalf("the intent was written without its step: policy %+v, intent %s", p, intent.ID)
	}

	dying.Store(false)
	m := newManager() // a new process: nothing in memory
	for range 3 {
		if _, err := m.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	a = get()
	if len(a.Status.History) != 1 {
		t.Fatalf("the ledger holds %d records, want the one intent finished: %+v", len(a.Status.History), a.Status.History)
	}
	if r := a.Status.History[0]; r.ID != intent.ID || r.Result != v1alpha1.ResultSucceeded {
		t.Fatalf("record %s ended %s (%s); want %s Succeeded", r.ID, r.Result, r.Message, intent.ID)
	}
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(web), d); err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Annotations[v1alpha1.ActionIDAnnotation]; got != intent.ID {
		t.Fatalf("web's template carries action id %q, want %s", got, intent.ID)
	}
	if p := policyNamed(a, "heal"); p.Step != 1 || p.State != v1alpha1.PolicyWaiting {
		t.Fatalf("policy %+v; want step 1 waiting out its timeout", p)
	}
}

// untilDeath runs fn, which stands for a manager process, and returns when it dies
// (panics with errDied); any other panic goes on.
func untilDeath(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(errDied); !ok {
				panic(r)
			}
		}
	}()
	fn()
}

// appGetter reads the app key from c, failing the test when it cannot.
func appGetter(t *testing.T, c client.Client, key types.NamespacedName) func() *v1alpha1.AutonomicApp {
	return func() *v1alpha1.AutonomicApp {
		t.Helper()
		a := &v1alpha1.AutonomicApp{}
		if err := c.Get(context.Background(), key, a); err != nil {
			t.Fatal(err)
		}
		return a
	}
}

func policyNamed(a *v1alpha1.AutonomicApp, name string) v1alpha1.PolicyStatus {
	for _, p := range a.Status.Policies {
		if p.Name == name {
			return p
		}
	}
	return v1alpha1.PolicyStatus{}
}
