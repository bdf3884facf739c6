package plan

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// asNow is the fake clock of the autoscale tests.
var asNow = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

func asI32(v int32) *int32 { return &v }

func asQty(s string) *resource.Quantity { q := resource.MustParse(s); return &q }

func asStr(s string) *string { return &s }

func valueMetric(sensor, target string) v1alpha1.AutoscaleMetric {
	return v1alpha1.AutoscaleMetric{Sensor: sensor, Target: &v1alpha1.MetricTarget{Value: asQty(target)}}
}

func averageMetric(sensor, target string) v1alpha1.AutoscaleMetric {
	return v1alpha1.AutoscaleMetric{Sensor: sensor, Target: &v1alpha1.MetricTarget{AverageValue: asQty(target)}}
}

func utilizationMetric(sensor string, target int32) v1alpha1.AutoscaleMetric {
	return v1alpha1.AutoscaleMetric{Sensor: sensor, Target: &v1alpha1.MetricTarget{AverageUtilization: asI32(target)}}
}

func bandMetric(sensor, lower, upper string) v1alpha1.AutoscaleMetric {
	return v1alpha1.AutoscaleMetric{Sensor: sensor, Band: &v1alpha1.Band{Lower: lower, Upper: upper}}
}

func withActivation(m v1alpha1.AutoscaleMetric, t string) v1alpha1.AutoscaleMetric {
	m.ActivationThreshold = asStr(t)
	return m
}

// scaler is an autoscale policy for component web.
func webScaler(minReplicas, maxReplicas int32, metrics ...v1alpha1.AutoscaleMetric) v1alpha1.AutoscalePolicy {
	return v1alpha1.AutoscalePolicy{Component: "web", MinReplicas: asI32(minReplicas), MaxReplicas: maxReplicas, Metrics: metrics}
}

// immediate sets both stabilization windows to zero, so a test sees the metric maths and
// the rate policies alone.
func immediate(p v1alpha1.AutoscalePolicy) v1alpha1.AutoscalePolicy {
	p.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{
		ScaleUp:   &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: asI32(0)},
		ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: asI32(0)},
	}
	return p
}

func metricReading(sensor string, v float64) MetricInput {
	return MetricInput{Sensor: sensor, Value: v, Available: true}
}

func podsReading(sensor string, v float64, ready, missing, unready int32) MetricInput {
	return MetricInput{Sensor: sensor, Value: v, Available: true, ReadyPods: ready, MissingPods: missing, UnreadyPods: unready}
}

func unavailableReading(sensor string) MetricInput { return MetricInput{Sensor: sensor} }

// settled is a history whose only recommendation is long past every window: the
// autoscaler is not new, and nothing holds it back.
var settled = []Recommendation{{Time: asNow.Add(-time.Hour), Replicas: 1}}

