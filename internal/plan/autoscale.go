package plan

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// Autoscale decision reasons. ScalingLimited comes with a Limit (TooManyReplicas,
// TooFewReplicas, ScaleUpLimit, ScaleDownLimit), as the HPA's ScalingLimited condition;
// a recommendation held back by a stabilization window says ScaleUpStabilized or
// ScaleDownStabilized, as the HPA's AbleToScale condition.
const (
	// ReasonScaleUp: the metrics ask for more replicas and get them.
	ReasonScaleUp = "ScaleUp"
	// ReasonScaleDown: the metrics ask for fewer replicas and get them.
	ReasonScaleDown = "ScaleDown"
	// ReasonSteady: the metrics ask for the current replicas.
	ReasonSteady = "Steady"
	// ReasonScalingLimited: minReplicas, maxReplicas or a rate policy cut the
	// recommendation; Limit says which.
	ReasonScalingLimited = "ScalingLimited"
	// ReasonSensorUnavailable: a metric's sensor is unavailable and the replicas are
	// held, since missing data never scales down.
	ReasonSensorUnavailable = v1alpha1.ReasonSensorsUnavailable
	// ReasonFallback: a sensor failed onSensorFailure.failureThreshold consecutive polls
	// and the autoscaler goes to onSensorFailure.replicas.
	ReasonFallback = "Fallback"
	// ReasonScaledToZero: every metric is idle and minReplicas is 0: the component goes
	// to, or stays at, zero replicas.
	ReasonScaledToZero = "ScaledToZero"
	// ReasonActivated: a component at zero replicas is scaled up because a metric crossed
	// its activation threshold.
	ReasonActivated = "Activated"
	// ReasonScalingDisabled: the component has zero replicas while minReplicas is above
	// zero; as with the HPA, autoscaling is off until the workload is scaled up by hand.
	ReasonScalingDisabled = "ScalingDisabled"
)

// DefaultFailureThreshold is onSensorFailure.failureThreshold when unset.
const DefaultFailureThreshold = 3

// MetricInput is one metric's reading, as the monitor observed it.
type MetricInput struct {
	// Sensor names the sensor, as the policy's metric does.
	Sensor string
	// Value is the sensor's current reading. For a resource sensor it is the average
	// utilization, in percent of the pods' requests, over ReadyPods.
	Value float64
	// Available is false while the sensor is unavailable; Value is then ignored. A value
	// that is not a finite number counts as unavailable.
	Available bool
	// ReadyPods, MissingPods and UnreadyPods optionally detail the pods behind Value, for
	// the HPA's missing-data rules; all zero when unknown, and then CurrentReplicas counts
	// as ready pods. ReadyPods are the ready pods that reported a metric (for a `value`
	// target, the ready pods the usage ratio multiplies, as for the HPA's Object and
	// External metrics); MissingPods are pods that should have reported but did not;
	// UnreadyPods are pods set aside because they are not ready yet. Missing and unready
	// pods only change averageUtilization targets.
	ReadyPods, MissingPods, UnreadyPods int32
}

func (m MetricInput) podsKnown() bool {
	return m.ReadyPods > 0 || m.MissingPods > 0 || m.UnreadyPods > 0
}

// AutoscaleInput is everything an autoscale decision depends on.
type AutoscaleInput struct {
	// Now is the decision's time.
	Now time.Time
	// Policy is the autoscale policy.
	Policy v1alpha1.AutoscalePolicy
	// CurrentReplicas is the workload's spec.replicas.
	CurrentReplicas int32
	// Metrics are the readings of the policy's metrics, matched by sensor name; a metric
	// without a reading counts as unavailable.
	Metrics []MetricInput
	// History is the decision's previous recommendations, as the last decision returned
	// them in AutoscaleDecision.History (the caller keeps them). Empty for a new
	// autoscaler: the first decision then starts from the current replicas, as a new HPA
	// does, so it scales down no sooner than the scale-down window allows.
	History []Recommendation
	// ScaleEvents are the replica changes this autoscaler made, for the rate policies,
	// as RecordScaleEvent keeps them.
	ScaleEvents []ScaleEvent
	// ConsecutiveFailures counts each sensor's failed polls since its last success, for
	// onSensorFailure Fallback.
	ConsecutiveFailures map[string]int32
	// Forecasts are predicted values per sensor at now plus predictive.lookahead (see
	// Forecast); used only when the policy's predictive is set, and only to scale up.
	Forecasts map[string]float64
}

