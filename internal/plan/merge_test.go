package plan

import (
	"fmt"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func sym(name, expr string) v1alpha1.Symptom { return v1alpha1.Symptom{Name: name, Expression: expr} }

func TestMergeOrder(t *testing.T) {
	own := v1alpha1.Healing{
		Symptoms: []v1alpha1.Symptom{sym("CrashLooping", "own")},
		Guards:   &v1alpha1.Guards{Cooldown: &metav1.Duration{Duration: time.Minute}},
	}
	cluster := SharedPolicy{Kind: "ClusterHealingPolicy", Name: "global", Priority: 10, Healing: v1alpha1.Healing{
		Symptoms: []v1alpha1.Symptom{sym("CrashLooping", "cluster"), sym("Slow", "cluster"), sym("OOM", "cluster-high")},
		Guards:   &v1alpha1.Guards{Cooldown: &metav1.Duration{Duration: time.Hour}, MaxActions: &v1alpha1.RateLimit{Count: 3}},
	}}
	nsLow := SharedPolicy{Kind: "HealingPolicy", Namespace: "shop", Name: "low", Priority: 0, Healing: v1alpha1.Healing{
		Symptoms: []v1alpha1.Symptom{sym("OOM", "ns-low")},
	}}
	nsSame := SharedPolicy{Kind: "HealingPolicy", Namespace: "shop", Name: "same", Priority: 10, Healing: v1alpha1.Healing{
		Symptoms: []v1alpha1.Symptom{sym("Slow", "namespaced")},
	}}
	m := Merge(own, []SharedPolicy{cluster, nsLow, nsSame})

	got := map[string]string{}
	for _, s := range m.Healing.Symptoms {
		got[s.Name] = s.Expression
	}
	want := map[string]string{
		"CrashLooping": "own",          // the app's own entry wins
		"Slow":         "namespaced",   // same priority: namespaced over cluster
		"OOM":          "cluster-high", // higher priority wins
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("symptom %s from %q, want %q", k, got[k], v)
		}
	}
	if m.FromShared(EntrySymptom, "CrashLooping") || !m.FromShared(EntrySymptom, "Slow") {
		t.Errorf("sources = %v", m.Sources)
	}
	if m.Sources["symptom/OOM"] != "ClusterHealingPolicy global" || m.Sources["symptom/Slow"] != "HealingPolicy shop/same" {
		t.Errorf("sources = %v", m.Sources)
	}
	if m.Healing.Guards.Cooldown.Duration != time.Minute || m.Healing.Guards.MaxActions == nil || m.Healing.Guards.MaxActions.Count != 3 {
		t.Errorf("guards merge field by field, the app's first: %+v", m.Healing.Guards)
	}
	if len(m.Conflicts) != 3 {
		t.Fatalf("conflicts = %+v", m.Conflicts)
	}
	msgs := map[string]bool{}
	for _, c := range m.Conflicts {
		msgs[c.Loser.Name+": "+c.Message()] = true
	}
	for _, w := range []string{
		"global: symptom CrashLooping taken from the app",
		"global: symptom Slow taken from HealingPolicy shop/same",
		"low: symptom OOM taken from ClusterHealingPolicy global",
	} {
		if !msgs[w] {
			t.Errorf("missing conflict %q in %v", w, msgs)
		}
	}
	if len(own.Symptoms) != 1 {
		t.Error("Merge must not change the app's own healing")
	}
}

func TestMergeWithoutSharedIsTheAppsOwn(t *testing.T) {
	own := v1alpha1.Healing{Policies: []v1alpha1.Policy{{Name: "p"}}}
	m := Merge(own, nil)
	if len(m.Healing.Policies) != 1 || len(m.Sources) != 0 || len(m.Conflicts) != 0 || m.Healing.Guards != nil {
		t.Fatalf("merged = %+v", m)
	}
}

// enforced is a ClusterHealingPolicy that enforces what e names.
func enforced(name string, priority int32, h v1alpha1.Healing, e v1alpha1.Enforcement) SharedPolicy {
	return SharedPolicy{Kind: "ClusterHealingPolicy", Name: name, Priority: priority, Healing: h, Enforced: &e}
}

func remediate(name, symptom string) v1alpha1.Policy {
	return v1alpha1.Policy{Name: name, Remediate: &v1alpha1.RemediatePolicy{When: []string{symptom}}}
}

