package plan

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

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
	// Enforced names the entries and guards of a ClusterHealingPolicy that the app cannot
	// override or loosen; nil for none, and always nil for a HealingPolicy.
	Enforced *v1alpha1.Enforcement
}

// Source names the policy object, for status: "HealingPolicy shop/crashloops".
func (p SharedPolicy) Source() string {
	if p.Namespace == "" {
		return p.Kind + " " + p.Name
	}
	return p.Kind + " " + p.Namespace + "/" + p.Name
}

// enforcedSource is how status names an entry an enforced policy contributed.
func (p SharedPolicy) enforcedSource() string { return p.Source() + " (enforced)" }

// Entry kinds of a Healing.
const (
	EntrySensor  = "sensor"
	EntrySymptom = "symptom"
	EntryPolicy  = "policy"
	EntryGuards  = "guards"
)

// appSource names the app's own entries in conflicts and overrides.
const appSource = "the app"

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

// Override is an entry that an enforced ClusterHealingPolicy's entry of the same name
// replaced, or a guard that one of its guards tightened.
type Override struct {
	// Entry is sensor, symptom, policy or guards. Name is the entry's name, or for guards
	// the field: cooldown, maxActions or maxUnhealthyPods.
	Entry, Name string
	// From says where the replaced entry or the tightened guard came from: "the app", or
	// a shared policy's Source.
	From string
	// By is the enforced ClusterHealingPolicy.
	By SharedPolicy
	// Was and Now are a guard's value before and after it was tightened; empty for an
	// entry.
	Was, Now string
}

// What says what was replaced or tightened: "policy heal-web from the app is replaced",
// "guards.cooldown 10s from the app is tightened to 1m0s".
func (o Override) What() string {
	if o.Entry == EntryGuards {
		return fmt.Sprintf("guards.%s %s from %s is tightened to %s", o.Name, o.Was, o.From, o.Now)
	}
	return fmt.Sprintf("%s %s from %s is replaced", o.Entry, o.Name, o.From)
}

// FromApp says whether the replaced entry or the tightened guard is the app's own.
func (o Override) FromApp() bool { return o.From == appSource }

// Message says what was replaced or tightened and by which policy, for the app's status:
// "policy heal-web from the app is replaced by the enforced ClusterHealingPolicy
// guardrails".
func (o Override) Message() string {
	return o.What() + " by the enforced " + o.By.Source()
}

// Merged is an app's own healing merged with the shared policies that select it.
type Merged struct {
	// Healing is what the app runs.
	Healing v1alpha1.Healing
	// Sources maps "<entry>/<name>" of every entry a shared policy contributed to that
	// policy's Source, with " (enforced)" for an enforced entry; the app's own entries
	// are absent.
	Sources map[string]string
	// Conflicts are the shared entries that lost.
	Conflicts []Conflict
	// Overrides are the entries that enforced entries replaced and the guards that
	// enforced guards tightened, in merge order.
	Overrides []Override
	// MaxUnhealthyPodsAlso is an enforced maxUnhealthyPods of the other kind than
	// Healing.Guards.MaxUnhealthyPods (a count beside a percentage), which only the pods
	// there are can compare: both limits hold. Nil when there is none.
	MaxUnhealthyPodsAlso *intstr.IntOrString
}

// FromShared says whether an entry came from a shared policy.
func (m Merged) FromShared(entry, name string) bool {
	_, ok := m.Sources[entry+"/"+name]
	return ok
}

// PolicyFromShared says whether the named policy came from a shared policy: what
// analyze.ValidateMerged asks of the merged view.
func (m Merged) PolicyFromShared(name string) bool { return m.FromShared(EntryPolicy, name) }

