package plan

import "testing"

func TestStorm(t *testing.T) {
	// ns is one namespace's count; many is n namespaces of the same count.
	ns := func(unhealthy, healthy int) NamespaceHealth {
		return NamespaceHealth{Unhealthy: unhealthy, Healthy: healthy}
	}
	many := func(n int, h NamespaceHealth) []NamespaceHealth {
		out := make([]NamespaceHealth, n)
		for i := range out {
			out[i] = h
		}
		return out
	}
	cat := func(parts ...[]NamespaceHealth) []NamespaceHealth {
		var out []NamespaceHealth
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	one := func(h NamespaceHealth) []NamespaceHealth { return []NamespaceHealth{h} }

	for _, tc := range []struct {
		name          string
		namespaces    []NamespaceHealth
		threshold     float64
		minUnhealthy  int
		minNamespaces int
		want          StormVerdict
	}{
		{name: "no apps", threshold: 0.5, minUnhealthy: 3, minNamespaces: 2},

		// Tenants cannot steer it.
		{name: "six ghost apps in one namespace are not judged and count nowhere",
			// Their workloads do not exist.
			namespaces: cat(one(NamespaceHealth{Unjudged: 6}), many(3, ns(0, 2))), threshold: 0.5, minUnhealthy: 3, minNamespaces: 2,
			want: StormVerdict{Namespaces: 3, Total: 6}},
		{name: "six ghost apps in each of three namespaces count nowhere either",
			namespaces: cat(many(3, NamespaceHealth{Unjudged: 6}), one(ns(0, 1))), threshold: 0.5, minUnhealthy: 3, minNamespaces: 2,
			want: StormVerdict{Namespaces: 1, Total: 1}},
		{name: "an unjudged app counts neither as unhealthy nor as healthy",
			// Counted as unhealthy, they would make every namespace a storm.
			namespaces: many(3, NamespaceHealth{Unhealthy: 1, Healthy: 1, Unjudged: 1000}), threshold: 0.5, minUnhealthy: 3, minNamespaces: 2,
			want: StormVerdict{Namespaces: 3, Unhealthy: 3, Total: 6}},
		{name: "unjudged apps do not dilute a namespace's storm",
			// Counted as healthy, they would hide every namespace's storm.
			namespaces: many(3, NamespaceHealth{Unhealthy: 2, Healthy: 1, Unjudged: 1000}), threshold: 0.5, minUnhealthy: 3, minNamespaces: 2,
			want: StormVerdict{Engaged: true, Stormy: 3, Namespaces: 3, Unhealthy: 6, Total: 9}},
		{name: "six broken apps in one namespace are one namespace in a storm, not a cluster's",
			namespaces: one(ns(6, 0)), threshold: 0.5, minUnhealthy: 3, minNamespaces: 2,
			want: StormVerdict{Stormy: 1, Namespaces: 1, Unhealthy: 6, Total: 6}},
		{name: "six broken apps in one namespace beside healthy namespaces",
			namespaces: cat(one(ns(6, 0)), many(3, ns(0, 1))), threshold: 0.5, minUnhealthy: 3, minNamespaces: 2,
			want: StormVerdict{Stormy: 1, Namespaces: 4, Unhealthy: 6, Total: 9}},
		{name: "1,000 healthy apps in one namespace do not dilute a storm across the others",
			namespaces: cat(one(ns(0, 1000)), many(3, ns(2, 1))), threshold: 0.5, minUnhealthy: 3, minNamespaces: 2,
			want: StormVerdict{Engaged: true, Stormy: 3, Namespaces: 4, Unhealthy: 6, Total: 1009}},
		{name: "1,000 healthy apps in one namespace and a broken app in the same namespace",
			namespaces: cat(one(ns(1, 1000)), many(2, ns(2, 0))), threshold: 0.5, minUnhealthy: 3, minNamespaces: 2,
			want: StormVerdict{Engaged: true, Stormy: 2, Namespaces: 3, Unhealthy: 5, Total: 1005}},

		// Real storms.
		{name: "a storm across several namespaces trips it",
			namespaces: cat(many(3, ns(2, 1)), one(ns(0, 3))), threshold: 0.5, minUnhealthy: 3, minNamespaces: 2,
			want: StormVerdict{Engaged: true, Stormy: 3, Namespaces: 4, Unhealthy: 6, Total: 12}},
		{name: "two namespaces of two in a storm",
			namespaces: many(2, ns(2, 0)), threshold: 0.5, minUnhealthy: 3, minNamespaces: 2,
			want: StormVerdict{Engaged: true, Stormy: 2, Namespaces: 2, Unhealthy: 4, Total: 4}},
		{name: "exactly half of the namespaces is not more than half",
			namespaces: cat(many(2, ns(2, 0)), many(2, ns(0, 2))), threshold: 0.5, minUnhealthy: 3, minNamespaces: 2,
			want: StormVerdict{Stormy: 2, Namespaces: 4, Unhealthy: 4, Total: 8}},
		{name: "exactly half of a namespace's apps is not a storm in it",
			namespaces: many(3, ns(2, 2)), threshold: 0.5, minUnhealthy: 3, minNamespaces: 2,
			want: StormVerdict{Namespaces: 3, Unhealthy: 6, Total: 12}},
		{name: "two namespaces in a storm with two broken apps in all is below the minimum count",
			namespaces: cat(many(2, ns(1, 0)), one(ns(0, 1))), threshold: 0.5, minUnhealthy: 3, minNamespaces: 2,
			want: StormVerdict{Stormy: 2, Namespaces: 3, Unhealthy: 2, Total: 3}},
		{name: "a minimum of three namespaces",
			namespaces: cat(many(2, ns(3, 0)), one(ns(0, 1))), threshold: 0.5, minUnhealthy: 3, minNamespaces: 3,
			want: StormVerdict{Stormy: 2, Namespaces: 3, Unhealthy: 6, Total: 7}},
		{name: "a threshold of a third counts a namespace with more than a third broken",
			namespaces: cat(many(2, ns(2, 3)), one(ns(0, 5)), one(ns(0, 1))), threshold: 0.33, minUnhealthy: 3, minNamespaces: 2,
			want: StormVerdict{Engaged: true, Stormy: 2, Namespaces: 4, Unhealthy: 4, Total: 16}},
		{name: "a threshold of one never engages",
			namespaces: many(4, ns(5, 0)), threshold: 1, minUnhealthy: 3, minNamespaces: 2,
			want: StormVerdict{Namespaces: 4, Unhealthy: 20, Total: 20}},

		// Unseen apps, just after a start.
		{name: "apps not seen yet count as healthy in their namespace",
			namespaces: many(2, NamespaceHealth{Unhealthy: 2, Unseen: 3}), threshold: 0.5, minUnhealthy: 3, minNamespaces: 2,
			want: StormVerdict{Namespaces: 2, Unhealthy: 4, Total: 10}},
		{name: "a namespace of unseen apps only is a healthy namespace",
			namespaces: cat(many(2, ns(2, 0)), many(3, NamespaceHealth{Unseen: 1})), threshold: 0.5, minUnhealthy: 3, minNamespaces: 2,
			want: StormVerdict{Stormy: 2, Namespaces: 5, Unhealthy: 4, Total: 7}},

		// One namespace with --storm-min-namespaces=1 is the rule over apps.
		{name: "one namespace: one broken app of one is below the minimum count",
			namespaces: one(ns(1, 0)), threshold: 0.5, minUnhealthy: 3, minNamespaces: 1,
			want: StormVerdict{Stormy: 1, Namespaces: 1, Unhealthy: 1, Total: 1}},
		{name: "one namespace: three of five is more than half",
			namespaces: one(ns(3, 2)), threshold: 0.5, minUnhealthy: 3, minNamespaces: 1,
			want: StormVerdict{Engaged: true, Stormy: 1, Namespaces: 1, Unhealthy: 3, Total: 5}},
		{name: "one namespace: three of six is not more than half",
			namespaces: one(ns(3, 3)), threshold: 0.5, minUnhealthy: 3, minNamespaces: 1,
			want: StormVerdict{Namespaces: 1, Unhealthy: 3, Total: 6}},
		{name: "one namespace: a minimum of one engages on the share alone",
			namespaces: one(ns(1, 0)), threshold: 0.5, minUnhealthy: 1, minNamespaces: 1,
			want: StormVerdict{Engaged: true, Stormy: 1, Namespaces: 1, Unhealthy: 1, Total: 1}},
		{name: "one namespace: unseen apps count as healthy",
			namespaces: one(NamespaceHealth{Unhealthy: 3, Unseen: 7}), threshold: 0.5, minUnhealthy: 3, minNamespaces: 1,
			want: StormVerdict{Namespaces: 1, Unhealthy: 3, Total: 10}},
		{name: "a minimum of namespaces below one is one",
			namespaces: one(ns(3, 0)), threshold: 0.5, minUnhealthy: 3, minNamespaces: 0,
			want: StormVerdict{Engaged: true, Stormy: 1, Namespaces: 1, Unhealthy: 3, Total: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Storm(StormInput{Namespaces: tc.namespaces, Threshold: tc.threshold, MinUnhealthy: tc.minUnhealthy, MinNamespaces: tc.minNamespaces})
			if got != tc.want {
				t.Fatalf("Storm = %+v, want %+v", got, tc.want)
			}
		})
	}
}