func TestMergeWithEnforcedEntries(t *testing.T) {
	guardrail := enforced("guardrails", 0, v1alpha1.Healing{
		Sensors:  []v1alpha1.Sensor{{Name: "probe", Interval: &metav1.Duration{Duration: time.Minute}}, {Name: "extra"}},
		Symptoms: []v1alpha1.Symptom{sym("CrashLooping", "enforced"), sym("Slow", "cluster-default")},
		Policies: []v1alpha1.Policy{remediate("heal", "CrashLooping")},
	}, v1alpha1.Enforcement{Sensors: []string{"probe", "extra"}, Symptoms: []string{"CrashLooping"}, Policies: []string{"heal"}})

	tests := []struct {
		name   string
		own    v1alpha1.Healing
		shared []SharedPolicy
		// symptoms and policies are "name=where" in merged order: a symptom's
		// expression, a policy's first symptom.
		symptoms, policies []string
		sources            map[string]string
		overrides          []string
		conflicts          []string
	}{
		{
			name: "an enforced entry replaces the app's own of the same name, in its place",
			own: v1alpha1.Healing{
				Symptoms: []v1alpha1.Symptom{sym("Early", "own"), sym("CrashLooping", "own"), sym("Slow", "own")},
				Policies: []v1alpha1.Policy{remediate("first", "Early"), remediate("heal", "Slow"), remediate("last", "Slow")},
			},
			shared:   []SharedPolicy{guardrail},
			symptoms: []string{"Early=own", "CrashLooping=enforced", "Slow=own"},
			policies: []string{"first=Early", "heal=CrashLooping", "last=Slow"},
			sources:  map[string]string{"symptom/CrashLooping": "ClusterHealingPolicy guardrails (enforced)", "policy/heal": "ClusterHealingPolicy guardrails (enforced)"},
			overrides: []string{
				"symptom CrashLooping from the app is replaced by the enforced ClusterHealingPolicy guardrails",
				"policy heal from the app is replaced by the enforced ClusterHealingPolicy guardrails",
			},
			conflicts: []string{"guardrails: symptom Slow taken from the app"},
		},
		{
			name:      "an entry the policy does not enforce is a default: the app's own wins",
			own:       v1alpha1.Healing{Symptoms: []v1alpha1.Symptom{sym("Slow", "own")}},
			shared:    []SharedPolicy{guardrail},
			symptoms:  []string{"Slow=own", "CrashLooping=enforced"},
			policies:  []string{"heal=CrashLooping"},
			conflicts: []string{"guardrails: symptom Slow taken from the app"},
		},
		{
			name: "an enforced entry wins over a HealingPolicy of a higher priority, which is told",
			shared: []SharedPolicy{guardrail, {Kind: "HealingPolicy", Namespace: "shop", Name: "team", Priority: 1000,
				Healing: v1alpha1.Healing{Symptoms: []v1alpha1.Symptom{sym("CrashLooping", "team"), sym("Slow", "team")}}}},
			symptoms:  []string{"Slow=team", "CrashLooping=enforced"},
			policies:  []string{"heal=CrashLooping"},
			overrides: []string{"symptom CrashLooping from HealingPolicy shop/team is replaced by the enforced ClusterHealingPolicy guardrails"},
			conflicts: []string{
				"team: symptom CrashLooping taken from ClusterHealingPolicy guardrails (enforced)",
				"guardrails: symptom Slow taken from HealingPolicy shop/team",
			},
		},
		{
			name: "between two enforced policies the higher priority wins, then the name",
			shared: []SharedPolicy{
				enforced("a-low", 1, v1alpha1.Healing{Symptoms: []v1alpha1.Symptom{sym("CrashLooping", "a-low")}}, v1alpha1.Enforcement{Symptoms: []string{"CrashLooping"}}),
				enforced("z-high", 5, v1alpha1.Healing{Symptoms: []v1alpha1.Symptom{sym("CrashLooping", "z-high")}}, v1alpha1.Enforcement{Symptoms: []string{"CrashLooping"}}),
				enforced("b-high", 5, v1alpha1.Healing{Symptoms: []v1alpha1.Symptom{sym("CrashLooping", "b-high")}}, v1alpha1.Enforcement{Symptoms: []string{"CrashLooping"}}),
			},
			own:      v1alpha1.Healing{Symptoms: []v1alpha1.Symptom{sym("CrashLooping", "own")}},
			symptoms: []string{"CrashLooping=b-high"},
			overrides: []string{
				"symptom CrashLooping from the app is replaced by the enforced ClusterHealingPolicy b-high",
				"symptom CrashLooping from ClusterHealingPolicy z-high is replaced by the enforced ClusterHealingPolicy b-high",
				"symptom CrashLooping from ClusterHealingPolicy a-low is replaced by the enforced ClusterHealingPolicy b-high",
			},
			conflicts: []string{
				"z-high: symptom CrashLooping taken from ClusterHealingPolicy b-high (enforced)",
				"a-low: symptom CrashLooping taken from ClusterHealingPolicy b-high (enforced)",
			},
		},
		{
			name: "a HealingPolicy cannot enforce: only the cluster admin's kind does",
			own:  v1alpha1.Healing{Symptoms: []v1alpha1.Symptom{sym("CrashLooping", "own")}},
			shared: []SharedPolicy{{Kind: "HealingPolicy", Namespace: "shop", Name: "team", Priority: 1000,
				Healing:  v1alpha1.Healing{Symptoms: []v1alpha1.Symptom{sym("CrashLooping", "team")}},
				Enforced: &v1alpha1.Enforcement{Symptoms: []string{"CrashLooping"}}}},
			symptoms:  []string{"CrashLooping=own"},
			conflicts: []string{"team: symptom CrashLooping taken from the app"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Merge(tt.own, tt.shared)
			var symptoms, policies []string
			for _, s := range m.Healing.Symptoms {
				symptoms = append(symptoms, s.Name+"="+s.Expression)
			}
			for _, p := range m.Healing.Policies {
				policies = append(policies, p.Name+"="+p.Remediate.When[0])
			}
			if !slices.Equal(symptoms, tt.symptoms) || !slices.Equal(policies, tt.policies) {
				t.Errorf("merged symptoms %v and policies %v; want %v and %v", symptoms, policies, tt.symptoms, tt.policies)
			}
			for k, v := range tt.sources {
				if m.Sources[k] != v {
					t.Errorf("source of %s = %q, want %q", k, m.Sources[k], v)
				}
			}
			var overrides, conflicts []string
			for _, o := range m.Overrides {
				overrides = append(overrides, o.Message())
			}
			for _, c := range m.Conflicts {
				conflicts = append(conflicts, c.Loser.Name+": "+c.Message())
			}
			slices.Sort(overrides)
			slices.Sort(tt.overrides)
			slices.Sort(conflicts)
			slices.Sort(tt.conflicts)
			if !slices.Equal(overrides, tt.overrides) {
				t.Errorf("overrides\n%q\nwant\n%q", overrides, tt.overrides)
			}
			if !slices.Equal(conflicts, tt.conflicts) {
				t.Errorf("conflicts\n%q\nwant\n%q", conflicts, tt.conflicts)
			}
		})
	}
	// The sensor an enforced policy adds to an app that has none of its name is there.
	m := Merge(v1alpha1.Healing{Sensors: []v1alpha1.Sensor{{Name: "probe"}}}, []SharedPolicy{guardrail})
	if len(m.Healing.Sensors) != 2 || m.Healing.Sensors[0].Interval == nil || m.Healing.Sensors[1].Name != "extra" {
		t.Errorf("sensors %+v; want the enforced probe in the app's place, then extra", m.Healing.Sensors)
	}
}

