package plan

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// CordonedAtAnnotation is stamped, with v1alpha1.ActionIDAnnotation and
// NodeAppAnnotation, on a node whose cordon a cordonNode or drainNode action made: when
// the action was recorded, RFC 3339. It says the cordon is Homeostat's: a node someone
// else had cordoned already gets the other two stamps only. The uncordon window never
// starts before it.
const CordonedAtAnnotation = "autonomic.homeostat.dev/cordoned-at"

// Uncordon reasons, in the order DecideUncordon checks them.
const (
	// ReasonUncordonDisabled: --node-uncordon-after is 0.
	ReasonUncordonDisabled = "UncordonDisabled"
	// ReasonNotCordonedByHomeostat leaves a node alone whose cordon no Homeostat node
	// action made: it lacks CordonedAtAnnotation or one of the other two stamps.
	ReasonNotCordonedByHomeostat = "NotCordonedByHomeostat"
	// ReasonCordonLiftedBySomeoneElse removes the stamps of a node someone uncordoned:
	// Homeostat's claim on the node ends with its cordon, so a later cordon of theirs is
	// never taken for Homeostat's.
	ReasonCordonLiftedBySomeoneElse = "CordonLiftedBySomeoneElse"
	// ReasonCordonedBySomeoneElse leaves a node alone whose spec.unschedulable is not
	// Homeostat's alone: someone else cordoned it, before or after Homeostat did.
	ReasonCordonedBySomeoneElse = "CordonedBySomeoneElse"
	// ReasonNodeActionInProgress waits while the action that cordoned the node is still
	// Pending in its app's ledger (a drain still evicting).
	ReasonNodeActionInProgress = "NodeActionInProgress"
	// ReasonNodeNotReady waits while the node is NotReady.
	ReasonNodeNotReady = "NodeNotReady"
	// ReasonNodeReadyTooShort waits until the node has been Ready, since it was
	// cordoned, for the window.
	ReasonNodeReadyTooShort = "NodeReadyTooShort"
	// ReasonSuspectPodsUnhealthy waits while pods of the app that cordoned the node are
	// still unhealthy on it.
	ReasonSuspectPodsUnhealthy = "SuspectPodsUnhealthy"
	// ReasonNodeRecovered uncordons the node.
	ReasonNodeRecovered = "NodeRecovered"
)

// NodeCordon is what the uncordon decision reads of a node.
type NodeCordon struct {
	// Name is the node's name.
	Name string
	// Unschedulable is spec.unschedulable.
	Unschedulable bool
	// ActionID, App and CordonedAt are the node's stamps: v1alpha1.ActionIDAnnotation,
	// NodeAppAnnotation and CordonedAtAnnotation (zero when absent or unreadable).
	ActionID, App string
	CordonedAt    time.Time
	// FieldsTracked says the node has managed fields at all; UnschedulableOwners are the
	// field managers they say own spec.unschedulable (UnschedulableOwners). An API server
	// may track none for an object, and a cache trims them.
	FieldsTracked       bool
	UnschedulableOwners []string
	// Ready is the node's Ready condition (NodeReady); ReadySince its last transition.
	Ready      bool
	ReadySince time.Time
}

// NodeCordonOf reads a node as the API server returns it, managed fields included.
func NodeCordonOf(n *corev1.Node) NodeCordon {
	c := NodeCordon{
		Name:                n.Name,
		Unschedulable:       n.Spec.Unschedulable,
		ActionID:            n.Annotations[v1alpha1.ActionIDAnnotation],
		App:                 n.Annotations[NodeAppAnnotation],
		FieldsTracked:       len(n.ManagedFields) > 0,
		UnschedulableOwners: UnschedulableOwners(n),
		Ready:               NodeReady(n),
	}
	if at, err := time.Parse(time.RFC3339, n.Annotations[CordonedAtAnnotation]); err == nil {
		c.CordonedAt = at
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			c.ReadySince = cond.LastTransitionTime.Time
		}
	}
	return c
}

// HomeostatCordon says, from a node as the cache holds it (without managed fields),
// whether a Homeostat node action may have made its cordon: it is cordoned and carries
// the three stamps.
func HomeostatCordon(n *corev1.Node) bool {
	a := n.Annotations
	return n.Spec.Unschedulable && a[v1alpha1.ActionIDAnnotation] != "" && a[NodeAppAnnotation] != "" && a[CordonedAtAnnotation] != ""
}

// CordonStamped says whether a node carries CordonedAtAnnotation: a Homeostat node action
// made its cordon, which may since have been lifted. Only such a node is worth an
// uncordon decision.
func CordonStamped(n *corev1.Node) bool {
	return n.Annotations[CordonedAtAnnotation] != ""
}