// MetricProposal is one metric's part in a decision, for status.
type MetricProposal struct {
	// Sensor names the metric's sensor.
	Sensor string
	// Available is false when the sensor is unavailable or the metric cannot be computed;
	// Message says why.
	Available bool
	// Value is the sensor's reading.
	Value float64
	// Forecast is the predicted value used in place of Value; set when Predicted.
	Forecast float64
	// Predicted is true when a forecast above Value was used, so the autoscaler scales up
	// ahead of the load.
	Predicted bool
	// Active is true when the value (or the forecast) is above the metric's activation
	// threshold.
	Active bool
	// Fallback is true when the metric's sensor is unavailable and has failed
	// onSensorFailure.failureThreshold consecutive polls with onSensorFailure Fallback:
	// the metric then proposes the fallback replicas.
	Fallback bool
	// Replicas is what this metric recommends; meaningful when Available or Fallback.
	Replicas int32
	// Message says what the metric shows and asks for, in a clause.
	Message string
}

// AutoscaleDecision is what an autoscale policy does now.
type AutoscaleDecision struct {
	// Current is the current replicas the decision started from (a negative
	// CurrentReplicas counts as zero).
	Current int32
	// Desired is the replicas to set; equal to Current when nothing changes.
	Desired int32
	// Recommended is the metrics' recommendation before stabilization and limits: the
	// largest metric proposal (a fallen-back metric proposes the fallback replicas), or
	// zero when every metric is idle.
	Recommended int32
	// Reason is a CamelCase word (the Reason* constants); Message is a sentence a person
	// can act on, whole: the controller bounds it to what status accepts.
	Reason, Message string
	// Limited is true when a bound or a rate policy cut the recommendation; Limit names
	// it: TooManyReplicas, TooFewReplicas, ScaleUpLimit or ScaleDownLimit.
	Limited bool
	Limit   string
	// Stabilization is ScaleUpStabilized or ScaleDownStabilized when a stabilization
	// window held the recommendation back, else empty.
	Stabilization string
	// Unavailable lists the sensors of metrics that could not be used, in policy order.
	Unavailable []string
	// Proposals are the metrics' parts, in policy order.
	Proposals []MetricProposal
	// History is the recommendations to keep for the next decision: the input history
	// with this decision's recommendation added, compacted by CompactHistory.
	History []Recommendation
	// NextCheck is when the decision may change although no input does (a stabilization
	// window or a rate-policy period ends); zero when only a change of input can.
	NextCheck time.Time
}

// Scale is true when the decision changes the replicas.
func (d AutoscaleDecision) Scale() bool { return d.Desired != d.Current }

