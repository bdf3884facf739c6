package cli

import (
	"bytes"
	"testing"
	"time"

	"github.com/homeostat-dev/homeostat/internal/replay"
)

func goldenAt(minutes, seconds int) time.Time {
	return hT0.Add(time.Duration(minutes)*time.Minute + time.Duration(seconds)*time.Second)
}

func goldenInt32(v int32) *int32 { return &v }

// goldenRuns are a fixed current run and an edited one, as replay returns them.
func goldenRuns() (replay.Result, replay.Result) {
	heal := []replay.Decision{
		{Time: goldenAt(15, 30), Policy: "heal-web", PolicyKind: "Remediate", Kind: replay.KindHeld, Action: "restartPods", Component: "web", Step: 1,
			Guard: "Cooldown", Reason: "Step 1 (restartPods) is held: Cooldown: the app last acted at 2025-03-01T12:15:00Z and " +
				"guards.cooldown is 1m0s; the action waits until 2025-03-01T12:16:00Z."},
		{Time: goldenAt(16, 0), Policy: "heal-web", PolicyKind: "Remediate", Kind: replay.KindAct, Action: "restartPods", Component: "web", Step: 1,
			Reason: "CrashLooping is active: step 1 of 2, restartPods on web.", Outcome: "Ineffective"},
		{Time: goldenAt(21, 0), Policy: "scale-web", PolicyKind: "Autoscale", Kind: "Hold", Component: "web",
			Reason: "Holding web at 4 replicas: cpu is unavailable, and missing data never scales down."},
		{Time: goldenAt(26, 0), Policy: "heal-web", PolicyKind: "Remediate", Kind: replay.KindAct, Action: "rollback", Component: "web", Step: 2,
			Reason: "CrashLooping is still active after step 1 timed out: escalating to step 2 of 2, rollback on web.", Outcome: "Verified"},
		{Time: goldenAt(29, 0), Policy: "heal-web", PolicyKind: "Remediate", Kind: "Healed",
			Reason: "Healed: CrashLooping cleared at step 2 of 2 and stayed clear for 1m0s."},
	}
	page := replay.Decision{Time: goldenAt(15, 0), Policy: "page", PolicyKind: "Remediate", Kind: replay.KindAct, Action: "notify", Step: 1,
		Reason: "Slow is active: step 1 of 1, notify.", Outcome: "Verified"}
	summaries := func(scale replay.PolicySummary) []replay.PolicySummary {
		return []replay.PolicySummary{
			{Policy: "heal-web", Kind: "Remediate", Simulated: true, Actions: 2, Held: 1, Episodes: 1},
			scale,
			{Policy: "page", Kind: "Remediate", Source: "HealingPolicy shop/page-slow", Simulated: true, Actions: 1, Episodes: 1},
			{Policy: "web-failover", Kind: "Failover"},
		}
	}
	notSimulated := []replay.NotSimulated{{Policy: "web-failover", Reason: replay.FailoverNotSimulated}}

	curStats := replay.ReplicaStats{Min: 2, Max: 4, Mean: 3.33}
	cur := replay.Result{
		Steps: 114,
		Decisions: append([]replay.Decision{
			{Time: goldenAt(10, 0), Policy: "scale-web", PolicyKind: "Autoscale", Kind: replay.KindAct, Action: "scale", Component: "web",
				FromReplicas: goldenInt32(2), Replicas: goldenInt32(4), Outcome: "Verified",
				Reason: "Scaling web up from 2 to 4 replicas: cpu is 140 against a target utilization of 70%, and asks for 4 replicas."},
			page,
		}, heal...),
		Replicas: []replay.ReplicaSeries{{Component: "web", Start: 2, Changes: []replay.ReplicaChange{{Time: goldenAt(10, 0), Replicas: 4}}, ReplicaStats: curStats}},
		Policies: summaries(replay.PolicySummary{Policy: "scale-web", Kind: "Autoscale", Simulated: true, Actions: 1, Component: "web",
			Replicas: &curStats, FlapWindow: replay.Duration(5 * time.Minute),
			Metrics: []replay.MetricSummary{{Sensor: "cpu", Goal: "averageUtilization 70%", Model: replay.ModelLoadConserved,
				Outside: replay.Duration(15 * time.Second), Above: replay.Duration(15 * time.Second), Unavailable: replay.Duration(2 * time.Minute)}}}),
		NotSimulated: notSimulated,
		Gaps:         []replay.Gap{{From: goldenAt(3, 0), To: goldenAt(4, 45)}},
	}

	edStats := replay.ReplicaStats{Min: 2, Max: 4, Mean: 3.1}
	ed := cur
	ed.Decisions = append([]replay.Decision{
		{Time: goldenAt(10, 0), Policy: "scale-web", PolicyKind: "Autoscale", Kind: replay.KindAct, Action: "scale", Component: "web",
			FromReplicas: goldenInt32(2), Replicas: goldenInt32(3), Outcome: "Ineffective",
			Reason: "Scaling web up from 2 to 3 replicas: cpu is 140 against a target utilization of 90%, and asks for 4 replicas, " +
				"but behavior.scaleUp's policies allow no more before 2025-03-01T12:10:15Z (ScaleUpLimit)."},
		{Time: goldenAt(10, 15), Policy: "scale-web", PolicyKind: "Autoscale", Kind: replay.KindAct, Action: "scale", Component: "web",
			FromReplicas: goldenInt32(3), Replicas: goldenInt32(4), Outcome: "Verified",
			Reason: "Scaling web up from 3 to 4 replicas: cpu is 93.3333 against a target utilization of 90%, and asks for 4 replicas."},
		page,
	}, heal...)
	ed.Replicas = []replay.ReplicaSeries{{Component: "web", Start: 2, Changes: []replay.ReplicaChange{{Time: goldenAt(10, 0), Replicas: 3}, {Time: goldenAt(10, 15), Replicas: 4}},
		ReplicaStats: edStats}}
	ed.Policies = summaries(replay.PolicySummary{Policy: "scale-web", Kind: "Autoscale", Simulated: true, Actions: 2, Component: "web",
		Replicas: &edStats, FlapWindow: replay.Duration(5 * time.Minute),
		Metrics: []replay.MetricSummary{{Sensor: "cpu", Goal: "averageUtilization 90%", Model: replay.ModelLoadConserved,
			Outside: replay.Duration(30 * time.Second), Above: replay.Duration(30 * time.Second), Unavailable: replay.Duration(2 * time.Minute)}}})
	return cur, ed
}

