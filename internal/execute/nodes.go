package execute

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/plan"
	"github.com/homeostat-dev/homeostat/internal/text"
)

// What cordonNode and drainNode share: which nodes they take, and the cordon itself.

// prepareNodes fixes the nodes a node action takes: those that host the component's
// unhealthy pods, most affected first, at most maxNodes. drain says whether the action
// evicts, which makes the component's pods on those nodes the pods it disrupts.
func prepareNodes(req Request, a *v1alpha1.NodeAction, verb string, drain bool) (Prepared, error) {
	w, err := workloadOf(req)
	if err != nil {
		return Prepared{}, err
	}
	limit, _ := plan.EffectiveMaxNodes(a.MaxNodes, 0)
	// The Request carries no Node objects yet, so a node's readiness shows through its
	// pods: the node lifecycle controller marks every pod of a NotReady node not ready
	// in the same pass in which it marks the node.
	names := nodeCandidates(req.Target.Pods, nil, min(int(limit), maxObjects))
	if len(names) == 0 {
		return Prepared{}, fmt.Errorf("no unhealthy pod of %s is bound to a node, so there is no node to %s", w, verb)
	}
	p := Prepared{Target: nodesTarget(names), Objects: names, Disruptive: true}
	if drain {
		p.Pods = podsOnNodes(req.Target.Pods, names)
	}
	return p, nil
}

// withNodeCeiling returns req with its node action's maxNodes lowered to the admin's
// ceiling (plan.EffectiveMaxNodes), on a copy of the action: the node guard then counts
// the same limit Prepare took its nodes by.
func (e *Effectors) withNodeCeiling(req Request) Request {
	lower := func(a *v1alpha1.NodeAction) *v1alpha1.NodeAction {
		if a == nil || e.MaxNodesPerAction <= 0 {
			return a
		}
		c := *a
		c.MaxNodes, _ = plan.EffectiveMaxNodes(a.MaxNodes, e.MaxNodesPerAction)
		return &c
	}
	req.Action.CordonNode, req.Action.DrainNode = lower(req.Action.CordonNode), lower(req.Action.DrainNode)
	return req
}

// nodeCandidates picks the nodes of a component's pods that look sick, given the pods
// and the nodes known to be NotReady (nil when unknown). A node is a candidate when it
// is NotReady and hosts a pod of the component, or when it hosts an unhealthy pod
// (monitor.PodUnhealthy). NotReady nodes come first, then the nodes with the most
// unhealthy pods, then by name; at most limit are taken. Terminating pods and pods not
// yet bound to a node say nothing about a node.
func nodeCandidates(pods []corev1.Pod, notReady map[string]bool, limit int) []string {
	type node struct {
		name      string
		notReady  bool
		unhealthy int
	}
	byName := map[string]*node{}
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil || p.Spec.NodeName == "" {
			continue
		}
		sick, down := monitor.PodUnhealthy(p), notReady[p.Spec.NodeName]
		if !sick && !down {
			continue
		}
		n := byName[p.Spec.NodeName]
		if n == nil {
			n = &node{name: p.Spec.NodeName, notReady: down}
			byName[n.name] = n
		}
		if sick {
			n.unhealthy++
		}
	}
	nodes := make([]*node, 0, len(byName))
	for _, n := range byName {
		nodes = append(nodes, n)
	}
	slices.SortFunc(nodes, func(a, b *node) int {
		if a.notReady != b.notReady {
			if a.notReady {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(b.unhealthy, a.unhealthy), cmp.Compare(a.name, b.name))
	})
	names := make([]string, 0, min(len(nodes), limit))
	for _, n := range nodes[:min(len(nodes), limit)] {
		names = append(names, n.name)
	}
	return names
}

// podsOnNodes counts the component's pods on the nodes that are not terminating yet.
func podsOnNodes(pods []corev1.Pod, nodes []string) int {
	n := 0
	for i := range pods {
		if pods[i].DeletionTimestamp == nil && slices.Contains(nodes, pods[i].Spec.NodeName) {
			n++
		}
	}
	return n
}

// nodesTarget names the nodes of a node action for the ledger's target: Node/a, or
// "Nodes a, b" for several, within the ledger's 512 characters.
func nodesTarget(names []string) string {
	if len(names) == 1 {
		return "Node/" + names[0]
	}
	return text.Truncate("Nodes "+strings.Join(names, ", "), 512)
}

