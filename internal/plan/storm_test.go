package plan

import "testing"

func TestStorm(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		unhealthy, seen, manage int
		threshold               float64
		minUnhealthy            int
		want                    bool
		wantTotal               int
	}{
		{name: "no apps", threshold: 0.5, minUnhealthy: 3},
		{name: "one broken app of one is not a storm", unhealthy: 1, seen: 1, threshold: 0.5, minUnhealthy: 3, wantTotal: 1},
		{name: "two of three is below the minimum count", unhealthy: 2, seen: 3, threshold: 0.5, minUnhealthy: 3, wantTotal: 3},
		{name: "three of five is more than half", unhealthy: 3, seen: 5, threshold: 0.5, minUnhealthy: 3, want: true, wantTotal: 5},
		{name: "exactly half is not more than half", unhealthy: 3, seen: 6, threshold: 0.5, minUnhealthy: 3, wantTotal: 6},
		{name: "six of ten", unhealthy: 6, seen: 10, threshold: 0.5, minUnhealthy: 3, want: true, wantTotal: 10},
		{name: "three of a hundred", unhealthy: 3, seen: 100, threshold: 0.5, minUnhealthy: 3, wantTotal: 100},
		{name: "a minimum of one engages on the share alone", unhealthy: 1, seen: 1, threshold: 0.5, minUnhealthy: 1, want: true, wantTotal: 1},
		{name: "apps managed but not seen yet count as healthy", unhealthy: 3, seen: 3, manage: 10, threshold: 0.5, minUnhealthy: 3, wantTotal: 10},
		{name: "apps seen after the count was taken still count", unhealthy: 3, seen: 5, manage: 4, threshold: 0.5, minUnhealthy: 3, want: true, wantTotal: 5},
		{name: "apps not counted leave the share to the apps seen", unhealthy: 3, seen: 4, threshold: 0.5, minUnhealthy: 3, want: true, wantTotal: 4},
		{name: "a threshold of a third engages on more than a third", unhealthy: 4, seen: 10, threshold: 0.33, minUnhealthy: 3, want: true, wantTotal: 10},
		{name: "a threshold of one never engages", unhealthy: 10, seen: 10, threshold: 1, minUnhealthy: 3, wantTotal: 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Storm(StormInput{Unhealthy: tc.unhealthy, Seen: tc.seen, Managed: tc.manage, Threshold: tc.threshold, MinUnhealthy: tc.minUnhealthy})
			want := StormVerdict{Engaged: tc.want, Unhealthy: tc.unhealthy, Total: tc.wantTotal}
			if got != want {
				t.Fatalf("Storm = %+v, want %+v", got, want)
			}
		})
	}
}
