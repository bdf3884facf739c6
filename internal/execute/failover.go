package execute

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	accorev1 "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/knowledge"
	"github.com/homeostat-dev/homeostat/internal/plan"
	"github.com/homeostat-dev/homeostat/internal/rights"
)

func init() { register(KindFailover, failover{}) }

// failover carries out the changes of a failover policy, one ledger record each:
//
//	ScaleUpStandby       Deployment/web-standby from 0 to 3 replicas   (the /scale subresource, as scale does)
//	MoveTraffic          Service/web -> web-standby                    (server-side apply of spec.selector)
//	ScaleDownOldPrimary  Deployment/web from 3 to 0 replicas
//	ScaleDownStandby     Deployment/web-standby from 3 to 0 replicas   (a move that was no longer needed)
//
// and the failover action of a remediation ladder, which changes nothing in the cluster:
// its record (Demote) makes the named policy treat its current primary as failed while
// the ladder's episode is open, and that policy then makes the changes above.
//
// What a record changes is fixed in its typed failover field when the intent is
// recorded (Prepared.Failover), so a retry after a crash makes the same change; its
// Objects name only the object changed: the workload scaled, or Service/<name>.
type failover struct{}

// FailoverChange is one change a failover policy decided, to be prepared for the ledger.
type FailoverChange struct {
	// Phase is ScaleUpStandby, MoveTraffic, ScaleDownOldPrimary or ScaleDownStandby.
	Phase plan.FailoverPhase
	// Service names the policy's Service, in the app's namespace.
	Service string
	// From is the candidate traffic moves away from (MoveTraffic; "" when none).
	From string
	// Replicas is the count a scale phase sets.
	Replicas int32
}

// PrepareFailover fixes one change of a failover policy before its intent is written to
// the ledger. req.Action is the policy's failover action and req.Target the candidate the
// change acts on, as the monitor saw it; req is otherwise as for Prepare. It reads only
// the request, never the API server.
func (e *Effectors) PrepareFailover(req Request, ch FailoverChange) (Prepared, error) {
	p, err := prepareFailoverChange(req, ch)
	p.Kind = KindFailover
	if err != nil {
		return p, err
	}
	return declare(failover{}, req, p)
}

func prepareFailoverChange(req Request, ch FailoverChange) (Prepared, error) {
	if req.Action.Failover == nil || req.Action.Failover.Policy == "" {
		return Prepared{}, errors.New("the failover change names no policy")
	}
	w, err := workloadOf(req)
	if err != nil {
		return Prepared{}, err
	}
	name := req.Target.Name
	fo := &v1alpha1.FailoverRecord{Phase: v1alpha1.FailoverPhase(ch.Phase), Policy: req.Action.Failover.Policy,
		Component: name, Service: ch.Service}
	switch ch.Phase {
	case plan.PhaseScaleUpStandby, plan.PhaseScaleDownOldPrimary, plan.PhaseScaleDownStandby:
		n := ch.Replicas
		p, err := scale{}.prepare(Request{App: req.App, Target: req.Target,
			Action: v1alpha1.Action{Scale: &v1alpha1.ScaleAction{Component: name, Replicas: &n}}})
		if err != nil {
			return Prepared{}, err
		}
		role := map[plan.FailoverPhase]string{
			plan.PhaseScaleUpStandby:      "standby",
			plan.PhaseScaleDownOldPrimary: "old primary",
			plan.PhaseScaleDownStandby:    "unneeded standby",
		}[ch.Phase]
		p.Target = fmt.Sprintf("%s (%s for Service/%s)", p.Target, role, ch.Service)
		p.Objects, p.Failover = []string{w.String()}, fo
		return p, nil
	case plan.PhaseMoveTraffic:
		if ch.Service == "" {
			return Prepared{}, errors.New("the failover names no Service")
		}
		if _, err := serviceSelector(w); err != nil {
			return Prepared{}, err
		}
		fo.From = ch.From
		// Traffic moves only to a candidate whose every desired replica is ready: no
		// capacity is taken away, so the move is not disruptive.
		return Prepared{Target: fmt.Sprintf("Service/%s -> %s", ch.Service, name), Objects: []string{"Service/" + ch.Service},
			Failover: fo}, nil
	}
	return Prepared{}, fmt.Errorf("a failover has no phase %q to carry out", ch.Phase)
}

