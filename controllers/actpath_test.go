package controllers

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// TestAResumedIntentAGuardHoldsIsCancelled kills the manager between a rollout
// restart's intent and its effect, sets a guard that stops every action, and starts a
// new manager: the intent must end Cancelled with the guard's reason and nothing done to
// the workload, and the step must count as not acted, so it acts once the guard lifts.
// An intent whose effect was already complete before the death records its real result.
func TestAResumedIntentAGuardHoldsIsCancelled(t *testing.T) {
	cases := []struct {
		name string
		// effectDone lets the effector's write through and kills the manager on the
		// status write of the result instead.
		effectDone bool
		guard      func(a *v1alpha1.AutonomicApp)
		result     v1alpha1.ActionResult
		message    string
	}{
		{name: "paused by the annotation", guard: func(a *v1alpha1.AutonomicApp) {
			a.Annotations = map[string]string{v1alpha1.PausedAnnotation: "true"}
		}, result: v1alpha1.ResultCancelled, message: "carries the autonomic.homeostat.dev/paused annotation"},
		{name: "paused by mode", guard: func(a *v1alpha1.AutonomicApp) { a.Spec.Mode = v1alpha1.ModePaused },
			result: v1alpha1.ResultCancelled, message: "mode is Paused"},
		{name: "switched to DryRun", guard: func(a *v1alpha1.AutonomicApp) { a.Spec.Mode = v1alpha1.ModeDryRun },
			result: v1alpha1.ResultCancelled, message: "mode is DryRun"},
		{name: "paused after the effect took place: the real result is recorded", effectDone: true,
			guard: func(a *v1alpha1.AutonomicApp) {
				a.Annotations = map[string]string{v1alpha1.PausedAnnotation: "true"}
			}, result: v1alpha1.ResultSucceeded, message: "already restarted by this action"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			objs := unreadyWeb("web:bad",
				v1alpha1.RemediationStep{Action: v1alpha1.Action{RolloutRestart: &v1alpha1.ComponentAction{Component: "web"}}, Timeout: &metav1.Duration{Duration: time.Hour}},
				v1alpha1.RemediationStep{Action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "web is still unready"}}})
			var dying atomic.Bool
			var statusWrites, deploymentWrites atomic.Int32
			died := interceptor.Funcs{
				Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
					if _, ok := obj.(*appsv1.Deployment); ok {
						if dying.Load() && !tc.effectDone {
							panic(errDied{})
						}
						deploymentWrites.Add(1)
					}
					return c.Patch(ctx, obj, p, opts...)
				},
				SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
					if dying.Load() && tc.effectDone && statusWrites.Add(1) > 1 {
						panic(errDied{}) // the result's write: the effect took place
					}
					return c.SubResource(sub).Patch(ctx, obj, p, opts...)
				},
			}
			c, _ := newFakeReconcilerWith(t, clock.RealClock{}, died, objs...)
			req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "shop", Name: "shop"}}
			get := appGetter(t, c, req.NamespacedName)

			dying.Store(true)
			untilDeath(func() {
				_, _ = reconcilerOn(c, clock.RealClock{}).Reconcile(ctx, req)
				t.Fatal("the manager did not die")
			})
			dying.Store(false)
			a := get()
			if len(a.Status.History) != 1 || a.Status.History[0].Result != v1alpha1.ResultPending {
				t.Fatalf("after the death the ledger holds %+v; want one Pending intent", a.Status.History)
			}
			intent := a.Status.History[0]
			tc.guard(a)
			if err := c.Update(ctx, a); err != nil {
				t.Fatal(err)
			}
			writesBefore := deploymentWrites.Load()

			m := reconcilerOn(c, clock.RealClock{})
			for range 3 {
				if _, err := m.Reconcile(ctx, req); err != nil {
					t.Fatal(err)
				}
			}
			a = get()
			var r v1alpha1.ActionRecord
			for _, h := range a.Status.History {
				switch {
				case h.ID == intent.ID:
					r = h
				case h.Result != v1alpha1.ResultSkipped:
					// DryRun records what Active would do next (the step acts again); nothing else may run.
					t.Fatalf("the restarted manager recorded %+v besides the intent", h)
				}
			}
			if r.ID != intent.ID || r.Result != tc.result || !strings.Contains(r.Message, tc.message) {
				t.Fatalf("record %s ended %s (%q); want %s with %q", r.ID, r.Result, r.Message, tc.result, tc.message)
			}
			if got := deploymentWrites.Load(); got != writesBefore {
				t.Fatalf("the restarted manager wrote the Deployment %d times; a held intent changes nothing", got-writesBefore)
			}
			if r.Outcome == "" && tc.result == v1alpha1.ResultCancelled {
				t.Errorf("a cancelled record must be judged Unknown at once: %+v", r)
			}
			p := policyNamed(a, "heal")
			if tc.result == v1alpha1.ResultCancelled && a.Spec.Mode != v1alpha1.ModeDryRun && (p.Step != 1 || p.StepStart != nil || p.LastAction != intent.ID) {
				t.Errorf("after a cancel the step must stand unacted: %+v", p)
			}
		})
	}
}

