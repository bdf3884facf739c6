package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/execute"
	"github.com/homeostat-dev/homeostat/internal/knowledge"
	"github.com/homeostat-dev/homeostat/internal/leader"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// ReasonNodeUncordoned is the reason of the Events on a node, and on the app that
// cordoned it, when the node controller lifts the cordon.
const ReasonNodeUncordoned = "NodeUncordoned"

// NodeReconciler closes the loop of node actions: a node that a cordonNode or drainNode
// action cordoned, and nobody else, is uncordoned once it has been Ready for
// UncordonAfter and the app's pods on it are gone or healthy (plan.DecideUncordon).
// Without it the node's capacity stays lost until a person acts.
//
// It reconciles only the nodes whose cordon a node action made (plan.CordonStamped), and
// is woken by what can change its verdict: the node (a cordon set or lifted, its
// readiness, its stamps), the app's pods on it, and the app's ledger (the action that
// cordoned it finishing). It requeues at the end of the readiness window, never on a
// tick. A node someone else uncordoned loses Homeostat's stamps, so a later cordon of
// theirs is never taken for Homeostat's.
type NodeReconciler struct {
	// Client reads nodes, pods and apps from the cache.
	client.Client
	// APIReader reads the node from the API server before a decision: the cache trims
	// managed fields, and who owns spec.unschedulable is what tells a cordon of
	// Homeostat's from anyone else's.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	// Effectors lift the cordon (UncordonNode).
	Effectors *execute.Effectors
	// UncordonAfter is --node-uncordon-after.
	UncordonAfter time.Duration
	Metrics       *Metrics
	// Namespaces are the namespaces the manager watches (--watch-namespaces); empty is
	// all. A node an app of another namespace cordoned is another manager's to decide.
	Namespaces []string
	// Leader lets reconciles through only while this replica holds the Lease; nil
	// always does.
	Leader *leader.Gate
}

// indexNodeApp indexes the nodes that carry a Homeostat cordon by the app that made it
// (plan.AppKey), so an app's ledger change finds its nodes without a scan.
const indexNodeApp = "homeostat.nodeApp"

func nodeAppIndex(o client.Object) []string {
	if n, ok := o.(*corev1.Node); ok && plan.HomeostatCordon(n) {
		return []string{n.Annotations[plan.NodeAppAnnotation]}
	}
	return nil
}

// SetupWithManager watches nodes, the pods bound to nodes Homeostat cordoned, and the
// apps whose node actions finish.
func (r *NodeReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &corev1.Node{}, indexNodeApp, nodeAppIndex); err != nil {
		return fmt.Errorf("indexing nodes by the app that cordoned them: %w", err)
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&corev1.Node{}, builder.WithPredicates(homeostatCordonChanged)).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.cordonedNodeOfPod), builder.WithPredicates(podOnNodeChanged)).
		Watches(&v1alpha1.AutonomicApp{}, handler.EnqueueRequestsFromMapFunc(r.nodesCordonedByApp), builder.WithPredicates(nodeActionsFinished)).
		Named("node")
	if r.Leader != nil {
		b = b.WatchesRawSource(leadershipSource{gate: r.Leader, list: r.allNodes})
	}
	return b.Complete(gate(r.Leader, r))
}

// allNodes asks for every node in the cache; Reconcile looks only at those Homeostat
// cordoned.
func (r *NodeReconciler) allNodes(ctx context.Context) []reconcile.Request {
	var nodes corev1.NodeList
	if err := r.List(ctx, &nodes, client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(nodes.Items))
	for _, n := range nodes.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: n.Name}})
	}
	return out
}