func TestAutoscale(t *testing.T) {
	cpu50 := utilizationMetric("cpu", 50)
	tolerant := func(up, down string) *autoscalingv2.HorizontalPodAutoscalerBehavior {
		b := immediate(v1alpha1.AutoscalePolicy{}).Behavior
		b.ScaleUp.Tolerance, b.ScaleDown.Tolerance = asQty(up), asQty(down)
		return b
	}
	withBehavior := func(p v1alpha1.AutoscalePolicy, b *autoscalingv2.HorizontalPodAutoscalerBehavior) v1alpha1.AutoscalePolicy {
		p.Behavior = b
		return p
	}
	fallback := func(p v1alpha1.AutoscalePolicy, replicas, threshold int32) v1alpha1.AutoscalePolicy {
		p.OnSensorFailure = &v1alpha1.SensorFailurePolicy{Mode: v1alpha1.SensorFailureFallback, Replicas: asI32(replicas), FailureThreshold: threshold}
		return p
	}
	predictive := func(p v1alpha1.AutoscalePolicy) v1alpha1.AutoscalePolicy {
		p.Predictive = &v1alpha1.PredictiveScaling{Lookahead: metav1.Duration{Duration: 2 * time.Minute}}
		return p
	}
	percentOnlyUp := func(p v1alpha1.AutoscalePolicy) v1alpha1.AutoscalePolicy {
		p.Behavior.ScaleUp.Policies = []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}}
		return p
	}

	cases := []struct {
		name      string
		policy    v1alpha1.AutoscalePolicy
		current   int32
		metrics   []MetricInput
		history   []Recommendation // nil: settled
		fresh     bool             // no history at all
		events    []ScaleEvent
		failures  map[string]int32
		forecasts map[string]float64

		desired   int32
		reason    string
		limit     string
		message   string // a substring of the message
		nextCheck time.Duration
	}{
		// value: the metric as a whole, like the HPA's Object and External Value targets.
		{name: "value: twice the target doubles the replicas", policy: immediate(webScaler(1, 20, valueMetric("queue", "100"))),
			current: 4, metrics: []MetricInput{metricReading("queue", 200)}, desired: 8, reason: ReasonScaleUp,
			message: "Scaling web up from 4 to 8 replicas: queue is 200 against a target value of 100, and asks for 8 replicas."},
		{name: "value: 10% above the target is within the default tolerance", policy: immediate(webScaler(1, 20, valueMetric("queue", "100"))),
			current: 4, metrics: []MetricInput{metricReading("queue", 110)}, desired: 4, reason: ReasonSteady, message: "within tolerance"},
		{name: "value: just past the tolerance scales up, rounding up", policy: immediate(webScaler(1, 20, valueMetric("queue", "100"))),
			current: 4, metrics: []MetricInput{metricReading("queue", 111)}, desired: 5, reason: ReasonScaleUp},
		{name: "value: 10% below the target is within the default tolerance", policy: immediate(webScaler(1, 20, valueMetric("queue", "100"))),
			current: 4, metrics: []MetricInput{metricReading("queue", 90)}, desired: 4, reason: ReasonSteady},
		{name: "value: half the target halves the replicas", policy: immediate(webScaler(1, 20, valueMetric("queue", "100"))),
			current: 4, metrics: []MetricInput{metricReading("queue", 50)}, desired: 2, reason: ReasonScaleDown,
			message: "Scaling web down from 4 to 2 replicas"},
		{name: "value: the ratio multiplies the ready pods when they are known", policy: immediate(webScaler(1, 20, valueMetric("queue", "100"))),
			current: 4, metrics: []MetricInput{podsReading("queue", 200, 3, 0, 1)}, desired: 6, reason: ReasonScaleUp},
		{name: "value: behavior's scale-up tolerance narrows the band above the target",
			policy:  withBehavior(webScaler(1, 20, valueMetric("queue", "100")), tolerant("0.05", "0.2")),
			current: 4, metrics: []MetricInput{metricReading("queue", 106)}, desired: 5, reason: ReasonScaleUp},
		{name: "value: behavior's scale-down tolerance widens the band below the target",
			policy:  withBehavior(webScaler(1, 20, valueMetric("queue", "100")), tolerant("0.05", "0.2")),
			current: 4, metrics: []MetricInput{metricReading("queue", 81)}, desired: 4, reason: ReasonSteady},

		// averageValue: the metric divided by the replicas, like External AverageValue.
		{name: "averageValue: the total over the per-replica target, rounded up", policy: immediate(webScaler(1, 20, averageMetric("backlog", "10"))),
			current: 5, metrics: []MetricInput{metricReading("backlog", 81)}, desired: 9, reason: ReasonScaleUp,
			message: "backlog is 81 against a target average of 10 per replica, and asks for 9 replicas"},
		{name: "averageValue: within tolerance of target times replicas holds", policy: immediate(webScaler(1, 20, averageMetric("backlog", "10"))),
			current: 5, metrics: []MetricInput{metricReading("backlog", 54)}, desired: 5, reason: ReasonSteady},
		{name: "averageValue: a small total scales down", policy: immediate(webScaler(1, 20, averageMetric("backlog", "10"))),
			current: 5, metrics: []MetricInput{metricReading("backlog", 20)}, desired: 2, reason: ReasonScaleDown},

		// averageUtilization: the HPA's resource maths and missing-data rules.
		{name: "utilization: twice the target doubles the replicas", policy: immediate(webScaler(1, 20, cpu50)),
			current: 4, metrics: []MetricInput{metricReading("cpu", 100)}, desired: 8, reason: ReasonScaleUp,
			message: "cpu is 100 against a target utilization of 50%, and asks for 8 replicas"},
		{name: "utilization: truncated to a whole percent, as the HPA does", policy: immediate(webScaler(1, 20, cpu50)),
			current: 4, metrics: []MetricInput{metricReading("cpu", 55.9)}, desired: 4, reason: ReasonSteady},
		{name: "utilization: a missing pod counts as 100% on a scale down", policy: immediate(webScaler(1, 20, cpu50)),
			current: 5, metrics: []MetricInput{podsReading("cpu", 20, 4, 1, 0)}, desired: 4, reason: ReasonScaleDown,
			message: "cpu is 20 against a target utilization of 50%, counting 1 pod without a metric as 100%, and asks for 4 replicas"},
		{name: "utilization: a ready pod without a metric counts as 0% on a scale up: 3 -> 6 at 150% over 2 of 3 pods, as the HPA",
			policy:  webScaler(1, 10, cpu50), // the default behavior, as the HPA's
			current: 3, metrics: []MetricInput{podsReading("cpu", 150, 2, 1, 0)}, desired: 6, reason: ReasonScaleUp,
			message: "Scaling web up from 3 to 6 replicas: cpu is 150 against a target utilization of 50%, counting 1 pod without a metric as 0%, and asks for 6 replicas."},
		{name: "utilization: without the pods, the replicas count as ready: 3 x 150/50 = 9, cut to 7 by the default scale-up policies",
			policy:  webScaler(1, 10, cpu50),
			current: 3, metrics: []MetricInput{metricReading("cpu", 150)}, desired: 7, reason: ReasonScalingLimited, limit: ReasonScaleUpLimit},
		{name: "utilization: missing pods count as 0% on a scale up, damping it to nothing", policy: immediate(webScaler(1, 20, cpu50)),
			current: 4, metrics: []MetricInput{podsReading("cpu", 100, 2, 2, 0)}, desired: 4, reason: ReasonSteady},
		{name: "utilization: unready pods count as 0% on a scale up", policy: immediate(webScaler(1, 20, cpu50)),
			current: 4, metrics: []MetricInput{podsReading("cpu", 150, 2, 0, 2)}, desired: 6, reason: ReasonScaleUp,
			message: "cpu is 150 against a target utilization of 50%, counting 2 pods not ready as 0%, and asks for 6 replicas"},
		{name: "utilization: the assumptions never flip a scale up into a scale down", policy: immediate(webScaler(1, 20, cpu50)),
			current: 4, metrics: []MetricInput{podsReading("cpu", 90, 2, 0, 2)}, desired: 4, reason: ReasonSteady},
		{name: "utilization: the assumptions never flip a scale down into a scale up", policy: immediate(webScaler(1, 20, cpu50)),
			current: 4, metrics: []MetricInput{podsReading("cpu", 40, 1, 3, 0)}, desired: 4, reason: ReasonSteady},
		{name: "utilization: more pods than replicas never turn a scale down into a scale up", policy: immediate(webScaler(1, 20, cpu50)),
			current: 2, metrics: []MetricInput{podsReading("cpu", 10, 3, 1, 0)}, desired: 2, reason: ReasonSteady},
		{name: "utilization: unready pods are ignored on a scale down", policy: immediate(webScaler(1, 20, cpu50)),
			current: 4, metrics: []MetricInput{podsReading("cpu", 10, 2, 0, 2)}, desired: 1, reason: ReasonScaleDown},
		{name: "utilization: above 100%, missing pods count at the target on a scale down",
			policy:  immediate(webScaler(1, 20, utilizationMetric("cpu", 150))),
			current: 4, metrics: []MetricInput{podsReading("cpu", 60, 3, 1, 0)}, desired: 3, reason: ReasonScaleDown},
		{name: "utilization: no ready pod with a metric makes the metric unavailable", policy: immediate(webScaler(1, 20, cpu50)),
			current: 4, metrics: []MetricInput{podsReading("cpu", 0, 0, 4, 0)}, desired: 4, reason: ReasonSensorUnavailable,
			message: "cpu cannot be used: no ready pod reported a metric"},

		// band: Apache Brooklyn's watermarks over a per-replica average.
		{name: "band: hot spreads the load at the upper watermark", policy: immediate(webScaler(1, 20, bandMetric("latency", "0.1", "0.3"))),
			current: 4, metrics: []MetricInput{metricReading("latency", 0.45)}, desired: 6, reason: ReasonScaleUp,
			message: "latency is 0.45, above the band [0.1, 0.3], and asks for 6 replicas"},
		{name: "band: cold spreads the load at the lower watermark", policy: immediate(webScaler(1, 20, bandMetric("latency", "0.1", "0.3"))),
			current: 10, metrics: []MetricInput{metricReading("latency", 0.05)}, desired: 5, reason: ReasonScaleDown,
			message: "below the band [0.1, 0.3]"},
		{name: "band: cold is raised until it would not at once be hot", policy: immediate(webScaler(1, 20, bandMetric("latency", "0.4", "0.45"))),
			current: 5, metrics: []MetricInput{metricReading("latency", 0.1)}, desired: 2, reason: ReasonScaleDown},
		{name: "band: between the watermarks holds", policy: immediate(webScaler(1, 20, bandMetric("latency", "0.1", "0.3"))),
			current: 7, metrics: []MetricInput{metricReading("latency", 0.2)}, desired: 7, reason: ReasonSteady, message: "within the band"},
		{name: "band: a zero metric asks for zero, which minReplicas lifts", policy: immediate(webScaler(2, 20, bandMetric("latency", "0.1", "0.3"))),
			current: 3, metrics: []MetricInput{metricReading("latency", 0)}, desired: 2, reason: ReasonScalingLimited, limit: ReasonTooFewReplicas},
		{name: "band: invalid watermarks make the metric unavailable", policy: immediate(webScaler(1, 20, bandMetric("latency", "0.3", "0.1"))),
			current: 3, metrics: []MetricInput{metricReading("latency", 0.01)}, desired: 3, reason: ReasonSensorUnavailable,
			message: "latency cannot be used"},

		// Targets that cannot be computed make the metric unavailable.
		{name: "a metric with neither target nor band is unavailable", policy: immediate(webScaler(1, 20, v1alpha1.AutoscaleMetric{Sensor: "queue"})),
			current: 3, metrics: []MetricInput{metricReading("queue", 1)}, desired: 3, reason: ReasonSensorUnavailable,
			message: "queue cannot be used: the metric sets neither target nor band"},
		{name: "a zero target value is unavailable", policy: immediate(webScaler(1, 20, valueMetric("queue", "0"))),
			current: 3, metrics: []MetricInput{metricReading("queue", 1)}, desired: 3, reason: ReasonSensorUnavailable,
			message: "target.value must be positive"},
		{name: "a zero target average is unavailable", policy: immediate(webScaler(1, 20, averageMetric("queue", "0"))),
			current: 3, metrics: []MetricInput{metricReading("queue", 1)}, desired: 3, reason: ReasonSensorUnavailable,
			message: "target.averageValue must be positive"},
		{name: "a zero target utilization is unavailable", policy: immediate(webScaler(1, 20, utilizationMetric("cpu", 0))),
			current: 3, metrics: []MetricInput{metricReading("cpu", 1)}, desired: 3, reason: ReasonSensorUnavailable,
			message: "target.averageUtilization must be positive"},
		{name: "a target with no member set is unavailable", policy: immediate(webScaler(1, 20, v1alpha1.AutoscaleMetric{Sensor: "queue", Target: &v1alpha1.MetricTarget{}})),
			current: 3, metrics: []MetricInput{metricReading("queue", 1)}, desired: 3, reason: ReasonSensorUnavailable,
			message: "the target sets none of value, averageValue, averageUtilization"},
		{name: "a policy without metrics keeps the replicas", policy: immediate(webScaler(1, 20)),
			current: 3, desired: 3, reason: ReasonSteady, message: "The policy has no metrics: keeping web at 3 replicas."},
		{name: "a shared policy's component is named generically", policy: func() v1alpha1.AutoscalePolicy {
			p := immediate(webScaler(1, 20, valueMetric("queue", "100")))
			p.Component = "*"
			return p
		}(), current: 30, metrics: []MetricInput{metricReading("queue", 1)}, desired: 20, reason: ReasonTooManyReplicas,
			limit: ReasonTooManyReplicas, message: "The component has 30 replicas"},

		// Several metrics: the largest recommendation wins.
		{name: "the largest recommendation of several metrics wins",
			policy:  immediate(webScaler(1, 20, cpu50, bandMetric("latency", "0.1", "0.3"))),
			current: 4, metrics: []MetricInput{metricReading("cpu", 75), metricReading("latency", 0.6)}, desired: 8, reason: ReasonScaleUp,
			message: "latency is 0.6, above the band"},
		{name: "a scale down needs every metric to agree",
			policy:  immediate(webScaler(1, 20, cpu50, bandMetric("latency", "0.1", "0.3"))),
			current: 4, metrics: []MetricInput{metricReading("cpu", 10), metricReading("latency", 0.2)}, desired: 4, reason: ReasonSteady},

		// Bounds, in the HPA's order: the current replicas first, then the recommendation.
		{name: "replicas above maxReplicas go to maxReplicas before any metric", policy: immediate(webScaler(1, 20, cpu50)),
			current: 25, metrics: []MetricInput{unavailableReading("cpu")}, desired: 20, reason: ReasonTooManyReplicas, limit: ReasonTooManyReplicas,
			message: "web has 25 replicas, above maxReplicas 20: scaling down to 20."},
		{name: "replicas below minReplicas go to minReplicas before any metric", policy: immediate(webScaler(2, 20, cpu50)),
			current: 1, metrics: []MetricInput{metricReading("cpu", 1)}, desired: 2, reason: ReasonTooFewReplicas, limit: ReasonTooFewReplicas,
			message: "web has 1 replica, below minReplicas 2: scaling up to 2."},
		{name: "a recommendation above maxReplicas is cut to it", policy: immediate(webScaler(1, 20, cpu50)),
			current: 10, metrics: []MetricInput{metricReading("cpu", 200)}, desired: 20, reason: ReasonScalingLimited, limit: ReasonTooManyReplicas,
			message: "Scaling web up from 10 to 20 replicas instead of 40: maxReplicas is 20 (TooManyReplicas)."},
		{name: "a recommendation faster than the scale-up policies is cut", policy: immediate(webScaler(1, 50, cpu50)),
			current: 10, metrics: []MetricInput{metricReading("cpu", 200)}, desired: 20, reason: ReasonScalingLimited, limit: ReasonScaleUpLimit,
			message: "behavior.scaleUp's policies allow no more (ScaleUpLimit)"},
		{name: "a recommendation below minReplicas is lifted to it", policy: immediate(webScaler(3, 20, cpu50)),
			current: 5, metrics: []MetricInput{metricReading("cpu", 5)}, desired: 3, reason: ReasonScalingLimited, limit: ReasonTooFewReplicas,
			message: "Scaling web down from 5 to 3 replicas instead of 1: minReplicas is 3 (TooFewReplicas)."},
		{name: "scale ups beyond the policies within their period hold further scale ups", policy: immediate(webScaler(1, 50, cpu50)),
			events:  []ScaleEvent{{Time: asNow.Add(-5 * time.Second), Delta: 10}},
			current: 12, metrics: []MetricInput{metricReading("cpu", 100)}, desired: 12, reason: ReasonScalingLimited, limit: ReasonScaleUpLimit,
			message: "Keeping web at 12 replicas instead of 24: behavior.scaleUp's policies allow no more before 2026-03-02T12:00:10Z", nextCheck: 10 * time.Second},
		{name: "scale downs beyond the policies within their period hold further scale downs",
			policy: func() v1alpha1.AutoscalePolicy {
				p := immediate(webScaler(1, 50, cpu50))
				p.Behavior.ScaleDown.Policies = []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 2, PeriodSeconds: 60}}
				return p
			}(),
			events:  []ScaleEvent{{Time: asNow.Add(-20 * time.Second), Delta: -5}},
			current: 12, metrics: []MetricInput{metricReading("cpu", 10)}, desired: 12, reason: ReasonScalingLimited, limit: ReasonScaleDownLimit,
			message: "behavior.scaleDown's policies allow no fewer before 2026-03-02T12:00:40Z (ScaleDownLimit)", nextCheck: 40 * time.Second},
		{name: "a disabled scale up says so", policy: func() v1alpha1.AutoscalePolicy {
			p := immediate(webScaler(1, 50, cpu50))
			p.Behavior.ScaleUp.SelectPolicy = selectPolicyOf(autoscalingv2.DisabledPolicySelect)
			return p
		}(), current: 10, metrics: []MetricInput{metricReading("cpu", 100)}, desired: 10, reason: ReasonScalingLimited, limit: ReasonScaleUpLimit,
			message: "behavior.scaleUp.selectPolicy is Disabled (ScaleUpLimit)"},
		{name: "a scale down part-way through the window goes to the highest recent recommendation",
			policy:  webScaler(1, 20, cpu50),
			history: []Recommendation{{Time: asNow.Add(-2 * time.Minute), Replicas: 6}},
			current: 10, metrics: []MetricInput{metricReading("cpu", 10)}, desired: 6, reason: ReasonScaleDown,
			message:   "The metrics recommend 2, but higher recommendations within the 5m0s scale-down stabilization window hold it until at least 2026-03-02T12:03:00Z (ScaleDownStabilized).",
			nextCheck: 3 * time.Minute},
		{name: "a missing metric and another asking for the current replicas hold",
			policy:  immediate(webScaler(1, 20, cpu50, valueMetric("queue", "100"))),
			current: 4, metrics: []MetricInput{unavailableReading("cpu"), metricReading("queue", 100)}, desired: 4, reason: ReasonSensorUnavailable,
			message: "Holding web at 4 replicas: cpu is unavailable, and missing data never scales down."},
		{name: "a new autoscaler does not scale down within the scale-down window", policy: webScaler(1, 20, cpu50), fresh: true,
			current: 8, metrics: []MetricInput{metricReading("cpu", 10)}, desired: 8, reason: ReasonScaleDownStabilized,
			message:   "higher recommendations within the 5m0s scale-down stabilization window hold it until at least 2026-03-02T12:05:00Z",
			nextCheck: 5 * time.Minute},

		// minReplicas 0: scale to zero and activation, KEDA-style.
		{name: "every metric idle scales to zero", policy: immediate(webScaler(0, 20, averageMetric("backlog", "10"))),
			current: 3, metrics: []MetricInput{metricReading("backlog", 0)}, desired: 0, reason: ReasonScaledToZero,
			message: "Every metric is idle (at or below its activation threshold): scaling web from 3 replicas to zero."},
		{name: "scale to zero waits for the scale-down stabilization window", policy: webScaler(0, 20, averageMetric("backlog", "10")),
			history: []Recommendation{{Time: asNow.Add(-time.Minute), Replicas: 3}},
			current: 3, metrics: []MetricInput{metricReading("backlog", 0)}, desired: 3, reason: ReasonScaleDownStabilized, nextCheck: 4 * time.Minute},
		{name: "below the activation threshold counts as idle", policy: immediate(webScaler(0, 20, withActivation(valueMetric("queue", "100"), "5"))),
			current: 2, metrics: []MetricInput{metricReading("queue", 4)}, desired: 0, reason: ReasonScaledToZero},
		{name: "idle on the way to zero, the scale down follows the window",
			policy:  webScaler(0, 20, averageMetric("backlog", "10")),
			history: []Recommendation{{Time: asNow.Add(-4 * time.Minute), Replicas: 2}},
			current: 5, metrics: []MetricInput{metricReading("backlog", 0)}, desired: 2, reason: ReasonScaleDown,
			message: "Scaling web down from 5 to 2 replicas: every metric is idle. The metrics recommend 0", nextCheck: time.Minute},
		{name: "an idle resource metric keeps a component at zero", policy: immediate(webScaler(0, 20, cpu50)),
			current: 0, metrics: []MetricInput{metricReading("cpu", 0)}, desired: 0, reason: ReasonScaledToZero},
		{name: "a forecast above the activation threshold activates",
			policy:  predictive(immediate(webScaler(0, 20, averageMetric("backlog", "10")))),
			current: 0, metrics: []MetricInput{metricReading("backlog", 0)}, forecasts: map[string]float64{"backlog": 12}, desired: 2, reason: ReasonActivated,
			message: "backlog is 12, above its activation threshold 0: activating web from zero to 2 replicas."},
		{name: "an activation threshold that is not a number counts as 0",
			policy:  immediate(webScaler(0, 20, withActivation(averageMetric("backlog", "10"), "many"))),
			current: 0, metrics: []MetricInput{metricReading("backlog", 1)}, desired: 1, reason: ReasonActivated},
		{name: "an idle component stays at zero", policy: immediate(webScaler(0, 20, averageMetric("backlog", "10"))),
			current: 0, metrics: []MetricInput{metricReading("backlog", 0)}, desired: 0, reason: ReasonScaledToZero,
			message: "web stays at zero replicas until one crosses its activation threshold"},
		{name: "a value at the activation threshold does not activate", policy: immediate(webScaler(0, 20, withActivation(valueMetric("queue", "100"), "5"))),
			current: 0, metrics: []MetricInput{metricReading("queue", 5)}, desired: 0, reason: ReasonScaledToZero},
		{name: "a value above the activation threshold activates, to the ratio rounded up", policy: immediate(webScaler(0, 20, withActivation(valueMetric("queue", "100"), "5"))),
			current: 0, metrics: []MetricInput{metricReading("queue", 250)}, desired: 3, reason: ReasonActivated,
			message: "queue is 250, above its activation threshold 5: activating web from zero to 3 replicas."},
		{name: "any positive value activates by default; averageValue divides by the target, not by zero replicas",
			policy:  immediate(webScaler(0, 20, averageMetric("backlog", "10"))),
			current: 0, metrics: []MetricInput{metricReading("backlog", 35)}, desired: 4, reason: ReasonActivated},
		{name: "activation is rate-limited beyond the first replica", policy: immediate(webScaler(0, 200, averageMetric("backlog", "1"))),
			current: 0, metrics: []MetricInput{metricReading("backlog", 100)}, desired: 4, reason: ReasonActivated, limit: ReasonScaleUpLimit},
		{name: "activation to one replica goes ahead of a percent-only scale-up policy",
			policy:  percentOnlyUp(immediate(webScaler(0, 20, averageMetric("backlog", "10")))),
			current: 0, metrics: []MetricInput{metricReading("backlog", 35)}, desired: 1, reason: ReasonActivated, limit: ReasonScaleUpLimit},
		{name: "activation to one replica goes ahead of a scale-up stabilization window",
			policy: func() v1alpha1.AutoscalePolicy {
				p := immediate(webScaler(0, 20, averageMetric("backlog", "10")))
				p.Behavior.ScaleUp.StabilizationWindowSeconds = asI32(60)
				return p
			}(),
			history: []Recommendation{{Time: asNow.Add(-30 * time.Second), Replicas: 0}},
			current: 0, metrics: []MetricInput{metricReading("backlog", 35)}, desired: 1, reason: ReasonActivated,
			message: "lower recommendations within the 1m0s scale-up stabilization window hold it until at least 2026-03-02T12:00:30Z", nextCheck: 30 * time.Second},
		{name: "a resource metric activates to one replica, having no pod to measure", policy: immediate(webScaler(0, 20, cpu50)),
			current: 0, metrics: []MetricInput{metricReading("cpu", 30)}, desired: 1, reason: ReasonActivated},
		{name: "an active metric keeps at least one replica", policy: immediate(webScaler(0, 20, cpu50)),
			current: 3, metrics: []MetricInput{metricReading("cpu", 0.5)}, desired: 1, reason: ReasonScalingLimited, limit: ReasonTooFewReplicas,
			message: "a metric is active, so at least 1 replica stays"},
		{name: "an unavailable sensor never lets the component scale to zero",
			policy:  immediate(webScaler(0, 20, averageMetric("backlog", "10"), valueMetric("queue", "100"))),
			current: 2, metrics: []MetricInput{metricReading("backlog", 0), unavailableReading("queue")}, desired: 2, reason: ReasonSensorUnavailable},
		{name: "zero replicas with minReplicas above zero disable autoscaling, as with the HPA", policy: immediate(webScaler(1, 20, cpu50)),
			current: 0, metrics: []MetricInput{metricReading("cpu", 90)}, desired: 0, reason: ReasonScalingDisabled,
			message: "web has 0 replicas and minReplicas is 1: autoscaling is off until the workload is scaled up by hand"},

		// onSensorFailure.
		{name: "Hold: an unavailable metric never lets the others scale down",
			policy:  immediate(webScaler(1, 20, cpu50, bandMetric("latency", "0.1", "0.3"))),
			current: 6, metrics: []MetricInput{unavailableReading("cpu"), metricReading("latency", 0.02)}, desired: 6, reason: ReasonSensorUnavailable,
			message: "Holding web at 6 replicas: cpu is unavailable, and missing data never scales down. The available metrics recommend 1 (latency is 0.02, below the band [0.1, 0.3], and asks for 1 replica)."},
		{name: "Hold: another metric asking for more still scales up",
			policy:  immediate(webScaler(1, 20, cpu50, bandMetric("latency", "0.1", "0.3"))),
			current: 4, metrics: []MetricInput{unavailableReading("cpu"), metricReading("latency", 0.6)}, desired: 8, reason: ReasonScaleUp,
			message: "Sensor cpu is unavailable; the other metrics ask for at least the current replicas."},
		{name: "Hold: no metric available holds", policy: immediate(webScaler(1, 20, cpu50)),
			current: 4, metrics: nil, desired: 4, reason: ReasonSensorUnavailable,
			message: "Holding web at 4 replicas: no metric is available (cpu is unavailable), and missing data never scales down."},
		{name: "Hold: a reading that is not a number is unavailable", policy: immediate(webScaler(1, 20, cpu50)),
			current: 4, metrics: []MetricInput{metricReading("cpu", math.NaN())}, desired: 4, reason: ReasonSensorUnavailable},
		{name: "Fallback: below the failure threshold, the autoscaler holds", policy: fallback(immediate(webScaler(1, 20, cpu50)), 5, 3),
			current: 10, metrics: []MetricInput{unavailableReading("cpu")}, failures: map[string]int32{"cpu": 2}, desired: 10, reason: ReasonSensorUnavailable,
			message: "onSensorFailure falls back to 5 replicas once a sensor has failed 3 consecutive polls (cpu: 2)."},
		{name: "Fallback: at the failure threshold, the fallback replicas are the recommendation",
			policy:  fallback(immediate(webScaler(1, 20, cpu50)), 5, 3),
			current: 10, metrics: []MetricInput{unavailableReading("cpu")}, failures: map[string]int32{"cpu": 3}, desired: 5, reason: ReasonFallback,
			message: "Sensor cpu has failed 3 or more consecutive polls (onSensorFailure.failureThreshold): falling back to 5 replicas. Scaling web down from 10 to 5 replicas."},
		{name: "Fallback: the default threshold is 3", policy: fallback(immediate(webScaler(1, 20, cpu50)), 5, 0),
			current: 10, metrics: []MetricInput{unavailableReading("cpu")}, failures: map[string]int32{"cpu": 3}, desired: 5, reason: ReasonFallback},
		{name: "Fallback: the rate policies still apply", policy: fallback(immediate(webScaler(1, 20, cpu50)), 20, 3),
			current: 2, metrics: []MetricInput{unavailableReading("cpu")}, failures: map[string]int32{"cpu": 4}, desired: 6, reason: ReasonFallback, limit: ReasonScaleUpLimit,
			message: "falling back to 20 replicas. Scaling web up from 2 to 6 replicas for now: behavior.scaleUp's policies allow no more (ScaleUpLimit)."},
		{name: "Fallback: a working metric asking for more than the fallback wins",
			policy:  fallback(immediate(webScaler(1, 20, cpu50, bandMetric("latency", "0.1", "0.3"))), 5, 3),
			current: 10, metrics: []MetricInput{unavailableReading("cpu"), metricReading("latency", 0.45)}, failures: map[string]int32{"cpu": 3},
			desired: 15, reason: ReasonFallback,
			message: "falling back to 5 replicas. Metric latency is 0.45, above the band [0.1, 0.3], and asks for 15 replicas, more, so it wins. Scaling web up from 10 to 15 replicas."},
		{name: "Fallback: another sensor failing below the threshold still holds",
			policy:  fallback(immediate(webScaler(1, 20, cpu50, bandMetric("latency", "0.1", "0.3"))), 5, 3),
			current: 10, metrics: []MetricInput{unavailableReading("cpu"), unavailableReading("latency")}, failures: map[string]int32{"cpu": 3, "latency": 1},
			desired: 10, reason: ReasonSensorUnavailable,
			message: "Holding web at 10 replicas: latency is unavailable, and missing data never scales down. The available metrics recommend 5 (cpu is unavailable and has failed 3 consecutive polls, so it falls back to 5 replicas). onSensorFailure falls back to 5 replicas once a sensor has failed 3 consecutive polls (latency: 1)."},
		{name: "Fallback: several failed sensors fall back together",
			policy:  fallback(immediate(webScaler(1, 20, cpu50, bandMetric("latency", "0.1", "0.3"))), 5, 3),
			current: 10, metrics: nil, failures: map[string]int32{"cpu": 3, "latency": 7}, desired: 5, reason: ReasonFallback,
			message: "Sensor cpu, latency have failed 3 or more consecutive polls"},
		{name: "Fallback: a sensor that recovered does not fall back", policy: fallback(immediate(webScaler(1, 20, cpu50)), 5, 3),
			current: 10, metrics: []MetricInput{metricReading("cpu", 50)}, failures: map[string]int32{"cpu": 9}, desired: 10, reason: ReasonSteady},

		// predictive: a forecast only ever scales up.
		{name: "predictive: a forecast above the value scales up ahead of the load",
			policy:  predictive(immediate(webScaler(1, 20, averageMetric("backlog", "10")))),
			current: 5, metrics: []MetricInput{metricReading("backlog", 50)}, forecasts: map[string]float64{"backlog": 80}, desired: 8, reason: ReasonScaleUp,
			message: "backlog is 50 and forecast to reach 80 within 2m0s against a target average of 10 per replica, and asks for 8 replicas"},
		{name: "predictive: a forecast below the value never scales down",
			policy:  predictive(immediate(webScaler(1, 20, averageMetric("backlog", "10")))),
			current: 5, metrics: []MetricInput{metricReading("backlog", 50)}, forecasts: map[string]float64{"backlog": 10}, desired: 5, reason: ReasonSteady},
		{name: "predictive: a scale down goes by the current value when the forecast is lower",
			policy:  predictive(immediate(webScaler(1, 20, averageMetric("backlog", "10")))),
			current: 5, metrics: []MetricInput{metricReading("backlog", 20)}, forecasts: map[string]float64{"backlog": 5}, desired: 2, reason: ReasonScaleDown},
		{name: "predictive: a forecast above the value holds off a scale down",
			policy:  predictive(immediate(webScaler(1, 20, averageMetric("backlog", "10")))),
			current: 5, metrics: []MetricInput{metricReading("backlog", 20)}, forecasts: map[string]float64{"backlog": 48}, desired: 5, reason: ReasonSteady},
		{name: "predictive: forecasts are ignored unless predictive is set", policy: immediate(webScaler(1, 20, averageMetric("backlog", "10"))),
			current: 5, metrics: []MetricInput{metricReading("backlog", 50)}, forecasts: map[string]float64{"backlog": 80}, desired: 5, reason: ReasonSteady},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			history := c.history
			if history == nil && !c.fresh {
				history = settled
			}
			in := AutoscaleInput{Now: asNow, Policy: c.policy, CurrentReplicas: c.current, Metrics: c.metrics,
				History: history, ScaleEvents: c.events, ConsecutiveFailures: c.failures, Forecasts: c.forecasts}
			d := Autoscale(in)
			if d.Desired != c.desired || d.Reason != c.reason {
				t.Fatalf("got %d (%s), want %d (%s): %s", d.Desired, d.Reason, c.desired, c.reason, d.Message)
			}
			if d.Limit != c.limit || d.Limited != (c.limit != "") {
				t.Errorf("limit %q (limited %v), want %q", d.Limit, d.Limited, c.limit)
			}
			if !strings.Contains(d.Message, c.message) {
				t.Errorf("message %q does not contain %q", d.Message, c.message)
			}
			var want time.Time
			if c.nextCheck != 0 {
				want = asNow.Add(c.nextCheck)
			}
			if !d.NextCheck.Equal(want) {
				t.Errorf("next check %s, want %s", d.NextCheck, want)
			}
			if d.Scale() != (c.desired != c.current) {
				t.Errorf("Scale() is %v", d.Scale())
			}
			if len(d.Proposals) != len(c.policy.Metrics) {
				t.Errorf("%d proposals for %d metrics", len(d.Proposals), len(c.policy.Metrics))
			}
		})
	}
}

