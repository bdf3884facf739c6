package plan

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// Kind of a decision: what the policy does in this pass.
type Kind string

const (
	// Idle: nothing to do; for a ladder, no symptom of the policy is active and no
	// episode is open.
	Idle Kind = "Idle"
	// Healed: the symptoms stayed clear for the verification window; the open episode
	// closes.
	Healed Kind = "Healed"
	// Act: carry out the decision's Intent now, unless a guard holds it.
	Act Kind = "Act"
	// Wait: an action was taken and its effect is awaited (a ladder step's timeout, a
	// verification window, a failover's standby coming up, a retry delay).
	Wait Kind = "Wait"
	// Exhausted: every step of a ladder ran and the symptoms are still active.
	Exhausted Kind = "Exhausted"
	// GiveUp: giveUp.episodes episodes started within giveUp.within; no new one starts.
	GiveUp Kind = "GiveUp"
	// Hold: the policy holds back on its own judgement (missing data, a conflicting
	// autoscaler, a candidate not yet judged); no intent.
	Hold Kind = "Hold"
)

// Decision is what one policy does next. Every policy kind's planner returns one, and
// the controller carries every one out the same way: it shows Status, and for an Intent
// it passes the guards, records the intent with ActedStatus, writes status, executes and
// records the result. Outcomes are judgements on earlier actions to write into their
// records.
type Decision struct {
	Kind Kind
	// Status is the policy's status after this pass when no intent is carried out: the
	// decision has none, or a guard holds it (HeldStatus then says why).
	Status v1alpha1.PolicyStatus
	// Intent is the one action to take now, if any.
	Intent *Intent
	// NextCheck is when the decision must be made again even if nothing changes; zero
	// when only a change of what is observed can alter it.
	NextCheck time.Time
	// Outcomes are the verdicts this pass reached on actions taken earlier.
	Outcomes []Outcome
	// Event, when set, is emitted when the policy's state or reason differs from its
	// previous status: a person may want to know.
	Event *Event
	// Triggers are, for a ladder, its active symptoms, sorted.
	Triggers []string
	// NewEpisode is true when this decision opened a ladder's episode.
	NewEpisode bool
}

// Intent is one decided action, before the guards.
type Intent struct {
	Action v1alpha1.Action
	// Step is the 1-based ladder step, or 0 for policies without a ladder.
	Step int32
	// Reason says why, in a sentence, for the ledger.
	Reason string
	// Acted is the policy's status once the intent is recorded; ActedStatus completes it
	// with the record's id. It is written in the same status write as the intent, so a
	// manager that dies in between finds both.
	Acted v1alpha1.PolicyStatus
	// HeldPrefix starts the policy's message when a guard holds the intent; the guard's
	// message follows.
	HeldPrefix string
	// SkipCooldown is true when the app's cooldown must not hold this action: it
	// continues a change already under way (a failover's next phase).
	SkipCooldown bool
	// RecheckAfter is how long after the action the policy must be decided again even
	// if nothing changes (a ladder step's timeout); zero for at the next change.
	RecheckAfter time.Duration
	// Change is what a failover policy's change does; nil for every other intent.
	Change *ChangeIntent
}

// Outcome is the verdict on the records of one policy's action: the records of Policy
// (and of Step, for a ladder) recorded at or after Since that have no outcome yet.
type Outcome struct {
	Policy  string
	Step    int32
	Since   time.Time
	Outcome v1alpha1.ActionOutcome
	// Message says why, for the Event.
	Message string
}

// Event is a Plan-stage Event on the app.
type Event struct {
	Warning bool
	Reason  string
	Message string
}

// ActedStatus is the policy's status once the intent of d is recorded at now under id.
func ActedStatus(in *Intent, id string, now time.Time) v1alpha1.PolicyStatus {
	st := *in.Acted.DeepCopy()
	st.LastAction = id
	if in.Step > 0 {
		t := metav1.NewTime(now)
		st.StepStart = &t
	}
	return st
}

// HeldStatus is the policy's status when a guard holds the intent: the step (if any)
// stays unacted, and the message says which guard holds it and until when.
func HeldStatus(in *Intent, v Verdict) v1alpha1.PolicyStatus {
	st := *in.Acted.DeepCopy()
	st.State, st.Reason = v1alpha1.PolicyHeld, v.Reason
	st.Message = in.HeldPrefix + " " + v.Message
	st.HeldUntil = nil
	if !v.Until.IsZero() {
		t := metav1.NewTime(v.Until)
		st.HeldUntil = &t
	}
	return st
}

// HeldEvent is the Event of a policy whose intent a guard holds.
func HeldEvent(name string, st v1alpha1.PolicyStatus) *Event {
	return &Event{Reason: "Held" + st.Reason, Message: fmt.Sprintf("Policy %s: %s", name, st.Message)}
}

// TargetComponent is what target resolution reads of one component.
type TargetComponent struct {
	Name string
	// Workload is false for a child app.
	Workload bool
	// UnhealthyPods counts its pods that are not healthy.
	UnhealthyPods int
}

// Targets resolves the components an action acts on: none ("") for actions without
// one, the named component, or for "*" each workload component, narrowed for a
// restartPods of unhealthy pods to those with unhealthy pods, when there are any.
func Targets(a v1alpha1.Action, components []TargetComponent) []string {
	name := a.Component()
	if name == "" {
		return []string{""}
	}
	if name != "*" {
		return []string{name}
	}
	var all, sick []string
	for _, c := range components {
		if !c.Workload {
			continue
		}
		all = append(all, c.Name)
		if c.UnhealthyPods > 0 {
			sick = append(sick, c.Name)
		}
	}
	if a.RestartPods != nil && a.RestartPods.Pods != v1alpha1.PodsAll && len(sick) > 0 {
		return sick
	}
	return all
}