// Merge merges the shared policies into the app's own healing.
//
// The entries an enforced ClusterHealingPolicy names win every clash: such an entry
// replaces the app's own entry of the same name (in its place) and any other shared
// policy's; between two enforced policies the higher priority wins, then the name that
// sorts first. Every other entry merges as a default: on a name clash the app's own
// entry wins, then the higher priority, then a HealingPolicy over a ClusterHealingPolicy,
// then the policy whose namespace and name sort first.
//
// Guards merge field by field in that default order. Then each guard an enforced policy
// names bounds the result, so it can only tighten: cooldown at least the enforced one,
// maxActions at most its count within at least its window, maxUnhealthyPods at most the
// enforced one of the same kind, and both when the kinds differ (MaxUnhealthyPodsAlso).
//
// What enforced entries and guards replaced or tightened is in Overrides; every shared
// entry that lost, to whatever, is in Conflicts.
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
	m := Merged{Sources: map[string]string{}}
	e := entries{m: &m, enforced: enforcedEntries(order), owner: map[string]string{}, placed: map[string]bool{}}

	// The app's own entries, each replaced in its place by an enforced one of its name.
	m.Healing.Sensors = mergeList(&e, EntrySensor, own.Sensors, func(s v1alpha1.Sensor) string { return s.Name },
		func(p SharedPolicy) []v1alpha1.Sensor { return p.Healing.Sensors })
	m.Healing.Symptoms = mergeList(&e, EntrySymptom, own.Symptoms, func(s v1alpha1.Symptom) string { return s.Name },
		func(p SharedPolicy) []v1alpha1.Symptom { return p.Healing.Symptoms })
	m.Healing.Policies = mergeList(&e, EntryPolicy, own.Policies, func(p v1alpha1.Policy) string { return p.Name },
		func(p SharedPolicy) []v1alpha1.Policy { return p.Healing.Policies })
	// Then the shared entries, policy by policy in order: sensors, symptoms, policies.
	for _, p := range order {
		m.Healing.Sensors = appendShared(&e, p, EntrySensor, m.Healing.Sensors, p.Healing.Sensors, func(s v1alpha1.Sensor) string { return s.Name })
		m.Healing.Symptoms = appendShared(&e, p, EntrySymptom, m.Healing.Symptoms, p.Healing.Symptoms, func(s v1alpha1.Symptom) string { return s.Name })
		m.Healing.Policies = appendShared(&e, p, EntryPolicy, m.Healing.Policies, p.Healing.Policies, func(p v1alpha1.Policy) string { return p.Name })
	}
	mergeAllGuards(&m, own.Guards, order)
	return m
}

func kindRank(kind string) int {
	if kind == "ClusterHealingPolicy" {
		return 1
	}
	return 0
}

// entries is the bookkeeping of one Merge.
type entries struct {
	m *Merged
	// enforced maps "<entry>/<name>" to the enforced policy whose entry wins.
	enforced map[string]SharedPolicy
	// owner maps "<entry>/<name>" to where the entry that was taken comes from.
	owner map[string]string
	// placed holds the enforced entries already in the merged lists.
	placed map[string]bool
}

// enforcedEntries finds, for every entry an enforced policy names, the policy that wins:
// the first in merge order (order is sorted by priority, then name).
func enforcedEntries(order []SharedPolicy) map[string]SharedPolicy {
	out := map[string]SharedPolicy{}
	claim := func(p SharedPolicy, entry string, names []string, has func(string) bool) {
		for _, n := range names {
			key := entry + "/" + n
			if _, taken := out[key]; !taken && has(n) {
				out[key] = p
			}
		}
	}
	for _, p := range order {
		if p.Enforced == nil || p.Kind != "ClusterHealingPolicy" {
			continue
		}
		h := p.Healing
		claim(p, EntrySensor, p.Enforced.Sensors, func(n string) bool {
			return slices.ContainsFunc(h.Sensors, func(s v1alpha1.Sensor) bool { return s.Name == n })
		})
		claim(p, EntrySymptom, p.Enforced.Symptoms, func(n string) bool {
			return slices.ContainsFunc(h.Symptoms, func(s v1alpha1.Symptom) bool { return s.Name == n })
		})
		claim(p, EntryPolicy, p.Enforced.Policies, func(n string) bool {
			return slices.ContainsFunc(h.Policies, func(x v1alpha1.Policy) bool { return x.Name == n })
		})
	}
	return out
}

// deepCopier is an API type with a generated DeepCopy.
type deepCopier[T any] interface{ DeepCopy() *T }

