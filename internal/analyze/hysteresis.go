package analyze

import (
	"errors"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/text"
)

// maxMessageLength is the API's MaxLength of status.symptoms[].message.
const maxMessageLength = 1024

// Step advances one symptom's hysteresis: a symptom becomes active once its expression
// has held for forDur, and clears once it has been false for clearFor. It returns the
// next status and when the pending change falls due (the zero time when nothing is
// pending), so the caller can requeue then.
//
//   - Inactive, holding: the `for` runs from PendingSince (set now if unset); once
//     forDur has passed, the symptom is active, Since is now and PendingSince is cleared.
//   - Inactive, not holding: PendingSince is cleared; a flap shorter than forDur
//     therefore never activates the symptom.
//   - Active, not holding: the `clearFor` runs from PendingSince; once clearFor has
//     passed, the symptom is inactive and Since is now.
//   - Active, holding: PendingSince is cleared.
//
// A zero (or negative) forDur or clearFor switches at once. An evaluation error counts
// as not holding: an expression that cannot be evaluated (usually a sensor read without
// has() while the sensor is unavailable) does not activate a symptom, and clears an
// active one after clearFor; the error is kept in Message.
//
// Times are stored at whole seconds, the precision metav1.Time keeps through the API
// server, so a status read back after a write compares as it was computed, and `for`
// and `clearFor` are honoured to within a second.
func Step(prev v1alpha1.SymptomStatus, ev Evaluation, forDur, clearFor time.Duration, now time.Time) (next v1alpha1.SymptomStatus, nextCheck time.Time) {
	now = now.Truncate(time.Second)
	holding := ev.Holding && ev.Err == nil
	next = v1alpha1.SymptomStatus{
		Name:    prev.Name,
		Active:  prev.Active,
		Since:   prev.Since,
		Holding: holding,
	}
	if ev.Err != nil {
		next.Message = text.Truncate(ev.Err.Error(), maxMessageLength)
	}
	if holding == prev.Active {
		return next, time.Time{}
	}

	wait := forDur
	if prev.Active {
		wait = clearFor
	}
	pendingSince := now
	if prev.PendingSince != nil && !prev.PendingSince.IsZero() && !prev.PendingSince.After(now) {
		pendingSince = prev.PendingSince.Truncate(time.Second)
	}
	due := pendingSince.Add(max(wait, 0))
	if !now.Before(due) {
		next.Active = holding
		next.Since = &metav1.Time{Time: now}
		return next, time.Time{}
	}
	next.PendingSince = &metav1.Time{Time: pendingSince}
	return next, due
}

// errNotEvaluated is the Err of a symptom with no evaluation, one that did not compile.
var errNotEvaluated = errors.New("the symptom was not evaluated because its expression is invalid")

// Advance steps every symptom with its evaluation and returns their next statuses, in
// the order of symptoms, and the earliest time a pending change falls due (zero when
// none is). A symptom missing from evals (it did not compile) counts as not holding.
// Statuses of symptoms no longer in symptoms are dropped.
func Advance(prev []v1alpha1.SymptomStatus, symptoms []v1alpha1.Symptom, evals map[string]Evaluation, now time.Time) ([]v1alpha1.SymptomStatus, time.Time) {
	byName := make(map[string]v1alpha1.SymptomStatus, len(prev))
	for _, s := range prev {
		byName[s.Name] = s
	}
	next := make([]v1alpha1.SymptomStatus, 0, len(symptoms))
	var earliest time.Time
	for _, s := range symptoms {
		p, ok := byName[s.Name]
		if !ok {
			p = v1alpha1.SymptomStatus{Name: s.Name}
		}
		ev, ok := evals[s.Name]
		if !ok {
			ev = Evaluation{Err: errNotEvaluated}
		}
		st, due := Step(p, ev, duration(s.For), duration(s.ClearFor), now)
		next = append(next, st)
		if !due.IsZero() && (earliest.IsZero() || due.Before(earliest)) {
			earliest = due
		}
	}
	return next, earliest
}

func duration(d *metav1.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.Duration
}