// Reconcile decides whether to lift the cordon of one node, and lifts it.
func (r *NodeReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	cached := &corev1.Node{}
	if err := r.Get(ctx, req.NamespacedName, cached); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !plan.CordonStamped(cached) {
		return ctrl.Result{}, nil
	}
	node := &corev1.Node{}
	if err := r.APIReader.Get(ctx, req.NamespacedName, node); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	in, app, err := r.gather(ctx, node)
	if errors.Is(err, errNotWatched) {
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	now := r.Clock.Now()
	v := plan.DecideUncordon(in, now)
	log := logf.FromContext(ctx).WithValues("node", klog.KObj(node))
	if !v.Uncordon && !v.Unstamp {
		log.V(1).Info("Leaving the node as it is", "reason", v.Reason, "message", v.Message)
		if v.RecheckAt.IsZero() {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{RequeueAfter: v.RecheckAt.Sub(now)}, nil
	}
	done, err := r.Effectors.UncordonNode(ctx, node)
	if err != nil {
		// A conflict says the node changed since it was read: the retry decides again.
		return ctrl.Result{}, fmt.Errorf("uncordoning node %s: %w", node.Name, err)
	}
	switch {
	case done && v.Uncordon:
		r.recordUncordon(ctx, node, app, v)
	case done:
		log.Info("Removed the stamps of a cordon someone else lifted", "message", v.Message)
	}
	return ctrl.Result{}, nil
}

// errNotWatched says the app that cordoned a node is in a namespace this manager does not
// watch.
var errNotWatched = errors.New("the app's namespace is not watched")

// gather fills the uncordon decision's input for a node read from the API server, and
// returns the app that cordoned it, nil when it is gone:
//
//	node stamped shop/web ── app shop/web ── ledger: the record of the node's action id
//	        │                    └─ components' workloads ─┐
//	        └─ pods on the node (index) in namespace shop ──┴─ the unhealthy ones of web
//
// When the app is gone, every unhealthy pod of its namespace on the node counts.
func (r *NodeReconciler) gather(ctx context.Context, node *corev1.Node) (plan.UncordonInput, *v1alpha1.AutonomicApp, error) {
	in := plan.UncordonInput{Node: plan.NodeCordonOf(node), Window: r.UncordonAfter}
	ns, name, ok := strings.Cut(in.Node.App, "/")
	if !ok {
		return in, nil, nil
	}
	if len(r.Namespaces) > 0 && !slices.Contains(r.Namespaces, ns) {
		return in, nil, errNotWatched
	}
	app := &v1alpha1.AutonomicApp{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, app); err != nil {
		if !apierrors.IsNotFound(err) {
			return in, nil, fmt.Errorf("reading app %s: %w", in.Node.App, err)
		}
		app = nil
	}
	var workloads []string
	if app != nil {
		if rec := knowledge.Find(&app.Status, in.Node.ActionID); rec != nil && rec.Result == v1alpha1.ResultPending {
			in.ActionPending = true
		}
		workloads = []string{}
		for _, c := range app.Spec.Components {
			if c.WorkloadRef != nil {
				workloads = append(workloads, monitor.OwnerKey(c.WorkloadRef.Kind, c.WorkloadRef.Name))
			}
		}
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(ns), client.MatchingFields{monitor.IndexPodNode: node.Name}); err != nil {
		return in, nil, fmt.Errorf("listing the pods of node %s: %w", node.Name, err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Spec.NodeName != node.Name || !monitor.PodUnhealthy(p) {
			continue
		}
		if workloads != nil && !slices.ContainsFunc(monitor.WorkloadOfPod(ctx, r.Client, p), func(o monitor.OwnerRef) bool {
			return slices.Contains(workloads, monitor.OwnerKey(o.Kind, o.Name))
		}) {
			continue
		}
		in.UnhealthyPods = append(in.UnhealthyPods, p.Namespace+"/"+p.Name)
	}
	return in, app, nil
}

// recordUncordon leaves an Event on the node and on the app that cordoned it, counts the
// uncordon and logs it.
func (r *NodeReconciler) recordUncordon(ctx context.Context, node *corev1.Node, app *v1alpha1.AutonomicApp, v plan.UncordonVerdict) {
	r.Recorder.Eventf(node, nil, corev1.EventTypeNormal, ReasonNodeUncordoned, "Uncordon", "%s", v.Message)
	if app != nil {
		ref := &corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}
		r.Recorder.Eventf(app, ref, corev1.EventTypeNormal, ReasonNodeUncordoned, "Uncordon", "%s", v.Message)
	}
	if r.Metrics != nil {
		r.Metrics.NodesUncordoned.Inc()
	}
	logf.FromContext(ctx).Info("Uncordoned a node a node action had cordoned", "node", klog.KObj(node),
		"app", node.Annotations[plan.NodeAppAnnotation], "actionID", node.Annotations[v1alpha1.ActionIDAnnotation],
		"message", v.Message)
}

// homeostatCordonChanged passes the node events that can change the uncordon verdict of
// a node whose cordon a node action made: it appears (a manager that starts sees every
// node once), its cordon is set or lifted, its stamps change, or its readiness turns.
// Heartbeats pass by.
var homeostatCordonChanged = predicate.Funcs{
	CreateFunc: func(e event.CreateEvent) bool {
		n, ok := e.Object.(*corev1.Node)
		return ok && plan.CordonStamped(n)
	},
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*corev1.Node)
		n, ok2 := e.ObjectNew.(*corev1.Node)
		if !ok1 || !ok2 || !plan.CordonStamped(n) {
			return false
		}
		return o.Spec.Unschedulable != n.Spec.Unschedulable || plan.NodeReady(o) != plan.NodeReady(n) ||
			o.Annotations[v1alpha1.ActionIDAnnotation] != n.Annotations[v1alpha1.ActionIDAnnotation] ||
			o.Annotations[plan.NodeAppAnnotation] != n.Annotations[plan.NodeAppAnnotation] ||
			o.Annotations[plan.CordonedAtAnnotation] != n.Annotations[plan.CordonedAtAnnotation]
	},
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// podOnNodeChanged passes the pod events that can change whether a pod is unhealthy on
// its node: bound, gone, turning healthy or unhealthy, terminating.
var podOnNodeChanged = predicate.Funcs{
	CreateFunc: func(e event.CreateEvent) bool {
		p, ok := e.Object.(*corev1.Pod)
		return ok && p.Spec.NodeName != ""
	},
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*corev1.Pod)
		n, ok2 := e.ObjectNew.(*corev1.Pod)
		if !ok1 || !ok2 || n.Spec.NodeName == "" {
			return false
		}
		return o.Spec.NodeName != n.Spec.NodeName || monitor.PodUnhealthy(o) != monitor.PodUnhealthy(n) ||
			(o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil)
	},
	DeleteFunc: func(e event.DeleteEvent) bool {
		p, ok := e.Object.(*corev1.Pod)
		return ok && p.Spec.NodeName != ""
	},
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// cordonedNodeOfPod maps a pod to its node when a Homeostat node action of an app of the
// pod's namespace cordoned that node.
func (r *NodeReconciler) cordonedNodeOfPod(ctx context.Context, o client.Object) []reconcile.Request {
	p, ok := o.(*corev1.Pod)
	if !ok || p.Spec.NodeName == "" {
		return nil
	}
	n := &corev1.Node{}
	// Only the stamps are read, so the cached node is not copied.
	if err := r.Get(ctx, client.ObjectKey{Name: p.Spec.NodeName}, n, client.UnsafeDisableDeepCopy); err != nil || !plan.HomeostatCordon(n) {
		return nil
	}
	if ns, _, _ := strings.Cut(n.Annotations[plan.NodeAppAnnotation], "/"); ns != p.Namespace {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: n.Name}}}
}