func TestAutoscaleRecordsTheUnstabilizedRecommendation(t *testing.T) {
	p := webScaler(1, 20, utilizationMetric("cpu", 50))
	d := Autoscale(AutoscaleInput{Now: asNow, Policy: p, CurrentReplicas: 8, Metrics: []MetricInput{metricReading("cpu", 10)}})
	// A new autoscaler starts from the current replicas, then records what the metric
	// asked for (2), although the window holds the replicas at 8.
	want := []Recommendation{{Time: asNow, Replicas: 8}, {Time: asNow, Replicas: 2}}
	if d.Desired != 8 || !slices.Equal(d.History, want) {
		t.Fatalf("desired %d, history %v; want 8 and %v", d.Desired, d.History, want)
	}
	// Five minutes later the recommendation of 8 has left the window and 2 wins.
	later := asNow.Add(5 * time.Minute)
	d = Autoscale(AutoscaleInput{Now: later, Policy: p, CurrentReplicas: 8, Metrics: []MetricInput{metricReading("cpu", 10)}, History: d.History})
	if d.Desired != 2 || d.Reason != ReasonScaleDown {
		t.Fatalf("after the window: %d (%s), want 2 (ScaleDown): %s", d.Desired, d.Reason, d.Message)
	}
	if want := []Recommendation{{Time: later, Replicas: 2}}; !slices.Equal(d.History, want) {
		t.Fatalf("history %v, want %v", d.History, want)
	}
}