// cordonResult is what became of one node a node action cordons.
type cordonResult int

const (
	// nodeCordoned: this call cordoned the node and stamped it.
	nodeCordoned cordonResult = iota
	// nodeWasCordoned: the node was already cordoned by this action.
	nodeWasCordoned
	// nodeGone: the node no longer exists; nothing of it is left to take away.
	nodeGone
	nodeCordonFailed
)

// nodeStamp is what a node action stamps on the nodes it cordons: the action id, the app
// (nodeApp; empty without one) and when the action was recorded (zero when unknown).
type nodeStamp struct {
	id, app string
	at      time.Time
}

// stampOf is the stamp of a node action's record.
func stampOf(req Request) nodeStamp {
	return nodeStamp{id: req.Record.ID, app: nodeApp(req.App), at: req.Record.Time.Time}
}

// cordon marks a node unschedulable and stamps the action id, the app (nodeApp) and the
// record's time (plan.CordonedAtAnnotation) on it, in one merge patch whose bytes depend
// only on them, so a repeat is a no-op on the server. A node the action already cordoned
// is not written again. A node that is cordoned already is stamped with the id and the
// app only: from now on it is also this action's, and counts against the app's maxNodes
// for as long as it stays cordoned, but the cordon is not Homeostat's, so the node
// controller never lifts it. (A cordon an earlier action of Homeostat made keeps its
// time.)
func (e *Effectors) cordon(ctx context.Context, name string, st nodeStamp) (cordonResult, string) {
	id, app := st.id, st.app
	node, err := e.readNode(ctx, name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nodeGone, ""
		}
		return nodeCordonFailed, fmt.Sprintf("Could not read Node/%s: %v", name, err)
	}
	if cordonedBy(node, id, app) {
		return nodeWasCordoned, ""
	}
	if node.Spec.Unschedulable {
		st.at = time.Time{}
	}
	log.FromContext(ctx).Info("Cordoning node", "node", klog.KObj(node), "actionID", id)
	if err := e.patch(ctx, node, types.MergePatchType, cordonPatch(st)); err != nil {
		if apierrors.IsNotFound(err) {
			return nodeGone, ""
		}
		return nodeCordonFailed, fmt.Sprintf("Could not cordon Node/%s: %v", name, err)
	}
	return nodeCordoned, ""
}

// readNode reads a node a node action names, through the client (so possibly from the
// cache).
func (e *Effectors) readNode(ctx context.Context, name string) (*corev1.Node, error) {
	node := &corev1.Node{}
	if err := e.Client.Get(ctx, client.ObjectKey{Name: name}, node); err != nil {
		return nil, err
	}
	return node, nil
}

// cordonedBy reports whether the node carries the cordon of the action id: it is
// unschedulable and stamped with the id and, when known, the app.
func cordonedBy(node *corev1.Node, id, app string) bool {
	return node.Spec.Unschedulable && stampedWith(node, id) &&
		(app == "" || node.Annotations[plan.NodeAppAnnotation] == app)
}

// observeCordons reads every node the record names and reports whether each carries the
// action's cordon. A node that is gone, or cannot be read, does not.
func (e *Effectors) observeCordons(ctx context.Context, req Request) bool {
	if len(req.Record.Objects) == 0 {
		return false
	}
	for _, name := range req.Record.Objects {
		node, err := e.readNode(ctx, name)
		if err != nil || !cordonedBy(node, req.Record.ID, nodeApp(req.App)) {
			return false
		}
	}
	return true
}

// cordonPatch is the merge patch of a cordon: spec.unschedulable, the action id and,
// when known, the app and the time of the action (plan.CordonedAtAnnotation, RFC 3339).
func cordonPatch(st nodeStamp) []byte {
	annotations := map[string]string{v1alpha1.ActionIDAnnotation: st.id}
	if st.app != "" {
		annotations[plan.NodeAppAnnotation] = st.app
	}
	if !st.at.IsZero() {
		annotations[plan.CordonedAtAnnotation] = st.at.UTC().Format(time.RFC3339)
	}
	return mustJSON(map[string]any{
		"metadata": map[string]any{"annotations": annotations},
		"spec":     map[string]any{"unschedulable": true},
	})
}

// namesOf joins names for a message: a, b, c.
func namesOf(names []string) string { return strings.Join(names, ", ") }
