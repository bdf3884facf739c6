package plan

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

func selectPolicyOf(s autoscalingv2.ScalingPolicySelect) *autoscalingv2.ScalingPolicySelect {
	return &s
}

func podsPolicy(value, period int32) autoscalingv2.HPAScalingPolicy {
	return autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PodsScalingPolicy, Value: value, PeriodSeconds: period}
}

func percentPolicy(value, period int32) autoscalingv2.HPAScalingPolicy {
	return autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PercentScalingPolicy, Value: value, PeriodSeconds: period}
}

func TestResolveBehavior(t *testing.T) {
	defaultUp := ScalingRules{SelectPolicy: "Max", Policies: []autoscalingv2.HPAScalingPolicy{podsPolicy(4, 15), percentPolicy(100, 15)}, Tolerance: 0.1}
	defaultDown := ScalingRules{StabilizationWindow: 5 * time.Minute, SelectPolicy: "Max", Policies: []autoscalingv2.HPAScalingPolicy{percentPolicy(100, 15)}, Tolerance: 0.1}
	cases := []struct {
		name     string
		behavior *autoscalingv2.HorizontalPodAutoscalerBehavior
		up, down ScalingRules
	}{
		{name: "no behavior has every default", up: defaultUp, down: defaultDown},
		{name: "an empty behavior has every default", behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{}, up: defaultUp, down: defaultDown},
		{name: "set fields replace defaults one by one",
			behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
				Policies: []autoscalingv2.HPAScalingPolicy{podsPolicy(4, 60), percentPolicy(10, 60)}}},
			up: defaultUp,
			down: ScalingRules{StabilizationWindow: 5 * time.Minute, SelectPolicy: "Max",
				Policies: []autoscalingv2.HPAScalingPolicy{podsPolicy(4, 60), percentPolicy(10, 60)}, Tolerance: 0.1}},
		{name: "windows, select policy and tolerance",
			behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleUp: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: asI32(60), SelectPolicy: selectPolicyOf("Min"), Tolerance: asQty("0.05")},
				ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: asI32(0), SelectPolicy: selectPolicyOf("Disabled"),
					Tolerance: asQty("200m")}},
			up:   ScalingRules{StabilizationWindow: time.Minute, SelectPolicy: "Min", Policies: defaultUp.Policies, Tolerance: 0.05},
			down: ScalingRules{SelectPolicy: "Disabled", Policies: defaultDown.Policies, Tolerance: 0.2}},
		{name: "an empty policy list and a negative window count as unset and zero",
			behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
				StabilizationWindowSeconds: asI32(-5), Policies: []autoscalingv2.HPAScalingPolicy{}, Tolerance: asQty("-1")}},
			up: defaultUp, down: ScalingRules{SelectPolicy: "Max", Policies: defaultDown.Policies, Tolerance: 0.1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := ResolveBehavior(c.behavior)
			for _, got := range []struct {
				name      string
				have, wan ScalingRules
			}{{"scaleUp", b.ScaleUp, c.up}, {"scaleDown", b.ScaleDown, c.down}} {
				if got.have.StabilizationWindow != got.wan.StabilizationWindow || got.have.SelectPolicy != got.wan.SelectPolicy ||
					!slices.Equal(got.have.Policies, got.wan.Policies) || math.Abs(got.have.Tolerance-got.wan.Tolerance) > 1e-9 {
					t.Errorf("%s: got %+v, want %+v", got.name, got.have, got.wan)
				}
			}
		})
	}
}

