package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// FailoverPhase is one step of moving a Service's traffic from one candidate to another.
// A move goes ScaleUpStandby (only for a standby at zero replicas) → WaitStandbyReady →
// MoveTraffic → ScaleDownOldPrimary (only with scaleStandby); each change is one ledger
// record, and the phase is derived again from what is observed on every reconcile.
type FailoverPhase string

const (
	// PhaseSteady: the Service selects the elected primary; nothing changes.
	PhaseSteady FailoverPhase = "Steady"
	// PhaseScaleUpStandby: the elected standby has zero replicas; scale it up first.
	PhaseScaleUpStandby FailoverPhase = "ScaleUpStandby"
	// PhaseWaitStandbyReady: the standby was scaled up and is not ready yet.
	PhaseWaitStandbyReady FailoverPhase = "WaitStandbyReady"
	// PhaseMoveTraffic: point the Service's selector at the elected candidate's pods.
	PhaseMoveTraffic FailoverPhase = "MoveTraffic"
	// PhaseScaleDownOldPrimary: traffic moved; scale the candidate it left down to zero.
	PhaseScaleDownOldPrimary FailoverPhase = "ScaleDownOldPrimary"
	// PhaseScaleDownStandby: a standby scaled up for a move that is no longer needed (the
	// primary recovered first) goes back to zero.
	PhaseScaleDownStandby FailoverPhase = "ScaleDownStandby"
	// PhaseDemote is not a step of a move: it is a remediation ladder's failover action,
	// which makes the policy treat its primary as failed while the ladder's episode is open.
	PhaseDemote FailoverPhase = "Demote"
)

// StandbyReadyTimeout is how long a failover waits for a standby it scaled up to become
// ready. After that the standby is no longer waited for: the election goes on without it.
const StandbyReadyTimeout = 5 * time.Minute

// FailoverRetryDelay is how long a failover waits before it tries a change that failed
// again: a refused write is retried, but never in a tight loop.
const FailoverRetryDelay = 10 * time.Second

// FailoverSettleDelay is how long a change that took effect is not made again: the time
// the informer cache may take to show it.
const FailoverSettleDelay = 2 * time.Second

// Failover reasons: a CamelCase word for the policy's state.
const (
	ReasonPrimaryHealthy       = "PrimaryHealthy"
	ReasonPrimaryUnhealthy     = "PrimaryUnhealthy"
	ReasonPrimaryDemoted       = "PrimaryDemoted"
	ReasonHigherWeight         = "HigherWeight"
	ReasonNoPrimary            = "NoPrimary"
	ReasonSelectorDrifted      = "SelectorDrifted"
	ReasonWaitingForStandby    = "WaitingForStandby"
	ReasonScalingDownOld       = "ScalingDownOldPrimary"
	ReasonStandbyNotNeeded     = "StandbyNotNeeded"
	ReasonNoHealthyCandidate   = "NoHealthyCandidate"
	ReasonServiceNotFound      = "ServiceNotFound"
	ReasonUnsupportedSelector  = "UnsupportedSelector"
	ReasonOverlappingSelectors = "OverlappingSelectors"
	ReasonRetryingChange       = "RetryingAfterFailure"
)

// defaultCandidateWeight is FailoverCandidate.weight when unset.
const defaultCandidateWeight = 100

// FailoverCandidate is what the monitor saw of one candidate component.
type FailoverCandidate struct {
	// Component names the candidate.
	Component string
	// Weight orders candidates, higher first; 0 means the API's default, 100.
	Weight int32
	// Kind is the workload's kind, for messages ("Deployment").
	Kind string
	// Found is false when the workload does not exist.
	Found bool
	// Healthy is the component's built-in healthy sensor: every desired replica ready,
	// none crash-looping, the rollout not stuck.
	Healthy bool
	// ReadyReplicas and DesiredReplicas count the component's pods.
	ReadyReplicas, DesiredReplicas int32
	// CrashLoopingPods and RolloutStuck say that waiting will not make the candidate
	// ready: a standby in either state is not waited for.
	CrashLoopingPods int32
	RolloutStuck     bool
	// MatchLabels is the workload's spec.selector.matchLabels: what the Service selects
	// when this candidate is primary.
	MatchLabels map[string]string
	// MatchExpressions is true when the workload's selector uses matchExpressions, which
	// a Service's selector cannot express.
	MatchExpressions bool
	// PodLabels are the labels of the workload's pod template.
	PodLabels map[string]string
}

