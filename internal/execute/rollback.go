package execute

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/rights"
)

func init() { register(KindRollback, rollback{}) }

// Annotations of the Deployment controller that a rollback reads or carries over.
const (
	// RevisionAnnotation numbers a Deployment's ReplicaSets.
	RevisionAnnotation = "deployment.kubernetes.io/revision"
	// ChangeCauseAnnotation is what `kubectl rollout history` shows for a revision.
	ChangeCauseAnnotation = "kubernetes.io/change-cause"
)

// rollback returns a Deployment or a StatefulSet to its previous revision, as `kubectl
// rollout undo` does: for a Deployment, the previous ReplicaSet's pod template (without
// pod-template-hash) replaces the Deployment's; for a StatefulSet, the pod template its
// previous ControllerRevision holds replaces the StatefulSet's.
type rollback struct{}

func (rollback) prepare(req Request) (Prepared, error) {
	w, err := workloadOf(req)
	if err != nil {
		return Prepared{}, err
	}
	switch o := w.obj.(type) {
	case *appsv1.Deployment:
		if o.Spec.Paused {
			return Prepared{}, fmt.Errorf("%s is paused, so a rollback would not roll out; resume it first", w)
		}
		prev, rev, err := previousRevision(o, req.Target.ReplicaSets)
		if err != nil {
			return Prepared{}, fmt.Errorf("%s cannot be rolled back: %w", w, err)
		}
		return Prepared{
			Target:     fmt.Sprintf("%s to revision %d", w, rev),
			Objects:    []string{prev.Name},
			Disruptive: true,
			Pods:       rolloutPods(o),
		}, nil
	case *appsv1.StatefulSet:
		prev, err := previousStatefulRevision(o, req.Target.Revisions)
		if err != nil {
			return Prepared{}, fmt.Errorf("%s cannot be rolled back: %w", w, err)
		}
		return Prepared{
			Target:     fmt.Sprintf("%s to revision %d", w, prev.Revision),
			Objects:    []string{prev.Name},
			Disruptive: true,
			Pods:       rolloutPods(o),
		}, nil
	}
	return Prepared{}, fmt.Errorf("%s cannot be rolled back: rollback supports Deployments and StatefulSets; "+
		"use rolloutRestart or restartPods for a ReplicaSet", w)
}

// accesses are the patch of the workload's pod template and the read of the revision
// the record names (a ReplicaSet, a ControllerRevision); a StatefulSet's forced
// rollback also deletes the pods stuck on the revision it leaves, whose names are not
// known beforehand.
func (rollback) accesses(req Request) ([]rights.Access, error) {
	w, err := workloadOf(req)
	if err != nil {
		return nil, nil
	}
	out := []rights.Access{workloadAccess(w, "patch", "")}
	revision := "replicasets"
	if w.kind == kindStatefulSet {
		revision = "controllerrevisions"
	}
	for _, name := range req.Record.Objects {
		out = append(out, rights.Access{Verb: "get", Group: "apps", Resource: revision, Namespace: w.namespace, Name: name})
	}
	if w.kind == kindStatefulSet {
		out = append(out, rights.Access{Verb: "delete", Resource: "pods", Namespace: w.namespace})
	}
	return out, nil
}

// previousRevision picks the ReplicaSet a rollback returns to: of the Deployment's
// ReplicaSets, the one with the highest revision below the current one. The current one
// is the ReplicaSet whose template equals the Deployment's (ignoring pod-template-hash),
// or, when none does, the highest revision.
func previousRevision(d *appsv1.Deployment, rss []appsv1.ReplicaSet) (*appsv1.ReplicaSet, int64, error) {
	type revisioned struct {
		rs  *appsv1.ReplicaSet
		rev int64
	}
	var all []revisioned
	current, highest := int64(-1), int64(-1)
	for i := range rss {
		rs := &rss[i]
		if !metav1.IsControlledBy(rs, d) {
			continue
		}
		rev, ok := revision(rs)
		if !ok {
			continue
		}
		all = append(all, revisioned{rs, rev})
		highest = max(highest, rev)
		if equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			current = max(current, rev)
		}
	}
	if len(all) == 0 {
		return nil, 0, fmt.Errorf("it has no revisions")
	}
	if current < 0 {
		current = highest
	}
	var prev *revisioned
	for i := range all {
		if all[i].rev < current && (prev == nil || all[i].rev > prev.rev) {
			prev = &all[i]
		}
	}
	if prev == nil {
		return nil, 0, fmt.Errorf("there is no revision before its current revision %d", current)
	}
	return prev.rs, prev.rev, nil
}

// revision is a ReplicaSet's revision number.
func revision(rs *appsv1.ReplicaSet) (int64, bool) {
	v, err := strconv.ParseInt(rs.Annotations[RevisionAnnotation], 10, 64)
	return v, err == nil
}

// equalIgnoreHash compares two pod templates, ignoring the pod-template-hash label the
// Deployment controller adds to its ReplicaSets.
func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	return apiequality.Semantic.DeepEqual(withoutHash(a), withoutHash(b))
}

