package plan

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// ComponentHealth is what the summary reads of one component: the monitor's verdict.
type ComponentHealth struct {
	Name string
	// Healthy is the component's built-in healthy sensor.
	Healthy bool
	// Found is false when the component's workload or child app does not exist.
	Found bool
	// Message says why the component is unhealthy or not found, in a sentence.
	Message string
}

// Health is the app's health rollup, in numbers.
type Health struct {
	// Healthy is true when at least Needed components are healthy.
	Healthy bool
	// HealthyComponents of Total components are healthy; Needed is
	// spec.health.minHealthyComponents, or Total when it is unset.
	HealthyComponents, Total, Needed int
	// Unhealthy are the unhealthy components, in spec order.
	Unhealthy []ComponentHealth
}

// Rollup is the app's health: at least minHealthy components healthy, all of them when
// minHealthy is nil.
func Rollup(minHealthy *int32, cs []ComponentHealth) Health {
	h := Health{Total: len(cs), Needed: len(cs)}
	if minHealthy != nil {
		h.Needed = int(*minHealthy)
	}
	for _, c := range cs {
		if c.Healthy {
			h.HealthyComponents++
		} else {
			h.Unhealthy = append(h.Unhealthy, c)
		}
	}
	h.Healthy = h.HealthyComponents >= h.Needed
	return h
}

// Message says the rollup in a sentence, naming each unhealthy component with its reason
// (even when the quorum holds, so a person sees what the app runs without).
func (h Health) Message() string {
	unhealthy := make([]string, 0, len(h.Unhealthy))
	for _, c := range h.Unhealthy {
		unhealthy = append(unhealthy, fmt.Sprintf("%s (%s)", c.Name, strings.TrimSuffix(c.Message, ".")))
	}
	switch {
	case h.Healthy && len(unhealthy) == 0:
		return fmt.Sprintf("All %d components are healthy.", h.Total)
	case h.Healthy:
		return fmt.Sprintf("%d of %d components are healthy, at least %d needed; unhealthy: %s.",
			h.HealthyComponents, h.Total, h.Needed, joinList(unhealthy))
	default:
		return fmt.Sprintf("%d of %d components are healthy, %d needed; unhealthy: %s.",
			h.HealthyComponents, h.Total, h.Needed, joinList(unhealthy))
	}
}

// MissingComponent is the Ready condition's message for the first component whose
// workload or child app does not exist, or "" when every component resolves.
func MissingComponent(cs []ComponentHealth) string {
	for _, c := range cs {
		if !c.Found {
			return fmt.Sprintf("Component %q: %s Create it or fix spec.components.", c.Name, c.Message)
		}
	}
	return ""
}

// Condition is one status condition, as the summary decides it; the controller copies it
// into status with the app's generation.
type Condition struct {
	Type   string
	Status metav1.ConditionStatus
	// Reason is a CamelCase word; Message a sentence a person can act on.
	Reason, Message string
	// Since is the transition time, should the status change now: the summary's Now, or
	// for Stalled and Reconciling, which mirror Ready, Ready's own.
	Since time.Time
}

// SummaryInput is what an app's summary reads: what this reconcile observed and decided.
type SummaryInput struct {
	// Now is the summary's time.
	Now time.Time
	// Mode is spec.mode; PausedAnnotation is true when the app carries the paused
	// annotation.
	Mode             v1alpha1.Mode
	PausedAnnotation bool
	// MinHealthyComponents is spec.health.minHealthyComponents; nil when unset.
	MinHealthyComponents *int32
	// Components are the app's components, in spec order.
	Components []ComponentHealth
	// Policies are the policies the app runs (its own, and the shared ones merged in).
	// A remediation on a notify step needs a person.
	Policies []v1alpha1.Policy
	// PolicyStatus is each policy's state after this reconcile's pass.
	PolicyStatus []v1alpha1.PolicyStatus
	// Symptoms are the symptoms' states after this reconcile's analysis.
	Symptoms []v1alpha1.SymptomStatus
	// Sensors are the states of the app's polled sensors, one per declared sensor.
	Sensors []v1alpha1.SensorStatus
	// CappedTimeouts are the sensors whose timeouts the admin's egress maximum cuts.
	CappedTimeouts []CappedTimeout
	// Storm is the storm breaker's state, with the counts it engaged on.
	Storm StormVerdict
	// Ready is the app's Ready condition as this reconcile set it; nil when unset.
	Ready *Condition
	// Overrides are what enforced ClusterHealingPolicies replaced or tightened of what
	// the app (or a HealingPolicy that selects it) asks for, as Merge found them.
	Overrides []Override
}