// TestOutcomesAreRecordedInStatusEventsAndTheMetric drives a ladder on a fake clock: a
// rollout restart that does not fix the app is judged Ineffective when its step times
// out, the next step's action is judged Verified once the symptom stayed clear for the
// window, and a DryRun record, which changed nothing, is Unknown at once. Each verdict is
// in the record, an Event and homeostat_action_outcomes_total.
func TestOutcomesAreRecordedInStatusEventsAndTheMetric(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))
	objs := unreadyWeb("web:bad",
		v1alpha1.RemediationStep{Action: v1alpha1.Action{RolloutRestart: &v1alpha1.ComponentAction{Component: "web"}}, Timeout: &metav1.Duration{Duration: time.Minute}},
		v1alpha1.RemediationStep{Action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "web is still unready"}}, Timeout: &metav1.Duration{Duration: 2 * time.Minute}})
	c, r := newFakeReconciler(t, clk, objs...)
	rec := events.NewFakeRecorder(100)
	r.Recorder, r.Effectors.Recorder = rec, rec
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "shop", Name: "shop"}}
	get := appGetter(t, c, req.NamespacedName)
	reconcile := func() {
		t.Helper()
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	outcome := func(action, outcome string) float64 {
		return testutil.ToFloat64(r.Metrics.ActionOutcomes.WithLabelValues(action, outcome))
	}

	reconcile() // step 1 acts
	clk.Step(61 * time.Second)
	reconcile() // still unready at the timeout: step 1 Ineffective, step 2 acts
	a := get()
	restart := recordOf(t, a, "rolloutRestart")
	if restart.Outcome != v1alpha1.OutcomeIneffective || restart.OutcomeAt == nil {
		t.Fatalf("rolloutRestart record %+v; want Ineffective", restart)
	}
	if got := outcome("rolloutRestart", "Ineffective"); got != 1 {
		t.Errorf("homeostat_action_outcomes_total{rolloutRestart,Ineffective} = %v, want 1", got)
	}
	expectEvent(t, rec, "ActionIneffective", "Policy heal step 1: rolloutRestart")

	// The app recovers: no replica is wanted any more, so none is missing.
	web := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, web); err != nil {
		t.Fatal(err)
	}
	web.Spec.Replicas = ptr.To(int32(0))
	if err := c.Update(ctx, web); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Second)
	reconcile() // verifying
	if p := policyNamed(get(), "heal"); p.Reason != "VerifyingRecovery" || p.VerifyingSince == nil || p.Step != 2 {
		t.Fatalf("policy %+v; want step 2 verifying its recovery", p)
	}
	clk.Step(2 * time.Minute)
	reconcile() // the window held: step 2 Verified, the episode closes
	a = get()
	if n := recordOf(t, a, "notify"); n.Outcome != v1alpha1.OutcomeVerified {
		t.Fatalf("notify record %+v; want Verified", n)
	}
	if p := policyNamed(a, "heal"); p.Step != 0 || p.Reason != "Healed" {
		t.Fatalf("policy %+v; want the episode closed, Healed", p)
	}
	if got := outcome("notify", "Verified"); got != 1 {
		t.Errorf("homeostat_action_outcomes_total{notify,Verified} = %v, want 1", got)
	}
	expectEvent(t, rec, "ActionVerified", "Policy heal step 2: notify")

	// DryRun: the next episode's record changed nothing, so it is Unknown at once.
	a.Spec.Mode = v1alpha1.ModeDryRun
	if err := c.Update(ctx, a); err != nil {
		t.Fatal(err)
	}
	web.Spec.Replicas = ptr.To(int32(2))
	if err := c.Update(ctx, web); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Second)
	reconcile()
	a = get()
	if d := a.Status.History[0]; d.Result != v1alpha1.ResultSkipped || d.Outcome != v1alpha1.OutcomeUnknown {
		t.Fatalf("DryRun record %+v; want Skipped and Unknown", d)
	}
	if got := outcome("rolloutRestart", "Unknown"); got != 1 {
		t.Errorf("homeostat_action_outcomes_total{rolloutRestart,Unknown} = %v, want 1", got)
	}
}

