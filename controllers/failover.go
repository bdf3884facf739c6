package controllers

import (
	"context"
	"fmt"
	"k8s.io/apimachinery/pkg/api/meta"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	"github.com/homeostat-dev/homeostat/internal/text"
)

// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;patch

// failover elects the primary of one failover policy and makes the next change towards
// it, one per reconcile: scale a standby up, point the Service's selector at the new
// primary's pods, scale the old primary down. Each change is an action of the ledger
// (action failover, policy = this policy), recorded before it is made; which change comes
// next is derived again from what is observed every time, so a restart resumes a move
// where it stood.
func (r *AppReconciler) failover(ctx context.Context, s *session, pol v1alpha1.Policy, old v1alpha1.PolicyStatus) (v1alpha1.PolicyStatus, error) {
	app := s.app
	for _, c := range pol.Failover.Candidates {
		if child := childNotYetJudged(s, c.Component); child != "" {
			// A child app that has not been reconciled has no health yet: electing now
			// could move traffic away from a primary that is fine.
			st := old
			st.Name, st.State, st.Reason = pol.Name, v1alpha1.PolicyWaiting, "CandidateNotJudged"
			st.Message = fmt.Sprintf("Child app %s has not reported its health yet; the election waits for it.", child)
			return st, nil
		}
	}
	in, err := r.failoverInput(ctx, s, pol, old)
	if err != nil {
		return old, err
	}
	d := plan.Elect(in)
	s.requeueAt(d.NextCheck)
	st := v1alpha1.PolicyStatus{Name: pol.Name, State: d.State, Reason: d.Reason, Message: text.Truncate(d.Message, 1024),
		Primary: d.Primary, LastAction: old.LastAction}
	switch d.Phase {
	case plan.PhaseScaleUpStandby, plan.PhaseMoveTraffic, plan.PhaseScaleDownOldPrimary, plan.PhaseScaleDownStandby:
	default:
		r.explainFailover(s, pol.Name, old, st)
		return st, nil
	}
	if len(knowledge.Pending(&app.Status)) > 0 {
		// An earlier intent could not be finished this pass; never stack another on it.
		return old, nil
	}

	action := v1alpha1.Action{Failover: &v1alpha1.FailoverAction{Policy: pol.Name}}
	target := s.component(d.Component)
	id := knowledge.NewID(pol.Name, s.now)
	p, perr := r.Effectors.PrepareFailover(execute.Request{App: app, Action: action, Target: target,
		Record: &v1alpha1.ActionRecord{ID: id, Time: metav1.NewTime(s.now)}},
		execute.FailoverChange{Phase: d.Phase, Service: pol.Failover.Service, From: d.From, Replicas: d.Replicas})

	// The same change as the policy's last record: in DryRun it is recorded once; after
	// a failure (of the effect, or of Prepare with the same error) it waits before the
	// next attempt; after a success it is not made again while the cache may not show it.
	same := func(last *v1alpha1.ActionRecord) bool {
		if perr != nil {
			return last.Target == "" && last.Message == text.Truncate(perr.Error(), 1024)
		}
		return last.Target == p.Target
	}
	if last := knowledge.LastFailoverRecord(&app.Status, pol.Name); last != nil && same(last) {
		if last.Result == v1alpha1.ResultSkipped {
			st.LastAction = last.ID
			st.Message = text.Truncate("DryRun, nothing is changed: "+d.Message, 1024)
			return st, nil
		}
		if wait, until := plan.RepeatFailoverChange(last.Result, last.Time.Time, s.now); wait {
			s.requeueAt(until)
			st.LastAction = last.ID
			if last.Result == v1alpha1.ResultFailed {
				return r.failoverFailed(s, pol.Name, old, st, d, last, until), nil
			}
			return st, nil
		}
	}

	g := r.guardInput(s)
	if plan.ContinuesFailover(d, planChange(knowledge.LatestFailoverChange(&app.Status, pol.Name))) {
		g.Cooldown = 0
	}
	v := plan.CheckGuards(g, perr == nil && p.Disruptive, s.now)
	if v.Held {
		s.requeueAt(v.Until)
		st.State, st.Reason = v1alpha1.PolicyHeld, v.Reason
		st.Message = text.Truncate(fmt.Sprintf("%s It is held: %s", d.Message, v.Message), 1024)
		r.explainFailover(s, pol.Name, old, st)
		return st, nil
	}

	var ready []preparedTarget
	if perr == nil {
		ready = []preparedTarget{{target: target, p: p, id: id}}
	}
	res, err := r.carryOut(ctx, s, actInput{Policy: pol.Name, Action: action, Reason: d.Message}, v, ready, perr)
	if err != nil {
		return old, err
	}
	st.LastAction = res.LastID
	rec := knowledge.Find(&app.Status, res.LastID)
	switch {
	case rec == nil:
	case rec.Result == v1alpha1.ResultSucceeded && d.Phase == plan.PhaseMoveTraffic:
		st.Primary = d.Component
		// No watch event follows the move: decide the next change (scaling the old
		// primary down) at once.
		s.requeueAt(s.now)
	case rec.Result == v1alpha1.ResultFailed:
		until := rec.Time.Add(plan.FailoverRetryDelay)
		s.requeueAt(until)
		return r.failoverFailed(s, pol.Name, old, st, d, rec, until), nil
	case rec.DryRun:
		st.Message = text.Truncate("DryRun, nothing is changed: "+d.Message, 1024)
	}
	return st, nil
}