func TestMergeEnforcedGuardsOnlyTighten(t *testing.T) {
	d := func(x time.Duration) *metav1.Duration { return &metav1.Duration{Duration: x} }
	rate := func(n int32, per time.Duration) *v1alpha1.RateLimit {
		return &v1alpha1.RateLimit{Count: n, Per: metav1.Duration{Duration: per}}
	}
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	count := func(n int32) *intstr.IntOrString { v := intstr.FromInt32(n); return &v }
	all := []v1alpha1.EnforcedGuard{v1alpha1.GuardCooldown, v1alpha1.GuardMaxActions, v1alpha1.GuardMaxUnhealthyPods}

	tests := []struct {
		name     string
		own      *v1alpha1.Guards
		team     *v1alpha1.Guards // a HealingPolicy's defaults
		floor    *v1alpha1.Guards // the enforced ClusterHealingPolicy's guards
		enforce  []v1alpha1.EnforcedGuard
		want     v1alpha1.Guards
		also     *intstr.IntOrString
		override string
	}{
		{name: "a shorter cooldown is raised to the enforced one", own: &v1alpha1.Guards{Cooldown: d(10 * time.Second)},
			floor: &v1alpha1.Guards{Cooldown: d(time.Minute)}, enforce: all, want: v1alpha1.Guards{Cooldown: d(time.Minute)},
			override: "guards.cooldown 10s from the app is tightened to 1m0s by the enforced ClusterHealingPolicy floor"},
		{name: "a longer cooldown stays", own: &v1alpha1.Guards{Cooldown: d(5 * time.Minute)},
			floor: &v1alpha1.Guards{Cooldown: d(time.Minute)}, enforce: all, want: v1alpha1.Guards{Cooldown: d(5 * time.Minute)}},
		{name: "an unset cooldown takes the enforced one, with nothing to report",
			floor: &v1alpha1.Guards{Cooldown: d(time.Minute)}, enforce: all, want: v1alpha1.Guards{Cooldown: d(time.Minute)}},
		{name: "a guard the policy does not enforce is a default: the app's own wins",
			own:   &v1alpha1.Guards{Cooldown: d(10 * time.Second)},
			floor: &v1alpha1.Guards{Cooldown: d(time.Minute), MaxActions: rate(5, time.Hour)}, enforce: []v1alpha1.EnforcedGuard{v1alpha1.GuardMaxActions},
			want: v1alpha1.Guards{Cooldown: d(10 * time.Second), MaxActions: rate(5, time.Hour)}},
		{name: "maxActions takes the smaller count within the longer window",
			own: &v1alpha1.Guards{MaxActions: rate(20, time.Hour)}, floor: &v1alpha1.Guards{MaxActions: rate(5, 10*time.Minute)}, enforce: all,
			want:     v1alpha1.Guards{MaxActions: rate(5, time.Hour)},
			override: "guards.maxActions 20 per 1h0m0s from the app is tightened to 5 per 1h0m0s by the enforced ClusterHealingPolicy floor"},
		{name: "a stricter maxActions stays",
			own: &v1alpha1.Guards{MaxActions: rate(3, 2*time.Hour)}, floor: &v1alpha1.Guards{MaxActions: rate(5, time.Hour)}, enforce: all,
			want: v1alpha1.Guards{MaxActions: rate(3, 2*time.Hour)}},
		{name: "a larger share of unhealthy pods is lowered",
			own: &v1alpha1.Guards{MaxUnhealthyPods: pct("50%")}, floor: &v1alpha1.Guards{MaxUnhealthyPods: pct("30%")}, enforce: all,
			want:     v1alpha1.Guards{MaxUnhealthyPods: pct("30%")},
			override: "guards.maxUnhealthyPods 50% from the app is tightened to 30% by the enforced ClusterHealingPolicy floor"},
		{name: "a smaller share stays",
			own: &v1alpha1.Guards{MaxUnhealthyPods: pct("20%")}, floor: &v1alpha1.Guards{MaxUnhealthyPods: pct("30%")}, enforce: all,
			want: v1alpha1.Guards{MaxUnhealthyPods: pct("20%")}},
		{name: "a count beside the app's percentage: both hold",
			own: &v1alpha1.Guards{MaxUnhealthyPods: pct("50%")}, floor: &v1alpha1.Guards{MaxUnhealthyPods: count(2)}, enforce: all,
			want: v1alpha1.Guards{MaxUnhealthyPods: pct("50%")}, also: count(2),
			override: "guards.maxUnhealthyPods 50% from the app is tightened to 50% and 2 by the enforced ClusterHealingPolicy floor"},
		{name: "a HealingPolicy's default is tightened too, and named",
			team: &v1alpha1.Guards{Cooldown: d(5 * time.Second)}, floor: &v1alpha1.Guards{Cooldown: d(30 * time.Second)}, enforce: all,
			want:     v1alpha1.Guards{Cooldown: d(30 * time.Second)},
			override: "guards.cooldown 5s from HealingPolicy shop/team is tightened to 30s by the enforced ClusterHealingPolicy floor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shared := []SharedPolicy{enforced("floor", 0, v1alpha1.Healing{Guards: tt.floor}, v1alpha1.Enforcement{Guards: tt.enforce})}
			if tt.team != nil {
				shared = append(shared, SharedPolicy{Kind: "HealingPolicy", Namespace: "shop", Name: "team", Priority: 1000,
					Healing: v1alpha1.Healing{Guards: tt.team}})
			}
			m := Merge(v1alpha1.Healing{Guards: tt.own}, shared)
			if !equality(*m.Healing.Guards, tt.want) {
				t.Errorf("guards %s, want %s", guardsString(*m.Healing.Guards), guardsString(tt.want))
			}
			if (m.MaxUnhealthyPodsAlso == nil) != (tt.also == nil) || (tt.also != nil && *m.MaxUnhealthyPodsAlso != *tt.also) {
				t.Errorf("MaxUnhealthyPodsAlso = %v, want %v", m.MaxUnhealthyPodsAlso, tt.also)
			}
			var got string
			if len(m.Overrides) > 0 {
				got = m.Overrides[0].Message()
			}
			if got != tt.override || len(m.Overrides) > 1 {
				t.Errorf("overrides %+v, want %q", m.Overrides, tt.override)
			}
		})
	}
}

