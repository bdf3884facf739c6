package execute

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/rights"
)

func init() { register(KindRestartPods, restartPods{}) }

// restartPods evicts pods of a component through the eviction API, so that
// PodDisruptionBudgets are respected; the workload recreates them.
type restartPods struct{}

// maxObjects is how many objects one ledger record names (ActionRecord.Objects).
const maxObjects = 64

// evictionTimeout bounds one eviction. client-go retries a 429 that carries Retry-After
// (a PodDisruptionBudget "still being processed" asks for 10 s) up to ten times; this cap
// keeps one stale budget from holding the whole action for minutes.
const evictionTimeout = 15 * time.Second

func (restartPods) prepare(req Request) (Prepared, error) {
	w, err := workloadOf(req)
	if err != nil {
		return Prepared{}, err
	}
	sel := req.Action.RestartPods.Pods
	if sel == "" {
		sel = v1alpha1.PodsUnhealthy
	}
	names := selectPods(req.Target.Pods, sel)
	if len(names) == 0 {
		if sel == v1alpha1.PodsAll {
			return Prepared{}, fmt.Errorf("%s has no running pods to restart", w)
		}
		return Prepared{}, fmt.Errorf("no pod of %s is unhealthy, so there is nothing to restart", w)
	}
	return Prepared{Target: w.String(), Objects: names, Disruptive: true, Pods: len(names)}, nil
}

// accesses are the evictions of the pods the record names.
func (restartPods) accesses(req Request) ([]rights.Access, error) {
	w, err := workloadOf(req)
	if err != nil {
		return nil, nil // nothing is done: Execute fails without a workload
	}
	return podEvictions(w.namespace, req.Record.Objects), nil
}

// selectPods picks the pods a restartPods action evicts: with Unhealthy the pods
// podUnhealthy names, with All every pod, never one already terminating. The names are
// sorted, and at most maxObjects are taken.
func selectPods(pods []corev1.Pod, sel v1alpha1.PodSelection) []string {
	var names []string
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		if sel == v1alpha1.PodsAll || monitor.PodUnhealthy(p) {
			names = append(names, p.Name)
		}
	}
	slices.Sort(names)
	return names[:min(len(names), maxObjects)]
}

// evictResult is what became of one named pod.
type evictResult int

const (
	podEvicted evictResult = iota
	// podDone: gone, terminating, or replaced by a pod created after the intent. A retry
	// lands here for every pod the first run evicted.
	podDone
	// podNotOurs: the name now belongs to a pod of another owner.
	podNotOurs
	podFailed
)

func (restartPods) execute(ctx context.Context, e *Effectors, req Request) Outcome {
	w, err := workloadOf(req)
	if err != nil {
		return failed("%v", err)
	}
	if len(req.Record.Objects) == 0 {
		return failed("The ledger record names no pods of %s to evict", w)
	}
	owners := ownerUIDs(req, w)
	var evicted, done, notOurs, problems []string
	for i, name := range req.Record.Objects {
		if err := ctx.Err(); err != nil {
			// Shutting down: what is left waits for the retry of this same record.
			problems = append(problems, fmt.Sprintf("Stopped before evicting %s: %v", strings.Join(req.Record.Objects[i:], ", "), err))
			break
		}
		switch res, msg := e.evictPod(ctx, w.namespace, name, owners, req.Record); res {
		case podEvicted:
			evicted = append(evicted, name)
		case podDone:
			done = append(done, name)
		case podNotOurs:
			notOurs = append(notOurs, name)
		default:
			problems = append(problems, strings.TrimSuffix(msg, "."))
		}
	}

	summary := restartSummary(w, len(req.Record.Objects), evicted, done, notOurs)
	if len(problems) > 0 {
		return failed("%s. %s", strings.Join(problems, "; "), summary)
	}
	return succeeded("%s", summary)
}

// restartSummary says what became of the total pods a restartPods record names.
func restartSummary(w workload, total int, evicted, done, notOurs []string) string {
	summary := fmt.Sprintf("Evicted %d of %d pods of %s", len(evicted), total, w)
	if len(evicted) > 0 {
		summary += " (" + strings.Join(evicted, ", ") + ")"
	}
	if len(done) > 0 {
		summary += fmt.Sprintf("; %d already gone, terminating or replaced (%s)", len(done), strings.Join(done, ", "))
	}
	if len(notOurs) > 0 {
		summary += fmt.Sprintf("; %d no longer belong to %s (%s)", len(notOurs), w, strings.Join(notOurs, ", "))
	}
	return summary
}

// observe reports a restartPods as done once no pod the record names is left: each is
// gone, terminating, or replaced (see recordedPod). A pod from before the intent that
// still runs is not done, even when it no longer belongs to the component (execute would
// skip it): nothing restarted it.
func (restartPods) observe(ctx context.Context, e *Effectors, req Request) (Outcome, bool) {
	w, err := workloadOf(req)
	if err != nil || len(req.Record.Objects) == 0 {
		return Outcome{}, false
	}
	for _, name := range req.Record.Objects {
		if _, gone, err := e.recordedPod(ctx, w.namespace, name, req.Record); err != nil || !gone {
			return Outcome{}, false
		}
	}
	return succeeded("%s", restartSummary(w, len(req.Record.Objects), nil, req.Record.Objects, nil)), true
}