// prepare is the failover action of a remediation ladder: it names a failover policy
// and demotes that policy's current primary.
func (failover) prepare(req Request) (Prepared, error) {
	a := req.Action.Failover
	if req.App == nil {
		return Prepared{}, errors.New("the failover action has no app")
	}
	pol := failoverPolicy(req.App, a.Policy)
	if pol == nil {
		return Prepared{}, fmt.Errorf("policy %q is not a failover policy of this app", a.Policy)
	}
	var primary string
	for _, st := range req.App.Status.Policies {
		if st.Name == a.Policy {
			primary = st.Primary
		}
	}
	if primary == "" {
		return Prepared{}, fmt.Errorf("failover policy %q has not elected a primary yet, so there is nothing to fail over from", a.Policy)
	}
	return Prepared{
		Target: fmt.Sprintf("Service/%s away from %s", pol.Service, primary),
		Failover: &v1alpha1.FailoverRecord{Phase: v1alpha1.FailoverDemote, Policy: a.Policy, Component: primary,
			Service: pol.Service},
	}, nil
}

// accesses are what the record's change writes: the workload's /scale subresource for
// a scale phase, the Service for a traffic move; a ladder's demotion changes nothing in
// the cluster.
func (failover) accesses(req Request) ([]rights.Access, error) {
	rec, ok := knowledge.FailoverOf(*req.Record)
	if !ok {
		return nil, nil
	}
	switch rec.Phase {
	case v1alpha1.FailoverMoveTraffic:
		if req.App == nil {
			return nil, nil
		}
		return []rights.Access{{Verb: "patch", Resource: "services", Namespace: req.App.Namespace, Name: rec.Service}}, nil
	case v1alpha1.FailoverScaleUpStandby, v1alpha1.FailoverScaleDownOldPrimary, v1alpha1.FailoverScaleDownStandby:
		return scale{}.accesses(req)
	}
	return nil, nil
}

func failoverPolicy(app *v1alpha1.AutonomicApp, name string) *v1alpha1.FailoverPolicy {
	for i := range app.Spec.Policies {
		if p := &app.Spec.Policies[i]; p.Name == name && p.Failover != nil {
			return p.Failover
		}
	}
	return nil
}

func (failover) execute(ctx context.Context, e *Effectors, req Request) Outcome {
	rec, ok := knowledge.FailoverOf(*req.Record)
	if !ok {
		return failed("The ledger record of the failover action does not say what to change, so nothing was changed")
	}
	switch rec.Phase {
	case v1alpha1.FailoverDemote:
		svc := "its Service"
		if rec.Service != "" {
			svc = "Service/" + rec.Service
		} else if req.App != nil {
			// A demotion recorded before records named the Service.
			if pol := failoverPolicy(req.App, rec.Policy); pol != nil {
				svc = "Service/" + pol.Service
			}
		}
		return succeeded("Policy %s treats %s as failed while this episode of %s is open, and moves %s to its best other candidate",
			rec.Policy, rec.Component, req.Record.Policy, svc)
	case v1alpha1.FailoverMoveTraffic:
		return e.moveTraffic(ctx, req, rec)
	case v1alpha1.FailoverScaleUpStandby, v1alpha1.FailoverScaleDownOldPrimary, v1alpha1.FailoverScaleDownStandby:
		// The same write as the scale action: spec.replicas through /scale, by
		// server-side apply, to the count fixed in the record.
		return scale{}.execute(ctx, e, req)
	}
	return failed("A failover has no phase %q to carry out, so nothing was changed", rec.Phase)
}