// Autoscale recommends a component's replicas, as the HPA would, in the HPA's order:
// replicas outside [minReplicas, maxReplicas] go to the nearest bound; otherwise each
// metric proposes replicas (target: the HPA's maths and tolerance; band: Apache
// Brooklyn's watermarks) and the largest proposal wins; the proposal is stabilized by the
// behavior's windows, then cut by its rate policies and the bounds.
//
// Around that: a metric whose sensor is unavailable never lets the autoscaler scale down
// (onSensorFailure Hold, the default; the HPA skips scaling down when a metric is
// invalid), though another metric may still scale up; with Fallback, once a sensor has
// failed failureThreshold consecutive polls, its metric proposes the fallback replicas
// (as KEDA's fallback does, so a working metric asking for more still wins), and until
// then it holds. With minReplicas 0, KEDA-style, the component scales to zero when every
// metric is idle (at or below its activation threshold) and is activated to at least one
// replica, ahead of stabilization and rate policies, as soon as one is not. With
// predictive set, each metric's forecast replaces its value when higher, so forecasts only
// ever scale up.
func Autoscale(in AutoscaleInput) AutoscaleDecision {
	pol := in.Policy
	b := ResolveBehavior(pol.Behavior)
	minR, maxR := replicaBounds(pol)
	cur := max(in.CurrentReplicas, 0)
	now := in.Now
	history := in.History
	if len(history) == 0 {
		// The HPA's recordInitialRecommendation: a new autoscaler starts from the
		// current replicas.
		history = []Recommendation{{Time: now, Replicas: cur}}
	}
	d := AutoscaleDecision{Current: cur, Desired: cur}
	d.Proposals, d.Unavailable = evaluateMetrics(in, b, cur)
	d.History = CompactHistory(b, history, now)
	target := componentName(pol.Component)

	// Bounds first, before any metric (the HPA's reconcileAutoscaler).
	switch {
	case cur == 0 && minR > 0:
		d.Reason = ReasonScalingDisabled
		d.Message = fmt.Sprintf("%s has 0 replicas and minReplicas is %d: autoscaling is off until the workload is scaled up by hand, as with the HPA.", target, minR)
		return d
	case cur > maxR:
		d.Desired, d.Reason, d.Limited, d.Limit = maxR, ReasonTooManyReplicas, true, ReasonTooManyReplicas
		d.Message = fmt.Sprintf("%s has %s, above maxReplicas %d: scaling down to %d.", target, replicas(cur), maxR, maxR)
		return d
	case cur < minR:
		d.Desired, d.Reason, d.Limited, d.Limit = minR, ReasonTooFewReplicas, true, ReasonTooFewReplicas
		d.Message = fmt.Sprintf("%s has %s, below minReplicas %d: scaling up to %d.", target, replicas(cur), minR, minR)
		return d
	case len(d.Proposals) == 0:
		d.Reason = ReasonSteady
		d.Message = fmt.Sprintf("The policy has no metrics: keeping %s at %s.", target, replicas(cur))
		return d
	}

	failing := applyFallback(pol.OnSensorFailure, d.Proposals, in.ConsecutiveFailures)
	var missing []string // unavailable and not fallen back
	best, active := -1, -1
	for i, p := range d.Proposals {
		switch {
		case p.Available || p.Fallback:
			if best < 0 || p.Replicas > d.Proposals[best].Replicas {
				best = i
			}
		default:
			missing = append(missing, p.Sensor)
		}
		if p.Active && active < 0 {
			active = i
		}
	}
	idle := len(d.Unavailable) == 0 && active < 0
	fallback := len(failing.fellBack) > 0

	minEffective := minR
	var rec int32
	switch {
	case len(missing) > 0 && (best < 0 || d.Proposals[best].Replicas < cur):
		// Missing data never scales down: hold, and record nothing (the HPA returns an
		// error before normalizing when a metric is invalid and the rest would scale down).
		if best >= 0 {
			d.Recommended = d.Proposals[best].Replicas
		}
		d.Reason = ReasonSensorUnavailable
		d.Message = holdMessage(target, cur, d, best, failing)
		return d
	case minR == 0 && idle:
		rec = 0
	default:
		rec = d.Proposals[best].Replicas
		if minR == 0 && active >= 0 {
			// KEDA: while a metric is active, at least one replica stays.
			minEffective = 1
		}
	}
	d.Recommended = rec

	// The HPA's normalizeDesiredReplicasWithBehaviors: stabilize, record the
	// unstabilized recommendation, then apply the rate policies and the bounds.
	stab, stabReason, stabUntil := stabilize(b, history, now, cur, rec)
	d.History = CompactHistory(b, append(slices.Clone(history), Recommendation{Time: now, Replicas: rec}), now)
	desired, limit, rateUntil := limitRate(b, in.ScaleEvents, now, cur, stab, minEffective, maxR)
	if cur == 0 && rec > 0 && desired < 1 && maxR >= 1 {
		// Activation from zero to one happens ahead of stabilization and rate policies,
		// as KEDA does it outside the HPA.
		desired = 1
	}
	d.Desired = desired
	d.Limit, d.Limited = limit, limit != ""
	if stab != rec {
		d.Stabilization = stabReason
	}
	d.NextCheck = earliest(stabUntil, rateUntil)

	driver := ""
	if best >= 0 {
		driver = d.Proposals[best].Message
	}
	switch {
	case fallback:
		d.Reason = ReasonFallback
		d.Message = fmt.Sprintf("Sensor %s %s failed %d or more consecutive polls (onSensorFailure.failureThreshold): falling back to %s.",
			strings.Join(failing.fellBack, ", "), hasHave(failing.fellBack), failing.threshold, replicas(failing.replicas))
		if !d.Proposals[best].Fallback {
			d.Message += fmt.Sprintf(" Metric %s, more, so it wins.", driver)
		}
		d.Message += " " + movement(target, cur, desired)
		if desired != rec {
			d.Message += " for now: " + heldBack(d, b, minEffective, maxR, minR)
		}
		d.Message += "."
	case cur == 0 && desired > 0:
		d.Reason = ReasonActivated
		if active >= 0 {
			a := d.Proposals[active]
			value := a.Value
			if a.Predicted {
				value = a.Forecast
			}
			d.Message = fmt.Sprintf("%s is %s, above its activation threshold %s: activating %s from zero to %s.",
				a.Sensor, num(value), num(activationThreshold(pol.Metrics[active])), target, replicas(desired))
		} else {
			d.Message = fmt.Sprintf("Activating %s from zero to %s: %s.", target, replicas(desired), driver)
		}
		if desired != rec {
			d.Message += fmt.Sprintf(" The metrics recommend %d, but %s.", rec, heldBack(d, b, minEffective, maxR, minR))
		}
	case d.Limited:
		d.Reason = ReasonScalingLimited
		d.Message = fmt.Sprintf("%s instead of %d: %s.", movement(target, cur, desired), stab, limitWhy(d, b, minEffective, maxR, minR))
		if driver != "" {
			d.Message += " Metric " + driver + "."
		}
	case len(missing) > 0 && desired == cur:
		d.Reason = ReasonSensorUnavailable
		d.Message = holdMessage(target, cur, d, best, failing)
	case desired == 0:
		d.Reason = ReasonScaledToZero
		if cur > 0 {
			d.Message = fmt.Sprintf("Every metric is idle (at or below its activation threshold): scaling %s from %s to zero.", target, replicas(cur))
		} else {
			d.Message = fmt.Sprintf("Every metric is idle: %s stays at zero replicas until one crosses its activation threshold.", target)
		}
	case d.Stabilization != "" && desired == cur:
		d.Reason = d.Stabilization
		d.Message = fmt.Sprintf("Keeping %s at %s: the metrics recommend %d, but %s.", target, replicas(cur), rec, windowWhy(d.Stabilization, b, stabUntil))
		if driver != "" {
			d.Message += " Metric " + driver + "."
		}
	default:
		switch {
		case desired > cur:
			d.Reason = ReasonScaleUp
		case desired < cur:
			d.Reason = ReasonScaleDown
		default:
			d.Reason = ReasonSteady
		}
		if idle && minR == 0 {
			driver = "every metric is idle"
		}
		d.Message = fmt.Sprintf("%s: %s.", movement(target, cur, desired), driver)
		if d.Stabilization != "" {
			d.Message += fmt.Sprintf(" The metrics recommend %d, but %s.", rec, windowWhy(d.Stabilization, b, stabUntil))
		}
	}
	if len(missing) > 0 && d.Reason != ReasonSensorUnavailable {
		d.Message += fmt.Sprintf(" Sensor %s %s unavailable; the other metrics ask for at least the current replicas.", strings.Join(missing, ", "), isAre(missing))
	}
	return d
}

