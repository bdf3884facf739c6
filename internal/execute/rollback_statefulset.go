package execute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// A StatefulSet rollback is `kubectl rollout undo statefulset` followed by the forced
// rollback the StatefulSet documentation prescribes:
//
//	StatefulSet db ──owns──> ControllerRevision db-5c8 (revision 1, image :good)
//	               └─owns──> ControllerRevision db-7f4 (revision 2, image :bad)   <- current
//
//  1. The pod template of the previous revision replaces the StatefulSet's, with the
//     action id stamped, in one JSON patch (as for a Deployment).
//  2. Once the StatefulSet controller has taken that revision as its update revision, the
//     StatefulSet's pods that are on another revision and not Running and Ready are
//     deleted. With the default OrderedReady pod management the controller waits for such
//     a pod to become ready before it replaces anything, which a pod of a broken release
//     never does: without this the rollback would change the template and heal nothing.
//     Pods that are ready are left to the controller's rolling update.
//
// Both parts are idempotent, so a manager that dies between them finishes the second
// when it carries the intent on.

// StatefulRollbackObserveTimeout bounds how long a StatefulSet rollback waits for the
// StatefulSet controller to take the revision it returned to, before deleting the pods
// stuck on another one. The controller normally takes it within milliseconds.
var StatefulRollbackObserveTimeout = 10 * time.Second

// statefulRevisionTemplate is the part of a StatefulSet ControllerRevision's data that a
// rollback reads: the controller stores the StatefulSet's pod template under
// spec.template (with "$patch": "replace", which decoding ignores).
type statefulRevisionTemplate struct {
	Spec struct {
		Template *corev1.PodTemplateSpec `json:"template"`
	} `json:"spec"`
}

// revisionTemplate decodes the pod template a StatefulSet's ControllerRevision holds.
func revisionTemplate(cr *appsv1.ControllerRevision) (*corev1.PodTemplateSpec, error) {
	if len(cr.Data.Raw) == 0 {
		return nil, fmt.Errorf("ControllerRevision %s holds no data", cr.Name)
	}
	var d statefulRevisionTemplate
	if err := json.Unmarshal(cr.Data.Raw, &d); err != nil {
		return nil, fmt.Errorf("ControllerRevision %s does not hold a StatefulSet's pod template: %w", cr.Name, err)
	}
	if d.Spec.Template == nil {
		return nil, fmt.Errorf("ControllerRevision %s holds no spec.template", cr.Name)
	}
	return d.Spec.Template, nil
}

// previousStatefulRevision picks the ControllerRevision a rollback returns to: of the
// StatefulSet's revisions, the one with the highest revision number below the current
// one. The current one is the newest revision whose pod template equals the
// StatefulSet's; when none does (the controller has not recorded the template yet), the
// one status.updateRevision names, else the highest.
func previousStatefulRevision(s *appsv1.StatefulSet, revs []appsv1.ControllerRevision) (*appsv1.ControllerRevision, error) {
	var own []*appsv1.ControllerRevision
	for i := range revs {
		if metav1.IsControlledBy(&revs[i], s) {
			own = append(own, &revs[i])
		}
	}
	if len(own) == 0 {
		return nil, errors.New("it has no revisions")
	}
	current, highest, named := int64(-1), int64(-1), int64(-1)
	for _, cr := range own {
		highest = max(highest, cr.Revision)
		if cr.Name == s.Status.UpdateRevision {
			named = cr.Revision
		}
		if t, err := revisionTemplate(cr); err == nil && apiequality.Semantic.DeepEqual(*t, s.Spec.Template) {
			current = max(current, cr.Revision)
		}
	}
	if current < 0 {
		current = named
	}
	if current < 0 {
		current = highest
	}
	var prev *appsv1.ControllerRevision
	for _, cr := range own {
		if cr.Revision < current && (prev == nil || cr.Revision > prev.Revision) {
			prev = cr
		}
	}
	if prev == nil {
		return nil, fmt.Errorf("there is no revision before its current revision %d", current)
	}
	return prev, nil
}

