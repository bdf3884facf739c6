package plan

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// SharedPolicy is a HealingPolicy or ClusterHealingPolicy that selects an app.
type SharedPolicy struct {
	// Kind is HealingPolicy or ClusterHealingPolicy.
	Kind string
	// Namespace is the HealingPolicy's namespace; empty for a ClusterHealingPolicy.
	Namespace string
	// Name is the policy object's name.
	Name string
	// Priority orders shared policies that define the same entry: higher wins.
	Priority int32
	// Healing is what the policy contributes.
	Healing v1alpha1.Healing
}

// Source names the policy object, for status: "HealingPolicy shop/crashloops".
func (p SharedPolicy) Source() string {
	if p.Namespace == "" {
		return p.Kind + " " + p.Name
	}
	return p.Kind + " " + p.Namespace + "/" + p.Name
}

// Entry kinds of a Healing.
const (
	EntrySensor  = "sensor"
	EntrySymptom = "symptom"
	EntryPolicy  = "policy"
	EntryGuards  = "guards"
)

// Conflict is an entry of a shared policy that lost to another of the same name.
type Conflict struct {
	// Loser is the shared policy whose entry was not used.
	Loser SharedPolicy
	// Entry is sensor, symptom, policy or guards; Name the entry's name.
	Entry, Name string
	// Winner says where the entry that was used comes from.
	Winner string
}

// Message says what lost to what, for status: "symptom CrashLooping taken from the app".
func (c Conflict) Message() string {
	return fmt.Sprintf("%s %s taken from %s", c.Entry, c.Name, c.Winner)
}

// Merged is an app's own healing merged with the shared policies that select it.
type Merged struct {
	// Healing is what the app runs.
	Healing v1alpha1.Healing
	// Sources maps "<entry>/<name>" of every entry a shared policy contributed to that
	// policy's Source; the app's own entries are absent.
	Sources map[string]string
	// Conflicts are the shared entries that lost.
	Conflicts []Conflict
}

// FromShared says whether an entry came from a shared policy.
func (m Merged) FromShared(entry, name string) bool {
	_, ok := m.Sources[entry+"/"+name]
	return ok
}

// Merge merges the shared policies into the app's own healing. On a name clash the
// app's own entry wins, then the higher priority, then a HealingPolicy over a
// ClusterHealingPolicy, then the policy whose namespace and name sort first. Guards
// merge field by field in the same order.
func Merge(own v1alpha1.Healing, shared []SharedPolicy) Merged {
	order := slices.Clone(shared)
	slices.SortStableFunc(order, func(a, b SharedPolicy) int {
		return cmp.Or(
			cmp.Compare(b.Priority, a.Priority),
			cmp.Compare(kindRank(a.Kind), kindRank(b.Kind)),
			cmp.Compare(a.Namespace, b.Namespace),
			cmp.Compare(a.Name, b.Name),
		)
	})
	m := Merged{Healing: *own.DeepCopy(), Sources: map[string]string{}}
	owner := map[string]string{}
	for _, s := range own.Sensors {
		owner[EntrySensor+"/"+s.Name] = "the app"
	}
	for _, s := range own.Symptoms {
		owner[EntrySymptom+"/"+s.Name] = "the app"
	}
	for _, p := range own.Policies {
		owner[EntryPolicy+"/"+p.Name] = "the app"
	}
	take := func(p SharedPolicy, entry, name string) bool {
		key := entry + "/" + name
		if w, ok := owner[key]; ok {
			m.Conflicts = append(m.Conflicts, Conflict{Loser: p, Entry: entry, Name: name, Winner: w})
			return false
		}
		owner[key] = p.Source()
		m.Sources[key] = p.Source()
		return true
	}
	for _, p := range order {
		for _, s := range p.Healing.Sensors {
			if take(p, EntrySensor, s.Name) {
				m.Healing.Sensors = append(m.Healing.Sensors, *s.DeepCopy())
			}
		}
		for _, s := range p.Healing.Symptoms {
			if take(p, EntrySymptom, s.Name) {
				m.Healing.Symptoms = append(m.Healing.Symptoms, *s.DeepCopy())
			}
		}
		for _, pol := range p.Healing.Policies {
			if take(p, EntryPolicy, pol.Name) {
				m.Healing.Policies = append(m.Healing.Policies, *pol.DeepCopy())
			}
		}
		m.Healing.Guards = mergeGuards(m.Healing.Guards, p.Healing.Guards)
	}
	return m
}

func kindRank(kind string) int {
	if kind == "ClusterHealingPolicy" {
		return 1
	}
	return 0
}

// mergeGuards fills the guards not set in have from add.
func mergeGuards(have, add *v1alpha1.Guards) *v1alpha1.Guards {
	if add == nil {
		return have
	}
	if have == nil {
		return add.DeepCopy()
	}
	out := have.DeepCopy()
	if out.Cooldown == nil && add.Cooldown != nil {
		c := *add.Cooldown
		out.Cooldown = &c
	}
	if out.MaxActions == nil && add.MaxActions != nil {
		out.MaxActions = add.MaxActions.DeepCopy()
	}
	if out.MaxUnhealthyPods == nil && add.MaxUnhealthyPods != nil {
		v := *add.MaxUnhealthyPods
		out.MaxUnhealthyPods = &v
	}
	return out
}