// replicaBounds returns minReplicas (default 1) and maxReplicas, repaired so that
// 0 <= min <= max even for a spec that validation would have refused.
func replicaBounds(p v1alpha1.AutoscalePolicy) (int32, int32) {
	minR := int32(1)
	if p.MinReplicas != nil {
		minR = max(*p.MinReplicas, 0)
	}
	return minR, max(p.MaxReplicas, minR)
}

func componentName(c string) string {
	if c == "" || c == "*" {
		return "The component"
	}
	return c
}

// evaluateMetrics computes each metric's proposal, in policy order.
func evaluateMetrics(in AutoscaleInput, b Behavior, cur int32) ([]MetricProposal, []string) {
	readings := make(map[string]MetricInput, len(in.Metrics))
	for _, m := range in.Metrics {
		readings[m.Sensor] = m
	}
	var props []MetricProposal
	var unavailable []string
	for _, m := range in.Policy.Metrics {
		p := MetricProposal{Sensor: m.Sensor}
		r, ok := readings[m.Sensor]
		switch {
		case !ok || !r.Available:
			p.Message = m.Sensor + " is unavailable"
		case math.IsNaN(r.Value) || math.IsInf(r.Value, 0):
			p.Message = fmt.Sprintf("%s reads %v, which is not a number the autoscaler can use", m.Sensor, r.Value)
		default:
			p.Value = r.Value
			value := r.Value
			subject := fmt.Sprintf("%s is %s", m.Sensor, num(r.Value))
			if f, ok := in.Forecasts[m.Sensor]; ok && in.Policy.Predictive != nil && f > value && !math.IsInf(f, 0) {
				p.Forecast, p.Predicted, value = f, true, f
				subject = fmt.Sprintf("%s is %s and forecast to reach %s within %s", m.Sensor, num(r.Value), num(f), in.Policy.Predictive.Lookahead.Duration)
			}
			n, clause, err := metricReplicas(m, r, value, cur, b)
			if err != nil {
				p.Message = fmt.Sprintf("%s cannot be used: %v", m.Sensor, err)
				break
			}
			p.Available, p.Replicas = true, n
			p.Active = value > activationThreshold(m)
			p.Message = fmt.Sprintf("%s%s and asks for %s", subject, clause, replicas(n))
		}
		if !p.Available {
			unavailable = append(unavailable, m.Sensor)
		}
		props = append(props, p)
	}
	return props, unavailable
}