func TestAutoscaleHoldRecordsNothing(t *testing.T) {
	p := immediate(webScaler(1, 20, utilizationMetric("cpu", 50), bandMetric("latency", "0.1", "0.3")))
	d := Autoscale(AutoscaleInput{Now: asNow, Policy: p, CurrentReplicas: 6, History: settled,
		Metrics: []MetricInput{unavailableReading("cpu"), metricReading("latency", 0.01)}})
	if d.Reason != ReasonSensorUnavailable || len(d.History) != 0 {
		t.Fatalf("got %s with history %v; want a hold that records nothing (the settled entry is past every window)", d.Reason, d.History)
	}
	if d.Recommended != 1 || !slices.Equal(d.Unavailable, []string{"cpu"}) {
		t.Fatalf("recommended %d, unavailable %v", d.Recommended, d.Unavailable)
	}
}

func TestAutoscaleDoesNotModifyItsInput(t *testing.T) {
	history := []Recommendation{{Time: asNow.Add(-time.Minute), Replicas: 9}, {Time: asNow.Add(-2 * time.Minute), Replicas: 4}}
	events := []ScaleEvent{{Time: asNow.Add(-5 * time.Second), Delta: 3}}
	h, e := slices.Clone(history), slices.Clone(events)
	in := AutoscaleInput{Now: asNow, Policy: webScaler(1, 20, averageMetric("backlog", "10")), CurrentReplicas: 6,
		Metrics: []MetricInput{metricReading("backlog", 200)}, History: history, ScaleEvents: events}
	first := Autoscale(in)
	second := Autoscale(in)
	if !slices.Equal(history, h) || !slices.Equal(events, e) {
		t.Fatal("Autoscale modified its input")
	}
	if first.Desired != second.Desired || first.Message != second.Message || !slices.Equal(first.History, second.History) {
		t.Fatal("the same input gave two decisions")
	}
}