// mergeList is the app's own entries of one kind, each replaced in its place by the
// enforced entry of its name.
func mergeList[T any, PT interface {
	*T
	deepCopier[T]
}](e *entries, entry string, own []T, name func(T) string, of func(SharedPolicy) []T) []T {
	var out []T
	for _, x := range own {
		key := entry + "/" + name(x)
		w, ok := e.enforced[key]
		if !ok {
			e.owner[key] = appSource
			out = append(out, *PT(&x).DeepCopy())
			continue
		}
		i := slices.IndexFunc(of(w), func(y T) bool { return name(y) == name(x) })
		y := of(w)[i]
		out = append(out, *PT(&y).DeepCopy())
		e.take(key, w)
		e.m.Overrides = append(e.m.Overrides, Override{Entry: entry, Name: name(x), From: appSource, By: w})
	}
	return out
}

// appendShared appends the entries of one kind of the shared policy p that win: an
// enforced entry of p, or an entry no one took and no enforced entry claims. Each that
// loses is a conflict, and an override when an enforced entry beat it.
func appendShared[T any, PT interface {
	*T
	deepCopier[T]
}](e *entries, p SharedPolicy, entry string, out, add []T, name func(T) string) []T {
	for _, x := range add {
		key := entry + "/" + name(x)
		w, enforced := e.enforced[key]
		switch {
		case enforced && w.Source() == p.Source():
			if e.placed[key] {
				continue // already in the place of the app's own entry
			}
			e.take(key, w)
		case enforced:
			e.m.Conflicts = append(e.m.Conflicts, Conflict{Loser: p, Entry: entry, Name: name(x), Winner: w.enforcedSource()})
			e.m.Overrides = append(e.m.Overrides, Override{Entry: entry, Name: name(x), From: p.Source(), By: w})
			continue
		case e.owner[key] != "":
			e.m.Conflicts = append(e.m.Conflicts, Conflict{Loser: p, Entry: entry, Name: name(x), Winner: e.owner[key]})
			continue
		default:
			e.owner[key] = p.Source()
			e.m.Sources[key] = p.Source()
		}
		out = append(out, *PT(&x).DeepCopy())
	}
	return out
}

// take records that the enforced entry of w is in the merged lists.
func (e *entries) take(key string, w SharedPolicy) {
	e.placed[key] = true
	e.owner[key] = w.enforcedSource()
	e.m.Sources[key] = w.enforcedSource()
}