func recordOf(t *testing.T, a *v1alpha1.AutonomicApp, action string) v1alpha1.ActionRecord {
	t.Helper()
	for _, r := range a.Status.History {
		if r.Action == action {
			return r
		}
	}
	t.Fatalf("no %s record in %+v", action, a.Status.History)
	return v1alpha1.ActionRecord{}
}

// expectEvent drains the recorder until an Event with the reason and text arrives.
func expectEvent(t *testing.T, rec *events.FakeRecorder, reason, text string) {
	t.Helper()
	for {
		select {
		case e := <-rec.Events:
			if strings.Contains(e, " "+reason+" ") && strings.Contains(e, text) {
				return
			}
		default:
			t.Fatalf("no %s Event mentioning %q", reason, text)
		}
	}
}

// TestEachVerdictIsInTheRecordAnEventAndTheMetric: whatever the verdict, the records it
// covers carry it, one Event names it, and homeostat_action_outcomes_total counts each
// record.
func TestEachVerdictIsInTheRecordAnEventAndTheMetric(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		outcome v1alpha1.ActionOutcome
		reason  string
		warning bool
	}{
		{v1alpha1.OutcomeVerified, "ActionVerified", false},
		{v1alpha1.OutcomeIneffective, "ActionIneffective", true},
		{v1alpha1.OutcomeUnknown, "ActionOutcomeUnknown", false},
	} {
		t.Run(string(tc.outcome), func(t *testing.T) {
			_, r := newFakeReconciler(t, clock.RealClock{})
			rec := events.NewFakeRecorder(10)
			r.Recorder = rec
			app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop"}}
			app.Status.History = []v1alpha1.ActionRecord{
				{ID: "scale-2", Policy: "scale-web", Action: "scale", Time: metav1.NewTime(now), Result: v1alpha1.ResultSucceeded},
				{ID: "scale-1", Policy: "scale-web", Action: "scale", Time: metav1.NewTime(now.Add(-time.Hour)), Result: v1alpha1.ResultSucceeded},
			}
			s := &session{r: r, app: app, now: now.Add(time.Minute)}
			r.judge(s, []plan.Outcome{{Policy: "scale-web", Since: now, Outcome: tc.outcome, Message: "Because."}})
			if got := app.Status.History[0]; got.Outcome != tc.outcome || got.OutcomeAt == nil {
				t.Errorf("record %+v, want %s", got, tc.outcome)
			}
			if got := app.Status.History[1]; got.Outcome != "" {
				t.Errorf("a record before the verdict's window was judged: %+v", got)
			}
			if got := testutil.ToFloat64(r.Metrics.ActionOutcomes.WithLabelValues("scale", string(tc.outcome))); got != 1 {
				t.Errorf("homeostat_action_outcomes_total{scale,%s} = %v, want 1", tc.outcome, got)
			}
			select {
			case e := <-rec.Events:
				if !strings.Contains(e, " "+tc.reason+" ") || strings.HasPrefix(e, "Warning") != tc.warning || !strings.Contains(e, "scale-2") {
					t.Errorf("Event %q; want %s naming the action (warning: %v)", e, tc.reason, tc.warning)
				}
			default:
				t.Errorf("no %s Event", tc.reason)
			}
		})
	}
}