func TestStabilize(t *testing.T) {
	minute := func(m float64) time.Time { return asNow.Add(time.Duration(m * float64(time.Minute))) }
	recsFrom := func(start float64, recs ...int32) []Recommendation {
		var h []Recommendation
		for i, r := range recs {
			h = append(h, Recommendation{Time: minute(start + float64(i)), Replicas: r})
		}
		return h
	}
	window := func(upSeconds, downSeconds int32) Behavior {
		return ResolveBehavior(&autoscalingv2.HorizontalPodAutoscalerBehavior{
			ScaleUp:   &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: asI32(upSeconds)},
			ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: asI32(downSeconds)},
		})
	}
	cases := []struct {
		name             string
		b                Behavior
		history          []Recommendation
		now              time.Time
		current, desired int32
		want             int32
		reason           string
		until            time.Time
	}{
		// The KEP's story 5 (kubernetes/enhancements 853): scale down only to the highest
		// recommendation of the last 600s.
		{name: "scale down takes the highest recommendation within the window", b: window(0, 600),
			history: recsFrom(0, 10, 9, 8, 9, 9, 8, 9, 8, 9), now: minute(9), current: 10, desired: 8,
			want: 10, reason: ReasonScaleDownStabilized, until: minute(10)},
		{name: "a recommendation exactly a window old has left it", b: window(0, 600),
			history: recsFrom(0, 10, 9, 8, 9, 9, 8, 9, 8, 9, 8), now: minute(10), current: 10, desired: 7,
			want: 9, reason: ReasonScaleDownStabilized, until: minute(11)},
		// The KEP's story 6: scale up only to the lowest recommendation of the last 300s.
		{name: "scale up takes the lowest recommendation within the window", b: window(300, 0),
			history: recsFrom(0, 2, 3, 19, 10, 3), now: minute(4.99), current: 2, desired: 4,
			want: 2, reason: ReasonScaleUpStabilized, until: minute(5)},
		{name: "scale up moves once the lowest recommendation leaves the window", b: window(300, 0),
			history: recsFrom(0, 2, 3, 19, 10, 3), now: minute(5), current: 2, desired: 4,
			want: 3, reason: ReasonScaleUpStabilized, until: minute(6)},
		{name: "zero windows follow the recommendation", b: window(0, 0),
			history: recsFrom(0, 2, 30), now: minute(1), current: 10, desired: 4, want: 4, reason: ReasonScaleDownStabilized},
		{name: "a recommendation between the window's bounds keeps the current replicas", b: window(300, 300),
			history: recsFrom(0, 4, 12), now: minute(2), current: 8, desired: 9, want: 8, reason: ReasonScaleUpStabilized, until: minute(5)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, reason, until := stabilize(c.b, c.history, c.now, c.current, c.desired)
			if got != c.want || reason != c.reason || !until.Equal(c.until) {
				t.Fatalf("got %d (%s, until %s), want %d (%s, until %s)", got, reason, until, c.want, c.reason, c.until)
			}
		})
	}
}