// withoutHash returns a copy of the template without the pod-template-hash label.
func withoutHash(t *corev1.PodTemplateSpec) *corev1.PodTemplateSpec {
	t = t.DeepCopy()
	delete(t.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	if len(t.Labels) == 0 {
		t.Labels = nil
	}
	return t
}

func (rollback) execute(ctx context.Context, e *Effectors, req Request) Outcome {
	w, err := workloadOf(req)
	if err != nil {
		return failed("%v", err)
	}
	switch w.kind {
	case kindDeployment:
	case kindStatefulSet:
		return e.rollbackStatefulSet(ctx, req, w)
	default:
		return failed("%s cannot be rolled back: rollback supports Deployments and StatefulSets; "+
			"use rolloutRestart or restartPods for a ReplicaSet", w)
	}
	obj, err := e.readWorkload(ctx, w)
	if err != nil {
		return failed("%v", err)
	}
	d := obj.(*appsv1.Deployment)
	id := req.Record.ID
	if stampedWith(d, id) {
		return succeeded("%s", rolledBackBefore(w))
	}
	if d.Spec.Paused {
		return failed("%s is paused, so a rollback would not roll out; resume it first", w)
	}
	rs, rev, out := e.rollbackTarget(ctx, req, w, d)
	if out != nil {
		return *out
	}

	log.FromContext(ctx).Info("Rolling back Deployment", "deployment", klog.KObj(d), "revision", rev,
		"replicaSet", klog.KObj(rs), "actionID", id)
	if err := e.patch(ctx, d, types.JSONPatchType, rollbackPatch(d.Annotations, withoutHash(&rs.Spec.Template), rs.Annotations, id)); err != nil {
		return failed("Could not roll %s back to revision %d: %v", w, rev, err)
	}
	return succeeded("Rolled %s back to revision %d (ReplicaSet %s)", w, rev, rs.Name)
}

// observe reports a rollback as done once the workload carries the action id: the one
// JSON patch that replaces its pod template stamps it too. For a StatefulSet the forced
// part must be finished as well; see observeStatefulRollback.
func (rollback) observe(ctx context.Context, e *Effectors, req Request) (Outcome, bool) {
	w, err := workloadOf(req)
	if err != nil {
		return Outcome{}, false
	}
	switch w.kind {
	case kindDeployment:
	case kindStatefulSet:
		return e.observeStatefulRollback(ctx, req, w)
	default:
		return Outcome{}, false
	}
	obj, err := e.readWorkload(ctx, w)
	if err != nil || !stampedWith(obj, req.Record.ID) {
		return Outcome{}, false
	}
	return succeeded("%s", rolledBackBefore(w)), true
}

// rolledBackBefore says that the workload carries this action's rollback already.
func rolledBackBefore(w workload) string {
	return fmt.Sprintf("%s was already rolled back by this action", w)
}

// rollbackTarget finds the ReplicaSet the record names, or, for a record without one,
// picks the previous revision as Prepare does.
func (e *Effectors) rollbackTarget(ctx context.Context, req Request, w workload, d *appsv1.Deployment) (*appsv1.ReplicaSet, int64, *Outcome) {
	if len(req.Record.Objects) == 0 {
		var rss []appsv1.ReplicaSet
		if req.Target != nil {
			rss = req.Target.ReplicaSets
		}
		rs, rev, err := previousRevision(d, rss)
		if err != nil {
			out := failed("%s cannot be rolled back: %v", w, err)
			return nil, 0, &out
		}
		return rs, rev, nil
	}
	rs := &appsv1.ReplicaSet{}
	name := req.Record.Objects[0]
	if err := e.Client.Get(ctx, client.ObjectKey{Namespace: w.namespace, Name: name}, rs); err != nil {
		out := failed("Could not read ReplicaSet %s to roll %s back to: %v", name, w, err)
		if apierrors.IsNotFound(err) {
			out = failed("ReplicaSet %s, the revision to roll %s back to, no longer exists", name, w)
		}
		return nil, 0, &out
	}
	if !metav1.IsControlledBy(rs, d) {
		out := failed("ReplicaSet %s no longer belongs to %s, so it was not rolled back", name, w)
		return nil, 0, &out
	}
	rev, _ := revision(rs)
	return rs, rev, nil
}

// rollbackPatch is one JSON patch that replaces the workload's pod template with the
// revision's template tmpl, carries over the revision's change-cause as
// kubectl does, and stamps the action id. ann are the workload's annotations, revAnn the
// revision's. The template is replaced whole, not merged, so nothing the bad revision
// added survives. Every operation is an add or a replace that holds whatever the live
// object looks like, so a retry from a stale cache cannot fail on a path that is already
// gone (a revision without a change-cause leaves the workload's as it is).
func rollbackPatch(ann map[string]string, tmpl *corev1.PodTemplateSpec, revAnn map[string]string, id string) []byte {
	type op struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	}
	ops := []op{{Op: "replace", Path: "/spec/template", Value: tmpl}}
	cause, hasCause := revAnn[ChangeCauseAnnotation]
	if ann == nil {
		a := map[string]string{v1alpha1.ActionIDAnnotation: id}
		if hasCause {
			a[ChangeCauseAnnotation] = cause
		}
		return mustJSON(append(ops, op{Op: "add", Path: "/metadata/annotations", Value: a}))
	}
	ops = append(ops, op{Op: "add", Path: annotationPath(v1alpha1.ActionIDAnnotation), Value: id})
	if hasCause {
		ops = append(ops, op{Op: "add", Path: annotationPath(ChangeCauseAnnotation), Value: cause})
	}
	return mustJSON(ops)
}

// annotationPath is the JSON pointer of an annotation (RFC 6901 escaping).
func annotationPath(key string) string {
	return "/metadata/annotations/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(key)
}