// The message is whole, however many metrics it names: the controller, not the plan,
// bounds it to what status accepts.
func TestAutoscaleMessageNamesEveryUnavailableSensor(t *testing.T) {
	var metrics []v1alpha1.AutoscaleMetric
	var readings []MetricInput
	for _, s := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		name := strings.Repeat(s, 63)
		metrics = append(metrics, valueMetric(name, "1"))
		readings = append(readings, unavailableReading(name))
	}
	readings[0] = metricReading(metrics[0].Sensor, 100)
	d := Autoscale(AutoscaleInput{Now: asNow, Policy: webScaler(1, 20, metrics...), CurrentReplicas: 3, Metrics: readings, History: settled})
	for _, m := range metrics[1:] {
		if !strings.Contains(d.Message, m.Sensor) {
			t.Fatalf("the message does not name unavailable sensor %s: %s", m.Sensor[:3]+"...", d.Message)
		}
	}
}

func TestNumericEdges(t *testing.T) {
	for _, c := range []struct {
		in   float64
		want int32
	}{{math.NaN(), 0}, {-3, 0}, {0, 0}, {0.01, 1}, {2, 2}, {2.0001, 3}, {math.Inf(1), math.MaxInt32}, {1e300, math.MaxInt32}} {
		if got := ceilReplicas(c.in); got != c.want {
			t.Errorf("ceilReplicas(%v) = %d, want %d", c.in, got, c.want)
		}
	}
	if floatToInt64(math.Inf(-1)) != math.MinInt64 || floatToInt64(-2.7) != -2 {
		t.Error("floatToInt64 does not truncate and saturate")
	}
	if got := num(0.30000000000000004); got != "0.3" {
		t.Errorf("num(0.3...) = %q", got)
	}
	if got := num(1e20); got != "1e+20" {
		t.Errorf("num(1e20) = %q", got)
	}
}