// CappedTimeout is a sensor that asks for a longer timeout than the admin's egress
// policy allows (--egress-max-timeout), and gets the maximum.
type CappedTimeout struct {
	Sensor     string
	Asked, Cap time.Duration
}

// Summary is the app's status summary: its health, its phase and its conditions.
type Summary struct {
	Health Health
	Phase  v1alpha1.Phase
	// Conditions are to be set in this order: Healthy, Remediating, NeedsAttention,
	// SensorsAvailable, Suspended, then those of Stalled, Reconciling and Overridden that
	// hold.
	Conditions []Condition
	// Absent are the condition types to remove: Stalled and Reconciling when they do not
	// hold, as kstatus's abnormal-true conditions are absent rather than False, and
	// Overridden when nothing is.
	Absent []string
}

// Summarize decides an app's summary. Each part is a small function of the input:
// the health rollup, the open episodes and the policies that need a person, the
// sensors, what suspends the app's actions, the phase, and the kstatus conditions that
// mirror Ready.
func Summarize(in SummaryInput) Summary {
	h := Rollup(in.MinHealthyComponents, in.Components)
	e := episodesOf(in.Policies, in.PolicyStatus)
	sus := suspensionOf(in)
	out := Summary{Health: h, Phase: phaseOf(in, h, e)}
	out.Conditions = []Condition{
		healthyCondition(h),
		remediatingCondition(e),
		attentionCondition(e),
		sensorsCondition(in.Sensors, in.CappedTimeouts),
		suspendedCondition(sus, in.Storm),
	}
	for i := range out.Conditions {
		out.Conditions[i].Since = in.Now
	}
	stalled, reconciling := kstatusOf(in.Ready)
	for _, c := range []struct {
		typ string
		on  bool
	}{{v1alpha1.ConditionStalled, stalled}, {v1alpha1.ConditionReconciling, reconciling}} {
		if !c.on {
			out.Absent = append(out.Absent, c.typ)
			continue
		}
		out.Conditions = append(out.Conditions, Condition{Type: c.typ, Status: metav1.ConditionTrue,
			Reason: in.Ready.Reason, Message: in.Ready.Message, Since: in.Ready.Since})
	}
	if c, ok := overriddenCondition(in.Overrides); ok {
		c.Since = in.Now
		out.Conditions = append(out.Conditions, c)
	} else {
		out.Absent = append(out.Absent, v1alpha1.ConditionOverridden)
	}
	return out
}

// overriddenCondition says what enforced ClusterHealingPolicies replaced or tightened;
// false when nothing.
func overriddenCondition(overrides []Override) (Condition, bool) {
	if len(overrides) == 0 {
		return Condition{}, false
	}
	msgs := make([]string, len(overrides))
	for i, o := range overrides {
		msgs[i] = o.Message()
	}
	return condition(v1alpha1.ConditionOverridden, true, v1alpha1.ReasonEnforcedByClusterPolicy,
		"The cluster admin's enforced shared policy applies instead of what this app asks for: "+joinList(msgs)+"."), true
}