// FailoverChange is a change a failover made, read back from the ledger.
type FailoverChange struct {
	Phase FailoverPhase
	// Component is what the change acted on: the standby scaled, the candidate traffic
	// moved to, the primary demoted.
	Component string
	// From is the candidate traffic moved away from (MoveTraffic only; "" when none).
	From string
	// At is when the intent was recorded.
	At time.Time
	// Reason is the record's reason, the sentence the decision gave.
	Reason string
}

// FailoverInput is everything an election depends on. The controller fills it from the
// monitor (candidates), the Service (its selector) and the ledger (the policy's last
// changes and the ladders that demoted its primary).
type FailoverInput struct {
	// Now is the decision's time.
	Now time.Time
	// Service names the Service whose selector the policy sets.
	Service string
	// Selection is Failover (keep a healthy primary) or Best (highest healthy weight);
	// empty means Failover.
	Selection v1alpha1.FailoverSelection
	// ScaleStandby allows scaling a standby at zero replicas up before traffic moves to it,
	// and the old primary down after.
	ScaleStandby bool
	// Candidates are the policy's candidates in spec order; ties in weight go to the
	// current primary, then to the earlier one.
	Candidates []FailoverCandidate
	// ServiceFound is false when the Service does not exist.
	ServiceFound bool
	// ServiceSelector is the Service's spec.selector now.
	ServiceSelector map[string]string
	// StatusPrimary is the policy's status.primary from the last reconcile; when empty (or
	// no longer a candidate) the current primary is the candidate the Service selects.
	StatusPrimary string
	// Demoted maps a candidate to the remediation policy whose open episode ran this
	// policy's failover action while it was primary: it is treated as failed.
	Demoted map[string]string
	// Last is the policy's latest change that took effect; nil when the ledger holds none.
	Last *FailoverChange
	// LastMove is the policy's latest traffic move that took effect, to say since when and
	// why the primary is primary; nil when none.
	LastMove *FailoverChange
}

// FailoverDecision is what a failover policy does now.
type FailoverDecision struct {
	// Phase is the change to make now, or PhaseSteady.
	Phase FailoverPhase
	// Primary is the candidate that is primary as things stand: where the Service's
	// traffic goes before this decision's change. A MoveTraffic that succeeds makes
	// Component the primary.
	Primary string
	// Elected is the candidate the election picked; "" when none can take traffic.
	Elected string
	// Component is the candidate the change acts on: the standby to scale up, the
	// candidate to move traffic to, the candidate to scale down.
	Component string
	// From is the candidate traffic moves away from (MoveTraffic only; "" when none).
	From string
	// Replicas is the count a scale change sets.
	Replicas int32
	// State, Reason and Message are the policy's status: a CamelCase word and a sentence a
	// person can act on.
	State   v1alpha1.PolicyState
	Reason  string
	Message string
	// NextCheck is when to decide again even if nothing changes; zero when only a change
	// can alter the decision.
	NextCheck time.Time
}

// Elect decides the primary of a failover policy and the next change towards it.
//
// The election: with selection Failover a healthy primary is kept; otherwise (or with
// Best) the healthy candidate of highest weight wins, ties going to the primary and then
// to spec order. A candidate takes traffic only when it is healthy with at least one
// ready pod and no open ladder episode demoted it. When none is, a standby the policy
// scaled up and that is still starting is waited for, and failing that the standby at
// zero replicas of highest weight is scaled up (never the primary itself: a primary at
// zero was scaled there by someone). When nothing can take traffic the Service is left
// as it is: it never points at nothing.
//
// The move: a standby at zero is scaled to the primary's replicas (at least 1); the
// Service moves once every desired replica of the standby is ready; then, with
// scaleStandby, the old primary is scaled to zero. A candidate at zero replicas is never
// elected by preference, so a primary scaled down after a failure stays out until a
// person (or GitOps) scales it up again with a fix; once it is healthy, Best moves back.
func Elect(in FailoverInput) FailoverDecision {
	if !in.ServiceFound {
		return FailoverDecision{Phase: PhaseSteady, Primary: in.StatusPrimary, State: v1alpha1.PolicyWaiting, Reason: ReasonServiceNotFound,
			Message: fmt.Sprintf("Service %s was not found in the app's namespace; the policy elects a primary once it exists.", in.Service)}
	}
	if reason, msg := invalidSelectors(in.Candidates); reason != "" {
		return FailoverDecision{Phase: PhaseSteady, Primary: in.StatusPrimary, State: v1alpha1.PolicyInvalid, Reason: reason, Message: msg}
	}
	e := newElection(in)
	return e.decide()
}