// FuzzAutoscale drives the recommender with arbitrary policies, readings and histories
// and checks the invariants every decision keeps.
func FuzzAutoscale(f *testing.F) {
	f.Add([]byte{1, 10, 4, 0, 1, 0, 1, 200, 0, 0, 0})
	f.Add([]byte{0, 5, 3, 2, 2, 1, 0, 0, 3, 1, 5, 9, 2, 7, 1, 40})
	f.Add([]byte{2, 3, 25, 1, 1, 2, 1, 90, 4, 4, 4, 4})
	f.Add([]byte{0, 20, 0, 3, 3, 3, 1, 1, 1, 255, 255, 0, 17, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := fuzzInput(data)
		d := Autoscale(in)
		p := in.Policy
		minR, maxR := replicaBounds(p)
		cur := max(in.CurrentReplicas, 0)
		if d.Reason == "" || d.Message == "" {
			t.Fatalf("decision without reason or message: %q %q", d.Reason, d.Message)
		}
		if d.Reason == ReasonScalingDisabled {
			if d.Desired != 0 || cur != 0 {
				t.Fatalf("ScalingDisabled at %d replicas, desired %d", cur, d.Desired)
			}
		} else if d.Desired < minR || d.Desired > maxR {
			t.Fatalf("desired %d outside [%d, %d] (%s: %s)", d.Desired, minR, maxR, d.Reason, d.Message)
		}
		// A metric that is unavailable and has not fallen back (onSensorFailure Hold, or
		// Fallback below its threshold) never lets the replicas go down.
		missing := slices.ContainsFunc(d.Proposals, func(m MetricProposal) bool { return !m.Available && !m.Fallback })
		if missing && cur >= minR && cur <= maxR && d.Desired < cur {
			t.Fatalf("missing data scaled down from %d to %d (%s: %s)", cur, d.Desired, d.Reason, d.Message)
		}
		if missing && d.Reason == ReasonScaleDown {
			t.Fatalf("a scale down with missing data: %s", d.Message)
		}
		if d.Desired == 0 && cur > 0 && len(d.Unavailable) > 0 && d.Reason != ReasonFallback {
			t.Fatalf("scaled to zero with sensors unavailable: %s", d.Message)
		}
		if !d.NextCheck.IsZero() && !d.NextCheck.After(in.Now) {
			t.Fatalf("next check %s is not after now %s", d.NextCheck, in.Now)
		}
		b := ResolveBehavior(p.Behavior)
		if n := len(d.History); n > 2*(int(maxR)+1)+2 && n > len(in.History)+1 {
			t.Fatalf("history grew to %d entries", n)
		}
		if !slices.IsSortedFunc(d.History, func(a, c Recommendation) int { return a.Time.Compare(c.Time) }) {
			t.Fatal("history out of order")
		}
		again := Autoscale(in)
		if again.Desired != d.Desired || again.Message != d.Message || !slices.Equal(again.History, d.History) {
			t.Fatal("the same input gave two decisions")
		}
		if ev := RecordScaleEvent(b, in.ScaleEvents, in.Now, cur, d.Desired); len(ev) > MaxScaleEvents {
			t.Fatalf("%d scale events kept", len(ev))
		}
	})
}

