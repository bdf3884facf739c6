package plan

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// DefaultStepTimeout is a ladder step's timeout when the step sets none.
const DefaultStepTimeout = time.Minute

// Kind of a remediation decision.
type Kind string

const (
	// Idle: no symptom of the policy is active and no episode is open.
	Idle Kind = "Idle"
	// Healed: the symptoms cleared, the open episode closes.
	Healed Kind = "Healed"
	// Act: run the action of Step now, unless a guard holds it.
	Act Kind = "Act"
	// Wait: the current step acted; its timeout has not run out.
	Wait Kind = "Wait"
	// Exhausted: every step ran and the symptoms are still active.
	Exhausted Kind = "Exhausted"
	// GiveUp: giveUp.episodes episodes started within giveUp.within; no new one starts.
	GiveUp Kind = "GiveUp"
)

// Decision reasons.
const (
	ReasonNoSymptoms      = "NoActiveSymptoms"
	ReasonHealed          = "Healed"
	ReasonSymptomActive   = "SymptomActive"
	ReasonEscalating      = "Escalating"
	ReasonWaiting         = "WaitingForRecovery"
	ReasonLadderExhausted = "LadderExhausted"
	ReasonGaveUp          = v1alpha1.ReasonGaveUp
)

// RemediationInput is everything a ladder decision depends on.
type RemediationInput struct {
	// Now is the decision's time.
	Now time.Time
	// Policy is the remediation policy (its Remediate member is set).
	Policy v1alpha1.Policy
	// State is the policy's state from the ledger, as the last reconcile left it.
	State v1alpha1.PolicyStatus
	// Active is the set of symptoms that are active now.
	Active map[string]bool
}

// Decision is what a remediation policy does next.
type Decision struct {
	Kind Kind
	// Step is the 1-based step to act on (Act), or the step the episode is on.
	Step int32
	// Action is the step's action, for Act.
	Action *v1alpha1.Action
	// Triggers are the policy's active symptoms, sorted.
	Triggers []string
	// Reason is a CamelCase word; Message a sentence a person can act on.
	Reason, Message string
	// Next is the policy's state after this decision. For Act it is the state to record
	// with the intent; Acted or Held complete it.
	Next v1alpha1.PolicyStatus
	// NextCheck is when the decision should be made again even if nothing changes; zero
	// when only a change can alter it.
	NextCheck time.Time
	// NewEpisode is true when this decision opened an episode.
	NewEpisode bool
	// StepTimeout is, for Act, how long the step waits for the symptoms to clear once it
	// has acted: the ladder must be looked at again then, even if nothing changes.
	StepTimeout time.Duration
}

// Remediate decides the next move of a remediation ladder. An episode opens when any
// symptom in `when` is active and giveUp allows it; step 1 acts; while the symptoms stay
// active, each step waits for its timeout and then the next step acts; when the last
// step's timeout runs out the ladder is exhausted and a person is needed; when the
// symptoms clear, the episode closes.
func Remediate(in RemediationInput) Decision {
	spec := in.Policy.Remediate
	st := *in.State.DeepCopy()
	st.Name = in.Policy.Name
	now := in.Now

	var triggers []string
	for _, s := range spec.When {
		if in.Active[s] {
			triggers = append(triggers, s)
		}
	}
	slices.Sort(triggers)
	st.RecentEpisodes = recentEpisodes(st.RecentEpisodes, spec.GiveUp, now)
	d := Decision{Triggers: triggers}

	if st.Step == 0 {
		gaveUp, until := givenUp(st.RecentEpisodes, spec.GiveUp)
		if len(triggers) == 0 {
			if st.State == v1alpha1.PolicyIdle && st.Reason == ReasonHealed && !gaveUp {
				// Keep saying how the last episode ended until the next one opens.
				return d.with(Idle, st, time.Time{})
			}
			st.State, st.Reason = v1alpha1.PolicyIdle, ReasonNoSymptoms
			st.Message = fmt.Sprintf("None of %s is active.", strings.Join(spec.When, ", "))
			if gaveUp {
				st.Message += fmt.Sprintf(" giveUp allows no new episode before %s.", stamp(until))
				return d.with(Idle, st, until)
			}
			return d.with(Idle, st, time.Time{})
		}
		if gaveUp {
			st.State, st.Reason = v1alpha1.PolicyGaveUp, ReasonGaveUp
			st.Message = fmt.Sprintf("Gave up: %s %s active, but %d episodes started within %s (giveUp.episodes is %d); a person is needed. The policy may act again after %s.",
				strings.Join(triggers, ", "), isAre(triggers), len(st.RecentEpisodes), spec.GiveUp.Within.Duration, spec.GiveUp.Episodes, stamp(until))
			return d.with(GiveUp, st, until)
		}
		t := metav1.NewTime(now)
		st.Step, st.EpisodeStart, st.StepStart = 1, &t, nil
		if spec.GiveUp != nil {
			st.RecentEpisodes = append(st.RecentEpisodes, t)
		}
		d.NewEpisode = true
		return d.act(spec, st, ReasonSymptomActive, now)
	}

	if len(triggers) == 0 {
		step := st.Step
		st.Step, st.EpisodeStart, st.StepStart = 0, nil, nil
		st.State, st.Reason = v1alpha1.PolicyIdle, ReasonHealed
		st.Message = fmt.Sprintf("Healed: %s cleared at step %d of %d.", strings.Join(spec.When, ", "), step, len(spec.Steps))
		d.Step = step
		return d.with(Healed, st, time.Time{})
	}

	if st.StepStart == nil {
		// The step has not acted yet (a guard held it, or the episode just resumed).
		return d.act(spec, st, ReasonSymptomActive, now)
	}
	deadline := st.StepStart.Add(stepTimeout(spec, st.Step))
	if now.Before(deadline) {
		st.State, st.Reason = v1alpha1.PolicyWaiting, ReasonWaiting
		st.Message = fmt.Sprintf("Step %d of %d (%s) acted at %s; waiting until %s for %s to clear before escalating.",
			st.Step, len(spec.Steps), ActionName(spec.Steps[st.Step-1].Action), stamp(st.StepStart.Time), stamp(deadline), strings.Join(triggers, ", "))
		d.Step = st.Step
		return d.with(Wait, st, deadline)
	}
	if int(st.Step) >= len(spec.Steps) {
		st.State, st.Reason = v1alpha1.PolicyGaveUp, ReasonLadderExhausted
		st.Message = fmt.Sprintf("All %d steps ran and %s is still active: a person is needed. The policy acts again when the symptoms clear and return.",
			len(spec.Steps), strings.Join(triggers, ", "))
		d.Step = st.Step
		return d.with(Exhausted, st, time.Time{})
	}
	st.Step++
	st.StepStart = nil
	return d.act(spec, st, ReasonEscalating, now)
}

