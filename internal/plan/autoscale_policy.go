package plan

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// ScaleVerifyWindow is how long after a scale an autoscaler judges it: Verified when
// the metrics then ask for the replicas it set, Ineffective when they still ask to move
// the same way, Unknown when the load turned or the sensors cannot tell.
const ScaleVerifyWindow = time.Minute

// Autoscale policy reasons decided before the recommender runs.
const (
	// ReasonConflict: another autoscaler (an HPA, a KEDA ScaledObject) owns the replicas.
	ReasonConflict = "Conflict"
	// ReasonUnsupported: the policy asks for something Homeostat does not do.
	ReasonUnsupported = "Unsupported"
)

// AutoscaleTarget is what the monitor found of the component an autoscaler scales.
type AutoscaleTarget struct {
	// Found is true when the component has a workload to scale.
	Found bool
	// Workload names it for messages, for example "Deployment/web".
	Workload string
	// Conflict names another autoscaler of the same workload ("HorizontalPodAutoscaler
	// web"), or is empty.
	Conflict string
}

// LastScale is the autoscaler's newest scale that took effect and is not judged yet.
type LastScale struct {
	At time.Time
	// Delta is the change it made: positive up, negative down, zero when unknown (the
	// manager restarted since and no longer remembers it).
	Delta int32
}

// AutoscalePolicyInput is everything an autoscale policy's decision depends on.
type AutoscalePolicyInput struct {
	// Name is the policy's name.
	Name string
	// Previous is the policy's status as the last pass left it.
	Previous v1alpha1.PolicyStatus
	Target   AutoscaleTarget
	// Recommender is the recommender's input (Now, Policy, replicas, metrics, memory).
	Recommender AutoscaleInput
	// LastScale is the newest unjudged scale, or nil.
	LastScale *LastScale
}

// DecideAutoscale decides an autoscale policy: it refuses a "*" component, waits for a
// workload, steps back from another autoscaler's workload, and otherwise recommends
// replicas (Autoscale) and intends a scale when they differ from the current ones. It
// also judges the last scale once its window has passed. The recommender's decision is
// returned too, for its history.
func DecideAutoscale(in AutoscalePolicyInput) (Decision, AutoscaleDecision) {
	a := in.Recommender.Policy
	now := in.Recommender.Now
	st := v1alpha1.PolicyStatus{Name: in.Name, LastAction: in.Previous.LastAction}
	var d Decision
	switch {
	case a.Component == "*":
		st.State, st.Reason = v1alpha1.PolicyInvalid, ReasonUnsupported
		st.Message = `An autoscale policy with component "*" is not supported: name the component to scale.`
		return d.with(Hold, st, time.Time{}), AutoscaleDecision{}
	case !in.Target.Found:
		st.State, st.Reason = v1alpha1.PolicyWaiting, v1alpha1.ReasonComponentNotFound
		st.Message = fmt.Sprintf("Component %q has no workload to scale yet.", a.Component)
		return d.with(Hold, st, time.Time{}), AutoscaleDecision{}
	case in.Target.Conflict != "":
		st.State, st.Reason = v1alpha1.PolicyConflict, ReasonConflict
		st.Message = fmt.Sprintf("%s already scales %s: Homeostat does not fight it and leaves the replicas alone. Remove one of the two autoscalers.",
			in.Target.Conflict, in.Target.Workload)
		return d.with(Hold, st, time.Time{}), AutoscaleDecision{}
	}

	rec := Autoscale(in.Recommender)
	desired := rec.Desired
	st.DesiredReplicas = &desired
	st.Autoscale = autoscaleStatus(rec)
	st.State, st.Reason, st.Message = v1alpha1.PolicyIdle, rec.Reason, rec.Message
	kind := Idle
	if rec.Reason == ReasonSensorUnavailable || rec.Reason == ReasonFallback {
		st.State, kind = v1alpha1.PolicyHeld, Hold
	}
	d = d.with(kind, st, rec.NextCheck)
	if o, judged, until := judgeScale(in.Name, in.LastScale, rec, now); judged {
		d.Outcomes = append(d.Outcomes, o)
	} else if !until.IsZero() {
		d.NextCheck = earliest(d.NextCheck, until)
	}
	if !rec.Scale() {
		return d, rec
	}
	acted := st
	acted.State = v1alpha1.PolicyActing
	d.Kind = Act
	d.Intent = &Intent{
		Action: v1alpha1.Action{Scale: &v1alpha1.ScaleAction{Component: a.Component, Replicas: &desired}},
		Reason: rec.Message, Acted: acted,
		HeldPrefix: fmt.Sprintf("Scaling %s from %d to %d is held:", a.Component, rec.Current, rec.Desired),
	}
	return d, rec
}