// election holds the derived facts of one Elect call.
type election struct {
	in      FailoverInput
	cands   []FailoverCandidate
	primary *FailoverCandidate // nil when there is none
	exact   *FailoverCandidate // the candidate whose selector the Service has exactly
	// warming is the standby the policy scaled up for a move that has not happened yet.
	warming    *FailoverCandidate
	warmUntil  time.Time
	warmExpiry bool // the standby did not become ready within StandbyReadyTimeout
}

func newElection(in FailoverInput) *election {
	e := &election{in: in, cands: slices.Clone(in.Candidates)}
	for i := range e.cands {
		if e.cands[i].Weight <= 0 {
			e.cands[i].Weight = defaultCandidateWeight
		}
	}
	var matching []*FailoverCandidate
	for i := range e.cands {
		c := &e.cands[i]
		if !c.Found {
			continue
		}
		if len(in.ServiceSelector) > 0 && maps.Equal(c.MatchLabels, in.ServiceSelector) {
			e.exact = c
		}
		if len(in.ServiceSelector) > 0 && selects(in.ServiceSelector, c.PodLabels) {
			matching = append(matching, c)
		}
	}
	e.primary = e.find(in.StatusPrimary)
	if e.primary == nil && len(matching) == 1 {
		// No primary recorded yet: the one candidate whose pods the Service selects.
		e.primary = matching[0]
	}
	if l := in.Last; l != nil && l.Phase == PhaseScaleUpStandby {
		if w := e.find(l.Component); w != nil {
			e.warming = w
			e.warmUntil = l.At.Add(StandbyReadyTimeout)
			e.warmExpiry = !in.Now.Before(e.warmUntil)
		}
	}
	return e
}

func (e *election) find(name string) *FailoverCandidate {
	if name == "" {
		return nil
	}
	for i := range e.cands {
		if e.cands[i].Component == name {
			return &e.cands[i]
		}
	}
	return nil
}

func (e *election) primaryName() string {
	if e.primary == nil {
		return ""
	}
	return e.primary.Component
}

// usable: the candidate can take traffic now.
func (e *election) usable(c *FailoverCandidate) bool {
	return c != nil && c.Found && c.Healthy && c.DesiredReplicas > 0 && c.ReadyReplicas > 0 && e.in.Demoted[c.Component] == ""
}

// cold: a standby at zero replicas that the policy may scale up.
func (e *election) cold(c *FailoverCandidate) bool {
	return e.in.ScaleStandby && c.Found && c.DesiredReplicas == 0 && c != e.primary && e.in.Demoted[c.Component] == ""
}

// starting: the standby the policy scaled up, still worth waiting for.
func (e *election) starting(c *FailoverCandidate) bool {
	return c != nil && c == e.warming && !e.warmExpiry && c.Found && c.DesiredReplicas > 0 && !failing(c) &&
		e.in.Demoted[c.Component] == "" && !e.usable(c)
}

// best returns the candidate of highest weight that ok accepts; among equals the primary,
// then the earliest in spec order.
func (e *election) best(ok func(*FailoverCandidate) bool) *FailoverCandidate {
	var b *FailoverCandidate
	for i := range e.cands {
		c := &e.cands[i]
		if !ok(c) {
			continue
		}
		if b == nil || c.Weight > b.Weight || (c.Weight == b.Weight && c == e.primary) {
			b = c
		}
	}
	return b
}

func (e *election) elect() *FailoverCandidate {
	if e.in.Selection != v1alpha1.SelectionBest && e.usable(e.primary) {
		return e.primary
	}
	if b := e.best(e.usable); b != nil {
		return b
	}
	if e.starting(e.warming) {
		return e.warming
	}
	return e.best(e.cold)
}

