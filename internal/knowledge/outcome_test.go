package knowledge

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func TestJudge(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	rec := func(id, policy string, step int32, at time.Duration, result v1alpha1.ActionResult, outcome v1alpha1.ActionOutcome) v1alpha1.ActionRecord {
		return v1alpha1.ActionRecord{ID: id, Policy: policy, Step: step, Time: metav1.NewTime(t0.Add(at)), Result: result, Outcome: outcome}
	}
	st := &v1alpha1.AutonomicAppStatus{History: []v1alpha1.ActionRecord{
		rec("later-step", "heal", 2, 3*time.Minute, v1alpha1.ResultSucceeded, ""),
		rec("star-a", "heal", 1, time.Minute, v1alpha1.ResultSucceeded, ""),
		rec("star-b", "heal", 1, time.Minute, v1alpha1.ResultSucceeded, ""),
		rec("running", "heal", 1, time.Minute, v1alpha1.ResultPending, ""),
		rec("failed", "heal", 1, time.Minute, v1alpha1.ResultFailed, v1alpha1.OutcomeUnknown),
		rec("other-policy", "scale", 0, time.Minute, v1alpha1.ResultSucceeded, ""),
		rec("old-episode", "heal", 1, 0, v1alpha1.ResultSucceeded, ""),
		rec("judged", "heal", 1, time.Minute, v1alpha1.ResultSucceeded, v1alpha1.OutcomeVerified),
	}}
	st.LastAction = &v1alpha1.ActionRecord{ID: "star-a"}
	got := Judge(st, "heal", 1, t0.Add(time.Minute), v1alpha1.OutcomeIneffective, t0.Add(5*time.Minute))
	var ids []string
	for _, r := range got {
		ids = append(ids, r.ID)
	}
	want := []string{"star-a", "star-b", "running"}
	if len(ids) != len(want) {
		t.Fatalf("judged %v, want %v: the step's records since the step acted that took effect or still run", ids, want)
	}
	for i := range want {
		if ids[i] != want[i] {
			t.Fatalf("judged %v, want %v", ids, want)
		}
	}
	if st.LastAction.Outcome != v1alpha1.OutcomeIneffective {
		t.Errorf("status.lastAction must stay a copy of its record: %+v", st.LastAction)
	}
	for _, r := range st.History {
		switch r.ID {
		case "judged":
			if r.Outcome != v1alpha1.OutcomeVerified {
				t.Errorf("an outcome is never judged twice: %+v", r)
			}
		case "failed":
			if r.Outcome != v1alpha1.OutcomeUnknown {
				t.Errorf("a failed record stays Unknown: %+v", r)
			}
		case "later-step", "other-policy", "old-episode":
			if r.Outcome != "" {
				t.Errorf("%s judged: %+v", r.ID, r)
			}
		}
	}
	// Complete keeps the verdict of a record judged while it ran.
	Complete(st, "running", v1alpha1.ResultSucceeded, "done", t0.Add(6*time.Minute))
	if r := Find(st, "running"); r.Outcome != v1alpha1.OutcomeIneffective {
		t.Errorf("a record judged while it ran keeps its verdict: %+v", r)
	}
	// A record that changed nothing is Unknown at once.
	Record(st, rec("skipped", "heal", 1, 7*time.Minute, v1alpha1.ResultSkipped, ""))
	if r := Find(st, "skipped"); r.Outcome != v1alpha1.OutcomeUnknown || r.OutcomeAt == nil {
		t.Errorf("a Skipped record must be Unknown at once: %+v", r)
	}
}

func TestUnjudged(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	st := &v1alpha1.AutonomicAppStatus{History: []v1alpha1.ActionRecord{
		{ID: "c", Policy: "fo", Time: metav1.NewTime(t0.Add(2 * time.Minute)), Result: v1alpha1.ResultSucceeded},
		{ID: "b", Policy: "fo", Time: metav1.NewTime(t0.Add(time.Minute)), Result: v1alpha1.ResultFailed, Outcome: v1alpha1.OutcomeUnknown},
		{ID: "a", Policy: "fo", Time: metav1.NewTime(t0), Result: v1alpha1.ResultSucceeded},
		{ID: "z", Policy: "fo", Time: metav1.NewTime(t0.Add(-time.Hour)), Result: v1alpha1.ResultSucceeded, Outcome: v1alpha1.OutcomeVerified},
	}}
	oldest, newest := Unjudged(st, "fo")
	if !oldest.Equal(t0) || !newest.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("Unjudged = %s, %s", oldest, newest)
	}
	if r := LastUnjudged(st, "fo"); r == nil || r.ID != "c" {
		t.Errorf("LastUnjudged = %+v, want c", r)
	}
	if o, n := Unjudged(st, "none"); !o.IsZero() || !n.IsZero() || LastUnjudged(st, "none") != nil {
		t.Error("a policy without records has nothing to judge")
	}
}