// nodesCordonedByApp maps an app to the nodes its node actions cordoned.
func (r *NodeReconciler) nodesCordonedByApp(ctx context.Context, o client.Object) []reconcile.Request {
	var nodes corev1.NodeList
	key := plan.AppKey(o.GetNamespace(), o.GetName())
	if err := r.List(ctx, &nodes, client.MatchingFields{indexNodeApp: key}, client.UnsafeDisableDeepCopy); err != nil {
		logf.FromContext(ctx).Error(err, "Listing the nodes an app cordoned failed", "app", key)
		return nil
	}
	out := make([]reconcile.Request, 0, len(nodes.Items))
	for i := range nodes.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: nodes.Items[i].Name}})
	}
	return out
}

// nodeActionsFinished passes an app whose ledger had a Pending node action that it no
// longer has as Pending, and an app deleted: either may let its nodes go.
var nodeActionsFinished = predicate.Funcs{
	CreateFunc: func(event.CreateEvent) bool { return false },
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*v1alpha1.AutonomicApp)
		n, ok2 := e.ObjectNew.(*v1alpha1.AutonomicApp)
		if !ok1 || !ok2 {
			return false
		}
		before := pendingNodeActions(o)
		return len(before) > 0 && !slices.Equal(before, pendingNodeActions(n))
	},
	DeleteFunc:  func(event.DeleteEvent) bool { return true },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// pendingNodeActions are the ids of the app's cordonNode and drainNode records that are
// still Pending.
func pendingNodeActions(a *v1alpha1.AutonomicApp) []string {
	var ids []string
	for _, rec := range knowledge.Pending(&a.Status) {
		if rec.Action == execute.KindCordonNode || rec.Action == execute.KindDrainNode {
			ids = append(ids, rec.ID)
		}
	}
	return ids
}