// rollbackStatefulSet carries out a StatefulSet rollback; see the comment at the top.
func (e *Effectors) rollbackStatefulSet(ctx context.Context, req Request, w workload) Outcome {
	obj, err := e.readWorkload(ctx, w)
	if err != nil {
		return failed("%v", err)
	}
	s := obj.(*appsv1.StatefulSet)
	cr, out := e.statefulRollbackTarget(ctx, req, w, s)
	if out != nil {
		return *out
	}
	id := req.Record.ID
	done := fmt.Sprintf("Rolled %s back to revision %d (ControllerRevision %s)", w, cr.Revision, cr.Name)
	if stampedWith(s, id) {
		done = rolledBackBefore(w)
	} else {
		tmpl, err := revisionTemplate(cr)
		if err != nil {
			return failed("%s cannot be rolled back: %v", w, err)
		}
		log.FromContext(ctx).Info("Rolling back StatefulSet", "statefulSet", klog.KObj(s), "revision", cr.Revision,
			"controllerRevision", klog.KObj(cr), "actionID", id)
		if err := e.patch(ctx, s, types.JSONPatchType, rollbackPatch(s.Annotations, tmpl, cr.Annotations, id)); err != nil {
			return failed("Could not roll %s back to revision %d: %v", w, cr.Revision, err)
		}
	}
	return succeeded("%s%s%s", done, onDeleteNote(s), e.releaseStuckPods(ctx, w, s, cr))
}

// observeStatefulRollback reports a StatefulSet rollback as done once both of its parts
// are: the StatefulSet carries the action id, its controller has taken the recorded
// revision (as its status says), and no pod is left that the forced part would delete.
// A stamped StatefulSet whose controller has not taken the revision, or that still has
// a stuck pod, shows only part of the effect.
func (e *Effectors) observeStatefulRollback(ctx context.Context, req Request, w workload) (Outcome, bool) {
	if len(req.Record.Objects) == 0 {
		// Only the recorded revision will do: picking the previous one now would pick it
		// against the template the rollback has already changed.
		return Outcome{}, false
	}
	obj, err := e.readWorkload(ctx, w)
	if err != nil {
		return Outcome{}, false
	}
	s := obj.(*appsv1.StatefulSet)
	if !stampedWith(s, req.Record.ID) {
		return Outcome{}, false
	}
	cr, out := e.statefulRollbackTarget(ctx, req, w, s)
	if out != nil || !revisionTaken(s, cr) {
		return Outcome{}, false
	}
	if stuck, err := e.stuckPods(ctx, w, s, cr); err != nil || len(stuck) > 0 {
		return Outcome{}, false
	}
	return succeeded("%s%s", rolledBackBefore(w), onDeleteNote(s)), true
}

// onDeleteNote ends the outcome of a rollback of a StatefulSet whose pods take a new
// template only when deleted.
func onDeleteNote(s *appsv1.StatefulSet) string {
	if s.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return "; its update strategy is OnDelete, so its pods take the template only as they are deleted"
	}
	return ""
}

// statefulRollbackTarget finds the ControllerRevision the record names, or, for a record
// without one, picks the previous revision as Prepare does.
func (e *Effectors) statefulRollbackTarget(ctx context.Context, req Request, w workload, s *appsv1.StatefulSet) (*appsv1.ControllerRevision, *Outcome) {
	if len(req.Record.Objects) == 0 {
		var revs []appsv1.ControllerRevision
		if req.Target != nil {
			revs = req.Target.Revisions
		}
		cr, err := previousStatefulRevision(s, revs)
		if err != nil {
			out := failed("%s cannot be rolled back: %v", w, err)
			return nil, &out
		}
		return cr, nil
	}
	cr := &appsv1.ControllerRevision{}
	name := req.Record.Objects[0]
	if err := e.Client.Get(ctx, client.ObjectKey{Namespace: w.namespace, Name: name}, cr); err != nil {
		out := failed("Could not read ControllerRevision %s to roll %s back to: %v", name, w, err)
		if apierrors.IsNotFound(err) {
			out = failed("ControllerRevision %s, the revision to roll %s back to, no longer exists", name, w)
		}
		return nil, &out
	}
	if !metav1.IsControlledBy(cr, s) {
		out := failed("ControllerRevision %s no longer belongs to %s, so it was not rolled back", name, w)
		return nil, &out
	}
	return cr, nil
}