// activationThreshold is the metric's activationThreshold, default 0.
func activationThreshold(m v1alpha1.AutoscaleMetric) float64 {
	if m.ActivationThreshold == nil {
		return 0
	}
	t, err := strconv.ParseFloat(*m.ActivationThreshold, 64)
	if err != nil || math.IsNaN(t) {
		return 0
	}
	return t
}

// metricReplicas is one metric's recommendation for value, with a clause describing it.
func metricReplicas(m v1alpha1.AutoscaleMetric, r MetricInput, value float64, cur int32, b Behavior) (int32, string, error) {
	switch {
	case m.Band != nil:
		return bandReplicas(m.Band, value, cur)
	case m.Target == nil:
		return 0, "", fmt.Errorf("the metric sets neither target nor band")
	case m.Target.Value != nil:
		t := m.Target.Value.AsApproximateFloat64()
		if !(t > 0) {
			return 0, "", fmt.Errorf("target.value must be positive")
		}
		n, within := valueReplicas(value, t, cur, r, b)
		return n, fmt.Sprintf(" against a target value of %s%s,", num(t), tolerated(within)), nil
	case m.Target.AverageValue != nil:
		t := m.Target.AverageValue.AsApproximateFloat64()
		if !(t > 0) {
			return 0, "", fmt.Errorf("target.averageValue must be positive")
		}
		n, within := averageValueReplicas(value, t, cur, b)
		return n, fmt.Sprintf(" against a target average of %s per replica%s,", num(t), tolerated(within)), nil
	case m.Target.AverageUtilization != nil:
		t := *m.Target.AverageUtilization
		if t <= 0 {
			return 0, "", fmt.Errorf("target.averageUtilization must be positive")
		}
		n, note, err := utilizationReplicas(value, t, cur, r, b)
		if err != nil {
			return 0, "", err
		}
		return n, fmt.Sprintf(" against a target utilization of %d%%%s,", t, note), nil
	}
	return 0, "", fmt.Errorf("the target sets none of value, averageValue, averageUtilization")
}

func tolerated(within bool) string {
	if within {
		return ", within tolerance"
	}
	return ""
}

