package controllers

import (
	"context"
	"fmt"
	"slices"

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

// nodeGuard gathers what plan.NodeGuard reads, every node from the cache and the app's
// own node actions from its ledger, and asks it about the candidates Prepare fixed.
func (r *AppReconciler) nodeGuard(ctx context.Context, s *session, a *v1alpha1.NodeAction, candidates []string) (plan.Verdict, error) {
	var nodes corev1.NodeList
	if err := r.List(ctx, &nodes); err != nil {
		return plan.Verdict{}, fmt.Errorf("listing nodes for the node guard: %w", err)
	}
	return plan.NodeGuard(plan.NodeGuardInput{
		Nodes:               plan.NodeStates(nodes.Items),
		Candidates:          candidates,
		AppActionIDs:        plan.NodeActionIDs(s.app.Status.History),
		MaxNodes:            a.MaxNodes,
		MaxUnavailableNodes: a.MaxUnavailableNodes,
	}), nil
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
			o.Annotations[v1alpha1.ActionIDAnnotation] != n.Annotations[v1alpha1.ActionIDAnnotation]
	},
	GenericFunc: func(event.GenericEvent) bool { return false },
}