func TestScaleLimits(t *testing.T) {
	ago := func(s int) time.Time { return asNow.Add(-time.Duration(s) * time.Second) }
	rules := func(sel autoscalingv2.ScalingPolicySelect, p ...autoscalingv2.HPAScalingPolicy) ScalingRules {
		return ScalingRules{SelectPolicy: sel, Policies: p}
	}
	defaults := ResolveBehavior(nil)
	cases := []struct {
		name    string
		up      bool
		rules   ScalingRules
		events  []ScaleEvent
		current int32
		want    int32
	}{
		{name: "default scale up from 1: 4 pods beat doubling", up: true, rules: defaults.ScaleUp, current: 1, want: 5},
		{name: "default scale up from 10: doubling beats 4 pods", up: true, rules: defaults.ScaleUp, current: 10, want: 20},
		{name: "selectPolicy Min takes the smaller change", up: true, rules: rules("Min", podsPolicy(4, 15), percentPolicy(100, 15)), current: 10, want: 14},
		{name: "Disabled allows no scale up", up: true, rules: rules("Disabled", podsPolicy(4, 15)), current: 10, want: 10},
		{name: "a percent scale up rounds up", up: true, rules: rules("Max", percentPolicy(10, 60)), current: 3, want: 4},
		{name: "scale ups within the period count against it", up: true, rules: defaults.ScaleUp,
			events: []ScaleEvent{{Time: ago(10), Delta: 4}}, current: 5, want: 5},
		{name: "a scale up exactly a period ago no longer counts", up: true, rules: defaults.ScaleUp,
			events: []ScaleEvent{{Time: ago(15), Delta: 4}}, current: 5, want: 10},
		{name: "scale downs within the period raise the period's start", up: true, rules: defaults.ScaleUp,
			events: []ScaleEvent{{Time: ago(10), Delta: -4}}, current: 6, want: 20},
		{name: "a policy of unknown type is ignored", up: true, rules: rules("Max", podsPolicy(4, 15), autoscalingv2.HPAScalingPolicy{Type: "Doubling", Value: 9, PeriodSeconds: 15}),
			current: 10, want: 14},
		{name: "a scale-down policy of unknown type is ignored", rules: rules("Max", podsPolicy(4, 15), autoscalingv2.HPAScalingPolicy{Type: "Halving", Value: 9, PeriodSeconds: 15}),
			current: 10, want: 6},
		{name: "a huge percentage saturates", up: true, rules: rules("Max", percentPolicy(math.MaxInt32, 60)), current: 1 << 20, want: math.MaxInt32},
		{name: "default scale down may remove every replica", rules: defaults.ScaleDown, current: 10, want: 0},
		{name: "a percent scale down truncates the remainder", rules: rules("Max", percentPolicy(10, 60)), current: 72, want: 64},
		{name: "Max takes the larger change", rules: rules("Max", podsPolicy(4, 60), percentPolicy(10, 60)), current: 80, want: 72},
		{name: "Min takes the smaller change", rules: rules("Min", podsPolicy(5, 60), percentPolicy(10, 60)), current: 100, want: 95},
		{name: "Disabled allows no scale down", rules: rules("Disabled", podsPolicy(5, 60)), current: 100, want: 100},
		{name: "scale downs within the period count against it", rules: rules("Max", podsPolicy(1, 600)),
			events: []ScaleEvent{{Time: ago(300), Delta: -1}}, current: 999, want: 999},
		{name: "scale ups within the period lower the period's start", rules: rules("Max", podsPolicy(2, 60)),
			events: []ScaleEvent{{Time: ago(30), Delta: 3}}, current: 10, want: 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got int32
			if c.up {
				got = scaleUpLimit(c.rules, c.events, asNow, c.current)
			} else {
				got = scaleDownLimit(c.rules, c.events, asNow, c.current)
			}
			if got != c.want {
				t.Fatalf("limit %d, want %d", got, c.want)
			}
		})
	}
}

// scalerTick is one reconcile of a simulated autoscaler: at is the time since the start.
type scalerTick struct {
	at     time.Duration
	want   int32
	reason string
}

// simulate runs an autoscaler whose metric always recommends rec replicas, reconciling
// at each tick, recording history and scale events as a controller would.
func simulateScaler(t *testing.T, behavior *autoscalingv2.HorizontalPodAutoscalerBehavior, start, rec, maxReplicas int32, steps []scalerTick) {
	t.Helper()
	p := webScaler(1, maxReplicas, averageMetric("rps", "10"))
	p.Behavior = behavior
	b := ResolveBehavior(behavior)
	cur, history := start, settled
	var events []ScaleEvent
	for _, s := range steps {
		now := asNow.Add(s.at)
		d := Autoscale(AutoscaleInput{Now: now, Policy: p, CurrentReplicas: cur, History: history, ScaleEvents: events,
			Metrics: []MetricInput{metricReading("rps", float64(rec)*10)}})
		if d.Desired != s.want || (s.reason != "" && d.Reason != s.reason) {
			t.Fatalf("at %s from %d: got %d (%s), want %d (%s): %s", s.at, cur, d.Desired, d.Reason, s.want, s.reason, d.Message)
		}
		if !d.NextCheck.IsZero() && !d.NextCheck.After(now) {
			t.Fatalf("at %s: next check %s is not ahead", s.at, d.NextCheck)
		}
		history = d.History
		events = RecordScaleEvent(b, events, now, cur, d.Desired)
		cur = d.Desired
	}
}

func everyTick(period time.Duration, wants ...int32) []scalerTick {
	var s []scalerTick
	for i, w := range wants {
		s = append(s, scalerTick{at: time.Duration(i) * period, want: w})
	}
	return s
}

