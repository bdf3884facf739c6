package replay

import (
	"fmt"
	"slices"
	"time"
)

// MaxDifferences is how many differing decisions Compare lists.
const MaxDifferences = 5

// Comparison sets two runs over the same history side by side: the current spec's and
// an edited one's.
type Comparison struct {
	// Policies pairs each policy's summaries by name, in the current spec's order and
	// then the edited one's; a side is nil where the policy is not in that spec.
	Policies []PolicyComparison `json:"policies"`
	// Replicas pairs each autoscaled component's replicas.
	Replicas []ReplicaComparison `json:"replicas,omitempty"`
	// SameDecisions is true when both runs decided the same actions, holds and ends at
	// the same times (their reasons may word different numbers).
	SameDecisions bool `json:"sameDecisions"`
	// FirstDifferences are the first decisions, up to MaxDifferences, that one run made
	// and the other did not; decisions of the same policy at the same time are paired.
	FirstDifferences []DecisionDifference `json:"firstDifferences,omitempty"`
}

// PolicyComparison is one policy in both runs.
type PolicyComparison struct {
	Policy  string         `json:"policy"`
	Current *PolicySummary `json:"current,omitempty"`
	Edited  *PolicySummary `json:"edited,omitempty"`
}

// ReplicaComparison is one component's replicas in both runs.
type ReplicaComparison struct {
	Component string        `json:"component"`
	Current   *ReplicaStats `json:"current,omitempty"`
	Edited    *ReplicaStats `json:"edited,omitempty"`
}

// DecisionDifference is a decision one run made at Time that the other did not make; a
// side is nil where that run decided nothing of the kind.
type DecisionDifference struct {
	Time    time.Time `json:"time"`
	Current *Decision `json:"current,omitempty"`
	Edited  *Decision `json:"edited,omitempty"`
}

// Compare sets the current run and an edited run side by side.
func Compare(current, edited Result) Comparison {
	c := Comparison{Policies: []PolicyComparison{}}
	byName := map[string]int{}
	for i := range current.Policies {
		p := current.Policies[i]
		byName[p.Policy] = len(c.Policies)
		c.Policies = append(c.Policies, PolicyComparison{Policy: p.Policy, Current: &p})
	}
	for i := range edited.Policies {
		p := edited.Policies[i]
		if j, ok := byName[p.Policy]; ok {
			c.Policies[j].Edited = &p
			continue
		}
		c.Policies = append(c.Policies, PolicyComparison{Policy: p.Policy, Edited: &p})
	}
	comps := map[string]int{}
	for i := range current.Replicas {
		s := current.Replicas[i].ReplicaStats
		comps[current.Replicas[i].Component] = len(c.Replicas)
		c.Replicas = append(c.Replicas, ReplicaComparison{Component: current.Replicas[i].Component, Current: &s})
	}
	for i := range edited.Replicas {
		s := edited.Replicas[i].ReplicaStats
		if j, ok := comps[edited.Replicas[i].Component]; ok {
			c.Replicas[j].Edited = &s
			continue
		}
		c.Replicas = append(c.Replicas, ReplicaComparison{Component: edited.Replicas[i].Component, Edited: &s})
	}
	c.FirstDifferences, c.SameDecisions = differences(current.Decisions, edited.Decisions)
	return c
}

// differences walks both runs' decisions in time order and returns the first ones that
// differ, and whether none do.
func differences(a, b []Decision) ([]DecisionDifference, bool) {
	var out []DecisionDifference
	same := true
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		t := earliestOf(a, i, b, j)
		ai, bj := i, j
		for i < len(a) && a[i].Time.Equal(t) {
			i++
		}
		for j < len(b) && b[j].Time.Equal(t) {
			j++
		}
		diffs := differAt(t, a[ai:i], b[bj:j])
		if len(diffs) > 0 {
			same = false
		}
		for _, d := range diffs {
			if len(out) < MaxDifferences {
				out = append(out, d)
			}
		}
	}
	return out, same
}

func earliestOf(a []Decision, i int, b []Decision, j int) time.Time {
	switch {
	case i >= len(a):
		return b[j].Time
	case j >= len(b):
		return a[i].Time
	case b[j].Time.Before(a[i].Time):
		return b[j].Time
	}
	return a[i].Time
}

// differAt matches the decisions of one time: equal decisions cancel out, and the rest
// are paired by policy where both runs have one.
func differAt(t time.Time, a, b []Decision) []DecisionDifference {
	left := slices.Clone(a)
	right := slices.Clone(b)
	for i := 0; i < len(left); i++ {
		k := decisionKey(left[i])
		if j := slices.IndexFunc(right, func(d Decision) bool { return decisionKey(d) == k }); j >= 0 {
			left = slices.Delete(left, i, i+1)
			right = slices.Delete(right, j, j+1)
			i--
		}
	}
	var out []DecisionDifference
	for _, l := range left {
		d := DecisionDifference{Time: t, Current: ptr(l)}
		if j := slices.IndexFunc(right, func(r Decision) bool { return r.Policy == l.Policy }); j >= 0 {
			d.Edited = ptr(right[j])
			right = slices.Delete(right, j, j+1)
		}
		out = append(out, d)
	}
	for _, r := range right {
		out = append(out, DecisionDifference{Time: t, Edited: ptr(r)})
	}
	return out
}

// decisionKey is what makes two decisions the same: everything but the wording.
func decisionKey(d Decision) string {
	return fmt.Sprintf("%s|%s|%s|%s|%d|%s|%s|%s|%s", d.Policy, d.Kind, d.Action, d.Component, d.Step,
		intOrNil(d.FromReplicas), intOrNil(d.Replicas), d.Guard, d.Result)
}

func intOrNil(p *int32) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}