// fuzzInput decodes arbitrary bytes into an autoscale input; missing bytes read as zero.
func fuzzInput(data []byte) AutoscaleInput {
	i := 0
	next := func() byte {
		if i >= len(data) {
			return 0
		}
		i++
		return data[i-1]
	}
	minR := int32(next() % 4)
	maxR := minR + int32(next()%20)
	if maxR == 0 {
		maxR = 1
	}
	in := AutoscaleInput{Now: asNow, CurrentReplicas: int32(next() % 30)}
	p := v1alpha1.AutoscalePolicy{Component: "web", MinReplicas: asI32(minR), MaxReplicas: maxR}
	switch next() % 4 {
	case 1:
		p.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{}
	case 2:
		p.Behavior = immediate(v1alpha1.AutoscalePolicy{}).Behavior
	case 3:
		sel := []autoscalingv2.ScalingPolicySelect{autoscalingv2.MaxChangePolicySelect, autoscalingv2.MinChangePolicySelect, autoscalingv2.DisabledPolicySelect}
		rules := func() *autoscalingv2.HPAScalingRules {
			s := sel[next()%3]
			return &autoscalingv2.HPAScalingRules{
				StabilizationWindowSeconds: asI32(int32(next()) * 4),
				SelectPolicy:               &s,
				Policies: []autoscalingv2.HPAScalingPolicy{
					{Type: autoscalingv2.PodsScalingPolicy, Value: int32(next() % 10), PeriodSeconds: int32(next())},
					{Type: autoscalingv2.PercentScalingPolicy, Value: int32(next()) * 4, PeriodSeconds: int32(next())},
				},
				Tolerance: resource.NewMilliQuantity(int64(next())*2, resource.DecimalSI),
			}
		}
		p.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: rules(), ScaleDown: rules()}
	}
	n := 1 + int(next()%3)
	for k := 0; k < n; k++ {
		name := string(rune('a' + k))
		var m v1alpha1.AutoscaleMetric
		switch next() % 4 {
		case 0:
			m = valueMetric(name, "100")
		case 1:
			m = averageMetric(name, "10")
		case 2:
			m = utilizationMetric(name, int32(next()%200))
		case 3:
			m = bandMetric(name, "0.2", "0.5")
		}
		if next()%3 == 0 {
			m.ActivationThreshold = asStr("5")
		}
		p.Metrics = append(p.Metrics, m)
		flags := next()
		v := float64(next())
		if flags&4 != 0 {
			v /= 100
		}
		r := MetricInput{Sensor: name, Value: v, Available: flags&1 == 0}
		if flags&2 != 0 {
			r.ReadyPods, r.MissingPods, r.UnreadyPods = int32(next()%6), int32(next()%4), int32(next()%4)
		}
		if flags&8 == 0 {
			in.Metrics = append(in.Metrics, r)
		}
		if flags&16 != 0 {
			if in.Forecasts == nil {
				in.Forecasts = map[string]float64{}
			}
			in.Forecasts[name] = float64(next())
		}
		if in.ConsecutiveFailures == nil {
			in.ConsecutiveFailures = map[string]int32{}
		}
		in.ConsecutiveFailures[name] = int32(next() % 5)
	}
	switch next() % 3 {
	case 1:
		p.OnSensorFailure = &v1alpha1.SensorFailurePolicy{Mode: v1alpha1.SensorFailureHold}
	case 2:
		p.OnSensorFailure = &v1alpha1.SensorFailurePolicy{Mode: v1alpha1.SensorFailureFallback, Replicas: asI32(int32(next() % 25)), FailureThreshold: int32(next() % 4)}
	}
	if next()%2 == 1 {
		p.Predictive = &v1alpha1.PredictiveScaling{Lookahead: metav1.Duration{Duration: time.Minute}}
	}
	for k := int(next() % 8); k > 0; k-- {
		in.History = append(in.History, Recommendation{Time: asNow.Add(-time.Duration(next()) * 10 * time.Second), Replicas: int32(next() % 30)})
	}
	for k := int(next() % 6); k > 0; k-- {
		in.ScaleEvents = append(in.ScaleEvents, ScaleEvent{Time: asNow.Add(-time.Duration(next()) * 5 * time.Second), Delta: int32(int8(next()))})
	}
	in.Policy = p
	return in
}
