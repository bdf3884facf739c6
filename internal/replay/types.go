package replay

import (
	"encoding/json"
	"time"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// Input is what a replay reads: the app as the manager runs it, the recorded history,
// the start state and the range.
type Input struct {
	// App is the app with the shared policies that select it merged into its spec (the
	// manager's view). Its name, namespace and labels are what symptoms read as `app`.
	App *v1alpha1.AutonomicApp
	// Merged is the merge that made App's spec, for which entries came from a shared
	// policy and the enforced maxUnhealthyPods of the other kind; nil when nothing was
	// merged.
	Merged *plan.Merged
	// Frames are the recorded history, one per step time, in time order. A step time
	// without a frame, or with a frame without components, is a gap.
	Frames []Frame
	// Start holds the replicas of each autoscaled component at From (the recorded
	// desiredReplicas). A component missing here starts at its first recorded
	// desiredReplicas, or else its policy's minReplicas.
	Start map[string]int32
	// From and To bound the range, both included; Step is the time between two steps.
	From, To time.Time
	Step     time.Duration
}

// Frame is what was recorded at one step time.
type Frame struct {
	Time time.Time
	// Components holds each component's built-in sensors as the manager exports them
	// (analyze.ComponentNumbers); a component without a record at Time is absent.
	Components map[string]ComponentSample
	// Sensors holds the value of each polled sensor that was available at Time; an
	// unavailable sensor is absent.
	Sensors map[string]float64
}

// ComponentSample is one component's recorded sensors at one time.
type ComponentSample struct {
	// Numbers are the sensors as numbers, bools as 0 or 1.
	Numbers map[string]float64
	// Phase is a child app's phase; empty for a workload.
	Phase string
}

// Decision kinds.
const (
	// KindAct: an action was carried out.
	KindAct = "Act"
	// KindHeld: a guard held an intent back (Guard says which).
	KindHeld = "Held"
	// KindHold: an autoscaler holds on its own judgement (missing data, no workload).
	KindHold = string(plan.Hold)
	// KindHealed, KindExhausted and KindGiveUp end a ladder's episode: healed, every step
	// ran, or giveUp allows no new episode.
	KindHealed    = string(plan.Healed)
	KindExhausted = string(plan.Exhausted)
	KindGiveUp    = string(plan.GiveUp)
)

// Decision is one thing a policy would have done, or started doing, at a step.
type Decision struct {
	Time time.Time `json:"time"`
	// Policy names the policy; PolicyKind is Remediate or Autoscale.
	Policy     string `json:"policy"`
	PolicyKind string `json:"policyKind"`
	// Kind is Act (an action carried out), Held (a guard held it), Hold (an autoscaler
	// holds on its own judgement, for example on missing data), Healed, Exhausted or
	// GiveUp (a ladder's end).
	Kind string `json:"kind"`
	// Action is the action's name (scale, restartPods, ...) for Act and Held.
	Action string `json:"action,omitempty"`
	// Component is the component acted on, when the action names one.
	Component string `json:"component,omitempty"`
	// Step is a ladder's step, from 1.
	Step int32 `json:"step,omitempty"`
	// FromReplicas and Replicas are a scale's replicas before and after.
	FromReplicas *int32 `json:"fromReplicas,omitempty"`
	Replicas     *int32 `json:"replicas,omitempty"`
	// Guard is the guard that held the intent (Cooldown, RateLimited, TooManyUnhealthy).
	Guard string `json:"guard,omitempty"`
	// Result is Failed for an action that failed (a scale that would change nothing);
	// empty when it succeeded.
	Result string `json:"result,omitempty"`
	// Reason is plan's sentence: the ledger's reason for an action, the policy's message
	// otherwise.
	Reason string `json:"reason"`
	// Outcome is plan's later verdict on the action within the replay: Verified,
	// Ineffective or Unknown; empty when it was not judged before the range ended.
	Outcome string `json:"outcome,omitempty"`
}

// Result is what one replay decided.
type Result struct {
	// Steps counts the steps evaluated; gaps are not counted.
	Steps int `json:"steps"`
	// Decisions in time order, and in spec order within a step.
	Decisions []Decision `json:"decisions"`
	// Replicas are the simulated replicas of each autoscaled component.
	Replicas []ReplicaSeries `json:"replicas,omitempty"`
	// Policies summarize each policy, in spec order.
	Policies []PolicySummary `json:"policies"`
	// NotSimulated are the policies the replay could not run, and why.
	NotSimulated []NotSimulated `json:"notSimulated,omitempty"`
	// Gaps are the stretches without any recorded component sensor, where nothing was
	// decided.
	Gaps []Gap `json:"gaps,omitempty"`
}

// ReplicaSeries is one component's simulated replicas over time: Start at From, then
// each change.
type ReplicaSeries struct {
	Component string          `json:"component"`
	Start     int32           `json:"start"`
	Changes   []ReplicaChange `json:"changes,omitempty"`
	ReplicaStats
}

// ReplicaChange is the replicas set at a time.
type ReplicaChange struct {
	Time     time.Time `json:"time"`
	Replicas int32     `json:"replicas"`
}

// ReplicaStats are the replicas over the steps evaluated: the least, the most and the
// time-weighted mean, each step counting the replicas after its decisions.
type ReplicaStats struct {
	Min  int32   `json:"min"`
	Max  int32   `json:"max"`
	Mean float64 `json:"mean"`
}

// PolicySummary is what one policy did over the range.
type PolicySummary struct {
	Policy string `json:"policy"`
	// Kind is Remediate, Autoscale or Failover.
	Kind string `json:"kind"`
	// Source names the shared policy the entry came from; empty for the app's own.
	Source string `json:"source,omitempty"`
	// Simulated is false for a policy the replay could not run (see NotSimulated).
	Simulated bool `json:"simulated"`
	// Actions counts the actions carried out; Held the holds by a guard (each hold
	// counted once, however many steps it lasted).
	Actions int `json:"actions"`
	Held    int `json:"held"`
	// Episodes counts a ladder's episodes opened.
	Episodes int `json:"episodes,omitempty"`
	// Component is an autoscaler's component, and Replicas its replicas over the range.
	Component string        `json:"component,omitempty"`
	Replicas  *ReplicaStats `json:"replicas,omitempty"`
	// Flaps counts the scales of this policy that reversed the direction of its previous
	// scale within FlapWindow of it: the larger of the scale-down stabilization window
	// and 5 minutes.
	Flaps      int      `json:"flaps"`
	FlapWindow Duration `json:"flapWindow,omitempty"`
	// Metrics summarize an autoscaler's metrics, in policy order.
	Metrics []MetricSummary `json:"metrics,omitempty"`
}

// MetricSummary is how long one autoscale metric was away from its goal, as the
// simulated autoscaler saw it (after the load model).
type MetricSummary struct {
	Sensor string `json:"sensor"`
	// Goal is the band or target, for example "band [0.1, 0.3]" or "averageUtilization 70%".
	Goal string `json:"goal"`
	// Model says how the replay derives the metric from the recorded value:
	// LoadConserved or AsRecorded.
	Model string `json:"model"`
	// Outside is the time the metric was above (Above) or below (Below) its band, or
	// outside its target's tolerance; Unavailable the time its sensor was.
	Outside     Duration `json:"outside"`
	Above       Duration `json:"above"`
	Below       Duration `json:"below"`
	Unavailable Duration `json:"unavailable"`
}

// Metric models.
const (
	// ModelLoadConserved: the recorded value times the recorded replicas divided by the
	// simulated replicas.
	ModelLoadConserved = "LoadConserved"
	// ModelAsRecorded: the recorded value unchanged.
	ModelAsRecorded = "AsRecorded"
)

// NotSimulated is a policy the replay could not run.
type NotSimulated struct {
	Policy string `json:"policy"`
	Reason string `json:"reason"`
}

// Gap is a stretch of steps without any recorded component sensor, both ends included.
type Gap struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Duration is a time.Duration that reads as Go's duration string in JSON ("5m0s"), as
// metav1.Duration does.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// String is Go's duration string.
func (d Duration) String() string { return time.Duration(d).String() }

// Notes are the modelling assumptions of every replay, in a sentence each, for the
// output of a simulation (the package documentation says them at length).
var Notes = []string{
	"Replayed with Homeostat's own analyze and plan code, one reconcile per step, starting as a freshly " +
		"started manager: no symptom active, no episode open, no autoscaler memory, an empty ledger. " +
		"Decisions fall on step times; the manager may decide up to one step earlier.",
	"Policies run as if the app were Active: its mode, the paused annotation, the storm breaker, the node " +
		"guard and the tenant's rights are not simulated; cooldown and maxActions count the simulated actions, " +
		"maxUnhealthyPods reads the recorded pods.",
	"Scaling is simulated with the load conserved: averageUtilization, value and band metrics, which the " +
		"autoscaler reads per replica, read their recorded value times the recorded replicas divided by the " +
		"simulated replicas; averageValue metrics (totals) read as recorded; symptoms read every sensor as recorded.",
	"Every action succeeds at once, but the effect of remediation cannot be simulated: the recorded " +
		"component sensors show what really happened, whatever the simulated ladder did.",
}