// episodes sorts an app's policies: those with an open remediation episode, and those
// that need a person, as "name: message".
type episodes struct {
	open, attention []string
	// gaveUp is true when a policy gave up, rather than only notified.
	gaveUp bool
}

// episodesOf finds the open episodes (a policy on a step that has not given up) and the
// policies that need a person: one that gave up, or one whose current step is a notify
// and has started.
func episodesOf(policies []v1alpha1.Policy, states []v1alpha1.PolicyStatus) episodes {
	var e episodes
	for _, p := range states {
		if p.Step > 0 && p.State != v1alpha1.PolicyGaveUp {
			e.open = append(e.open, p.Name)
		}
		if p.State == v1alpha1.PolicyGaveUp || (p.Step > 0 && p.StepStart != nil && onNotifyStep(policies, p)) {
			e.attention = append(e.attention, fmt.Sprintf("%s: %s", p.Name, p.Message))
		}
		if p.State == v1alpha1.PolicyGaveUp {
			e.gaveUp = true
		}
	}
	return e
}

// onNotifyStep says whether a remediation policy's current step is a notify action.
func onNotifyStep(policies []v1alpha1.Policy, p v1alpha1.PolicyStatus) bool {
	for _, pol := range policies {
		if pol.Name == p.Name && pol.Remediate != nil && p.Step >= 1 && int(p.Step) <= len(pol.Remediate.Steps) {
			return pol.Remediate.Steps[p.Step-1].Action.Notify != nil
		}
	}
	return false
}

// suspension is what keeps an app's policies from acting, as a condition reason; "" when
// they act.
type suspension string

// suspensionOf finds what suspends the app's actions, first match wins: mode Paused,
// the paused annotation, mode DryRun, then the storm breaker.
func suspensionOf(in SummaryInput) suspension {
	switch {
	case in.Mode == v1alpha1.ModePaused:
		return v1alpha1.ReasonModePaused
	case in.PausedAnnotation:
		return v1alpha1.ReasonPausedAnnotation
	case in.Mode == v1alpha1.ModeDryRun:
		return v1alpha1.ReasonDryRun
	case in.Storm.Engaged:
		return v1alpha1.ReasonStormDetected
	}
	return ""
}

// phaseOf is the app's phase, first match wins: Paused (by mode or annotation; DryRun
// and the storm breaker do not pause), NeedsAttention, Remediating, Degraded (the
// rollup fails or a symptom is active), Healthy.
func phaseOf(in SummaryInput, h Health, e episodes) v1alpha1.Phase {
	switch {
	case in.Mode == v1alpha1.ModePaused || in.PausedAnnotation:
		return v1alpha1.PhasePaused
	case len(e.attention) > 0:
		return v1alpha1.PhaseNeedsAttention
	case len(e.open) > 0:
		return v1alpha1.PhaseRemediating
	case !h.Healthy || slices.ContainsFunc(in.Symptoms, func(s v1alpha1.SymptomStatus) bool { return s.Active }):
		return v1alpha1.PhaseDegraded
	}
	return v1alpha1.PhaseHealthy
}

// kstatusOf decides the two abnormal-true conditions kstatus reads (Flux's health
// checks, kpt, cli-utils) from Ready: Stalled while only a spec fix helps, Reconciling
// while a component, or the ServiceAccount the app acts as, is still to appear (a GitOps
// sync may create it after the app). Without them kstatus would call an app with an
// invalid spec Current.
func kstatusOf(ready *Condition) (stalled, reconciling bool) {
	if ready == nil || ready.Status != metav1.ConditionFalse {
		return false, false
	}
	if ready.Reason == v1alpha1.ReasonComponentNotFound || ready.Reason == v1alpha1.ReasonServiceAccountNotFound {
		return false, true
	}
	return true, false
}

func healthyCondition(h Health) Condition {
	if h.Healthy {
		return condition(v1alpha1.ConditionHealthy, true, v1alpha1.ReasonComponentsHealthy, h.Message())
	}
	return condition(v1alpha1.ConditionHealthy, false, v1alpha1.ReasonComponentsUnhealthy, h.Message())
}