// recordedPod reads a pod a restartPods record names and reports whether the pod the
// intent meant is gone: not found, terminating, or replaced by a pod created after the
// intent under the same name (a StatefulSet recreates its pods so). The record holds
// names, not UIDs, so the creation time is what tells the recorded pod from its
// replacement: a pod created before the intent, or any pod when the record has no time,
// is taken to be the recorded one, whatever its UID. Both timestamps have one-second
// resolution, so a replacement created in the intent's second counts as the recorded pod:
// the doubt goes to "still there".
func (e *Effectors) recordedPod(ctx context.Context, ns, name string, rec *v1alpha1.ActionRecord) (*corev1.Pod, bool, error) {
	pod := &corev1.Pod{}
	if err := e.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pod); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, true, nil
		}
		return nil, false, err
	}
	replaced := !rec.Time.IsZero() && pod.CreationTimestamp.After(rec.Time.Time)
	return pod, pod.DeletionTimestamp != nil || replaced, nil
}

// evictPod evicts one named pod if it still exists, is not terminating, belongs to the
// component and existed when the intent was recorded. It stamps the action id on the pod
// first, so the pod's last state shows which action ended it.
func (e *Effectors) evictPod(ctx context.Context, ns, name string, owners map[types.UID]bool, rec *v1alpha1.ActionRecord) (evictResult, string) {
	pod, gone, err := e.recordedPod(ctx, ns, name, rec)
	switch {
	case err != nil:
		return podFailed, fmt.Sprintf("Could not read pod %s: %v", name, err)
	case gone:
		return podDone, ""
	case !ownedBy(pod, owners):
		return podNotOurs, ""
	}

	logger := log.FromContext(ctx).WithValues("pod", klog.KObj(pod), "actionID", rec.ID)
	logger.Info("Evicting pod")
	return e.stampAndEvict(ctx, logger, pod, rec.ID, name)
}

// stampAndEvict stamps the action id on a pod and evicts it through the eviction API, so
// PodDisruptionBudgets hold, with the pod's UID as a precondition so that a pod that
// replaced it under the same name is never evicted. A pod already gone counts as done;
// a budget's refusal is a result with the budget's words, not an error to retry at once.
// label names the pod in messages.
func (e *Effectors) stampAndEvict(ctx context.Context, logger logr.Logger, pod *corev1.Pod, id, label string) (evictResult, string) {
	if pod.Annotations[v1alpha1.ActionIDAnnotation] != id {
		if err := e.stamp(ctx, pod, id); err != nil {
			if apierrors.IsNotFound(err) {
				return podDone, ""
			}
			return podFailed, fmt.Sprintf("Could not stamp pod %s with the action id: %v", label, err)
		}
	}
	ectx, cancel := context.WithTimeout(ctx, evictionTimeout)
	defer cancel()
	uid := pod.UID
	err := e.Client.SubResource("eviction").Create(ectx, pod, &policyv1.Eviction{
		ObjectMeta:    metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name},
		DeleteOptions: &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}},
	})
	switch {
	case err == nil:
		return podEvicted, ""
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		return podDone, ""
	}
	if budget, text, ok := budgetRefusal(err); ok {
		logger.Info("Eviction refused by a PodDisruptionBudget", "podDisruptionBudget", budget, "reason", text)
		if budget == "" {
			return podFailed, fmt.Sprintf("Eviction of pod %s was refused by a PodDisruptionBudget: %s", label, text)
		}
		return podFailed, fmt.Sprintf("Eviction of pod %s was refused by PodDisruptionBudget %s: %s", label, budget, text)
	}
	return podFailed, fmt.Sprintf("Eviction of pod %s failed: %v", label, err)
}

// ownedBy reports whether the pod's controller is one of owners.
func ownedBy(pod *corev1.Pod, owners map[types.UID]bool) bool {
	ref := metav1.GetControllerOf(pod)
	return ref != nil && owners[ref.UID]
}

// budgetRefusal recognises an eviction refused by a PodDisruptionBudget: a 429 (or, for a
// budget with negative disruptions allowed, a 403) whose causes carry the DisruptionBudget
// type. It returns the budget's name when the server's text names it, and the server's
// text: its message followed by the causes' messages.
func budgetRefusal(err error) (budget, text string, ok bool) {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return "", "", false
	}
	s := status.Status()
	parts := []string{s.Message}
	if s.Details != nil {
		for _, c := range s.Details.Causes {
			if c.Type != policyv1.DisruptionBudgetCause {
				continue
			}
			ok = true
			parts = append(parts, c.Message)
			if budget == "" {
				budget = budgetName(c.Message)
			}
		}
	}
	if !ok {
		return "", "", false
	}
	return budget, strings.Join(parts, " "), true
}

// budgetName reads the budget's name out of a cause message of the eviction subresource,
// all of which start "The disruption budget <name> ...".
func budgetName(msg string) string {
	rest, found := strings.CutPrefix(msg, "The disruption budget ")
	if !found {
		return ""
	}
	name, _, _ := strings.Cut(rest, " ")
	return name
}