// valueReplicas is a `value` target: the metric as a whole against the target, as the
// HPA's Object and External Value targets (GetObjectMetricReplicas,
// getUsageRatioReplicaCount): within tolerance nothing changes; otherwise the usage ratio
// times the ready pods (CurrentReplicas when the pods are not detailed), rounded up. At
// zero replicas there is no tolerance and the ratio itself, rounded up, is the answer.
func valueReplicas(value, target float64, cur int32, r MetricInput, b Behavior) (int32, bool) {
	ratio := value / target
	if cur == 0 {
		return ceilReplicas(ratio), false
	}
	if b.within(ratio) {
		return cur, true
	}
	ready := cur
	if r.podsKnown() {
		ready = r.ReadyPods
	}
	return ceilReplicas(ratio * float64(ready)), false
}

// averageValueReplicas is an `averageValue` target: the metric (a total) divided by the
// replicas against the target, as the HPA's External and Object AverageValue targets
// (GetExternalPerPodMetricReplicas): when the ratio total/(target*replicas) leaves the
// tolerance, the answer is total/target rounded up. At zero replicas, where the ratio
// would divide by zero, total/target rounded up is the answer directly.
func averageValueReplicas(total, target float64, cur int32, b Behavior) (int32, bool) {
	if cur != 0 && b.within(total/(target*float64(cur))) {
		return cur, true
	}
	return ceilReplicas(total / target), false
}

// utilizationReplicas is an `averageUtilization` target with the HPA's missing-data rules
// (GetResourceReplicas). The utilization is truncated to a whole percent, as the HPA's
// is. Without missing pods, and without unready pods while scaling up, the answer is the
// ratio times the ready pods, rounded up, unless within tolerance. Otherwise the average
// is recomputed conservatively: a missing pod counts as using 100% of its request (or the
// target, if higher) on a scale down and 0% on a scale up, and an unready pod 0% on a
// scale up (unready pods are ignored otherwise); if the new ratio is within tolerance or
// would reverse the direction, nothing changes. Pods are assumed to request the same
// amount, as the pods of one template do. At zero replicas no pod can be measured: one
// replica is proposed for a positive value, so the component can be activated.
func utilizationReplicas(value float64, target, cur int32, r MetricInput, b Behavior) (int32, string, error) {
	const damped = ", held by the missing-pod rules"
	if cur == 0 {
		if value > 0 {
			return 1, "", nil
		}
		return 0, "", nil
	}
	ready, missing, unready := int64(cur), int64(0), int64(0)
	if r.podsKnown() {
		ready, missing, unready = int64(max(r.ReadyPods, 0)), int64(max(r.MissingPods, 0)), int64(max(r.UnreadyPods, 0))
	}
	if ready == 0 {
		return 0, "", fmt.Errorf("no ready pod reported a metric")
	}
	ratio := math.Floor(value) / float64(target)
	scaleUpWithUnready := unready > 0 && ratio > 1
	if !scaleUpWithUnready && missing == 0 {
		if b.within(ratio) {
			return cur, tolerated(true), nil
		}
		return ceilReplicas(ratio * float64(ready)), "", nil
	}
	sum, pods := value*float64(ready), ready
	var counted []string // what the recomputed average assumes, for the message
	if missing > 0 {
		switch {
		case ratio < 1:
			fill := max(100, target)
			sum += float64(fill) * float64(missing)
			pods += missing
			counted = append(counted, fmt.Sprintf("%s without a metric as %d%%", podCount(missing), fill))
		case ratio > 1:
			pods += missing
			counted = append(counted, podCount(missing)+" without a metric as 0%")
		}
	}
	if scaleUpWithUnready {
		pods += unready
		counted = append(counted, fmt.Sprintf("%s not ready as 0%%", podCount(unready)))
	}
	newRatio := math.Floor(sum/float64(pods)) / float64(target)
	if b.within(newRatio) || (ratio < 1 && newRatio > 1) || (ratio > 1 && newRatio < 1) {
		// Within tolerance, or the assumptions would reverse the direction: hold.
		return cur, damped, nil
	}
	n := ceilReplicas(newRatio * float64(pods))
	if (newRatio < 1 && n > cur) || (newRatio > 1 && n < cur) {
		// Counting more pods would reverse the direction: hold.
		return cur, damped, nil
	}
	return n, ", counting " + strings.Join(counted, " and "), nil
}