// judgeScale judges the last scale: at once when this decision scales again (the same
// way: it was not enough; the other way: the load turned), else once its window has
// passed, by whether the metrics now ask for the replicas it set. until is when to look
// again while the window runs.
func judgeScale(policy string, last *LastScale, rec AutoscaleDecision, now time.Time) (Outcome, bool, time.Time) {
	if last == nil {
		return Outcome{}, false, time.Time{}
	}
	o := Outcome{Policy: policy, Since: last.At}
	up := last.Delta > 0
	end := last.At.Add(ScaleVerifyWindow)
	switch {
	case rec.Scale() && last.Delta != 0 && (rec.Desired > rec.Current) == up:
		o.Outcome = v1alpha1.OutcomeIneffective
		o.Message = fmt.Sprintf("The metrics still ask to scale %s after the last scale by %+d.", direction(up), last.Delta)
	case rec.Scale():
		o.Outcome = v1alpha1.OutcomeUnknown
		o.Message = fmt.Sprintf("A scale %s from %d to %d supersedes the last one.", direction(rec.Desired > rec.Current), rec.Current, rec.Desired)
	case now.Before(end):
		return Outcome{}, false, end
	case rec.Reason == ReasonSensorUnavailable || rec.Reason == ReasonFallback:
		o.Outcome = v1alpha1.OutcomeUnknown
		o.Message = "The sensors could not tell whether the last scale was enough."
	default:
		o.Outcome = v1alpha1.OutcomeVerified
		o.Message = fmt.Sprintf("The metrics asked for no further change for %s after the last scale.", ScaleVerifyWindow)
	}
	return o, true, time.Time{}
}

func direction(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

// autoscaleStatus is the recommendation in detail, as status shows it: each metric's
// part, and the rules that changed the recommendation, in the order they apply.
func autoscaleStatus(rec AutoscaleDecision) *v1alpha1.AutoscaleStatus {
	out := &v1alpha1.AutoscaleStatus{CurrentReplicas: rec.Current, RecommendedReplicas: rec.Recommended}
	if rec.Stabilization != "" {
		out.LimitedBy = append(out.LimitedBy, rec.Stabilization)
	}
	if rec.Limit != "" {
		out.LimitedBy = append(out.LimitedBy, rec.Limit)
	}
	if len(out.LimitedBy) > 0 && !rec.NextCheck.IsZero() {
		t := metav1.NewTime(rec.NextCheck)
		out.LimitedUntil = &t
	}
	for _, p := range rec.Proposals {
		m := v1alpha1.MetricRecommendation{Sensor: p.Sensor, Message: p.Message}
		switch {
		case p.Fallback:
			m.State = v1alpha1.MetricFallback
		case !p.Available:
			m.State = v1alpha1.MetricUnavailable
		case p.Predicted:
			m.State, m.Value = v1alpha1.MetricPredicted, num(p.Forecast)
		case p.Active:
			m.State, m.Value = v1alpha1.MetricActive, num(p.Value)
		default:
			m.State, m.Value = v1alpha1.MetricIdle, num(p.Value)
		}
		if p.Available || p.Fallback {
			r := p.Replicas
			m.Replicas = &r
		}
		out.Metrics = append(out.Metrics, m)
	}
	return out
}

// LastScaleOf is the autoscaler's newest scale that took effect and is not judged yet,
// from its newest unjudged ledger record (nil when it has none, or it is not a scale),
// with its direction from the scale events the autoscaler remembers (zero when they do
// not say).
func LastScaleOf(rec *v1alpha1.ActionRecord, events []ScaleEvent) *LastScale {
	if rec == nil || rec.Action != "scale" {
		return nil
	}
	last := &LastScale{At: rec.Time.Time}
	for _, e := range events {
		// The record's time is whole seconds; the event's is the decision's.
		if d := e.Time.Sub(rec.Time.Time); d >= 0 && d < time.Second {
			last.Delta = e.Delta
		}
	}
	return last
}