// mergeAllGuards merges the guards: the app's own, each unset field filled from the
// shared policies in order, then bounded by the guards enforced policies name.
func mergeAllGuards(m *Merged, own *v1alpha1.Guards, order []SharedPolicy) {
	from := map[v1alpha1.EnforcedGuard]string{}
	set := func(g *v1alpha1.Guards, source string) {
		if g == nil {
			return
		}
		for f, isSet := range map[v1alpha1.EnforcedGuard]bool{
			v1alpha1.GuardCooldown: g.Cooldown != nil, v1alpha1.GuardMaxActions: g.MaxActions != nil,
			v1alpha1.GuardMaxUnhealthyPods: g.MaxUnhealthyPods != nil,
		} {
			if _, ok := from[f]; isSet && !ok {
				from[f] = source
			}
		}
	}
	m.Healing.Guards = own.DeepCopy()
	set(own, appSource)
	for _, p := range order {
		set(p.Healing.Guards, p.Source())
		m.Healing.Guards = mergeGuards(m.Healing.Guards, p.Healing.Guards)
	}
	for _, p := range order {
		if p.Enforced == nil || p.Kind != "ClusterHealingPolicy" || p.Healing.Guards == nil {
			continue
		}
		for _, f := range p.Enforced.Guards {
			if m.Healing.Guards == nil {
				m.Healing.Guards = &v1alpha1.Guards{}
			}
			was, now, tightened := bound(m, f, p.Healing.Guards)
			if tightened && from[f] != "" {
				m.Overrides = append(m.Overrides, Override{Entry: EntryGuards, Name: string(f), From: from[f], By: p, Was: was, Now: now})
			}
			if tightened || from[f] == "" {
				from[f] = p.enforcedSource()
			}
		}
	}
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

// bound applies the enforced guard field f of e to the merged guards: a field not set
// takes the enforced value; a set one is tightened to the stricter of the two. It says
// the value before and after when it tightened a value that was set.
func bound(m *Merged, f v1alpha1.EnforcedGuard, e *v1alpha1.Guards) (was, now string, tightened bool) {
	g := m.Healing.Guards
	switch f {
	case v1alpha1.GuardCooldown:
		if e.Cooldown == nil {
			return "", "", false
		}
		if g.Cooldown == nil {
			g.Cooldown = &metav1.Duration{Duration: e.Cooldown.Duration}
			return "", "", false
		}
		if g.Cooldown.Duration >= e.Cooldown.Duration {
			return "", "", false
		}
		was = g.Cooldown.Duration.String()
		g.Cooldown = &metav1.Duration{Duration: e.Cooldown.Duration}
		return was, g.Cooldown.Duration.String(), true
	case v1alpha1.GuardMaxActions:
		if e.MaxActions == nil {
			return "", "", false
		}
		if g.MaxActions == nil {
			g.MaxActions = e.MaxActions.DeepCopy()
			return "", "", false
		}
		// At most the smaller count within the longer window is at least as strict as
		// each: any window of either length holds no more than that count.
		next := v1alpha1.RateLimit{Count: min(g.MaxActions.Count, e.MaxActions.Count),
			Per: metav1.Duration{Duration: max(g.MaxActions.Per.Duration, e.MaxActions.Per.Duration)}}
		if next == *g.MaxActions {
			return "", "", false
		}
		was = rateString(*g.MaxActions)
		g.MaxActions = &next
		return was, rateString(next), true
	case v1alpha1.GuardMaxUnhealthyPods:
		if e.MaxUnhealthyPods == nil {
			return "", "", false
		}
		limit := *e.MaxUnhealthyPods
		cur := g.MaxUnhealthyPods
		switch {
		case cur == nil:
			g.MaxUnhealthyPods = &limit
			return "", "", false
		case sameKind(*cur, limit):
			if !below(limit, *cur) {
				return "", "", false
			}
			was = unhealthyString(cur, m.MaxUnhealthyPodsAlso)
			g.MaxUnhealthyPods = &limit
		case m.MaxUnhealthyPodsAlso == nil || below(limit, *m.MaxUnhealthyPodsAlso):
			was = unhealthyString(cur, m.MaxUnhealthyPodsAlso)
			m.MaxUnhealthyPodsAlso = &limit
		default:
			return "", "", false
		}
		return was, unhealthyString(g.MaxUnhealthyPods, m.MaxUnhealthyPodsAlso), true
	}
	return "", "", false
}

func rateString(r v1alpha1.RateLimit) string {
	return fmt.Sprintf("%d per %s", r.Count, r.Per.Duration)
}

// unhealthyString is a maxUnhealthyPods limit, with the second limit of the other kind
// when there is one: "50%", "50% and 3 pods".
func unhealthyString(v, also *intstr.IntOrString) string {
	s := v.String()
	if also != nil {
		s += " and " + also.String()
	}
	return s
}

// sameKind says whether two maxUnhealthyPods are both counts or both percentages.
func sameKind(a, b intstr.IntOrString) bool { return isPercent(a) == isPercent(b) }

func isPercent(v intstr.IntOrString) bool {
	return v.Type == intstr.String && strings.HasSuffix(v.StrVal, "%")
}

// below says whether a is a stricter limit than b, of the same kind.
func below(a, b intstr.IntOrString) bool { return amount(a) < amount(b) }

// amount is a count, or a percentage's number; a value the API's pattern would refuse
// counts as no limit.
func amount(v intstr.IntOrString) int {
	if v.Type == intstr.Int {
		return v.IntValue()
	}
	n, err := strconv.Atoi(strings.TrimSuffix(v.StrVal, "%"))
	if err != nil {
		return int(^uint(0) >> 1)
	}
	return n
}

// MergedView is the app with the shared policies merged into its spec (Merge): what the
// loop runs, what the webhook validates and what a replay replays.
func MergedView(app *v1alpha1.AutonomicApp, shared []SharedPolicy) (*v1alpha1.AutonomicApp, Merged) {
	merged := Merge(app.Spec.Healing, shared)
	view := app.DeepCopy()
	view.Spec.Healing = merged.Healing
	return view, merged
}
