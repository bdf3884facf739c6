package controllers

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch;patch

// nodeAction is the NodeAction of a cordonNode or drainNode action, or nil.
func nodeAction(a v1alpha1.Action) *v1alpha1.NodeAction {
	if a.CordonNode != nil {
		return a.CordonNode
	}
	return a.DrainNode
}

// nodeGuard asks plan.NodeGuard about the candidates Prepare fixed for a node action of
// policy, through the manager's node gate: every node from the cache, with the nodes the
// gate let another action take a moment ago that the cache does not show cordoned yet,
// the app's nodes in flight read from the nodes themselves, where the policy comes from
// (a ClusterHealingPolicy, or the app's namespace) and the admin's node policy. When the action may run, and the app
// acts (not DryRun), the gate remembers its candidates as the app's until the cache
// shows them cordoned, so that no other reconcile worker lets a second app through on
// the same count.
func (r *AppReconciler) nodeGuard(ctx context.Context, s *session, policy string, a *v1alpha1.NodeAction, candidates []string) (plan.Verdict, error) {
	list := func() ([]corev1.Node, error) {
		var nodes corev1.NodeList
		// Read only, under the gate's lock: no copy of every node.
		if err := r.List(ctx, &nodes, client.UnsafeDisableDeepCopy); err != nil {
			return nil, fmt.Errorf("listing nodes for the node guard: %w", err)
		}
		return nodes.Items, nil
	}
	return nodeActions.check(s.now, list, plan.NodeGuardInput{
		Candidates:          candidates,
		App:                 plan.AppKey(s.app.Namespace, s.app.Name),
		AppActionIDs:        plan.NodeActionIDs(s.app.Status.History),
		MaxNodes:            a.MaxNodes,
		MaxUnavailableNodes: a.MaxUnavailableNodes,
		Namespace:           s.app.Namespace,
		FromClusterPolicy:   plan.FromClusterPolicy(s.source(policy)),
		Admin:               r.NodeAdmin,
	}, s.app.Spec.Mode != v1alpha1.ModeDryRun)
}

// nodeActions is the manager's node gate. It is process-wide, like the work queue it
// stands beside: every reconcile worker of every app goes through it, and leader
// election keeps one manager acting at a time.
var nodeActions = newNodeGate(nodeClaimTTL)

// nodeClaimTTL is how long the node gate counts a node it let an action take while the
// cache does not show it cordoned. The cordon is written within the same reconcile, a
// status write after the check, and its watch event follows in milliseconds; a claim
// still unseen after this long belongs to an action that never ran (its intent could not
// be written, or the cordon failed), and is dropped so it holds nobody for good.
const nodeClaimTTL = time.Minute

// nodeGate serialises the node guard across the manager's reconcile workers. The node
// guard reads the informer cache, and the cache shows a cordon only once its watch event
// arrives: two workers that checked at the same moment would both see the cluster one
// node short of its limit and both cordon. Under the gate's lock, a check reads the
// cache, adds the nodes the gate let earlier checks take that the cache does not show
// cordoned yet (claims), decides, and, when the action may run, claims its candidates.
// A claim ends when the cache shows the node cordoned by the app that claimed it (from
// then on the node itself counts), when the node is gone, or after the TTL.
type nodeGate struct {
	ttl time.Duration

	mu     sync.Mutex
	claims map[string]nodeClaim // by node name
}

// nodeClaim is a node the gate let an app's node action take.
type nodeClaim struct {
	app string    // plan.AppKey of the app
	at  time.Time // when the gate let the action through
}

func newNodeGate(ttl time.Duration) *nodeGate {
	return &nodeGate{ttl: ttl, claims: map[string]nodeClaim{}}
}

