package controllers

import (
	"context"
	"fmt"
	"maps"

	"k8s.io/apimachinery/pkg/api/meta"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/execute"
	"github.com/homeostat-dev/homeostat/internal/knowledge"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;patch

// decideFailover gathers what a failover policy's decision reads and asks plan. Each
// change it decides (scale a standby up, point the Service's selector at the new
// primary's pods, scale the old primary down) is an action of the ledger (action
// failover, policy = this policy) carried out by the one act path; which change comes
// next is derived again from what is observed every time, so a restart resumes a move
// where it stood.
func (r *AppReconciler) decideFailover(ctx context.Context, s *session, pol v1alpha1.Policy, old v1alpha1.PolicyStatus) (plan.Decision, error) {
	in := plan.FailoverPolicyInput{Name: pol.Name, Previous: old}
	for _, c := range pol.Failover.Candidates {
		if child := childNotYetJudged(s, c.Component); child != "" {
			in.NotJudged = child
			return plan.DecideFailover(in), nil
		}
	}
	el, err := r.failoverInput(ctx, s, pol, old)
	if err != nil {
		return plan.Decision{}, err
	}
	in.Election = el
	if last := knowledge.LastFailoverRecord(&s.app.Status, pol.Name); last != nil {
		in.LastRecord = &plan.FailoverRecordView{ID: last.ID, Result: last.Result, At: last.Time.Time, Message: last.Message}
		if fr, ok := knowledge.FailoverOf(*last); ok {
			in.LastRecord.Phase, in.LastRecord.Component = plan.FailoverPhase(fr.Phase), fr.Component
		}
	}
	in.Latest = planChange(knowledge.LatestFailoverChange(&s.app.Status, pol.Name))
	in.UnjudgedOldest, in.UnjudgedNewest = knowledge.Unjudged(&s.app.Status, pol.Name)
	return plan.DecideFailover(in), nil
}

// failoverInput gathers what an election reads:
//
//	candidates  from the monitor: health, ready and desired replicas, the workload's
//	            selector and pod labels
//	Service     its selector, from the cache (a missing Service is reported, not an error)
//	ledger      the policy's last change and last traffic move that took effect, and the
//	            ladders whose open episode demoted a primary of this policy
func (r *AppReconciler) failoverInput(ctx context.Context, s *session, pol v1alpha1.Policy, old v1alpha1.PolicyStatus) (plan.FailoverInput, error) {
	spec := pol.Failover
	in := plan.FailoverInput{
		Now: s.now, Service: spec.Service, Selection: spec.Selection, ScaleStandby: ptr.Deref(spec.ScaleStandby, true),
		StatusPrimary: old.Primary,
	}
	svc := &corev1.Service{}
	switch err := r.Get(ctx, types.NamespacedName{Namespace: s.app.Namespace, Name: spec.Service}, svc); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return in, fmt.Errorf("reading Service %s of failover policy %s: %w", spec.Service, pol.Name, err)
	default:
		in.ServiceFound, in.ServiceSelector = true, svc.Spec.Selector
	}
	for _, c := range spec.Candidates {
		in.Candidates = append(in.Candidates, failoverCandidate(c, s.component(c.Component)))
	}
	last, lastMove := knowledge.FailoverHistory(&s.app.Status, pol.Name)
	in.Last, in.LastMove = planChange(last), planChange(lastMove)
	in.Demoted = knowledge.DemotedPrimaries(&s.app.Status, pol.Name, ladderNames(s.view))
	return in, nil
}

func failoverCandidate(spec v1alpha1.FailoverCandidate, c *monitor.Component) plan.FailoverCandidate {
	fc := plan.FailoverCandidate{Component: spec.Component, Weight: spec.Weight, Kind: "workload"}
	if c == nil || c.Ref == nil {
		return fc
	}
	fc.Kind = c.Ref.Kind
	if c.Workload == nil || !c.Status.Found {
		return fc
	}
	st := c.Status
	fc.Found, fc.Healthy = true, st.Healthy
	fc.ReadyReplicas, fc.DesiredReplicas = st.ReadyReplicas, st.DesiredReplicas
	fc.CrashLoopingPods, fc.RolloutStuck = st.CrashLoopingPods, st.RolloutStuck
	sel, podLabels := execute.WorkloadSelector(c.Workload)
	if sel != nil {
		fc.MatchLabels, fc.MatchExpressions = sel.MatchLabels, len(sel.MatchExpressions) > 0
	}
	fc.PodLabels = podLabels
	return fc
}

// failoverServiceChanged lets through the Service events a failover policy cares about:
// a Service created or deleted, or its selector changed.
var failoverServiceChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*corev1.Service)
		n, ok2 := e.ObjectNew.(*corev1.Service)
		return !ok1 || !ok2 || !maps.Equal(o.Spec.Selector, n.Spec.Selector)
	},
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// appsOfService maps a Service to the apps whose failover policies name it, so that a
// selector someone else changed is seen, and set back, at once.
func (r *AppReconciler) appsOfService(ctx context.Context, o client.Object) []reconcile.Request {
	var apps v1alpha1.AutonomicAppList
	if err := r.List(ctx, &apps, client.InNamespace(o.GetNamespace())); err != nil {
		logf.FromContext(ctx).Error(err, "Listing the apps of a Service failed", "service", klogKey(o))
		return nil
	}
	var keys []types.NamespacedName
	for _, a := range apps.Items {
		for _, p := range a.Spec.Policies {
			if p.Failover != nil && p.Failover.Service == o.GetName() {
				keys = append(keys, types.NamespacedName{Namespace: a.Namespace, Name: a.Name})
				break
			}
		}
	}
	return r.enqueue(keys)
}

// childNotYetJudged names the child app of a candidate component whose health is not
// known yet (not reconciled at its current generation), or "".
func childNotYetJudged(s *session, component string) string {
	for _, c := range s.components {
		if c.Name != component || c.Child == nil {
			continue
		}
		h := meta.FindStatusCondition(c.Child.Status.Conditions, v1alpha1.ConditionHealthy)
		if h == nil || c.Child.Status.ObservedGeneration != c.Child.Generation {
			return c.Child.Name
		}
	}
	return ""
}
