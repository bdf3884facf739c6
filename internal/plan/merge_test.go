package plan

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
