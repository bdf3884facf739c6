package plan

import (
	"fmt"
	"math"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// Node guard reasons, in the order NodeGuard checks them.
const (
	// ReasonNodeActionsNotAllowed refuses a node action of a policy that neither comes
	// from a ClusterHealingPolicy nor belongs to a namespace the cluster admin lists in
	// --node-actions-namespaces: nodes are shared, and belong to the admin.
	ReasonNodeActionsNotAllowed = "NodeActionsNotAllowed"
	// ReasonNodesUnknown holds a node action while the cluster's nodes are not known:
	// missing data never acts.
	ReasonNodesUnknown = "NodesUnknown"
	// ReasonNodesInFlight holds a node action that would put more nodes in the app's
	// hands than maxNodes allows. The nodes in its hands are read from the nodes (their
	// NodeAppAnnotation), not from its bounded history.
	ReasonNodesInFlight = "NodesInFlight"
	// ReasonTooManyUnavailableNodes holds a node action when too large a share of the
	// cluster's nodes is NotReady or cordoned: the problem is wider than these nodes.
	ReasonTooManyUnavailableNodes = "TooManyUnavailableNodes"
)

// Defaults of v1alpha1.NodeAction.
const (
	// DefaultMaxNodes is how many nodes an app may hold cordoned or drained at once.
	DefaultMaxNodes = 1
	// DefaultMaxUnavailableNodes is the share of the cluster's nodes that may be
	// NotReady or cordoned once a node action has acted.
	DefaultMaxUnavailableNodes = "10%"
)

// The manager's flags of the admin's node policy (NodeAdmin), named in messages so a
// reader knows what to ask the admin for.
const (
	FlagNodeActionsNamespaces = "--node-actions-namespaces"
	FlagMaxNodesPerAction     = "--max-nodes-per-action"
	FlagMaxUnavailableNodes   = "--max-unavailable-nodes"
)

// AnyNamespace, as --node-actions-namespaces, lets the policies of every namespace run
// node actions.
const AnyNamespace = "*"

// NodeAdmin is the cluster admin's policy on node actions, from the manager's flags.
// An app's own fields may only lower its ceilings. The zero value restricts nothing:
// every namespace, no ceiling.
type NodeAdmin struct {
	// RestrictNamespaces is true when node actions run only from ClusterHealingPolicies
	// and from the apps and HealingPolicies of Namespaces (--node-actions-namespaces is
	// not AnyNamespace).
	RestrictNamespaces bool
	// Namespaces are the namespaces whose own policies may run node actions when
	// RestrictNamespaces is set; empty means none.
	Namespaces []string
	// MaxNodes is the ceiling of a node action's maxNodes (--max-nodes-per-action); 0
	// is no ceiling.
	MaxNodes int32
	// MaxUnavailableNodes is the ceiling of a node action's maxUnavailableNodes
	// (--max-unavailable-nodes), a count or a percentage of all nodes rounded up; nil
	// is no ceiling.
	MaxUnavailableNodes *intstr.IntOrString
}

// allows says whether a node action of a policy may run: it comes from a
// ClusterHealingPolicy, or its app's namespace is one the admin lists.
func (a NodeAdmin) allows(namespace string, fromCluster bool) bool {
	return fromCluster || !a.RestrictNamespaces || slices.Contains(a.Namespaces, namespace)
}

// EffectiveMaxNodes is the maxNodes a node action works with: the action's own (0 is
// DefaultMaxNodes), lowered to the admin's ceiling (0 is none). lowered says the
// ceiling lowered it.
func EffectiveMaxNodes(own, ceiling int32) (limit int32, lowered bool) {
	limit = own
	if limit <= 0 {
		limit = DefaultMaxNodes
	}
	if ceiling > 0 && ceiling < limit {
		return ceiling, true
	}
	return limit, false
}

// FromClusterPolicy says whether a policy's source (Merged.Sources, SharedPolicy.Source)
// is a ClusterHealingPolicy. The app's own policies have no source.
func FromClusterPolicy(source string) bool {
	return strings.HasPrefix(source, "ClusterHealingPolicy ")
}

// NodeAppAnnotation is stamped, with v1alpha1.ActionIDAnnotation, on every node a
// cordonNode or drainNode action cordons: the app (AppKey) whose action holds the node.
// It is what makes a node count against that app's maxNodes for as long as the node
// stays cordoned, however long ago the action ran.
const NodeAppAnnotation = "autonomic.homeostat.dev/app"

// AppKey is the value of NodeAppAnnotation for an app: namespace/name.
func AppKey(namespace, name string) string { return namespace + "/" + name }

// Ledger names of the node actions (v1alpha1.Action.Kind).
const (
	actionCordonNode = "cordonNode"
	actionDrainNode  = "drainNode"
)

// NodeState is what the node guard knows about one node of the cluster.
type NodeState struct {
	// Name is the node's name.
	Name string
	// Ready is true when the node's Ready condition is True. False, Unknown (the
	// kubelet stopped posting) and a missing condition are all NotReady.
	Ready bool
	// Unschedulable is spec.unschedulable: the node is cordoned.
	Unschedulable bool
	// ActionID is the node's autonomic.homeostat.dev/action-id annotation: the
	// Homeostat action that last cordoned or drained it; empty when none did.
	ActionID string
	// App is the node's NodeAppAnnotation: the app whose node action cordoned it. It is
	// empty when no Homeostat action did, and on a node an older Homeostat cordoned,
	// which stamped only the id.
	App string
	// Pending says the informer cache does not show the node cordoned by App yet, but
	// this manager let App's node action take it a moment ago, so it is cordoned by App
	// as far as the guard is concerned (the controller's node gate sets it).
	Pending bool
}

// NodeStates turns nodes, as an informer cache holds them, into what NodeGuard reads.
func NodeStates(nodes []corev1.Node) []NodeState {
	out := make([]NodeState, 0, len(nodes))
	for i := range nodes {
		n := &nodes[i]
		out = append(out, NodeState{
			Name:          n.Name,
			Ready:         NodeReady(n),
			Unschedulable: n.Spec.Unschedulable,
			ActionID:      n.Annotations[v1alpha1.ActionIDAnnotation],
			App:           n.Annotations[NodeAppAnnotation],
		})
	}
	return out
}

// NodeReady is the node's Ready condition: True is Ready; False, Unknown (the kubelet
// stopped posting) and a missing condition are NotReady.
func NodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// NodeActionIDs returns the ids of the cordonNode and drainNode actions in an app's
// ledger. They only place nodes an older Homeostat cordoned, which carry an id but no
// NodeAppAnnotation: such a node that carries one of them and is still cordoned is in
// the app's hands while the record is in the bounded history.
func NodeActionIDs(history []v1alpha1.ActionRecord) []string {
	var ids []string
	for _, r := range history {
		if r.Action == actionCordonNode || r.Action == actionDrainNode {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// NodeGuardInput is what the node guard looks at before a cordonNode or drainNode
// action. The controller fills it from the Node informer, the nodes its node gate let
// an action take that the informer does not show cordoned yet, the app, the action's
// spec and what Prepare fixed:
//
//	Nodes        every node of the cluster (NodeStates of the Node lister's list), with
//	             the gate's pending nodes marked cordoned by their app
//	Candidates   Prepared.Objects: the nodes the action would cordon or drain
//	App          AppKey of the app that asks
//	AppActionIDs NodeActionIDs(app.Status.History), for nodes without NodeAppAnnotation
//	MaxNodes, MaxUnavailableNodes  the action's own fields, as the user wrote them
//	Namespace    the app's namespace
//	FromClusterPolicy  FromClusterPolicy of the policy's source in the merged view
//	Admin        the manager's flags: where node actions may come from, the ceilings
type NodeGuardInput struct {
	// Nodes are all the cluster's nodes.
	Nodes []NodeState
	// Candidates are the names of the nodes the action would cordon or drain.
	Candidates []string
	// App is AppKey of the app that asks: a cordoned node whose App it is, is in the
	// app's hands.
	App string
	// AppActionIDs are the ids of this app's node actions in its ledger. A cordoned node
	// without an App that carries one of them is in the app's hands too.
	AppActionIDs []string
	// MaxNodes caps the nodes the app holds cordoned or drained at once, counting
	// the candidates; 0 means DefaultMaxNodes.
	MaxNodes int32
	// MaxUnavailableNodes caps the nodes of the cluster that may be NotReady or
	// cordoned once the action has acted; a count, or a percentage of all nodes rounded
	// up. Nil means DefaultMaxUnavailableNodes.
	MaxUnavailableNodes *intstr.IntOrString
	// Namespace is the app's namespace.
	Namespace string
	// FromClusterPolicy is true when the policy that acts comes from a
	// ClusterHealingPolicy, which the cluster admin wrote.
	FromClusterPolicy bool
	// Admin is the cluster admin's node policy: where node actions may come from, and
	// the ceilings MaxNodes and MaxUnavailableNodes are lowered to.
	Admin NodeAdmin
}

// NodeGuard decides whether a cordonNode or drainNode action may run now. It is checked
// after CheckGuards, and holds the action:
//
//   - NodeActionsNotAllowed, when the policy is the app's own or a HealingPolicy's and the
//     app's namespace is not one the admin lists (NodeAdmin): only a ClusterHealingPolicy
//     may act on nodes from there. Nothing else is looked at.
//   - NodesUnknown, while no node is known: missing data never acts.
//   - NodesInFlight, when the app's nodes in flight and the candidates together exceed
//     maxNodes, lowered to the admin's ceiling. A node is in the app's flight while it
//     is cordoned (or Pending) and its App is the app, or, stamped by an older Homeostat
//     without an App, it carries the id of one of the app's node actions; a candidate
//     already in flight counts once, so a ladder may cordon a node and then drain the
//     same node.
//   - TooManyUnavailableNodes, when the nodes that are NotReady or cordoned, with the
//     candidates added, exceed maxUnavailableNodes, or the admin's ceiling when that is
//     lower. A candidate that is NotReady already counts once: it is the reason to act
//     and acting adds nothing to the unavailable nodes, so one sick node in a small
//     cluster is drained with the default 10% (which rounds up to one node). A second sick or cordoned node on top
//     of it says the problem is wider than a node, and the action waits. 0 never acts.
//     A Pending node counts as cordoned: another app's action has just taken it.
//
// A held verdict has no Until: only a change of the nodes (or of the admin's flags, which
// restarts the manager) lets the action through. A message says when the admin's
// ceiling, not the app's field, is the limit that holds it.
func NodeGuard(in NodeGuardInput) Verdict {
	if !in.Admin.allows(in.Namespace, in.FromClusterPolicy) {
		return Verdict{Held: true, Reason: ReasonNodeActionsNotAllowed, Message: fmt.Sprintf(
			"cordonNode and drainNode run only from ClusterHealingPolicies or from the namespaces the cluster admin lists in %s, "+
				"and namespace %s is not listed, so no node is cordoned or drained for this policy. Nodes are shared: "+
				"ask the cluster admin to list the namespace, or to run the action from a ClusterHealingPolicy.",
			FlagNodeActionsNamespaces, in.Namespace)}
	}
	if len(in.Nodes) == 0 {
		return Verdict{Held: true, Reason: ReasonNodesUnknown,
			Message: "The cluster's nodes are not known yet, so no node is cordoned or drained."}
	}
	if held, msg := nodesInFlight(in); held {
		return Verdict{Held: true, Reason: ReasonNodesInFlight, Message: msg}
	}
	if held, msg := tooManyUnavailableNodes(in); held {
		return Verdict{Held: true, Reason: ReasonTooManyUnavailableNodes, Message: msg}
	}
	return Verdict{}
}

// nodesInFlight holds the action when it would leave the app holding more nodes than
// maxNodes.
func nodesInFlight(in NodeGuardInput) (bool, string) {
	effective, lowered := EffectiveMaxNodes(in.MaxNodes, in.Admin.MaxNodes)
	limit := int(effective)
	var held []string
	for _, n := range in.Nodes {
		if in.holds(n) {
			held = append(held, n.Name)
		}
	}
	after := nodeUnion(held, in.Candidates)
	if len(after) <= limit {
		return false, ""
	}
	msg := fmt.Sprintf("Acting on %s would hold %d nodes cordoned or drained at once, above maxNodes %d",
		nodeNames(in.Candidates), len(after), limit)
	if lowered {
		own, _ := EffectiveMaxNodes(in.MaxNodes, 0)
		msg += fmt.Sprintf(" (the cluster admin's %s %d lowers the app's maxNodes %d)", FlagMaxNodesPerAction, limit, own)
	}
	if len(held) > 0 {
		msg = fmt.Sprintf("The app already holds %s cordoned or drained; a", nodeNames(held)) + msg[1:]
	}
	return true, msg + "." + pendingNote(in.Nodes) + " The action waits until one of the app's nodes is uncordoned or removed."
}

// holds says whether a node is in the app's hands: cordoned by one of its node actions.
func (in NodeGuardInput) holds(n NodeState) bool {
	switch {
	case !n.Unschedulable && !n.Pending:
		return false
	case n.App != "":
		return n.App == in.App
	}
	return n.ActionID != "" && slices.Contains(in.AppActionIDs, n.ActionID)
}

// tooManyUnavailableNodes is Cluster API's maxUnhealthy circuit breaker for nodes: when
// more nodes would be NotReady or cordoned than allowed, taking one more away is not
// the cure.
func tooManyUnavailableNodes(in NodeGuardInput) (bool, string) {
	maxUnavailable := in.MaxUnavailableNodes
	if maxUnavailable == nil {
		d := intstr.FromString(DefaultMaxUnavailableNodes)
		maxUnavailable = &d
	}
	total := len(in.Nodes)
	limit, err := intstr.GetScaledValueFromIntOrPercent(maxUnavailable, total, true)
	if err != nil {
		return true, fmt.Sprintf("maxUnavailableNodes %q is invalid: %v.", maxUnavailable.String(), err)
	}
	// The admin's ceiling, scaled the same way, lowers the app's limit.
	limitName := fmt.Sprintf("maxUnavailableNodes %s", maxUnavailable.String())
	if c := in.Admin.MaxUnavailableNodes; c != nil {
		ceiling, err := intstr.GetScaledValueFromIntOrPercent(c, total, true)
		if err != nil {
			return true, fmt.Sprintf("The cluster admin's %s %q is invalid: %v.", FlagMaxUnavailableNodes, c.String(), err)
		}
		if ceiling < limit {
			limit = ceiling
			limitName = fmt.Sprintf("the cluster admin's %s %s, which lowers the app's maxUnavailableNodes %s",
				FlagMaxUnavailableNodes, c.String(), maxUnavailable.String())
		}
	}
	known := map[string]bool{}
	var notReady, cordoned []string
	for _, n := range in.Nodes {
		known[n.Name] = true
		switch {
		case !n.Ready:
			notReady = append(notReady, n.Name)
		case n.Unschedulable || n.Pending:
			cordoned = append(cordoned, n.Name)
		}
	}
	// A candidate that is gone from the cluster takes nothing away.
	var candidates []string
	for _, c := range in.Candidates {
		if known[c] {
			candidates = append(candidates, c)
		}
	}
	after := nodeUnion(nodeUnion(notReady, cordoned), candidates)
	if len(after) <= limit {
		return false, ""
	}
	return true, fmt.Sprintf(
		"%d of %d nodes would be NotReady or cordoned (%d%%), above %s (%d %s): "+
			"NotReady %s, cordoned %s, to act on %s.%s The problem looks wider than these nodes, so none is cordoned or drained.",
		len(after), total, int(math.Round(100*float64(len(after))/float64(total))),
		limitName, limit, nodeNoun(limit),
		nodeNames(notReady), nodeNames(cordoned), nodeNames(candidates), pendingNote(in.Nodes))
}

// pendingNote names, for a message, the nodes another node action has just been let
// through on and the apps that hold them, so a reader who finds them not cordoned yet
// knows why they count; empty when there is none.
func pendingNote(nodes []NodeState) string {
	var pending []string
	for _, n := range nodes {
		if n.Pending {
			pending = append(pending, n.Name+" by "+n.App)
		}
	}
	if len(pending) == 0 {
		return ""
	}
	return " Being cordoned now: " + nodeNames(pending) + "."
}

// nodeUnion returns the names in a or b, sorted, each once.
func nodeUnion(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// nodeNames names nodes for a message: sorted, at most five, then how many more.
func nodeNames(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	sorted := slices.Sorted(slices.Values(names))
	const shown = 5
	if len(sorted) <= shown {
		return strings.Join(sorted, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(sorted[:shown], ", "), len(sorted)-shown)
}

// nodeNoun is "node" or "nodes" for n.
func nodeNoun(n int) string {
	if n == 1 {
		return "node"
	}
	return "nodes"
}