// releaseStuckPods waits until the StatefulSet controller has taken cr as its update
// revision, then deletes the StatefulSet's pods that are on another revision and not
// Running and Ready, so the controller recreates them from cr. It returns what it did, as
// the end of the outcome's sentence; a failure here leaves the rollback itself done.
func (e *Effectors) releaseStuckPods(ctx context.Context, w workload, s *appsv1.StatefulSet, cr *appsv1.ControllerRevision) string {
	taken := func(ctx context.Context) (bool, error) {
		cur := &appsv1.StatefulSet{}
		if err := e.Client.Get(ctx, w.key(), cur); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return revisionTaken(cur, cr), nil
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, StatefulRollbackObserveTimeout, true, taken); err != nil {
		return fmt.Sprintf("; the StatefulSet controller had not taken revision %d within %s, so no stuck pod was deleted: "+
			"a pod of the old revision that never becomes ready holds the rollout until it is deleted (a restartPods step does that)",
			cr.Revision, StatefulRollbackObserveTimeout)
	}
	stuck, err := e.stuckPods(ctx, w, s, cr)
	if err != nil {
		return fmt.Sprintf("; %v, so no stuck pod was deleted", err)
	}
	var deleted, failures []string
	for _, p := range stuck {
		uid := p.UID
		err := e.Client.Delete(ctx, p, client.Preconditions{UID: &uid})
		switch {
		case err == nil:
			deleted = append(deleted, p.Name)
			log.FromContext(ctx).Info("Deleted a pod stuck on the revision rolled back from", "pod", klog.KObj(p))
		case apierrors.IsNotFound(err), apierrors.IsConflict(err):
			// Gone already, or a new pod of the same name.
		default:
			failures = append(failures, fmt.Sprintf("%s (%v)", p.Name, err))
		}
	}
	slices.Sort(deleted)
	var out string
	if len(deleted) > 0 {
		out = fmt.Sprintf("; deleted %d pod(s) stuck on the old revision (%s), which the controller recreates from revision %d",
			len(deleted), strings.Join(deleted, ", "), cr.Revision)
	}
	if len(failures) > 0 {
		out += fmt.Sprintf("; could not delete %s", strings.Join(failures, ", "))
	}
	return out
}

// revisionTaken reports whether the StatefulSet controller has seen the StatefulSet's
// latest spec and made cr its update revision.
func revisionTaken(s *appsv1.StatefulSet, cr *appsv1.ControllerRevision) bool {
	return s.Status.ObservedGeneration >= s.Generation && s.Status.UpdateRevision == cr.Name
}

// stuckPods lists the StatefulSet's pods that hold its rollout to cr: those on another
// revision that are neither terminating nor Running and Ready. The error says what
// failed, to end a sentence.
func (e *Effectors) stuckPods(ctx context.Context, w workload, s *appsv1.StatefulSet, cr *appsv1.ControllerRevision) ([]*corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("its selector is invalid (%v)", err)
	}
	var pods corev1.PodList
	if err := e.Client.List(ctx, &pods, client.InNamespace(w.namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("listing its pods failed (%v)", err)
	}
	var stuck []*corev1.Pod
	for i := range pods.Items {
		p := &pods.Items[i]
		if metav1.IsControlledBy(p, s) && p.DeletionTimestamp == nil &&
			p.Labels[appsv1.ControllerRevisionHashLabelKey] != cr.Name && !runningAndReady(p) {
			stuck = append(stuck, p)
		}
	}
	return stuck, nil
}

// runningAndReady is the StatefulSet controller's test of a pod it may move past.
func runningAndReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
