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

// Decision reasons.
const (
	ReasonNoSymptoms      = "NoActiveSymptoms"
	ReasonHealed          = "Healed"
	ReasonSymptomActive   = "SymptomActive"
	ReasonEscalating      = "Escalating"
	ReasonWaiting         = "WaitingForRecovery"
	ReasonVerifying       = "VerifyingRecovery"
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

// Remediate decides the next move of a remediation ladder. An episode opens when any
// symptom in `when` is active and giveUp allows it; step 1 acts; while the symptoms stay
// active, each step waits for its timeout and then the next step acts; when the last
// step's timeout runs out the ladder is exhausted and a person is needed.
//
// A recovery counts only if it holds: when the symptoms clear, the episode stays open
// until they have stayed clear for the verification window (remediate.verifyFor, by
// default the step's timeout); then it closes as Healed and the step's action is
// Verified. A symptom that comes back inside the window continues the same episode: the
// step's timeout still runs from when it acted, and at its end the ladder escalates and
// the step's action is Ineffective.
//
//	symptom  ▁▁██████▁▁▁▁█████████████▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁
//	step        1 acts   |        step 2 acts         |
//	            └ verify ┘ came back └ timeout ─ step 1 Ineffective
//	                                    └ verify ─────┴ Healed, step 2 Verified
func Remediate(in RemediationInput) Decision {
	spec := in.Policy.Remediate
	st := *in.State.DeepCopy()
	st.Name = in.Policy.Name
	// A guard's hold is decided again by whoever acts on this decision.
	st.HeldUntil = nil
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
		st.VerifyingSince = nil
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
			d.Event = &Event{Warning: true, Reason: ReasonGaveUp, Message: fmt.Sprintf("Policy %s: %s", st.Name, st.Message)}
			return d.with(GiveUp, st, until)
		}
		t := metav1.NewTime(now)
		st.Step, st.EpisodeStart, st.StepStart = 1, &t, nil
		if spec.GiveUp != nil {
			st.RecentEpisodes = append(st.RecentEpisodes, t)
		}
		d.NewEpisode = true
		return d.act(spec, st, ReasonSymptomActive)
	}

	if len(triggers) == 0 {
		return d.verify(spec, st, now)
	}
	st.VerifyingSince = nil

	if st.StepStart == nil {
		// The step has not acted yet (a guard held it, or the episode just resumed).
		return d.act(spec, st, ReasonSymptomActive)
	}
	deadline := st.StepStart.Add(stepTimeout(spec, st.Step))
	if now.Before(deadline) {
		st.State, st.Reason = v1alpha1.PolicyWaiting, ReasonWaiting
		st.Message = fmt.Sprintf("Step %d of %d (%s) acted at %s; waiting until %s for %s to clear before escalating.",
			st.Step, len(spec.Steps), ActionName(spec.Steps[st.Step-1].Action), stamp(st.StepStart.Time), stamp(deadline), strings.Join(triggers, ", "))
		return d.with(Wait, st, deadline)
	}
	if st.State == v1alpha1.PolicyGaveUp && st.Reason == ReasonLadderExhausted {
		// Already exhausted, and its last step already judged: nothing new to say.
		return d.with(Exhausted, st, time.Time{})
	}
	d.Outcomes = append(d.Outcomes, Outcome{Policy: st.Name, Step: st.Step, Since: st.StepStart.Time, Outcome: v1alpha1.OutcomeIneffective,
		Message: fmt.Sprintf("%s %s still active when step %d's timeout ended at %s.", strings.Join(triggers, ", "), isAre(triggers), st.Step, stamp(deadline))})
	if int(st.Step) >= len(spec.Steps) {
		st.State, st.Reason = v1alpha1.PolicyGaveUp, ReasonLadderExhausted
		st.Message = fmt.Sprintf("All %d steps ran and %s is still active: a person is needed. The policy acts again when the symptoms clear and return.",
			len(spec.Steps), strings.Join(triggers, ", "))
		d.Event = &Event{Warning: true, Reason: ReasonLadderExhausted, Message: fmt.Sprintf("Policy %s: %s", st.Name, st.Message)}
		return d.with(Exhausted, st, time.Time{})
	}
	st.Step++
	st.StepStart = nil
	return d.act(spec, st, ReasonEscalating)
}