func (e *election) decide() FailoverDecision {
	t := e.elect()
	d := FailoverDecision{Phase: PhaseSteady, Primary: e.primaryName()}
	if t == nil {
		return e.noCandidate(d)
	}
	d.Elected = t.Component
	if e.exact == t {
		d.Primary = t.Component
		return e.steady(d, t)
	}
	reason, why := e.moveReason(t)
	switch {
	case e.cold(t):
		n := int32(1)
		if e.primary != nil {
			n = max(n, e.primary.DesiredReplicas)
		}
		d.Phase, d.Component, d.Replicas = PhaseScaleUpStandby, t.Component, n
		d.State, d.Reason = v1alpha1.PolicyActing, reason
		d.Message = fmt.Sprintf("%s; scaling %s (weight %d) from 0 to %d replicas before traffic moves to it.", why, t.Component, t.Weight, n)
	case !e.usable(t):
		d.Phase, d.Component = PhaseWaitStandbyReady, t.Component
		d.State, d.Reason = v1alpha1.PolicyWaiting, ReasonWaitingForStandby
		d.Message = fmt.Sprintf("%s; waiting for %s (weight %d) to be ready (%d of %d ready) before traffic moves to it, at the latest until %s.",
			why, t.Component, t.Weight, t.ReadyReplicas, t.DesiredReplicas, stamp(e.warmUntil))
		d.NextCheck = e.warmUntil
	default:
		d.Phase, d.Component = PhaseMoveTraffic, t.Component
		if e.primary != t {
			d.From = e.primaryName()
		}
		d.State, d.Reason = v1alpha1.PolicyActing, reason
		d.Message = fmt.Sprintf("%s; moving traffic to %s (weight %d).", why, t.Component, t.Weight)
	}
	return d
}

// moveReason says why traffic leaves the primary for t.
func (e *election) moveReason(t *FailoverCandidate) (string, string) {
	svc := "Service/" + e.in.Service
	p := e.primary
	switch {
	case p == nil && len(e.in.ServiceSelector) == 0:
		return ReasonNoPrimary, fmt.Sprintf("%s has no selector and no primary is recorded", svc)
	case p == nil:
		return ReasonNoPrimary, fmt.Sprintf("%s selects %s, which are the pods of no single candidate", svc, labelString(e.in.ServiceSelector))
	case p == t:
		return ReasonSelectorDrifted, fmt.Sprintf("%s selects %s, not the selector of the primary %s (%s)",
			svc, orNone(labelString(e.in.ServiceSelector)), t.Component, labelString(t.MatchLabels))
	case e.in.Demoted[p.Component] != "":
		return ReasonPrimaryDemoted, fmt.Sprintf("%s treats the primary %s as failed while its episode is open", e.in.Demoted[p.Component], p.Component)
	case !e.usable(p):
		return ReasonPrimaryUnhealthy, fmt.Sprintf("%s is unhealthy (%s)", p.Component, e.describe(p))
	default:
		return ReasonHigherWeight, fmt.Sprintf("%s (weight %d) is healthy (%d of %d ready) and selection Best prefers it to the primary %s (weight %d)",
			t.Component, t.Weight, t.ReadyReplicas, t.DesiredReplicas, p.Component, p.Weight)
	}
}