// The examples of the Kubernetes documentation, "Horizontal Pod Autoscaling",
// Configurable scaling behavior, and of the KEP that introduced it.
func TestBehaviorExamples(t *testing.T) {
	t.Run("scale down by the policy allowing the most change: 4 pods or 10% per minute, from 80 to 10", func(t *testing.T) {
		// "if there are 80 replicas and the target has to be scaled down to 10 replicas then
		// during the first scalerTick 8 replicas will be reduced. In the next iteration when the
		// number of replicas is 72, 10% of the pods is 7.2 but the number is rounded up to
		// 8 ... When the number of replicas falls below 40 the first policy (Pods) is
		// applied and 4 replicas will be reduced at a time."
		simulateScaler(t, &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
			Policies: []autoscalingv2.HPAScalingPolicy{podsPolicy(4, 60), percentPolicy(10, 60)}}},
			80, 10, 100, everyTick(time.Minute, 72, 64, 57, 51, 45, 40, 36, 32, 28, 24, 20, 16, 12, 10))
	})
	t.Run("within a policy's period the scale down waits for it", func(t *testing.T) {
		simulateScaler(t, &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
			Policies: []autoscalingv2.HPAScalingPolicy{podsPolicy(4, 60), percentPolicy(10, 60)}}},
			80, 10, 100, []scalerTick{
				{at: 0, want: 72, reason: ReasonScalingLimited},
				{at: 30 * time.Second, want: 72, reason: ReasonScalingLimited},
				{at: 59 * time.Second, want: 72, reason: ReasonScalingLimited},
				{at: 60 * time.Second, want: 64, reason: ReasonScalingLimited},
			})
	})
	t.Run("limit scale down rate: 10% per minute", func(t *testing.T) {
		simulateScaler(t, &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
			Policies: []autoscalingv2.HPAScalingPolicy{percentPolicy(10, 60)}}},
			// At 11 the metric is within the 10% tolerance of the target: 11 stays.
			100, 10, 100, everyTick(time.Minute, 90, 81, 72, 64, 57, 51, 45, 40, 36, 32, 28, 25, 22, 19, 17, 15, 13, 11, 11))
	})
	t.Run("limit scale down rate: no more than 5 pods per minute, selectPolicy Min", func(t *testing.T) {
		simulateScaler(t, &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
			Policies:     []autoscalingv2.HPAScalingPolicy{percentPolicy(10, 60), podsPolicy(5, 60)},
			SelectPolicy: selectPolicyOf("Min")}},
			100, 10, 100, everyTick(time.Minute, 95, 90, 85, 80, 75, 70, 65, 60, 55, 50, 45, 40, 36, 32, 28, 25, 22, 19, 17, 15, 13, 11, 11))
	})
	t.Run("disable scale down", func(t *testing.T) {
		simulateScaler(t, &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
			SelectPolicy: selectPolicyOf("Disabled")}},
			50, 10, 100, []scalerTick{{at: 0, want: 50, reason: ReasonScalingLimited}, {at: time.Hour, want: 50, reason: ReasonScalingLimited}})
	})
	t.Run("change the downscale stabilization window to one minute", func(t *testing.T) {
		p := webScaler(1, 100, averageMetric("rps", "10"))
		p.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: asI32(60)}}
		history := []Recommendation{{Time: asNow.Add(-30 * time.Second), Replicas: 20}}
		in := AutoscaleInput{Now: asNow, Policy: p, CurrentReplicas: 20, History: history, Metrics: []MetricInput{metricReading("rps", 50)}}
		if d := Autoscale(in); d.Desired != 20 || d.Reason != ReasonScaleDownStabilized || !d.NextCheck.Equal(asNow.Add(30*time.Second)) {
			t.Fatalf("within the window: %d (%s) next %s: %s", d.Desired, d.Reason, d.NextCheck, d.Message)
		}
		in.Now = asNow.Add(30 * time.Second)
		if d := Autoscale(in); d.Desired != 5 || d.Reason != ReasonScaleDown {
			t.Fatalf("after the window: %d (%s): %s", d.Desired, d.Reason, d.Message)
		}
	})
	t.Run("the default scale up: 4 pods or double, every 15 seconds", func(t *testing.T) {
		simulateScaler(t, nil, 1, 100, 100, everyTick(15*time.Second, 5, 10, 20, 40, 80, 100))
	})
	t.Run("scale up as fast as possible: 900% per minute", func(t *testing.T) {
		// The KEP's story 1: "1 -> 10 -> 100 -> 1000".
		simulateScaler(t, &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{
			Policies: []autoscalingv2.HPAScalingPolicy{percentPolicy(900, 60)}}},
			1, 1000, 1000, everyTick(time.Minute, 10, 100, 1000))
	})
	t.Run("scale down very gradually: one pod every 10 minutes", func(t *testing.T) {
		// The KEP's story 2: "1000 -> 1000 -> 1000 -> … (7 more min) -> 999".
		steps := []scalerTick{{at: 0, want: 999}}
		for m := 1; m < 10; m++ {
			steps = append(steps, scalerTick{at: time.Duration(m) * time.Minute, want: 999, reason: ReasonScalingLimited})
		}
		steps = append(steps, scalerTick{at: 10 * time.Minute, want: 998})
		simulateScaler(t, &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
			Policies: []autoscalingv2.HPAScalingPolicy{podsPolicy(1, 600)}}},
			1000, 10, 1000, steps)
	})
}