func remediatingCondition(e episodes) Condition {
	if len(e.open) > 0 {
		return condition(v1alpha1.ConditionRemediating, true, v1alpha1.ReasonEpisodeOpen,
			"Remediation episodes are open: "+joinList(e.open)+".")
	}
	return condition(v1alpha1.ConditionRemediating, false, v1alpha1.ReasonNoEpisode, "No remediation episode is open.")
}

func attentionCondition(e episodes) Condition {
	if len(e.attention) == 0 {
		return condition(v1alpha1.ConditionNeedsAttention, false, v1alpha1.ReasonNothingNeeded, "No policy needs a person.")
	}
	reason := v1alpha1.ReasonNotified
	if e.gaveUp {
		reason = v1alpha1.ReasonGaveUp
	}
	return condition(v1alpha1.ConditionNeedsAttention, true, reason, joinList(e.attention))
}

// sensorsCondition says which polled sensors are unavailable and why, and which get a
// shorter timeout than they ask for.
func sensorsCondition(sensors []v1alpha1.SensorStatus, capped []CappedTimeout) Condition {
	if len(sensors) == 0 {
		return condition(v1alpha1.ConditionSensorsAvailable, true, v1alpha1.ReasonNoSensors,
			"The app declares no polled sensors; component sensors are event-driven.")
	}
	var bad []string
	for _, s := range sensors {
		if s.Error != "" {
			bad = append(bad, fmt.Sprintf("%s (%s)", s.Name, strings.TrimSuffix(s.Error, ".")))
		}
	}
	note := ""
	if len(capped) > 0 {
		cuts := make([]string, len(capped))
		for i, c := range capped {
			cuts[i] = fmt.Sprintf("%s asks for %s and gets %s", c.Sensor, c.Asked, c.Cap)
		}
		note = " The admin's --egress-max-timeout caps sensor timeouts: " + joinList(cuts) + "."
	}
	if len(bad) > 0 {
		return condition(v1alpha1.ConditionSensorsAvailable, false, v1alpha1.ReasonSensorsUnavailable, fmt.Sprintf(
			"%d of %d sensors are unavailable: %s. Symptoms read them as absent, and autoscalers do not scale down on missing data.%s",
			len(bad), len(sensors), joinList(bad), note))
	}
	return condition(v1alpha1.ConditionSensorsAvailable, true, v1alpha1.ReasonSensorsAvailable,
		fmt.Sprintf("All %d sensors are available.%s", len(sensors), note))
}

func suspendedCondition(s suspension, storm StormVerdict) Condition {
	var msg string
	switch s {
	case v1alpha1.ReasonModePaused:
		msg = "spec.mode is Paused: symptoms are reported, no action is taken."
	case v1alpha1.ReasonPausedAnnotation:
		msg = "The " + v1alpha1.PausedAnnotation + " annotation is set: no action is taken until it is removed."
	case v1alpha1.ReasonDryRun:
		msg = "spec.mode is DryRun: decisions are recorded in history, nothing is changed."
	case v1alpha1.ReasonStormDetected:
		msg = fmt.Sprintf("%d of %d namespaces have more than --storm-threshold of their apps unhealthy at once "+
			"(%d of %d apps in all): disruptive actions are stopped cluster-wide until the share falls.",
			storm.Stormy, storm.Namespaces, storm.Unhealthy, storm.Total)
	default:
		return condition(v1alpha1.ConditionSuspended, false, v1alpha1.ReasonActive, "Policies act.")
	}
	return condition(v1alpha1.ConditionSuspended, true, string(s), msg)
}

func condition(typ string, ok bool, reason, msg string) Condition {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	return Condition{Type: typ, Status: status, Reason: reason, Message: msg}
}

func joinList(items []string) string { return strings.Join(items, "; ") }