func goldenResult(edited bool) SimulateResult {
	cur, ed := goldenRuns()
	r := SimulateResult{
		Namespace: "shop", App: "shop", From: hT0, To: hT0.Add(30 * time.Minute), Step: replay.Duration(15 * time.Second),
		History: HistorySource{Prometheus: "http://127.0.0.1:9090", Queries: []string{
			shopComponents, shopPhases, shopSensors, latencyQuery,
		}},
		SharedPolicies: []string{"HealingPolicy shop/page-slow"},
		Warnings:       []string{"sensor probe has no samples between 2025-03-01T12:00:00Z and 2025-03-01T12:30:00Z; is Prometheus scraping the manager?"},
		Notes:          replay.Notes,
		Current:        SimulatedRun{Spec: "current", Result: cur},
	}
	if edited {
		c := replay.Compare(cur, ed)
		r.Edited, r.Comparison = &SimulatedRun{Spec: "shop-target-90.yaml", Result: ed}, &c
	}
	return r
}

// quietResult is a run of an app whose policies did nothing.
func quietResult() SimulateResult {
	return SimulateResult{
		Namespace: "shop", App: "quiet", From: hT0, To: hT0.Add(time.Hour), Step: replay.Duration(30 * time.Second),
		History: HistorySource{Prometheus: "http://127.0.0.1:9090", Queries: []string{shopComponents, shopPhases}},
		Notes:   replay.Notes,
		Current: SimulatedRun{Spec: "current", Result: replay.Result{Steps: 121, Decisions: []replay.Decision{},
			Policies: []replay.PolicySummary{{Policy: "heal-web", Kind: "Remediate", Simulated: true}}}},
	}
}

func TestSimulateOutputGolden(t *testing.T) {
	tests := []struct {
		golden string
		format string
		width  int
		result SimulateResult
	}{
		{"simulate_compare_100.txt", "", 100, goldenResult(true)},
		{"simulate_compare_50.txt", "", 50, goldenResult(true)},
		{"simulate_compare.json", "json", 100, goldenResult(true)},
		{"simulate_current_100.txt", "", 100, goldenResult(false)},
		{"simulate_quiet_100.txt", "", 100, quietResult()},
		{"simulate_quiet_50.txt", "", 50, quietResult()},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			var b bytes.Buffer
			r := tc.result
			if err := printTo(&b, tc.format, tc.width, r, func(t *Text) { renderSimulate(t, r) }); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.golden, b.Bytes())
		})
	}
}