// verify decides an open episode whose symptoms are all clear: the first pass starts the
// verification window, the passes inside it wait, and the first pass after it closes the
// episode and judges the step's action Verified. A step that never acted (a guard held
// it) has nothing to judge; its episode closes after the same window, so a flickering
// symptom cannot open one episode per flicker.
func (d Decision) verify(spec *v1alpha1.RemediatePolicy, st v1alpha1.PolicyStatus, now time.Time) Decision {
	if st.VerifyingSince == nil || st.VerifyingSince.After(now) {
		t := metav1.NewTime(now)
		st.VerifyingSince = &t
	}
	window := verifyWindow(spec, st.Step)
	until := st.VerifyingSince.Add(window)
	what := "it acted"
	if st.StepStart == nil {
		what = "before it acted"
	}
	if now.Before(until) {
		st.State, st.Reason = v1alpha1.PolicyWaiting, ReasonVerifying
		st.Message = fmt.Sprintf("%s cleared at %s, at step %d of %d (%s) %s; the episode closes as healed if %s clear until %s.",
			strings.Join(spec.When, ", "), stamp(st.VerifyingSince.Time), st.Step, len(spec.Steps), ActionName(spec.Steps[st.Step-1].Action), what,
			itThey(spec.When), stamp(until))
		return d.with(Wait, st, until)
	}
	step := st.Step
	if st.StepStart != nil {
		d.Outcomes = append(d.Outcomes, Outcome{Policy: st.Name, Step: step, Since: st.StepStart.Time, Outcome: v1alpha1.OutcomeVerified,
			Message: fmt.Sprintf("%s cleared after step %d and stayed clear for %s.", strings.Join(spec.When, ", "), step, window)})
	}
	st.Step, st.EpisodeStart, st.StepStart, st.VerifyingSince = 0, nil, nil, nil
	st.State, st.Reason = v1alpha1.PolicyIdle, ReasonHealed
	st.Message = fmt.Sprintf("Healed: %s cleared at step %d of %d and stayed clear for %s.", strings.Join(spec.When, ", "), step, len(spec.Steps), window)
	d.Event = &Event{Reason: ReasonHealed, Message: fmt.Sprintf("Policy %s: %s", st.Name, st.Message)}
	return d.with(Healed, st, time.Time{})
}

func (d Decision) with(k Kind, st v1alpha1.PolicyStatus, next time.Time) Decision {
	d.Kind, d.Status, d.NextCheck = k, st, next
	return d
}

func (d Decision) act(spec *v1alpha1.RemediatePolicy, st v1alpha1.PolicyStatus, reason string) Decision {
	step := spec.Steps[st.Step-1]
	st.State, st.Reason = v1alpha1.PolicyActing, reason
	subject, verb := strings.Join(d.Triggers, ", "), isAre(d.Triggers)
	if reason == ReasonEscalating {
		st.Message = fmt.Sprintf("%s %s still active after step %d timed out: escalating to step %d of %d, %s.",
			subject, verb, st.Step-1, st.Step, len(spec.Steps), Describe(step.Action))
	} else {
		st.Message = fmt.Sprintf("%s %s active: step %d of %d, %s.", subject, verb, st.Step, len(spec.Steps), Describe(step.Action))
	}
	d.Intent = &Intent{
		Action: step.Action, Step: st.Step, Reason: st.Message, Acted: st,
		HeldPrefix:   fmt.Sprintf("Step %d (%s) is held:", st.Step, ActionName(step.Action)),
		RecheckAfter: stepTimeout(spec, st.Step),
	}
	return d.with(Act, st, time.Time{})
}

// verifyWindow is how long the symptoms must stay clear after step acted.
func verifyWindow(spec *v1alpha1.RemediatePolicy, step int32) time.Duration {
	if spec.VerifyFor != nil && spec.VerifyFor.Duration >= 0 {
		return spec.VerifyFor.Duration
	}
	return stepTimeout(spec, max(step, 1))
}

func itThey(items []string) string {
	if len(items) > 1 {
		return "they stay"
	}
	return "it stays"
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

// Move is what an open remediation episode does next by the passing of time alone, if
// what Homeostat observes stays as it is.
type Move struct {
	// Step is the ladder step that acts then; 0 when none does (the episode closes, or
	// the ladder is exhausted).
	Step int32
	// Action names the step's action.
	Action string
	// At is when; zero when only a change of what is observed (or a guard that lifts
	// on such a change) can move the ladder.
	At time.Time
	// What says it in a clause, for example "escalate to step 2 (rollback) if
	// CrashLooping is still active".
	What string
}

// NextMove is the next move of a remediation policy in state st: escalating at the
// current step's timeout, closing the episode as healed at the end of the verification
// window, or, for a step a guard holds, acting when the guard lifts. The zero Move means
// no episode is open (or the policy gave up): only a symptom can start one.
func NextMove(spec *v1alpha1.RemediatePolicy, st v1alpha1.PolicyStatus) Move {
	if spec == nil || st.Step < 1 || int(st.Step) > len(spec.Steps) || st.State == v1alpha1.PolicyGaveUp {
		return Move{}
	}
	symptoms := strings.Join(spec.When, ", ")
	switch {
	case st.VerifyingSince != nil:
		return Move{At: st.VerifyingSince.Add(verifyWindow(spec, st.Step)),
			What: fmt.Sprintf("close the episode as healed if %s %s clear", symptoms, stayStays(spec.When))}
	case st.StepStart == nil:
		m := Move{Step: st.Step, Action: ActionName(spec.Steps[st.Step-1].Action)}
		m.What = fmt.Sprintf("step %d (%s) acts once no guard holds it", m.Step, m.Action)
		if st.HeldUntil != nil {
			m.At = st.HeldUntil.Time
		}
		return m
	}
	at := st.StepStart.Add(stepTimeout(spec, st.Step))
	if int(st.Step) == len(spec.Steps) {
		return Move{At: at, What: fmt.Sprintf("give up, the ladder exhausted, if %s %s still active: a person is needed", symptoms, isAre(spec.When))}
	}
	next := st.Step + 1
	action := ActionName(spec.Steps[next-1].Action)
	return Move{Step: next, Action: action, At: at,
		What: fmt.Sprintf("escalate to step %d (%s) if %s %s still active", next, action, symptoms, isAre(spec.When))}
}

func stayStays(items []string) string {
	if len(items) > 1 {
		return "stay"
	}
	return "stays"
}