// moveTraffic points the Service's selector at the pods of the record's component.
func (e *Effectors) moveTraffic(ctx context.Context, req Request, rec v1alpha1.FailoverRecord) Outcome {
	w, err := workloadOf(req)
	if err != nil {
		return failed("%v", err)
	}
	sel, err := serviceSelector(w)
	if err != nil {
		return failed("%v", err)
	}
	svc := &corev1.Service{}
	key := types.NamespacedName{Namespace: w.namespace, Name: rec.Service}
	if err := e.Client.Get(ctx, key, svc); err != nil {
		if apierrors.IsNotFound(err) {
			return failed("Service %s was not found, so traffic was not moved to %s", rec.Service, rec.Component)
		}
		return failed("Could not read Service %s: %v", rec.Service, err)
	}
	id := req.Record.ID
	log.FromContext(ctx).Info("Pointing a Service at a failover candidate", "service", klog.KObj(svc),
		"component", rec.Component, "selector", labelList(sel), "actionID", id)
	if err := e.applyServiceSelector(ctx, svc, sel); err != nil {
		return failed("Could not point Service %s at the pods of %s: %v", rec.Service, rec.Component, err)
	}
	if err := e.stamp(ctx, svc, id); err != nil {
		return failed("Pointed Service %s at the pods of %s, but could not stamp it with the action id: %v", rec.Service, rec.Component, err)
	}
	return succeeded("Pointed Service %s at the pods of %s (%s)", rec.Service, rec.Component, labelList(sel))
}

// applyServiceSelector server-side applies spec.selector, and nothing else, as the
// homeostat field manager, taking the field from any other manager. Service selectors are
// atomic maps, so the applied selector replaces the old one whole. The same selector
// applied again is a no-op.
func (e *Effectors) applyServiceSelector(ctx context.Context, svc *corev1.Service, sel map[string]string) error {
	body := mustJSON(accorev1.Service(svc.Name, svc.Namespace).WithSpec(accorev1.ServiceSpec().WithSelector(sel)))
	return e.Client.Patch(ctx, svc, client.RawPatch(types.ApplyPatchType, body),
		client.FieldOwner(v1alpha1.FieldManager), client.ForceOwnership)
}

// serviceSelector is the selector a Service needs to select the workload's pods: its
// spec.selector.matchLabels. A selector with matchExpressions has no Service equivalent.
func serviceSelector(w workload) (map[string]string, error) {
	sel, _ := WorkloadSelector(w.obj)
	switch {
	case sel == nil:
		return nil, fmt.Errorf("%s has no selector", w)
	case len(sel.MatchExpressions) > 0:
		return nil, fmt.Errorf("%s selects its pods with matchExpressions, which a Service's selector cannot express", w)
	case len(sel.MatchLabels) == 0:
		return nil, fmt.Errorf("%s has no matchLabels in its selector, so a Service cannot select its pods", w)
	}
	return sel.MatchLabels, nil
}

// WorkloadSelector returns a workload's spec.selector and the labels of its pod template;
// nil for other kinds.
func WorkloadSelector(obj client.Object) (*metav1.LabelSelector, map[string]string) {
	switch w := obj.(type) {
	case *appsv1.Deployment:
		return w.Spec.Selector, w.Spec.Template.Labels
	case *appsv1.StatefulSet:
		return w.Spec.Selector, w.Spec.Template.Labels
	case *appsv1.ReplicaSet:
		return w.Spec.Selector, w.Spec.Template.Labels
	}
	return nil, nil
}

// labelList renders labels as kubectl does: sorted k=v pairs joined by commas.
func labelList(l map[string]string) string {
	keys := slices.Sorted(maps.Keys(l))
	for i, k := range keys {
		keys[i] = k + "=" + l[k]
	}
	return strings.Join(keys, ",")
}