// check runs plan.NodeGuard on the nodes list reads, with the gate's claims added, and
// when claim is set and the action may run, claims in.Candidates for in.App. list is
// called under the gate's lock, so that a check always reads the cache after the claims
// an earlier check made and the cordons that ended them. A verdict that a claim may hold
// is due again when the claim expires: no node event may come if its action never ran.
func (g *nodeGate) check(now time.Time, list func() ([]corev1.Node, error), in plan.NodeGuardInput, claim bool) (plan.Verdict, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	nodes, err := list()
	if err != nil {
		return plan.Verdict{}, err
	}
	in.Nodes = g.withClaims(now, plan.NodeStates(nodes))
	v := plan.NodeGuard(in)
	if v.Held {
		for _, c := range g.claims {
			if until := c.at.Add(g.ttl); v.Until.IsZero() || until.Before(v.Until) {
				v.Until = until
			}
		}
		return v, nil
	}
	if claim {
		for _, n := range in.Candidates {
			g.claims[n] = nodeClaim{app: in.App, at: now}
		}
	}
	return v, nil
}

// withClaims ends the claims the nodes settle (cordoned by the claiming app, gone) or
// that expired, and marks the nodes of the others Pending, cordoned by their app.
func (g *nodeGate) withClaims(now time.Time, nodes []plan.NodeState) []plan.NodeState {
	seen := make(map[string]bool, len(g.claims))
	for i := range nodes {
		n := &nodes[i]
		c, ok := g.claims[n.Name]
		if !ok {
			continue
		}
		seen[n.Name] = true
		switch {
		case n.Unschedulable && n.App == c.app, !now.Before(c.at.Add(g.ttl)):
			delete(g.claims, n.Name)
		default:
			n.Pending, n.App = true, c.app
		}
	}
	for name := range g.claims {
		if !seen[name] {
			delete(g.claims, name)
		}
	}
	return nodes
}

// heldByNodes reports whether the node guard holds one of the app's policies: only a
// change of the nodes lets it through.
func heldByNodes(a *v1alpha1.AutonomicApp) bool {
	return slices.ContainsFunc(a.Status.Policies, func(p v1alpha1.PolicyStatus) bool {
		return p.State == v1alpha1.PolicyHeld && (p.Reason == plan.ReasonNodesUnknown ||
			p.Reason == plan.ReasonNodesInFlight || p.Reason == plan.ReasonTooManyUnavailableNodes)
	})
}

// indexHeldByNodes indexes the apps the node guard holds under "true", so a node event
// finds them without reading every app: a manager that starts sees one event per node,
// and with a scan each of them copied every app of the cluster.
const indexHeldByNodes = "homeostat.heldByNodes"

func heldByNodesIndex(o client.Object) []string {
	if a, ok := o.(*v1alpha1.AutonomicApp); ok && heldByNodes(a) {
		return []string{"true"}
	}
	return nil
}

// appsHeldByNodes maps a node whose readiness or cordon changed to the apps whose node
// action the node guard holds.
func (r *AppReconciler) appsHeldByNodes(ctx context.Context, _ client.Object) []reconcile.Request {
	var apps v1alpha1.AutonomicAppList
	if err := r.List(ctx, &apps, client.MatchingFields{indexHeldByNodes: "true"}, client.UnsafeDisableDeepCopy); err != nil {
		logf.FromContext(ctx).Error(err, "Listing the apps held by the node guard failed")
		return nil
	}
	keys := make([]types.NamespacedName, 0, len(apps.Items))
	for i := range apps.Items {
		keys = append(keys, types.NamespacedName{Namespace: apps.Items[i].Namespace, Name: apps.Items[i].Name})
	}
	return r.enqueue(keys)
}

// nodeAvailabilityChanged passes the Node events that can change the node guard's
// verdict: a node added or removed, Ready turning, a cordon set or lifted, a stamp.
// Heartbeats and the rest of the status pass by.
var nodeAvailabilityChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*corev1.Node)
		n, ok2 := e.ObjectNew.(*corev1.Node)
		if !ok1 || !ok2 {
			return false
		}
		return o.Spec.Unschedulable != n.Spec.Unschedulable || plan.NodeReady(o) != plan.NodeReady(n) ||
			o.Annotations[v1alpha1.ActionIDAnnotation] != n.Annotations[v1alpha1.ActionIDAnnotation] ||
			o.Annotations[plan.NodeAppAnnotation] != n.Annotations[plan.NodeAppAnnotation]
	},
	GenericFunc: func(event.GenericEvent) bool { return false },
}
