package knowledge

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// Judge writes an outcome into the records of a policy's action that have none yet: the
// records of policy recorded at or after since, of step when step is above zero, whose
// result is Succeeded or still Pending (a Job still running when its step timed out was
// ineffective all the same). It returns copies of the records it changed, for their
// Events and metrics. Records that changed nothing already carry Unknown (see Complete).
func Judge(st *v1alpha1.AutonomicAppStatus, policy string, step int32, since time.Time, outcome v1alpha1.ActionOutcome, now time.Time) []v1alpha1.ActionRecord {
	var changed []v1alpha1.ActionRecord
	t := metav1.NewTime(now)
	for i := range st.History {
		rec := &st.History[i]
		took := rec.Result == v1alpha1.ResultSucceeded || rec.Result == v1alpha1.ResultPending
		if rec.Policy != policy || rec.Outcome != "" || !took || rec.Time.Time.Before(since) ||
			(step > 0 && rec.Step != step) {
			continue
		}
		rec.Outcome, rec.OutcomeAt = outcome, &t
		changed = append(changed, *rec)
		syncLast(st, rec)
	}
	return changed
}

// Unjudged returns the times of the oldest and newest records of policy that took
// effect and have no outcome yet; zero times when there are none.
func Unjudged(st *v1alpha1.AutonomicAppStatus, policy string) (oldest, newest time.Time) {
	for _, rec := range st.History {
		if rec.Policy != policy || rec.Outcome != "" || rec.Result != v1alpha1.ResultSucceeded {
			continue
		}
		if oldest.IsZero() || rec.Time.Before(&metav1.Time{Time: oldest}) {
			oldest = rec.Time.Time
		}
		if rec.Time.After(newest) {
			newest = rec.Time.Time
		}
	}
	return oldest, newest
}

// LastUnjudged returns the newest record of policy that took effect and has no outcome
// yet, or nil.
func LastUnjudged(st *v1alpha1.AutonomicAppStatus, policy string) *v1alpha1.ActionRecord {
	for i := range st.History {
		if rec := &st.History[i]; rec.Policy == policy && rec.Outcome == "" && rec.Result == v1alpha1.ResultSucceeded {
			return rec
		}
	}
	return nil
}

// syncLast keeps status.lastAction a copy of its record.
func syncLast(st *v1alpha1.AutonomicAppStatus, rec *v1alpha1.ActionRecord) {
	if st.LastAction != nil && st.LastAction.ID == rec.ID {
		r := *rec
		st.LastAction = &r
	}
}

// OutcomeEventReason is the reason of the Event a verdict on an action is announced with:
// ActionVerified, ActionIneffective or ActionOutcomeUnknown.
func OutcomeEventReason(o v1alpha1.ActionOutcome) string {
	if o == v1alpha1.OutcomeUnknown {
		return "ActionOutcomeUnknown"
	}
	return "Action" + string(o)
}

// OutcomeWord is a verdict as the Event's sentence says it: "verified", "ineffective",
// "of unknown effect".
func OutcomeWord(o v1alpha1.ActionOutcome) string {
	switch o {
	case v1alpha1.OutcomeVerified:
		return "verified"
	case v1alpha1.OutcomeIneffective:
		return "ineffective"
	}
	return "of unknown effect"
}