func TestRateLimitNextCheck(t *testing.T) {
	p := webScaler(1, 100, averageMetric("rps", "10"))
	events := []ScaleEvent{{Time: asNow.Add(-10 * time.Second), Delta: 4}}
	d := Autoscale(AutoscaleInput{Now: asNow, Policy: p, CurrentReplicas: 5, History: settled, ScaleEvents: events,
		Metrics: []MetricInput{metricReading("rps", 1000)}})
	// The 4 pods added 10s ago count against both 15s policies until 5s from now.
	if d.Desired != 5 || d.Limit != ReasonScaleUpLimit || !d.NextCheck.Equal(asNow.Add(5*time.Second)) {
		t.Fatalf("got %d (%s) next %s: %s", d.Desired, d.Limit, d.NextCheck, d.Message)
	}
	want := "Keeping web at 5 replicas instead of 100: behavior.scaleUp's policies allow no more before 2026-03-02T12:00:05Z (ScaleUpLimit)."
	if d.Message[:len(want)] != want {
		t.Fatalf("message %q", d.Message)
	}
}

func TestCompactHistoryIsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for trial := 0; trial < 300; trial++ {
		b := ResolveBehavior(&autoscalingv2.HorizontalPodAutoscalerBehavior{
			ScaleUp:   &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: asI32(int32(r.IntN(4) * 60))},
			ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: asI32(int32(r.IntN(6) * 60))},
		})
		var full []Recommendation
		for i := r.IntN(30); i > 0; i-- {
			full = append(full, Recommendation{Time: asNow.Add(-time.Duration(r.IntN(400)) * time.Second), Replicas: int32(r.IntN(12))})
		}
		compact := CompactHistory(b, full, asNow)
		if len(compact) > len(full) {
			t.Fatalf("compaction grew the history")
		}
		now := asNow
		for k := 0; k < 40; k++ {
			now = now.Add(time.Duration(r.IntN(30)) * time.Second)
			cur, desired := int32(r.IntN(12)), int32(r.IntN(12))
			a, _, _ := stabilize(b, full, now, cur, desired)
			c, _, _ := stabilize(b, compact, now, cur, desired)
			if a != c {
				t.Fatalf("trial %d: full history stabilizes to %d, compacted to %d", trial, a, c)
			}
			rec := Recommendation{Time: now, Replicas: desired}
			full = append(full, rec)
			compact = CompactHistory(b, append(compact, rec), now)
		}
		if max := 2 * 13; len(compact) > max {
			t.Fatalf("compacted history of %d entries for 12 distinct values", len(compact))
		}
	}
}