func podCount(n int64) string {
	if n == 1 {
		return "1 pod"
	}
	return fmt.Sprintf("%d pods", n)
}

// bandReplicas keeps a metric between watermarks, as Apache Brooklyn's AutoScalerPolicy:
// the value is a per-replica average, so value*replicas is the total load. Above upper
// (hot) the total is spread at upper per replica: ceil(total/upper). Below lower (cold)
// it is spread at lower: floor(total/lower), then raised until the result would not at
// once be hot again (total/desired <= upper). In between, the replicas hold. At zero
// replicas the load is taken as that of one replica.
func bandReplicas(band *v1alpha1.Band, value float64, cur int32) (int32, string, error) {
	lower, errL := strconv.ParseFloat(band.Lower, 64)
	upper, errU := strconv.ParseFloat(band.Upper, 64)
	if errL != nil || errU != nil || !(lower >= 0) || !(upper > lower) || math.IsInf(upper, 0) {
		return 0, "", fmt.Errorf("band [%s, %s] is not a pair of watermarks with lower < upper", band.Lower, band.Upper)
	}
	where := fmt.Sprintf(", within the band [%s, %s],", num(lower), num(upper))
	size := float64(max(cur, 1))
	total := value * size
	switch {
	case value > upper:
		return ceilReplicas(total / upper), fmt.Sprintf(", above the band [%s, %s],", num(lower), num(upper)), nil
	case value < lower && lower > 0:
		n := floatToInt64(math.Floor(total / lower))
		n = max(n, 0)
		if n == 0 && value > 0 {
			n = 1
		}
		if n > 0 {
			// Brooklyn raises desired one by one while total/desired > upper; the
			// smallest such desired is ceil(total/upper), corrected for rounding.
			n = max(n, floatToInt64(math.Ceil(total/upper)))
			for total/float64(n) > upper {
				n++
			}
		}
		return clampInt32(n), fmt.Sprintf(", below the band [%s, %s],", num(lower), num(upper)), nil
	}
	return cur, where, nil
}

// ceilReplicas rounds up to a replica count, saturating at the int32 range.
func ceilReplicas(x float64) int32 {
	if math.IsNaN(x) || x <= 0 {
		return 0
	}
	return clampInt32(floatToInt64(math.Ceil(x)))
}

// sensorFailures is what onSensorFailure Fallback makes of the unavailable metrics.
type sensorFailures struct {
	// fellBack are the sensors that have failed threshold consecutive polls.
	fellBack []string
	// pending is the unavailable sensor, not yet fallen back, with the most failures
	// (count); empty when none or when onSensorFailure is not Fallback.
	pending             string
	count               int32
	threshold, replicas int32
}

// applyFallback marks the unavailable metrics whose sensors have failed
// failureThreshold consecutive polls, under onSensorFailure Fallback: each proposes the
// fallback replicas.
func applyFallback(p *v1alpha1.SensorFailurePolicy, props []MetricProposal, failures map[string]int32) sensorFailures {
	var f sensorFailures
	if p == nil || p.Mode != v1alpha1.SensorFailureFallback || p.Replicas == nil {
		return f
	}
	f.threshold = p.FailureThreshold
	if f.threshold <= 0 {
		f.threshold = DefaultFailureThreshold
	}
	f.replicas = max(*p.Replicas, 0)
	for i := range props {
		pr := &props[i]
		if pr.Available {
			continue
		}
		n := failures[pr.Sensor]
		if n >= f.threshold {
			pr.Fallback, pr.Replicas = true, f.replicas
			pr.Message += fmt.Sprintf(" and has failed %d consecutive polls, so it falls back to %s", n, replicas(f.replicas))
			f.fellBack = append(f.fellBack, pr.Sensor)
		} else if f.pending == "" || n > f.count {
			f.pending, f.count = pr.Sensor, n
		}
	}
	return f
}

func hasHave(items []string) string {
	if len(items) > 1 {
		return "have"
	}
	return "has"
}

