package plan

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func TestCheckGuards(t *testing.T) {
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	count := func(n int) *intstr.IntOrString { v := intstr.FromInt32(int32(n)); return &v }
	limit := &v1alpha1.RateLimit{Count: 2, Per: metav1.Duration{Duration: time.Hour}}
	cases := []struct {
		name       string
		in         GuardInput
		disruptive bool
		held       bool
		reason     string
		until      time.Duration
		message    string
		recordOnly bool
	}{
		{name: "nothing set lets the action through", in: GuardInput{Mode: v1alpha1.ModeActive}, disruptive: true},
		{name: "mode Paused holds", in: GuardInput{Mode: v1alpha1.ModePaused}, held: true, reason: ReasonPaused, message: "mode is Paused"},
		{name: "the paused annotation holds", in: GuardInput{PausedAnnotation: true}, held: true, reason: ReasonPaused, message: "autonomic.homeostat.dev/paused"},
		{name: "a stale cache holds every action until the recheck",
			in:   GuardInput{StaleCache: "A watch of Pods failed.", StaleCacheRecheck: t0.Add(time.Second)},
			held: true, reason: ReasonStaleCache, until: time.Second, message: "A watch of Pods failed. No action runs"},
		{name: "a stale cache is checked before the storm breaker",
			in: GuardInput{StaleCache: "A watch of Pods failed.", Storm: true}, disruptive: true,
			held: true, reason: ReasonStaleCache},
		{name: "the storm breaker holds disruptive actions", in: GuardInput{Storm: true}, disruptive: true, held: true, reason: ReasonStorm},
		{name: "the storm breaker lets a notify through", in: GuardInput{Storm: true}, disruptive: false},
		{name: "cooldown holds until it ends",
			in:   GuardInput{Cooldown: 30 * time.Second, LastActionAt: t0.Add(-10 * time.Second)},
			held: true, reason: ReasonCooldown, until: 20 * time.Second, message: "waits until 2026-11-25T10:00:20Z"},
		{name: "cooldown passed", in: GuardInput{Cooldown: 30 * time.Second, LastActionAt: t0.Add(-30 * time.Second)}},
		{name: "cooldown with no earlier action", in: GuardInput{Cooldown: time.Hour}},
		{name: "maxActions holds at the limit until the oldest leaves the window",
			in:   GuardInput{MaxActions: limit, ActionTimes: []time.Time{t0.Add(-50 * time.Minute), t0.Add(-5 * time.Minute)}},
			held: true, reason: ReasonRateLimited, until: 10 * time.Minute, message: "2 actions within 1h0m0s already"},
		{name: "maxActions ignores actions outside the window",
			in: GuardInput{MaxActions: limit, ActionTimes: []time.Time{t0.Add(-2 * time.Hour), t0.Add(-5 * time.Minute)}}},
		{name: "maxUnhealthyPods holds a disruptive action when most pods are unhealthy",
			in:         GuardInput{MaxUnhealthyPods: pct("50%"), TotalPods: 3, UnhealthyPods: 2},
			disruptive: true, held: true, reason: ReasonTooManyUnhealthy, message: "2 of 3 pods are unhealthy or being disrupted (67%)"},
		{name: "maxUnhealthyPods lets a restart of a minority through",
			in: GuardInput{MaxUnhealthyPods: pct("50%"), TotalPods: 4, UnhealthyPods: 1}, disruptive: true},
		{name: "in-flight pods count as unhealthy",
			in:         GuardInput{MaxUnhealthyPods: pct("50%"), TotalPods: 4, UnhealthyPods: 1, InFlightPods: 2},
			disruptive: true, held: true, reason: ReasonTooManyUnhealthy},
		{name: "maxUnhealthyPods as a count",
			in:         GuardInput{MaxUnhealthyPods: count(1), TotalPods: 10, UnhealthyPods: 2},
			disruptive: true, held: true, reason: ReasonTooManyUnhealthy},
		{name: "an enforced count beside the app's percentage: the count holds when the share would not",
			in:         GuardInput{MaxUnhealthyPods: pct("50%"), MaxUnhealthyPodsAlso: count(2), TotalPods: 10, UnhealthyPods: 3},
			disruptive: true, held: true, reason: ReasonTooManyUnhealthy, message: "above guards.maxUnhealthyPods 2"},
		{name: "an enforced count beside the app's percentage: the share holds when the count would not",
			in:         GuardInput{MaxUnhealthyPods: pct("10%"), MaxUnhealthyPodsAlso: count(5), TotalPods: 10, UnhealthyPods: 2},
			disruptive: true, held: true, reason: ReasonTooManyUnhealthy, message: "above guards.maxUnhealthyPods 10%"},
		{name: "an enforced count beside the app's percentage: both within, the action runs",
			in:         GuardInput{MaxUnhealthyPods: pct("50%"), MaxUnhealthyPodsAlso: count(2), TotalPods: 10, UnhealthyPods: 2},
			disruptive: true},
		{name: "maxUnhealthyPods does not hold a non-disruptive action",
			in: GuardInput{MaxUnhealthyPods: pct("10%"), TotalPods: 3, UnhealthyPods: 3}},
		{name: "maxUnhealthyPods with no pods lets the action through",
			in: GuardInput{MaxUnhealthyPods: pct("10%")}, disruptive: true},
		{name: "DryRun passes the guards and records only", in: GuardInput{Mode: v1alpha1.ModeDryRun}, disruptive: true, recordOnly: true},
		{name: "DryRun is held by the same guards as Active",
			in:   GuardInput{Mode: v1alpha1.ModeDryRun, Cooldown: 30 * time.Second, LastActionAt: t0.Add(-10 * time.Second)},
			held: true, reason: ReasonCooldown, until: 20 * time.Second},
		{name: "DryRun under a storm holds a disruptive action, as Active would",
			in: GuardInput{Mode: v1alpha1.ModeDryRun, Storm: true}, disruptive: true, held: true, reason: ReasonStorm},
		{name: "an invalid maxUnhealthyPods holds a disruptive action and says so",
			in:         GuardInput{MaxUnhealthyPods: pct("lots"), TotalPods: 3, UnhealthyPods: 1},
			disruptive: true, held: true, reason: ReasonTooManyUnhealthy, message: `guards.maxUnhealthyPods "lots" is invalid`},
		{name: "pause is checked before cooldown",
			in:   GuardInput{Mode: v1alpha1.ModePaused, Cooldown: time.Hour, LastActionAt: t0},
			held: true, reason: ReasonPaused},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := CheckGuards(tc.in, tc.disruptive, t0)
			if v.Held != tc.held || v.Reason != tc.reason {
				t.Fatalf("verdict = %+v, want held=%v reason=%q", v, tc.held, tc.reason)
			}
			if v.RecordOnly != tc.recordOnly {
				t.Errorf("recordOnly = %v, want %v", v.RecordOnly, tc.recordOnly)
			}
			if tc.until != 0 && !v.Until.Equal(t0.Add(tc.until)) {
				t.Errorf("until = %s, want %s", v.Until, t0.Add(tc.until))
			}
			if !strings.Contains(v.Message, tc.message) {
				t.Errorf("message = %q, want it to contain %q", v.Message, tc.message)
			}
			if v.Held && v.Message == "" {
				t.Error("a held action must say why")
			}
		})
	}
}
