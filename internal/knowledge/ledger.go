package knowledge

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/text"
)

// HistoryLimit is how many action records status keeps.
const HistoryLimit = 50

// NewID returns a unique action id: the policy name, the time in base 36 and random
// bytes, at most 64 characters.
func NewID(policy string, now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	suffix := fmt.Sprintf("-%s-%s", strconv.FormatInt(now.UnixMilli(), 36), hex.EncodeToString(b[:]))
	if max := 64 - len(suffix); len(policy) > max {
		policy = policy[:max]
	}
	return policy + suffix
}

// Record prepends an action record to the history and keeps it bounded. Pending records
// are never dropped: they are intents whose outcome the operator still owes.
func Record(st *v1alpha1.AutonomicAppStatus, rec v1alpha1.ActionRecord) {
	if rec.Result != v1alpha1.ResultSucceeded && rec.Result != v1alpha1.ResultPending && rec.Outcome == "" {
		// Recorded as done with nothing changed (DryRun, a failure to prepare): nothing
		// to verify.
		rec.Outcome, rec.OutcomeAt = v1alpha1.OutcomeUnknown, &rec.Time
	}
	st.History = append([]v1alpha1.ActionRecord{rec}, st.History...)
	for i := len(st.History) - 1; len(st.History) > HistoryLimit && i >= 0; i-- {
		if st.History[i].Result != v1alpha1.ResultPending {
			st.History = append(st.History[:i], st.History[i+1:]...)
		}
	}
	r := rec
	st.LastAction = &r
}

// Find returns the record with the id, or nil.
func Find(st *v1alpha1.AutonomicAppStatus, id string) *v1alpha1.ActionRecord {
	for i := range st.History {
		if st.History[i].ID == id {
			return &st.History[i]
		}
	}
	return nil
}

// Pending returns the intents whose effect has not been recorded, oldest first.
func Pending(st *v1alpha1.AutonomicAppStatus) []v1alpha1.ActionRecord {
	var out []v1alpha1.ActionRecord
	for i := len(st.History) - 1; i >= 0; i-- {
		if st.History[i].Result == v1alpha1.ResultPending {
			out = append(out, st.History[i])
		}
	}
	return out
}

// Complete records the result of an intent.
func Complete(st *v1alpha1.AutonomicAppStatus, id string, result v1alpha1.ActionResult, message string, now time.Time) {
	rec := Find(st, id)
	if rec == nil {
		return
	}
	t := metav1.NewTime(now)
	rec.Result, rec.Message, rec.FinishedAt = result, text.Truncate(message, 1024), &t
	if result != v1alpha1.ResultSucceeded && result != v1alpha1.ResultPending && rec.Outcome == "" {
		// Nothing changed, so there is nothing to verify.
		rec.Outcome, rec.OutcomeAt = v1alpha1.OutcomeUnknown, &t
	}
	syncLast(st, rec)
}

// Progress records what an effector reported about an intent it has not finished: the
// record stays Pending and keeps no finish time. An unchanged message changes nothing.
func Progress(st *v1alpha1.AutonomicAppStatus, id, message string) {
	rec := Find(st, id)
	if rec == nil || rec.Result != v1alpha1.ResultPending {
		return
	}
	rec.Message = text.Truncate(message, 1024)
	syncLast(st, rec)
}

// ActionTimes returns the times of the recorded actions, for the rate-limit guard.
// Dry-run records count too, so DryRun shows what Active would do.
func ActionTimes(st *v1alpha1.AutonomicAppStatus) []time.Time {
	out := make([]time.Time, 0, len(st.History))
	for _, r := range st.History {
		out = append(out, r.Time.Time)
	}
	return out
}

// LastActionAt is when the app last acted, or zero.
func LastActionAt(st *v1alpha1.AutonomicAppStatus) time.Time {
	var last time.Time
	for _, r := range st.History {
		if r.Time.After(last) {
			last = r.Time.Time
		}
	}
	return last
}

// LastOf returns the newest record of the policy, or nil.
func LastOf(st *v1alpha1.AutonomicAppStatus, policy string) *v1alpha1.ActionRecord {
	for i := range st.History {
		if st.History[i].Policy == policy {
			return &st.History[i]
		}
	}
	return nil
}

// WithPolicy is the list of policy statuses with st in place of the status of the same
// name, or added at the end: later policies of a pass see what earlier ones decided.
func WithPolicy(list []v1alpha1.PolicyStatus, st v1alpha1.PolicyStatus) []v1alpha1.PolicyStatus {
	for i := range list {
		if list[i].Name == st.Name {
			list[i] = st
			return list
		}
	}
	return append(list, st)
}