func TestRecordScaleEvent(t *testing.T) {
	b := ResolveBehavior(&autoscalingv2.HorizontalPodAutoscalerBehavior{
		ScaleUp:   &autoscalingv2.HPAScalingRules{Policies: []autoscalingv2.HPAScalingPolicy{podsPolicy(4, 60)}},
		ScaleDown: &autoscalingv2.HPAScalingRules{Policies: []autoscalingv2.HPAScalingPolicy{podsPolicy(1, 600)}},
	})
	ago := func(s int) time.Time { return asNow.Add(-time.Duration(s) * time.Second) }
	events := []ScaleEvent{{Time: ago(700), Delta: 3}, {Time: ago(500), Delta: 2}, {Time: ago(100), Delta: -1}}
	got := RecordScaleEvent(b, events, asNow, 10, 12)
	// The event 700s ago is past the longest period (600s) of either direction; the one
	// 500s ago is past the scale-up periods but a scale-down policy still counts it.
	want := []ScaleEvent{{Time: ago(500), Delta: 2}, {Time: ago(100), Delta: -1}, {Time: asNow, Delta: 2}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if len(events) != 3 || events[0].Delta != 3 {
		t.Fatal("RecordScaleEvent modified its input")
	}
	if got := RecordScaleEvent(b, nil, asNow, 5, 5); len(got) != 0 {
		t.Fatalf("no change recorded an event: %v", got)
	}

	t.Run("an oldest event with no later one of its direction stays, and the next merges", func(t *testing.T) {
		many := []ScaleEvent{{Time: ago(50), Delta: -2}}
		for i := 0; i < MaxScaleEvents; i++ {
			many = append(many, ScaleEvent{Time: ago(49 - i), Delta: 1})
		}
		kept := RecordScaleEvent(b, many, asNow, 50, 50)
		if len(kept) != MaxScaleEvents || kept[0] != many[0] || kept[1].Delta != 2 {
			t.Fatalf("kept %d events: %v", len(kept), kept[:3])
		}
	})
	t.Run("past MaxScaleEvents the oldest merge forward and only limit more", func(t *testing.T) {
		var many []ScaleEvent
		for i := 0; i < MaxScaleEvents+5; i++ {
			many = append(many, ScaleEvent{Time: ago(59 - i), Delta: 1})
		}
		kept := RecordScaleEvent(b, many, asNow, 50, 51)
		if len(kept) != MaxScaleEvents {
			t.Fatalf("kept %d events", len(kept))
		}
		var total int32
		for _, e := range kept {
			total += e.Delta
		}
		if total != MaxScaleEvents+6 {
			t.Fatalf("merging lost changes: total %d", total)
		}
		full := append(slices.Clone(many), ScaleEvent{Time: asNow, Delta: 1})
		for s := 0; s <= 70; s += 5 {
			now := asNow.Add(time.Duration(s) * time.Second)
			if a, c := scaleUpLimit(b.ScaleUp, full, now, 51), scaleUpLimit(b.ScaleUp, kept, now, 51); c > a {
				t.Fatalf("at +%ds the merged events allow %d, the full ones %d", s, c, a)
			}
		}
	})
}

func TestAutoscaleBehaviorTolerancePerDirection(t *testing.T) {
	b := &autoscalingv2.HorizontalPodAutoscalerBehavior{
		ScaleUp:   &autoscalingv2.HPAScalingRules{Tolerance: asQty("0.01")},
		ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: asI32(0), Tolerance: asQty("0.05")},
	}
	// The documentation's example: a memory target of 100Mi with tolerances of 5% down
	// and 1% up scales when the usage falls below 95Mi or exceeds 101Mi.
	for _, c := range []struct {
		usage string
		want  int32
	}{{"101Mi", 10}, {"102Mi", 11}, {"95Mi", 10}, {"94Mi", 10}, {"90Mi", 9}} {
		p := webScaler(1, 20, valueMetric("memory", "100Mi"))
		p.Behavior = b
		v := asQty(c.usage).AsApproximateFloat64()
		d := Autoscale(AutoscaleInput{Now: asNow, Policy: p, CurrentReplicas: 10, History: settled, Metrics: []MetricInput{metricReading("memory", v)}})
		if d.Desired != c.want {
			t.Errorf("%s: %d, want %d: %s", c.usage, d.Desired, c.want, d.Message)
		}
	}
}
