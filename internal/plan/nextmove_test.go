package plan

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func TestNextMoveSaysWhatTheLadderDoesWhenTimePasses(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { m := metav1.NewTime(t0.Add(d)); return &m }
	spec := &v1alpha1.RemediatePolicy{
		When: []string{"CrashLooping"},
		Steps: []v1alpha1.RemediationStep{
			{Action: v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "web"}}, Timeout: &metav1.Duration{Duration: 2 * time.Minute}},
			{Action: v1alpha1.Action{Rollback: &v1alpha1.ComponentAction{Component: "web"}}, Timeout: &metav1.Duration{Duration: 5 * time.Minute}},
		},
		VerifyFor: &metav1.Duration{Duration: time.Minute},
	}
	cases := []struct {
		name string
		st   v1alpha1.PolicyStatus
		want Move
	}{
		{"no episode", v1alpha1.PolicyStatus{State: v1alpha1.PolicyIdle}, Move{}},
		{"gave up", v1alpha1.PolicyStatus{State: v1alpha1.PolicyGaveUp, Step: 2, StepStart: at(0)}, Move{}},
		{"waiting on step 1 escalates at its timeout",
			v1alpha1.PolicyStatus{State: v1alpha1.PolicyWaiting, Step: 1, StepStart: at(0)},
			Move{Step: 2, Action: "rollback", At: t0.Add(2 * time.Minute), What: "escalate to step 2 (rollback) if CrashLooping is still active"}},
		{"the last step gives up at its timeout",
			v1alpha1.PolicyStatus{State: v1alpha1.PolicyWaiting, Step: 2, StepStart: at(time.Minute)},
			Move{At: t0.Add(6 * time.Minute), What: "give up, the ladder exhausted, if CrashLooping is still active: a person is needed"}},
		{"verifying closes at the end of verifyFor",
			v1alpha1.PolicyStatus{State: v1alpha1.PolicyWaiting, Step: 1, StepStart: at(0), VerifyingSince: at(30 * time.Second)},
			Move{At: t0.Add(90 * time.Second), What: "close the episode as healed if CrashLooping stays clear"}},
		{"a held step acts when its guard lifts",
			v1alpha1.PolicyStatus{State: v1alpha1.PolicyHeld, Step: 1, HeldUntil: at(20 * time.Second)},
			Move{Step: 1, Action: "restartPods", At: t0.Add(20 * time.Second), What: "step 1 (restartPods) acts once no guard holds it"}},
		{"a step held until something changes has no time",
			v1alpha1.PolicyStatus{State: v1alpha1.PolicyHeld, Step: 2},
			Move{Step: 2, Action: "rollback", What: "step 2 (rollback) acts once no guard holds it"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := NextMove(spec, c.st); got != c.want {
				t.Errorf("NextMove = %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestHeldStatusSaysUntilWhenTheGuardHolds(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	in := &Intent{Acted: v1alpha1.PolicyStatus{Name: "p", State: v1alpha1.PolicyActing}, HeldPrefix: "Step 1 (restartPods) is held:"}
	st := HeldStatus(in, Verdict{Held: true, Reason: ReasonCooldown, Message: "Cooling down.", Until: t0})
	if st.HeldUntil == nil || !st.HeldUntil.Time.Equal(t0) || st.State != v1alpha1.PolicyHeld {
		t.Fatalf("held by a cooldown: heldUntil %v, state %s; want %s, Held", st.HeldUntil, st.State, t0)
	}
	st = HeldStatus(in, Verdict{Held: true, Reason: ReasonStorm, Message: "A storm."})
	if st.HeldUntil != nil {
		t.Fatalf("held by a storm: heldUntil %v, want unset (only a change lifts it)", st.HeldUntil)
	}
	prev := v1alpha1.PolicyStatus{Name: "p", State: v1alpha1.PolicyHeld, Step: 1, HeldUntil: &metav1.Time{Time: t0}}
	d := Remediate(RemediationInput{Now: t0.Add(time.Minute), Policy: v1alpha1.Policy{Name: "p", Remediate: &v1alpha1.RemediatePolicy{
		When: []string{"S"}, Steps: []v1alpha1.RemediationStep{{Action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "m"}}}}}},
		State: prev, Active: map[string]bool{}})
	if d.Status.HeldUntil != nil {
		t.Fatalf("a new decision keeps the old hold's end %v", d.Status.HeldUntil)
	}
}

func TestDecideAutoscaleShowsEachMetricAndTheRuleThatLimitedIt(t *testing.T) {
	found := AutoscaleTarget{Found: true, Workload: "Deployment/web"}
	pol := immediate(webScaler(1, 5, valueMetric("rps", "100"), bandMetric("latency", "0.1", "0.3"), valueMetric("queue", "10")))
	d, _ := DecideAutoscale(AutoscalePolicyInput{Name: "scale", Target: found, Recommender: AutoscaleInput{
		Now: asNow, Policy: pol, CurrentReplicas: 2,
		Metrics: []MetricInput{{Sensor: "rps", Value: 900, Available: true}, {Sensor: "latency", Value: 0.2, Available: true}, {Sensor: "queue"}},
	}})
	a := d.Status.Autoscale
	if a == nil {
		t.Fatal("no autoscale detail in the policy's status")
	}
	if a.CurrentReplicas != 2 || a.RecommendedReplicas != 18 {
		t.Errorf("current %d, recommended %d; want 2 and 18 (900/100 per replica x 2)", a.CurrentReplicas, a.RecommendedReplicas)
	}
	if len(a.LimitedBy) != 1 || a.LimitedBy[0] != v1alpha1.LimitTooManyReplicas {
		t.Errorf("limitedBy %v, want [TooManyReplicas]: maxReplicas 5 cut 18", a.LimitedBy)
	}
	want := []struct {
		state    v1alpha1.MetricState
		value    string
		replicas int32
	}{{v1alpha1.MetricActive, "900", 18}, {v1alpha1.MetricActive, "0.2", 2}, {v1alpha1.MetricUnavailable, "", -1}}
	if len(a.Metrics) != len(want) {
		t.Fatalf("%d metrics, want %d", len(a.Metrics), len(want))
	}
	for i, w := range want {
		m := a.Metrics[i]
		if m.State != w.state || m.Value != w.value || (w.replicas < 0) != (m.Replicas == nil) || (m.Replicas != nil && *m.Replicas != w.replicas) || m.Message == "" {
			t.Errorf("metric %d = %+v, want state %s value %q replicas %d and a message", i, m, w.state, w.value, w.replicas)
		}
	}

	// A scale-down held by the window names the window and when it ends.
	slow := webScaler(1, 10, valueMetric("rps", "100"))
	d, _ = DecideAutoscale(AutoscalePolicyInput{Name: "scale", Target: found, Recommender: AutoscaleInput{
		Now: asNow, Policy: slow, CurrentReplicas: 4,
		Metrics: []MetricInput{{Sensor: "rps", Value: 50, Available: true}},
		History: []Recommendation{{Time: asNow.Add(-time.Minute), Replicas: 4}},
	}})
	a = d.Status.Autoscale
	if len(a.LimitedBy) != 1 || a.LimitedBy[0] != v1alpha1.LimitScaleDownStabilized || a.LimitedUntil == nil ||
		!a.LimitedUntil.Time.Equal(asNow.Add(4*time.Minute)) {
		t.Errorf("held by the default 5m scale-down window: limitedBy %v until %v, want [ScaleDownStabilized] until %s", a.LimitedBy, a.LimitedUntil, asNow.Add(4*time.Minute))
	}
}