// UnschedulableOwners returns the field managers that own spec.unschedulable in the
// node's managedFields, sorted. A merge patch or an update owns the fields it changed,
// so the manager of the last change of spec.unschedulable owns it; a write that set it
// to the value it had already (cordoning a cordoned node) takes nothing.
func UnschedulableOwners(n *corev1.Node) []string {
	var out []string
	for _, mf := range n.ManagedFields {
		if mf.Subresource != "" || mf.FieldsV1 == nil {
			continue
		}
		var top map[string]json.RawMessage
		if json.Unmarshal(mf.FieldsV1.Raw, &top) != nil {
			continue
		}
		var spec map[string]json.RawMessage
		if json.Unmarshal(top["f:spec"], &spec) != nil {
			continue
		}
		if _, ok := spec["f:unschedulable"]; ok {
			out = append(out, mf.Manager)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// UncordonInput is what the uncordon decision looks at for one node. The node
// controller fills it:
//
//	Node          NodeCordonOf the node read from the API server (the cache trims
//	              managed fields)
//	Window        --node-uncordon-after
//	ActionPending the record of Node.ActionID in the ledger of the app Node.App names is
//	              Pending: the action is still at work (a drain evicting)
//	UnhealthyPods the pods on the node, not terminating, of that app's workload
//	              components (of its namespace when the app is gone) that
//	              monitor.PodUnhealthy calls unhealthy: namespace/name
type UncordonInput struct {
	Node          NodeCordon
	Window        time.Duration
	ActionPending bool
	UnhealthyPods []string
}

// UncordonVerdict is whether to lift a node's cordon now, and why.
type UncordonVerdict struct {
	// Uncordon is true when the cordon and its stamps are lifted now.
	Uncordon bool
	// Unstamp is true when the node is no longer cordoned but still carries the stamps
	// of Homeostat's cordon: they are removed now.
	Unstamp bool
	// Reason is a CamelCase word; Message says why in a sentence.
	Reason, Message string
	// RecheckAt is when the verdict may change with nothing else changing (the window
	// ends); zero when only a change of the node, its pods or the app's ledger can.
	RecheckAt time.Time
}

// DecideUncordon closes the loop of a node action, as Medik8s does: a node that
// Homeostat cordoned, and nobody else, is uncordoned once it is healthy again. The
// rule, checked in this order:
//
//   - The window is set (--node-uncordon-after > 0).
//   - Homeostat made the cordon: the node carries CordonedAtAnnotation, which a node
//     action stamps only when it turns a schedulable node unschedulable (a node someone
//     else had cordoned gets the id and the app only), with the action id and the app.
//     Otherwise the node is never touched.
//   - It is still cordoned. A node someone uncordoned is not cordoned again; its stamps
//     are removed instead (Unstamp), so that a later cordon of theirs is never taken for
//     Homeostat's.
//   - Nobody else cordoned it since: where the node's managed fields are tracked,
//     Homeostat's field manager alone owns spec.unschedulable. (The API server gives the
//     field to the manager whose write last changed it; a write that leaves it as it was
//     takes nothing.) Where they are not tracked, the stamps above are the record.
//   - The action that cordoned it is finished: a drain still evicting keeps its node.
//   - It is Ready, and has been for the window, counted from when it turned Ready or
//     from the cordon, whichever is later. Until then the verdict is due again when the
//     window ends.
//   - No pod of the app that cordoned it is still unhealthy on it: the pods that made it
//     suspect are gone (drained, replaced elsewhere) or healthy.
func DecideUncordon(in UncordonInput, now time.Time) UncordonVerdict {
	n := in.Node
	leave := func(reason, format string, args ...any) UncordonVerdict {
		return UncordonVerdict{Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	switch {
	case in.Window <= 0:
		return leave(ReasonUncordonDisabled, "Node %s is left as it is: --node-uncordon-after is 0, so a person uncordons it.", n.Name)
	case n.CordonedAt.IsZero():
		return leave(ReasonNotCordonedByHomeostat,
			"Node %s does not carry %s, so Homeostat did not make its cordon (someone else had cordoned it, or an older Homeostat did) and leaves it to a person.",
			n.Name, CordonedAtAnnotation)
	case !n.Unschedulable:
		return UncordonVerdict{Unstamp: true, Reason: ReasonCordonLiftedBySomeoneElse, Message: fmt.Sprintf(
			"Node %s, cordoned by action %s of %s, was uncordoned by someone else: its stamps are removed, and a later cordon is theirs.",
			n.Name, n.ActionID, n.App)}
	case n.ActionID == "" || n.App == "":
		return leave(ReasonNotCordonedByHomeostat,
			"Node %s does not carry both %s and %s, so it is left to whoever cordoned it.", n.Name, v1alpha1.ActionIDAnnotation, NodeAppAnnotation)
	case n.FieldsTracked && !slices.Equal(n.UnschedulableOwners, []string{v1alpha1.FieldManager}):
		who := "no known field manager"
		if len(n.UnschedulableOwners) > 0 {
			who = strings.Join(n.UnschedulableOwners, ", ")
		}
		return leave(ReasonCordonedBySomeoneElse,
			"Node %s was cordoned by %s, not by Homeostat alone, so it is left cordoned for them to uncordon.", n.Name, who)
	case in.ActionPending:
		return leave(ReasonNodeActionInProgress, "Node %s stays cordoned while action %s of %s is still at work.", n.Name, n.ActionID, n.App)
	case !n.Ready:
		return leave(ReasonNodeNotReady, "Node %s stays cordoned while it is NotReady.", n.Name)
	}
	from := n.CordonedAt
	if n.ReadySince.After(from) {
		from = n.ReadySince
	}
	if end := from.Add(in.Window); now.Before(end) {
		v := leave(ReasonNodeReadyTooShort, "Node %s stays cordoned until it has been Ready for %s since %s, at %s.",
			n.Name, in.Window, from.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339))
		v.RecheckAt = end
		return v
	}
	if len(in.UnhealthyPods) > 0 {
		return leave(ReasonSuspectPodsUnhealthy, "Node %s stays cordoned while pods of %s are still unhealthy on it: %s.",
			n.Name, n.App, nodeNames(in.UnhealthyPods))
	}
	return UncordonVerdict{Uncordon: true, Reason: ReasonNodeRecovered, Message: fmt.Sprintf(
		"Node %s, cordoned by action %s of %s at %s, has been Ready since %s, for %s or more, and no pod of the app is unhealthy on it, so its cordon is lifted.",
		n.Name, n.ActionID, n.App, n.CordonedAt.UTC().Format(time.RFC3339), from.UTC().Format(time.RFC3339), in.Window)}
}