func holdMessage(target string, cur int32, d AutoscaleDecision, best int, f sensorFailures) string {
	var why []string
	for _, p := range d.Proposals {
		if !p.Available && !p.Fallback {
			why = append(why, p.Message)
		}
	}
	var msg string
	if best < 0 {
		msg = fmt.Sprintf("Holding %s at %s: no metric is available (%s), and missing data never scales down.",
			target, replicas(cur), strings.Join(why, "; "))
	} else {
		msg = fmt.Sprintf("Holding %s at %s: %s, and missing data never scales down.", target, replicas(cur), strings.Join(why, "; "))
		if r := d.Proposals[best].Replicas; r != cur {
			msg += fmt.Sprintf(" The available metrics recommend %d (%s).", r, d.Proposals[best].Message)
		}
	}
	if f.pending != "" {
		msg += fmt.Sprintf(" onSensorFailure falls back to %s once a sensor has failed %d consecutive polls (%s: %d).",
			replicas(f.replicas), f.threshold, f.pending, f.count)
	}
	return msg
}

// heldBack says, in a clause, why the decision does not go all the way to rec: a bound
// or rate policy, or else a stabilization window.
func heldBack(d AutoscaleDecision, b Behavior, minEffective, maxR, minR int32) string {
	if d.Limited {
		return limitWhy(d, b, minEffective, maxR, minR)
	}
	return windowWhy(d.Stabilization, b, d.NextCheck)
}

func movement(target string, cur, desired int32) string {
	switch {
	case desired > cur:
		return fmt.Sprintf("Scaling %s up from %d to %s", target, cur, replicas(desired))
	case desired < cur:
		return fmt.Sprintf("Scaling %s down from %d to %s", target, cur, replicas(desired))
	}
	return fmt.Sprintf("Keeping %s at %s", target, replicas(cur))
}

func limitWhy(d AutoscaleDecision, b Behavior, minEffective, maxR, minR int32) string {
	until := ""
	if !d.NextCheck.IsZero() {
		until = " before " + stamp(d.NextCheck)
	}
	switch d.Limit {
	case ReasonTooManyReplicas:
		return fmt.Sprintf("maxReplicas is %d (%s)", maxR, d.Limit)
	case ReasonTooFewReplicas:
		if minEffective > minR {
			return fmt.Sprintf("a metric is active, so at least %s stays; minReplicas 0 scales to zero only when every metric is idle (%s)", replicas(minEffective), d.Limit)
		}
		return fmt.Sprintf("minReplicas is %d (%s)", minR, d.Limit)
	case ReasonScaleUpLimit:
		if b.ScaleUp.SelectPolicy == autoscalingv2.DisabledPolicySelect {
			return fmt.Sprintf("behavior.scaleUp.selectPolicy is Disabled (%s)", d.Limit)
		}
		return fmt.Sprintf("behavior.scaleUp's policies allow no more%s (%s)", until, d.Limit)
	default: // ScaleDownLimit
		if b.ScaleDown.SelectPolicy == autoscalingv2.DisabledPolicySelect {
			return fmt.Sprintf("behavior.scaleDown.selectPolicy is Disabled (%s)", d.Limit)
		}
		return fmt.Sprintf("behavior.scaleDown's policies allow no fewer%s (%s)", until, d.Limit)
	}
}

func windowWhy(reason string, b Behavior, until time.Time) string {
	when := ""
	if !until.IsZero() {
		when = " until at least " + stamp(until)
	}
	if reason == ReasonScaleDownStabilized {
		return fmt.Sprintf("higher recommendations within the %s scale-down stabilization window hold it%s (%s)", b.ScaleDown.StabilizationWindow, when, reason)
	}
	return fmt.Sprintf("lower recommendations within the %s scale-up stabilization window hold it%s (%s)", b.ScaleUp.StabilizationWindow, when, reason)
}

func earliest(ts ...time.Time) time.Time {
	var first time.Time
	for _, t := range ts {
		if !t.IsZero() && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	return first
}

func replicas(n int32) string {
	if n == 1 {
		return "1 replica"
	}
	return fmt.Sprintf("%d replicas", n)
}

// num formats a reading for a message: at most four decimals, no exponent for ordinary
// values.
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) >= 1e15 {
		return strconv.FormatFloat(v, 'g', 6, 64)
	}
	return strconv.FormatFloat(math.Round(v*1e4)/1e4, 'f', -1, 64)
}