// resumedMove makes the candidate a resumed traffic move pointed the Service at the
// primary of its policy, in the same status write as the move's outcome, as a move made
// in this run does: a reader never sees the move Succeeded and the old primary still
// named (until the next reconcile, whose cached Service may not show the move yet).
func resumedMove(s *session, id string) {
	rec := knowledge.Find(&s.app.Status, id)
	if rec == nil || rec.Result != v1alpha1.ResultSucceeded {
		return
	}
	fr, ok := knowledge.FailoverOf(*rec)
	if !ok || fr.Phase != v1alpha1.FailoverMoveTraffic {
		return
	}
	st := v1alpha1.PolicyStatus{Name: fr.Policy}
	for _, p := range s.app.Status.Policies {
		if p.Name == fr.Policy {
			st = p
		}
	}
	st.Primary, st.LastAction = fr.Component, rec.ID
	s.app.Status.Policies = mergePolicy(s.app.Status.Policies, st)
	// No watch event follows the move: decide the next change at once.
	s.requeueAt(s.now)
}

// failoverFailed is the status of a change whose last attempt failed.
func (r *AppReconciler) failoverFailed(s *session, policy string, old, st v1alpha1.PolicyStatus, d plan.FailoverDecision,
	rec *v1alpha1.ActionRecord, until time.Time) v1alpha1.PolicyStatus {
	st.State, st.Reason, st.LastAction = v1alpha1.PolicyWaiting, plan.ReasonRetryingChange, rec.ID
	st.Message = text.Truncate(fmt.Sprintf("%s The last attempt failed: %s It is tried again at %s.",
		d.Message, ensurePeriod(rec.Message), until.UTC().Format(time.RFC3339)), 1024)
	r.explainFailover(s, policy, old, st)
	return st
}

func ensurePeriod(s string) string {
	if s == "" || s[len(s)-1] == '.' {
		return s
	}
	return s + "."
}

// explainFailover emits an Event when a failover policy's state changes to one a person
// may want to know about: nothing can take traffic, the policy cannot work as written, a
// guard holds a change, a change keeps failing. Changes themselves leave the effectors'
// Events.
func (r *AppReconciler) explainFailover(s *session, policy string, old, st v1alpha1.PolicyStatus) {
	if st.State == old.State && st.Reason == old.Reason {
		return
	}
	typ := corev1.EventTypeNormal
	switch st.State {
	case v1alpha1.PolicyHeld:
		r.Recorder.Eventf(s.app, nil, typ, "Held"+st.Reason, "Plan", "Policy %s: %s", policy, st.Message)
		return
	case v1alpha1.PolicyInvalid:
		typ = corev1.EventTypeWarning
	case v1alpha1.PolicyWaiting:
		switch st.Reason {
		case plan.ReasonNoHealthyCandidate, plan.ReasonServiceNotFound, plan.ReasonRetryingChange:
			typ = corev1.EventTypeWarning
		case plan.ReasonWaitingForStandby:
		default:
			return
		}
	default:
		return
	}
	r.Recorder.Eventf(s.app, nil, typ, st.Reason, "Plan", "Policy %s: %s", policy, st.Message)
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

// failoverActionOf resolves a pending record of a failover policy's own change, for
// resumePending: the policy's failover action on the component the record names.
func (r *AppReconciler) failoverActionOf(s *session, rec v1alpha1.ActionRecord) (v1alpha1.Action, *monitor.Component, bool) {
	fr, ok := knowledge.FailoverOf(rec)
	if !ok || fr.Phase == v1alpha1.FailoverDemote {
		return v1alpha1.Action{}, nil, false
	}
	for _, p := range s.view.Spec.Policies {
		if p.Name == rec.Policy && p.Failover != nil {
			return v1alpha1.Action{Failover: &v1alpha1.FailoverAction{Policy: p.Name}}, s.component(fr.Component), true
		}
	}
	return v1alpha1.Action{}, nil, false
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