// steady: the Service selects t. What is left is to scale down what the last move left
// behind.
func (e *election) steady(d FailoverDecision, t *FailoverCandidate) FailoverDecision {
	if e.in.ScaleStandby && e.in.Last != nil {
		l := e.in.Last
		switch l.Phase {
		case PhaseMoveTraffic:
			if f := e.find(l.From); l.Component == t.Component && f != nil && f != t && f.Found && f.DesiredReplicas > 0 {
				d.Phase, d.Component, d.Replicas = PhaseScaleDownOldPrimary, f.Component, 0
				d.State, d.Reason = v1alpha1.PolicyActing, ReasonScalingDownOld
				d.Message = fmt.Sprintf("Traffic moved from %s to %s at %s; scaling the old primary %s down from %d to 0 replicas.",
					f.Component, t.Component, stamp(l.At), f.Component, f.DesiredReplicas)
				return d
			}
		case PhaseScaleUpStandby:
			w := e.warming
			if w != nil && w != t && w.Found && w.DesiredReplicas > 0 {
				if e.in.Selection == v1alpha1.SelectionBest && w.Weight > t.Weight && e.starting(w) {
					// Best moves to it once it is ready.
					d.State, d.Reason = v1alpha1.PolicyWaiting, ReasonWaitingForStandby
					d.Message = fmt.Sprintf("%s is the primary (%s); %s (weight %d) is starting (%d of %d ready) and selection Best moves traffic to it once it is ready, at the latest until %s.",
						t.Component, e.describe(t), w.Component, w.Weight, w.ReadyReplicas, w.DesiredReplicas, stamp(e.warmUntil))
					d.NextCheck = e.warmUntil
					return d
				}
				d.Phase, d.Component, d.Replicas = PhaseScaleDownStandby, w.Component, 0
				d.State, d.Reason = v1alpha1.PolicyActing, ReasonStandbyNotNeeded
				d.Message = fmt.Sprintf("%s is the primary (%s); %s was scaled up at %s for a move that is no longer needed, so it goes back from %d to 0 replicas.",
					t.Component, e.describe(t), w.Component, stamp(l.At), w.DesiredReplicas)
				return d
			}
		}
	}
	if !e.usable(t) {
		// The Service selects a candidate that cannot take traffic, and none can.
		d.State, d.Reason = v1alpha1.PolicyWaiting, ReasonWaitingForStandby
		d.Message = fmt.Sprintf("Service/%s selects %s, which is not ready (%s); it stays primary until a candidate can take traffic.",
			e.in.Service, t.Component, e.describe(t))
		return d
	}
	d.State, d.Reason = v1alpha1.PolicyIdle, ReasonPrimaryHealthy
	msg := fmt.Sprintf("%s is the primary and healthy (%d of %d ready); Service/%s selects its pods.", t.Component, t.ReadyReplicas, t.DesiredReplicas, e.in.Service)
	if e.in.Selection != v1alpha1.SelectionBest {
		if b := e.best(e.usable); b != nil && b != t && b.Weight > t.Weight {
			msg += fmt.Sprintf(" Selection Failover keeps it although %s (weight %d) is healthy too.", b.Component, b.Weight)
		}
	}
	if m := e.in.LastMove; m != nil && m.Component == t.Component {
		msg += fmt.Sprintf(" Traffic moved to it at %s: %s", stamp(m.At), strings.TrimSuffix(m.Reason, ".")+".")
	}
	d.Message = msg
	return d
}

// noCandidate: nothing can take traffic. The Service stays as it is.
func (e *election) noCandidate(d FailoverDecision) FailoverDecision {
	d.State, d.Reason = v1alpha1.PolicyWaiting, ReasonNoHealthyCandidate
	var others []string
	for i := range e.cands {
		c := &e.cands[i]
		if c != e.primary {
			others = append(others, fmt.Sprintf("%s: %s", c.Component, e.describe(c)))
		}
	}
	if p := e.primary; p != nil {
		d.Message = fmt.Sprintf("The primary %s cannot take traffic (%s) and no other candidate can (%s); Service/%s keeps selecting %s, and traffic moves as soon as a candidate is healthy.",
			p.Component, e.describe(p), strings.Join(others, "; "), e.in.Service, p.Component)
	} else {
		d.Message = fmt.Sprintf("No candidate can take traffic (%s); Service/%s is left as it is until one is healthy.", strings.Join(others, "; "), e.in.Service)
	}
	return d
}