// TestMergedGuardsAreNeverLooserThanAnEnforcedOneOrTheAppsOwn tries every combination of
// a few values of each guard, the app's and an enforced policy's: the merged guard is at
// least as strict as both.
func TestMergedGuardsAreNeverLooserThanAnEnforcedOneOrTheAppsOwn(t *testing.T) {
	cooldowns := []*metav1.Duration{nil, {Duration: 0}, {Duration: 30 * time.Second}, {Duration: time.Hour}}
	rates := []*v1alpha1.RateLimit{nil, {Count: 1, Per: metav1.Duration{Duration: time.Hour}}, {Count: 10, Per: metav1.Duration{Duration: time.Minute}},
		{Count: 50, Per: metav1.Duration{Duration: 24 * time.Hour}}}
	shares := []*intstr.IntOrString{nil, ptrTo(intstr.FromString("0%")), ptrTo(intstr.FromString("40%")), ptrTo(intstr.FromInt32(0)), ptrTo(intstr.FromInt32(3))}
	all := []v1alpha1.EnforcedGuard{v1alpha1.GuardCooldown, v1alpha1.GuardMaxActions, v1alpha1.GuardMaxUnhealthyPods}
	for _, oc := range cooldowns {
		for _, ec := range cooldowns[1:] {
			for _, or := range rates {
				for _, er := range rates[1:] {
					for _, ou := range shares {
						for _, eu := range shares[1:] {
							own := &v1alpha1.Guards{Cooldown: oc, MaxActions: or, MaxUnhealthyPods: ou}
							floor := &v1alpha1.Guards{Cooldown: ec, MaxActions: er, MaxUnhealthyPods: eu}
							m := Merge(v1alpha1.Healing{Guards: own}, []SharedPolicy{enforced("floor", 0, v1alpha1.Healing{Guards: floor}, v1alpha1.Enforcement{Guards: all})})
							g := m.Healing.Guards
							what := fmt.Sprintf("own %s, enforced %s: merged %s", guardsString(*own), guardsString(*floor), guardsString(*g))
							if g.Cooldown.Duration < ec.Duration || (oc != nil && g.Cooldown.Duration < oc.Duration) {
								t.Fatalf("cooldown loosened: %s", what)
							}
							if g.MaxActions.Count > er.Count || g.MaxActions.Per.Duration < er.Per.Duration ||
								(or != nil && (g.MaxActions.Count > or.Count || g.MaxActions.Per.Duration < or.Per.Duration)) {
								t.Fatalf("maxActions loosened: %s", what)
							}
							limits := []intstr.IntOrString{*g.MaxUnhealthyPods}
							if m.MaxUnhealthyPodsAlso != nil {
								limits = append(limits, *m.MaxUnhealthyPodsAlso)
							}
							for _, want := range []*intstr.IntOrString{ou, eu} {
								if want == nil {
									continue
								}
								if !slices.ContainsFunc(limits, func(l intstr.IntOrString) bool { return sameKind(l, *want) && amount(l) <= amount(*want) }) {
									t.Fatalf("maxUnhealthyPods loosened: %s, also %v", what, m.MaxUnhealthyPodsAlso)
								}
							}
						}
					}
				}
			}
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

func equality(a, b v1alpha1.Guards) bool { return guardsString(a) == guardsString(b) }

func guardsString(g v1alpha1.Guards) string {
	s := "{"
	if g.Cooldown != nil {
		s += " cooldown " + g.Cooldown.Duration.String()
	}
	if g.MaxActions != nil {
		s += " maxActions " + rateString(*g.MaxActions)
	}
	if g.MaxUnhealthyPods != nil {
		s += " maxUnhealthyPods " + g.MaxUnhealthyPods.String()
	}
	return s + " }"
}
