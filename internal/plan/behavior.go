package plan

import (
	"math"
	"slices"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// This file reproduces the HPA's autoscaling/v2 behavior: the defaults, the stabilization
// windows and the rate policies. The maths follows kube-controller-manager's
// pkg/controller/podautoscaler/horizontal.go (normalizeDesiredReplicasWithBehaviors,
// stabilizeRecommendationWithBehaviors, convertDesiredReplicasWithBehaviorRate,
// calculateScaleUpLimitWithScalingRules, calculateScaleDownLimitWithBehaviors,
// getReplicasChangePerPeriod) and the defaults of pkg/apis/autoscaling/v2/defaults.go;
// the code is our own. Where the HPA keeps its history in memory, the caller keeps it
// (see Recommendation and ScaleEvent) and passes it in, so every decision is pure.

const (
	// DefaultTolerance is the HPA's tolerance when behavior sets none: the ratio of a
	// metric to its target must leave [1-tolerance, 1+tolerance] before replicas change
	// (kube-controller-manager --horizontal-pod-autoscaler-tolerance, default 0.1).
	DefaultTolerance = 0.1
	// DefaultScaleDownStabilization is behavior.scaleDown.stabilizationWindowSeconds when
	// unset (kube-controller-manager --horizontal-pod-autoscaler-downscale-stabilization).
	DefaultScaleDownStabilization = 5 * time.Minute
)

// Recommendation is one unstabilized recommendation of an autoscaler: the replicas its
// metrics asked for at a time, before stabilization windows and rate policies. The
// stabilization windows are computed over them (scale up takes the lowest within
// behavior.scaleUp's window, scale down the highest within behavior.scaleDown's).
type Recommendation struct {
	// Time is when the recommendation was made.
	Time time.Time
	// Replicas is what the metrics recommended.
	Replicas int32
}

// ScaleEvent is one change of replicas the autoscaler made; the rate policies count the
// changes within each policy's period.
type ScaleEvent struct {
	// Time is when the replicas changed.
	Time time.Time
	// Delta is the change: positive for a scale up, negative for a scale down.
	Delta int32
}

// ScalingRules is one direction of an autoscaler's behavior with every default filled in.
type ScalingRules struct {
	// StabilizationWindow is how far back recommendations count.
	StabilizationWindow time.Duration
	// SelectPolicy is Max (the policy allowing the largest change wins), Min, or Disabled
	// (no scaling in this direction).
	SelectPolicy autoscalingv2.ScalingPolicySelect
	// Policies bound the change within their periods.
	Policies []autoscalingv2.HPAScalingPolicy
	// Tolerance is the fraction by which the metric must pass its target in this
	// direction before replicas change.
	Tolerance float64
}

// Behavior is an autoscaler's behavior with the HPA's defaults filled in.
type Behavior struct {
	// ScaleUp rules apply when the recommendation is above the current replicas.
	ScaleUp ScalingRules
	// ScaleDown rules apply when it is below.
	ScaleDown ScalingRules
}

// ResolveBehavior fills in the HPA's defaults for what b leaves unset, field by field,
// as the API server does for autoscaling/v2 (SetDefaults_HorizontalPodAutoscalerBehavior)
// and the controller does for the scale-down window: scale up has no stabilization,
// selectPolicy Max and the policies "100% or 4 pods per 15s"; scale down has a 300s
// window, selectPolicy Max and "100% per 15s"; both have a 10% tolerance. An absent
// behavior is treated as `behavior: {}` (every default), and an empty policy list as
// unset. Negative windows and tolerances count as zero and the default.
func ResolveBehavior(b *autoscalingv2.HorizontalPodAutoscalerBehavior) Behavior {
	up := ScalingRules{
		SelectPolicy: autoscalingv2.MaxChangePolicySelect,
		Policies: []autoscalingv2.HPAScalingPolicy{
			{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
			{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
		},
		Tolerance: DefaultTolerance,
	}
	down := ScalingRules{
		StabilizationWindow: DefaultScaleDownStabilization,
		SelectPolicy:        autoscalingv2.MaxChangePolicySelect,
		Policies: []autoscalingv2.HPAScalingPolicy{
			{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
		},
		Tolerance: DefaultTolerance,
	}
	if b != nil {
		mergeRules(&up, b.ScaleUp)
		mergeRules(&down, b.ScaleDown)
	}
	return Behavior{ScaleUp: up, ScaleDown: down}
}

func mergeRules(to *ScalingRules, from *autoscalingv2.HPAScalingRules) {
	if from == nil {
		return
	}
	if from.StabilizationWindowSeconds != nil {
		to.StabilizationWindow = time.Duration(max(*from.StabilizationWindowSeconds, 0)) * time.Second
	}
	if from.SelectPolicy != nil {
		to.SelectPolicy = *from.SelectPolicy
	}
	if len(from.Policies) > 0 {
		to.Policies = slices.Clone(from.Policies)
	}
	if from.Tolerance != nil {
		if t := from.Tolerance.AsApproximateFloat64(); t >= 0 && !math.IsInf(t, 0) {
			to.Tolerance = t
		}
	}
}

// within is the HPA's tolerance test (replica_calculator.go Tolerances.isWithin): a usage
// ratio inside [1-scaleDown.tolerance, 1+scaleUp.tolerance] changes nothing.
func (b Behavior) within(ratio float64) bool {
	return 1-b.ScaleDown.Tolerance <= ratio && ratio <= 1+b.ScaleUp.Tolerance
}

// Stabilization reasons, as the HPA's AbleToScale condition words them.
const (
	ReasonScaleUpStabilized   = "ScaleUpStabilized"
	ReasonScaleDownStabilized = "ScaleDownStabilized"
)

// stabilize is the HPA's stabilizeRecommendationWithBehaviors without the recording: it
// brings current towards desired, but no further than the lowest recommendation within
// the scale-up window and the highest within the scale-down window, desired included.
// until is the earliest time one of the recommendations that held desired back leaves
// its window (zero when none did).
func stabilize(b Behavior, history []Recommendation, now time.Time, current, desired int32) (int32, string, time.Time) {
	upCutoff := now.Add(-b.ScaleUp.StabilizationWindow)
	downCutoff := now.Add(-b.ScaleDown.StabilizationWindow)
	upRec, downRec := desired, desired
	for _, r := range history {
		if r.Time.After(upCutoff) {
			upRec = min(upRec, r.Replicas)
		}
		if r.Time.After(downCutoff) {
			downRec = max(downRec, r.Replicas)
		}
	}
	rec := current
	if rec < upRec {
		rec = upRec
	}
	if rec > downRec {
		rec = downRec
	}
	reason := ReasonScaleUpStabilized
	if desired < current {
		reason = ReasonScaleDownStabilized
	}
	var until time.Time
	switch {
	case rec > desired: // a higher recommendation within the scale-down window holds
		until = earliestExpiry(history, downCutoff, b.ScaleDown.StabilizationWindow, func(r int32) bool { return r > desired })
	case rec < desired: // a lower recommendation within the scale-up window holds
		until = earliestExpiry(history, upCutoff, b.ScaleUp.StabilizationWindow, func(r int32) bool { return r < desired })
	}
	return rec, reason, until
}

func earliestExpiry(history []Recommendation, cutoff time.Time, window time.Duration, binds func(int32) bool) time.Time {
	var first time.Time
	for _, r := range history {
		if r.Time.After(cutoff) && binds(r.Replicas) {
			if exp := r.Time.Add(window); first.IsZero() || exp.Before(first) {
				first = exp
			}
		}
	}
	return first
}

// Limits that cut a recommendation, as the HPA's ScalingLimited condition words them.
const (
	ReasonTooManyReplicas = "TooManyReplicas"
	ReasonTooFewReplicas  = "TooFewReplicas"
	ReasonScaleUpLimit    = "ScaleUpLimit"
	ReasonScaleDownLimit  = "ScaleDownLimit"
)

// limitRate is the HPA's convertDesiredReplicasWithBehaviorRate: a scale up stops at the
// lower of maxReplicas and what the scale-up policies allow now, a scale down at the
// higher of minReplicas and what the scale-down policies allow. limit names the bound
// that cut desired ("" when none did); until is when the scale events that tightened a
// rate limit start to leave their periods (zero when no rate limit cut).
func limitRate(b Behavior, events []ScaleEvent, now time.Time, current, desired, minReplicas, maxReplicas int32) (int32, string, time.Time) {
	switch {
	case desired > current:
		limit := scaleUpLimit(b.ScaleUp, events, now, current)
		if limit < current {
			// Do not scale up until older scale ups have left their periods.
			limit = current
		}
		allowed, why := maxReplicas, ReasonTooManyReplicas
		if allowed > limit {
			allowed, why = limit, ReasonScaleUpLimit
		}
		if desired > allowed {
			return allowed, why, rateUntil(why == ReasonScaleUpLimit, b.ScaleUp, events, now)
		}
	case desired < current:
		limit := scaleDownLimit(b.ScaleDown, events, now, current)
		if limit > current {
			// Do not scale down until older scale downs have left their periods.
			limit = current
		}
		allowed, why := minReplicas, ReasonTooFewReplicas
		if allowed < limit {
			allowed, why = limit, ReasonScaleDownLimit
		}
		if desired < allowed {
			return allowed, why, rateUntil(why == ReasonScaleDownLimit, b.ScaleDown, events, now)
		}
	}
	return desired, "", time.Time{}
}

// scaleUpLimit is the HPA's calculateScaleUpLimitWithScalingRules: for each policy, the
// replicas at the start of its period (current, less the scale ups and plus the scale
// downs within the period) plus the policy's allowance (Pods: value; Percent: value% of
// the start, rounded up); selectPolicy Max takes the highest, Min the lowest, Disabled
// allows no change.
func scaleUpLimit(r ScalingRules, events []ScaleEvent, now time.Time, current int32) int32 {
	if r.SelectPolicy == autoscalingv2.DisabledPolicySelect {
		return current
	}
	pickMin := r.SelectPolicy == autoscalingv2.MinChangePolicySelect
	result := int64(math.MinInt32)
	if pickMin {
		result = math.MaxInt32
	}
	for _, p := range r.Policies {
		added, deleted := replicasChangedInPeriod(events, now, p.PeriodSeconds)
		start := int64(current) - added + deleted
		var proposed int64
		switch p.Type {
		case autoscalingv2.PodsScalingPolicy:
			proposed = start + int64(p.Value)
		case autoscalingv2.PercentScalingPolicy:
			// Rounded up, so that a small percentage still adds a replica.
			proposed = floatToInt64(math.Ceil(float64(start) * (1 + float64(p.Value)/100)))
		default:
			continue
		}
		if pickMin {
			result = min(result, proposed)
		} else {
			result = max(result, proposed)
		}
	}
	return clampInt32(result)
}

// scaleDownLimit is the HPA's calculateScaleDownLimitWithBehaviors: for each policy, the
// replicas at the start of its period less the policy's allowance (Pods: value; Percent:
// value% of the start, the remainder truncated); selectPolicy Max takes the lowest (the
// largest change), Min the highest, Disabled allows no change.
func scaleDownLimit(r ScalingRules, events []ScaleEvent, now time.Time, current int32) int32 {
	if r.SelectPolicy == autoscalingv2.DisabledPolicySelect {
		return current
	}
	pickMin := r.SelectPolicy == autoscalingv2.MinChangePolicySelect
	result := int64(math.MaxInt32)
	if pickMin {
		result = math.MinInt32
	}
	for _, p := range r.Policies {
		added, deleted := replicasChangedInPeriod(events, now, p.PeriodSeconds)
		start := int64(current) - added + deleted
		var proposed int64
		switch p.Type {
		case autoscalingv2.PodsScalingPolicy:
			proposed = start - int64(p.Value)
		case autoscalingv2.PercentScalingPolicy:
			proposed = floatToInt64(float64(start) * (1 - float64(p.Value)/100))
		default:
			continue
		}
		if pickMin {
			result = max(result, proposed)
		} else {
			result = min(result, proposed)
		}
	}
	return clampInt32(result)
}

// replicasChangedInPeriod is the HPA's getReplicasChangePerPeriod for both directions:
// the replicas added and removed by the events after now-period.
func replicasChangedInPeriod(events []ScaleEvent, now time.Time, periodSeconds int32) (added, deleted int64) {
	cutoff := now.Add(-time.Duration(periodSeconds) * time.Second)
	for _, e := range events {
		if !e.Time.After(cutoff) {
			continue
		}
		if e.Delta > 0 {
			added += int64(e.Delta)
		} else {
			deleted -= int64(e.Delta)
		}
	}
	return added, deleted
}

// rateUntil is the earliest time a scale event counted by one of the direction's
// policies leaves that policy's period: the rate limit may loosen then.
func rateUntil(cut bool, r ScalingRules, events []ScaleEvent, now time.Time) time.Time {
	if !cut {
		return time.Time{}
	}
	var first time.Time
	for _, p := range r.Policies {
		period := time.Duration(p.PeriodSeconds) * time.Second
		for _, e := range events {
			if e.Time.After(now.Add(-period)) {
				if exp := e.Time.Add(period); first.IsZero() || exp.Before(first) {
					first = exp
				}
			}
		}
	}
	return first
}

// CompactHistory returns the recommendations that can still change a stabilization
// decision at now or later: those within a window that no newer recommendation makes
// redundant. A recommendation older than another that is at least as high can never be
// the highest of the scale-down window again, and one older than another at least as low
// can never be the lowest of the scale-up window again; the rest are dropped. So the
// result decides every later stabilization exactly as the full history would (for the
// same behavior), and it is short: at most one entry per distinct replica count for each
// window, ordered by time. The input is not modified.
func CompactHistory(b Behavior, history []Recommendation, now time.Time) []Recommendation {
	h := slices.Clone(history)
	slices.SortStableFunc(h, func(a, c Recommendation) int { return a.Time.Compare(c.Time) })
	upCutoff := now.Add(-b.ScaleUp.StabilizationWindow)
	downCutoff := now.Add(-b.ScaleDown.StabilizationWindow)
	keep := make([]bool, len(h))
	// Walk from the newest: an entry is a candidate for the window's min (max) when it is
	// strictly lower (higher) than every newer entry.
	lowest, highest := int64(math.MaxInt64), int64(math.MinInt64)
	for i := len(h) - 1; i >= 0; i-- {
		r := int64(h[i].Replicas)
		if h[i].Time.After(upCutoff) && r < lowest {
			keep[i] = true
		}
		if h[i].Time.After(downCutoff) && r > highest {
			keep[i] = true
		}
		lowest, highest = min(lowest, r), max(highest, r)
	}
	out := h[:0]
	for i, r := range h {
		if keep[i] {
			out = append(out, r)
		}
	}
	return slices.Clip(out)
}

// MaxScaleEvents bounds the scale events RecordScaleEvent keeps. Past it, the oldest
// event is merged into the next event of the same direction (their changes added, at the
// later time): the merged change then counts for longer, so the rate of scaling in that
// direction can only be limited more, never less.
const MaxScaleEvents = 32

// RecordScaleEvent returns events with the change from -> to at now added, and without
// the events that no rate policy of behavior b counts any more (those older than the
// longest policy period of either direction: each direction's limit counts the other
// direction's events too). The HPA keeps the same events in memory; storeScaleEvent
// reuses the slot of an event older than its own direction's longest period, which can
// drop an event the other direction's longer period would still count: here it is kept.
// The input is not modified.
func RecordScaleEvent(b Behavior, events []ScaleEvent, now time.Time, from, to int32) []ScaleEvent {
	out := PruneScaleEvents(b, events, now)
	if from != to {
		out = append(out, ScaleEvent{Time: now, Delta: to - from})
	}
	for len(out) > MaxScaleEvents {
		out = mergeOldestEvent(out)
	}
	return out
}

// PruneScaleEvents returns the events some rate policy of b still counts at now or later,
// ordered by time. The input is not modified.
func PruneScaleEvents(b Behavior, events []ScaleEvent, now time.Time) []ScaleEvent {
	var longest int32
	for _, p := range slices.Concat(b.ScaleUp.Policies, b.ScaleDown.Policies) {
		longest = max(longest, p.PeriodSeconds)
	}
	cutoff := now.Add(-time.Duration(longest) * time.Second)
	var out []ScaleEvent
	for _, e := range events {
		if e.Time.After(cutoff) && e.Delta != 0 {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, c ScaleEvent) int { return a.Time.Compare(c.Time) })
	return out
}

func mergeOldestEvent(events []ScaleEvent) []ScaleEvent {
	if len(events) < 2 {
		return events
	}
	oldest := events[0]
	for i := 1; i < len(events); i++ {
		if (events[i].Delta > 0) == (oldest.Delta > 0) {
			events[i].Delta = clampInt32(int64(events[i].Delta) + int64(oldest.Delta))
			return events[1:]
		}
	}
	// No later event in the same direction: keep it, and merge the next oldest instead.
	rest := mergeOldestEvent(events[1:])
	return append([]ScaleEvent{oldest}, rest...)
}

func clampInt32(v int64) int32 {
	return int32(min(max(v, math.MinInt32), math.MaxInt32))
}

// floatToInt64 truncates towards zero like Go's conversion, but saturates instead of
// overflowing, and maps NaN to 0.
func floatToInt64(f float64) int64 {
	switch {
	case math.IsNaN(f):
		return 0
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}