func (d Decision) with(k Kind, st v1alpha1.PolicyStatus, next time.Time) Decision {
	d.Kind, d.Next, d.NextCheck = k, st, next
	d.Reason, d.Message = st.Reason, st.Message
	if d.Step == 0 {
		d.Step = st.Step
	}
	return d
}

func (d Decision) act(spec *v1alpha1.RemediatePolicy, st v1alpha1.PolicyStatus, reason string, now time.Time) Decision {
	step := spec.Steps[st.Step-1]
	st.State, st.Reason = v1alpha1.PolicyActing, reason
	subject, verb := strings.Join(d.Triggers, ", "), isAre(d.Triggers)
	if reason == ReasonEscalating {
		st.Message = fmt.Sprintf("%s %s still active after step %d timed out: escalating to step %d of %d, %s.",
			subject, verb, st.Step-1, st.Step, len(spec.Steps), Describe(step.Action))
	} else {
		st.Message = fmt.Sprintf("%s %s active: step %d of %d, %s.", subject, verb, st.Step, len(spec.Steps), Describe(step.Action))
	}
	a := step.Action
	d.Action = &a
	d.Step = st.Step
	d.StepTimeout = stepTimeout(spec, st.Step)
	return d.with(Act, st, time.Time{})
}

// StepDeadline is when an Act decision recorded at now must be looked at again: the end
// of its step's timeout, when the ladder escalates if the symptoms are still active.
func StepDeadline(d Decision, now time.Time) time.Time {
	if d.Kind != Act {
		return time.Time{}
	}
	return now.Add(d.StepTimeout)
}

// Acted completes an Act decision whose intent was recorded at now with id.
func Acted(d Decision, id string, now time.Time) v1alpha1.PolicyStatus {
	st := *d.Next.DeepCopy()
	t := metav1.NewTime(now)
	st.StepStart, st.LastAction = &t, id
	return st
}

// Held completes an Act decision that a guard held: the step stays, unacted, and the
// policy says why.
func Held(d Decision, v Verdict) v1alpha1.PolicyStatus {
	st := *d.Next.DeepCopy()
	st.State, st.Reason = v1alpha1.PolicyHeld, v.Reason
	st.Message = fmt.Sprintf("Step %d (%s) is held: %s", d.Step, ActionName(*d.Action), v.Message)
	return st
}

func stepTimeout(spec *v1alpha1.RemediatePolicy, step int32) time.Duration {
	if t := spec.Steps[step-1].Timeout; t != nil && t.Duration > 0 {
		return t.Duration
	}
	return DefaultStepTimeout
}

// recentEpisodes keeps the episode starts that still count for giveUp.
func recentEpisodes(starts []metav1.Time, g *v1alpha1.GiveUp, now time.Time) []metav1.Time {
	if g == nil {
		return nil
	}
	var out []metav1.Time
	for _, t := range starts {
		if now.Sub(t.Time) < g.Within.Duration {
			out = append(out, t)
		}
	}
	return out
}

// givenUp is true when giveUp.episodes episodes started within the window; until is
// when the oldest of them leaves it.
func givenUp(starts []metav1.Time, g *v1alpha1.GiveUp) (bool, time.Time) {
	if g == nil || len(starts) < int(g.Episodes) {
		return false, time.Time{}
	}
	oldest := starts[0].Time
	for _, t := range starts {
		if t.Before(&metav1.Time{Time: oldest}) {
			oldest = t.Time
		}
	}
	return true, oldest.Add(g.Within.Duration)
}

// ActionName is the name of the action's set member, for example "restartPods".
func ActionName(a v1alpha1.Action) string {
	if k := a.Kind(); k != "" {
		return k
	}
	return "unknown"
}

// ActionComponent is the component an action names, or "" for actions without one.
func ActionComponent(a v1alpha1.Action) string { return a.Component() }

// Describe says what an action does, for messages: "restartPods on web".
func Describe(a v1alpha1.Action) string {
	if c := ActionComponent(a); c != "" {
		return ActionName(a) + " on " + c
	}
	if a.Failover != nil {
		return "failover of " + a.Failover.Policy
	}
	return ActionName(a)
}

func isAre(items []string) string {
	if len(items) > 1 {
		return "are"
	}
	return "is"
}
