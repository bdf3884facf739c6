package controllers

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/leader"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// maxConflicts bounds the conflicts, and the overrides, a shared policy lists in status.
const maxConflicts = 32

// SharedPolicyReconciler reports, on a HealingPolicy or ClusterHealingPolicy, how many
// apps it selects, which of its entries lost to another on a name clash, and for an
// enforced ClusterHealingPolicy what of the apps its enforced entries and guards replace
// or tighten. The apps themselves merge the policy in their own reconcile.
type SharedPolicyReconciler struct {
	client.Client
	// Cluster is true for ClusterHealingPolicy, false for HealingPolicy.
	Cluster bool
	// Leader lets reconciles through only while this replica holds the Lease; nil
	// always does.
	Leader *leader.Gate
}

// SetupWithManager watches the policy kind and the apps, so that an app created, deleted
// or relabelled updates the counts.
func (r *SharedPolicyReconciler) SetupWithManager(mgr manager.Manager) error {
	var obj client.Object = &v1alpha1.HealingPolicy{}
	name := "healingpolicy"
	if r.Cluster {
		obj, name = &v1alpha1.ClusterHealingPolicy{}, "clusterhealingpolicy"
	}
	b := ctrl.ControllerManagedBy(mgr).
		For(obj).
		// Status writes of the apps do not change what a policy selects or conflicts with.
		Watches(&v1alpha1.AutonomicApp{}, handler.EnqueueRequestsFromMapFunc(r.policiesOfApp),
			ctrl.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{})))
	if r.Cluster {
		// A relabelled namespace may come under a namespaceSelector, or leave it.
		b = b.Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.policiesOfApp),
			ctrl.WithPredicates(predicate.LabelChangedPredicate{}))
	}
	if r.Leader != nil {
		b = b.WatchesRawSource(leadershipSource{gate: r.Leader, list: r.allPolicies})
	}
	return b.Named(name).Complete(gate(r.Leader, r))
}

// allPolicies asks for every policy of the reconciler's kind in the cache.
func (r *SharedPolicyReconciler) allPolicies(ctx context.Context) []reconcile.Request {
	return r.policyRequests(ctx, "")
}

// policiesOfApp asks for the policies that may select the app: every
// ClusterHealingPolicy, or the HealingPolicies of its namespace.
func (r *SharedPolicyReconciler) policiesOfApp(ctx context.Context, o client.Object) []reconcile.Request {
	return r.policyRequests(ctx, o.GetNamespace())
}

// policyRequests asks for the policies of the reconciler's kind in the cache: every
// ClusterHealingPolicy, or the HealingPolicies of namespace ("" for all of them).
func (r *SharedPolicyReconciler) policyRequests(ctx context.Context, namespace string) []reconcile.Request {
	var out []reconcile.Request
	if r.Cluster {
		var list v1alpha1.ClusterHealingPolicyList
		if err := r.List(ctx, &list, client.UnsafeDisableDeepCopy); err == nil {
			for _, p := range list.Items {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: p.Name}})
			}
		}
		return out
	}
	var list v1alpha1.HealingPolicyList
	if err := r.List(ctx, &list, client.InNamespace(namespace), client.UnsafeDisableDeepCopy); err == nil {
		for _, p := range list.Items {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}})
		}
	}
	return out
}

// Reconcile counts the apps the policy selects and the conflicts of its entries.
func (r *SharedPolicyReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var obj client.Object
	var status *v1alpha1.HealingPolicyStatus
	var me plan.SharedPolicy
	if r.Cluster {
		p := &v1alpha1.ClusterHealingPolicy{}
		obj, status, me = p, &p.Status, plan.SharedPolicy{Kind: "ClusterHealingPolicy", Name: req.Name}
	} else {
		p := &v1alpha1.HealingPolicy{}
		obj, status, me = p, &p.Status, plan.SharedPolicy{Kind: "HealingPolicy", Namespace: req.Namespace, Name: req.Name}
	}
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	base := obj.DeepCopyObject().(client.Object)

	apps := appsSelectedBy(ctx, r.Client, obj)
	var conflicts, overrides []string
	for _, key := range apps {
		app := &v1alpha1.AutonomicApp{}
		if err := r.Get(ctx, key, app); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return reconcile.Result{}, err
		}
		shared, err := monitor.SharedPolicies(ctx, r.Client, app)
		if err != nil {
			return reconcile.Result{}, err
		}
		merged := plan.Merge(app.Spec.Healing, shared)
		for _, c := range merged.Conflicts {
			if c.Loser.Source() == me.Source() && len(conflicts) < maxConflicts {
				conflicts = append(conflicts, fmt.Sprintf("%s: %s", key, c.Message()))
			}
		}
		for _, o := range merged.Overrides {
			if o.By.Source() == me.Source() && len(overrides) < maxConflicts {
				overrides = append(overrides, fmt.Sprintf("%s: %s", key, o.What()))
			}
		}
	}
	slices.Sort(conflicts)
	slices.Sort(overrides)
	status.MatchedApps = int32(len(apps))
	status.Conflicts = conflicts
	status.Overrides = overrides
	status.ObservedGeneration = obj.GetGeneration()
	msg := fmt.Sprintf("Selects %d %s.", len(apps), map[bool]string{true: "app", false: "apps"}[len(apps) == 1])
	if len(conflicts) > 0 {
		msg += fmt.Sprintf(" %d %s to another of the same name; see status.conflicts.", len(conflicts),
			map[bool]string{true: "entry lost", false: "entries lost"}[len(conflicts) == 1])
	}
	if len(overrides) > 0 {
		msg += fmt.Sprintf(" Its enforced entries and guards replace or tighten %d of what the apps ask for; see status.overrides.", len(overrides))
	}
	meta.SetStatusCondition(&status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonReconciled,
		Message: msg, ObservedGeneration: obj.GetGeneration(),
	})
	if equality.Semantic.DeepEqual(base, obj) {
		return reconcile.Result{}, nil
	}
	return reconcile.Result{}, r.Status().Patch(ctx, obj, client.MergeFrom(base))
}
