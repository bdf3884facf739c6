package plan

import (
	"fmt"
	"strings"
	"time"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// FailoverVerifyWindow is how long a failover's changes must leave the policy steady,
// with its primary healthy, for them to count as a fix.
const FailoverVerifyWindow = time.Minute

// ReasonCandidateNotJudged: a candidate is a child app that has not reported its health.
const ReasonCandidateNotJudged = "CandidateNotJudged"

// FailoverRecordView is the policy's newest own change record, as the decision reads it.
type FailoverRecordView struct {
	Phase     FailoverPhase
	Component string
	Result    v1alpha1.ActionResult
	At        time.Time
	ID        string
	Message   string
}

// FailoverPolicyInput is everything a failover policy's decision depends on.
type FailoverPolicyInput struct {
	// Name is the policy's name.
	Name string
	// Previous is the policy's status as the last pass left it.
	Previous v1alpha1.PolicyStatus
	// NotJudged names a candidate's child app that has not reported its health yet; the
	// election waits for it.
	NotJudged string
	// Election is the election's input.
	Election FailoverInput
	// LastRecord is the policy's newest own change record (any result); nil when none.
	LastRecord *FailoverRecordView
	// Latest is the app's newest action when it belongs to this policy's failover and
	// took effect; nil otherwise (see ContinuesFailover).
	Latest *FailoverChange
	// Unjudged is when the oldest and newest of the policy's changes that took effect and
	// have no outcome yet were recorded; zero when there are none.
	UnjudgedOldest, UnjudgedNewest time.Time
}

// DecideFailover decides a failover policy: it elects the primary (Elect) and intends
// the next change towards it. A change the policy's last record already made is not
// made again at once: a failed one is retried after FailoverRetryDelay, one that took
// effect is left for FailoverSettleDelay while the cache catches up, and one recorded
// in DryRun is recorded once. Its changes are judged once the policy has been steady
// with a healthy primary for FailoverVerifyWindow after the last of them (Verified), or
// when traffic has to move again: Ineffective when the primary they elected failed,
// Unknown when a better candidate came back.
func DecideFailover(in FailoverPolicyInput) Decision {
	now := in.Election.Now
	var d Decision
	if in.NotJudged != "" {
		// A child app that has not been reconciled has no health yet: electing now could
		// move traffic away from a primary that is fine.
		st := *in.Previous.DeepCopy()
		st.HeldUntil = nil
		st.Name, st.State, st.Reason = in.Name, v1alpha1.PolicyWaiting, ReasonCandidateNotJudged
		st.Message = fmt.Sprintf("Child app %s has not reported its health yet; the election waits for it.", in.NotJudged)
		return d.with(Hold, st, time.Time{})
	}
	e := Elect(in.Election)
	st := v1alpha1.PolicyStatus{Name: in.Name, State: e.State, Reason: e.Reason, Message: e.Message,
		Primary: e.Primary, LastAction: in.Previous.LastAction}
	d = d.with(Hold, st, e.NextCheck)
	d.Event = failoverEvent(in.Name, st)
	d.Outcomes, d.NextCheck = judgeFailover(in, e, d.NextCheck)
	switch e.Phase {
	case PhaseScaleUpStandby, PhaseMoveTraffic, PhaseScaleDownOldPrimary, PhaseScaleDownStandby:
	default:
		if e.State == v1alpha1.PolicyIdle || e.State == v1alpha1.PolicyWaiting && e.Reason == ReasonWaitingForStandby {
			d.Kind = Idle
		}
		return d
	}
	if last := in.LastRecord; last != nil && last.Phase == e.Phase && last.Component == e.Component {
		if last.Result == v1alpha1.ResultSkipped {
			st.LastAction = last.ID
			st.Message = dryRunMessage(st.Message)
			return d.with(Idle, st, d.NextCheck)
		}
		if wait, until := RepeatFailoverChange(last.Result, last.At, now); wait {
			st.LastAction = last.ID
			d.NextCheck = earliest(d.NextCheck, until)
			if last.Result == v1alpha1.ResultFailed || last.Result == v1alpha1.ResultForbidden {
				st = retrying(st, last.Message, until)
				d.Event = failoverEvent(in.Name, st)
			}
			return d.with(Wait, st, d.NextCheck)
		}
	}
	d.Kind = Act
	d.Intent = &Intent{
		Action: v1alpha1.Action{Failover: &v1alpha1.FailoverAction{Policy: in.Name}},
		Reason: e.Message, Acted: st,
		HeldPrefix:   e.Message + " It is held:",
		SkipCooldown: ContinuesFailover(e, in.Latest),
		Change: &ChangeIntent{Phase: e.Phase, Service: in.Election.Service, Component: e.Component, From: e.From,
			Replicas: e.Replicas},
	}
	return d
}

// ChangeIntent is the change a failover policy's intent makes.
type ChangeIntent struct {
	Phase     FailoverPhase
	Service   string
	Component string
	From      string
	Replicas  int32
}

// Completed is the policy's status after its intent ended with result (the record's
// result and message, recorded at 'at'), and when to decide again because of it (zero
// for no reason of its own). It serves a change made in this pass and one an earlier run
// recorded and this one finished alike, so both read the same. An Event is returned when
// the result is one a person may want to know about.
//
// action is the record's action as the policy states it, and change, for a failover
// policy's own change, what the change does.
func Completed(st v1alpha1.PolicyStatus, rec v1alpha1.ActionRecord, action v1alpha1.Action, change *ChangeIntent, now time.Time) (v1alpha1.PolicyStatus, time.Time, *Event) {
	st = *st.DeepCopy()
	st.LastAction = rec.ID
	if rec.Result == v1alpha1.ResultCancelled && rec.Step > 0 && st.Step == rec.Step {
		// The step's action was not carried on: the step has not acted, and acts again
		// once no guard holds it.
		st.StepStart = nil
	}
	switch {
	case change == nil && action.Failover != nil:
		// A ladder's failover action demoted a primary: the named failover policy acts
		// on it, and when it ran earlier in this pass it must run again at once.
		return st, now, nil
	case change == nil:
		return st, time.Time{}, nil
	case rec.DryRun:
		st.Message = dryRunMessage(st.Message)
	case rec.Result == v1alpha1.ResultSucceeded && change.Phase == PhaseMoveTraffic:
		st.Primary = change.Component
		// No watch event follows the move: decide the next change (scaling the old
		// primary down) at once.
		return st, now, nil
	case rec.Result == v1alpha1.ResultFailed || rec.Result == v1alpha1.ResultForbidden:
		until := rec.Time.Add(FailoverRetryDelay)
		st = retrying(st, rec.Message, until)
		return st, until, failoverEvent(st.Name, st)
	}
	return st, time.Time{}, nil
}

func retrying(st v1alpha1.PolicyStatus, failure string, until time.Time) v1alpha1.PolicyStatus {
	msg := st.Message
	if i := strings.Index(msg, " The last attempt failed: "); i >= 0 {
		msg = msg[:i]
	}
	st.State, st.Reason = v1alpha1.PolicyWaiting, ReasonRetryingChange
	st.Message = fmt.Sprintf("%s The last attempt failed: %s It is tried again at %s.", msg, withPeriod(failure), stamp(until))
	return st
}

func dryRunMessage(msg string) string {
	const prefix = "DryRun, nothing is changed: "
	if strings.HasPrefix(msg, prefix) {
		return msg
	}
	return prefix + msg
}

func withPeriod(s string) string {
	if s == "" || strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}

// failoverEvent is the Event of a failover policy's state a person may want to know
// about: nothing can take traffic, the policy cannot work as written, a change keeps
// failing. Changes themselves leave the effectors' Events, and a hold its own.
func failoverEvent(name string, st v1alpha1.PolicyStatus) *Event {
	ev := &Event{Reason: st.Reason, Message: fmt.Sprintf("Policy %s: %s", name, st.Message)}
	switch st.State {
	case v1alpha1.PolicyInvalid:
		ev.Warning = true
	case v1alpha1.PolicyWaiting:
		switch st.Reason {
		case ReasonNoHealthyCandidate, ReasonServiceNotFound, ReasonRetryingChange:
			ev.Warning = true
		case ReasonWaitingForStandby:
		default:
			return nil
		}
	default:
		return nil
	}
	return ev
}

// judgeFailover judges the policy's unjudged changes: Verified once the policy is steady
// with a healthy primary for FailoverVerifyWindow after the newest of them, Ineffective
// when traffic must move again because the primary they elected failed, Unknown when it
// moves again for a better candidate. next is the decision's next check, made earlier
// when the window ends first.
func judgeFailover(in FailoverPolicyInput, e FailoverDecision, next time.Time) ([]Outcome, time.Time) {
	if in.UnjudgedNewest.IsZero() {
		return nil, next
	}
	o := Outcome{Policy: in.Name, Since: in.UnjudgedOldest}
	switch {
	case e.Phase == PhaseMoveTraffic || e.Phase == PhaseScaleUpStandby && in.Election.StatusPrimary != "":
		if e.Reason == ReasonPrimaryUnhealthy || e.Reason == ReasonPrimaryDemoted {
			o.Outcome = v1alpha1.OutcomeIneffective
			o.Message = fmt.Sprintf("Primary %s failed again, so traffic must move once more.", e.Primary)
		} else {
			o.Outcome = v1alpha1.OutcomeUnknown
			o.Message = fmt.Sprintf("Traffic moves again (%s), superseding the earlier changes.", e.Reason)
		}
		return []Outcome{o}, next
	case e.Phase != PhaseSteady || e.State != v1alpha1.PolicyIdle:
		return nil, next
	}
	end := in.UnjudgedNewest.Add(FailoverVerifyWindow)
	if in.Election.Now.Before(end) {
		return nil, earliest(next, end)
	}
	o.Outcome = v1alpha1.OutcomeVerified
	o.Message = fmt.Sprintf("Primary %s stayed healthy for %s after the last change.", e.Primary, FailoverVerifyWindow)
	return []Outcome{o}, next
}