// describe says in a few words why a candidate can or cannot take traffic.
func (e *election) describe(c *FailoverCandidate) string {
	switch {
	case !c.Found:
		return orWord(c.Kind, "workload") + " not found"
	case e.in.Demoted[c.Component] != "":
		return "treated as failed by " + e.in.Demoted[c.Component]
	case c.DesiredReplicas == 0 && c != e.primary && !e.in.ScaleStandby:
		return "scaled to 0 and scaleStandby is false"
	case c.DesiredReplicas == 0:
		return "scaled to 0"
	case c == e.warming && e.warmExpiry && !e.usable(c):
		return fmt.Sprintf("%d of %d ready, not ready within %s of being scaled up", c.ReadyReplicas, c.DesiredReplicas, StandbyReadyTimeout)
	case c.RolloutStuck:
		return fmt.Sprintf("%d of %d ready, its rollout past its progress deadline", c.ReadyReplicas, c.DesiredReplicas)
	case c.CrashLoopingPods > 0:
		return fmt.Sprintf("%d of %d ready, %d crash-looping", c.ReadyReplicas, c.DesiredReplicas, c.CrashLoopingPods)
	}
	return fmt.Sprintf("%d of %d ready", c.ReadyReplicas, c.DesiredReplicas)
}

// failing: waiting will not make the candidate ready.
func failing(c *FailoverCandidate) bool { return c.CrashLoopingPods > 0 || c.RolloutStuck }

// invalidSelectors refuses candidates a Service cannot select on their own: a selector
// with matchExpressions or none at all, or one that also selects another candidate's pods.
func invalidSelectors(cs []FailoverCandidate) (string, string) {
	for _, c := range cs {
		if !c.Found {
			continue
		}
		if c.MatchExpressions {
			return ReasonUnsupportedSelector, fmt.Sprintf(
				"The %s of candidate %s selects its pods with matchExpressions, which a Service's selector cannot express; give it a selector of matchLabels only, or remove it from the candidates.",
				orWord(c.Kind, "workload"), c.Component)
		}
		if len(c.MatchLabels) == 0 {
			return ReasonUnsupportedSelector, fmt.Sprintf(
				"The %s of candidate %s has no matchLabels in its selector, so a Service cannot select its pods; give it a selector of matchLabels.",
				orWord(c.Kind, "workload"), c.Component)
		}
	}
	for _, a := range cs {
		for _, b := range cs {
			if a.Component == b.Component || !a.Found || !b.Found {
				continue
			}
			if selects(a.MatchLabels, b.PodLabels) {
				return ReasonOverlappingSelectors, fmt.Sprintf(
					"A Service selecting the pods of %s (%s) would also select the pods of %s, so traffic could not move between them; give each candidate a pod label the others lack.",
					a.Component, labelString(a.MatchLabels), b.Component)
			}
		}
	}
	return "", ""
}

// selects is true when every label of sel is on the pod labels.
func selects(sel, podLabels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if got, ok := podLabels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// labelString renders labels as a sorted k=v list, as kubectl does.
func labelString(l map[string]string) string {
	keys := slices.Sorted(maps.Keys(l))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+l[k])
	}
	return strings.Join(parts, ",")
}

func orNone(s string) string { return orWord(s, "nothing") }

func orWord(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ContinuesFailover reports whether change d carries on a failover that the app's latest
// action began: the traffic move to the standby that action scaled up, or the first change
// after a ladder demoted the primary. Cooldown does not hold such a change: it spaces
// independent actions, and holding this one would leave traffic on a failed primary
// while its replacement is ready. The rate limit and every other guard still apply.
func ContinuesFailover(d FailoverDecision, latest *FailoverChange) bool {
	if latest == nil {
		return false
	}
	switch d.Phase {
	case PhaseMoveTraffic:
		return (latest.Phase == PhaseScaleUpStandby && latest.Component == d.Component) || latest.Phase == PhaseDemote
	case PhaseScaleUpStandby:
		return latest.Phase == PhaseDemote
	}
	return false
}

// RepeatFailoverChange says whether a policy must wait before it makes again the change
// its last record made (the same target), recorded at 'at' with result: a change that
// failed, or that the tenant's rights refused, is tried again FailoverRetryDelay after,
// never in a tight loop; one that took effect is not made again within
// FailoverSettleDelay, while the informer cache may not show it yet (after that, a
// change someone reverted is made again). until is when it may run.
func RepeatFailoverChange(result v1alpha1.ActionResult, at, now time.Time) (wait bool, until time.Time) {
	switch result {
	case v1alpha1.ResultFailed, v1alpha1.ResultForbidden:
		until = at.Add(FailoverRetryDelay)
	case v1alpha1.ResultSucceeded:
		until = at.Add(FailoverSettleDelay)
	default:
		return false, time.Time{}
	}
	return now.Before(until), until
}
