package execute

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/plan"
	"github.com/homeostat-dev/homeostat/internal/rights"
)

func init() { register(KindDrainNode, drainNode{}) }

const (
	// DefaultDrainTimeout is how long a drain keeps trying to evict what it could not
	// when the action sets no timeout.
	DefaultDrainTimeout = 5 * time.Minute
	// DrainRetryInterval is how soon a Pending drain should be executed again: a
	// PodDisruptionBudget that refused an eviction may allow it once a replacement pod
	// is ready, and nothing else wakes the app then. kubectl drain retries as often.
	DrainRetryInterval = 5 * time.Second
	// drainCallBudget bounds one Execute of a drain, so that a node with many pods never
	// holds a reconcile worker for long; what is left waits for the next call.
	drainCallBudget = 20 * time.Second
	// PodNodeNameField is the field a drain lists a node's pods by. Against the API
	// server it is a field selector; a cache needs an index of pods under this name.
	PodNodeNameField = "spec.nodeName"
)

// drainNode cordons the nodes that host a component's unhealthy pods, then evicts every
// pod on them through the eviction API, so PodDisruptionBudgets are respected, and
// their controllers recreate them on other nodes.
//
// It never waits in a reconcile. Execute is idempotent and incremental, like runJob's:
// each call cordons (once; the stamp says it is done), lists the node's pods and evicts
// what it can within drainCallBudget, and reports Pending while pods are left that a
// budget refused or that the call had no time for. The controller keeps the record
// Pending and calls Execute again at DrainRetryAt; once nothing is left the outcome is
// Succeeded, and once the action's timeout (default 5m) has passed since the intent was
// recorded it is Failed, naming what is left. A budget's refusal is recorded, never
// retried within a call.
//
// A pod counts as moved once it is terminating: its controller creates the replacement
// at once, and on a NotReady node no kubelet may ever confirm the deletion. Left alone
// are DaemonSet pods (they tolerate the cordon and would come straight back), static
// pods (the kubelet's, not the API server's), pods that have finished, and pods that no
// controller would recreate, which are named in the outcome instead.
type drainNode struct{}

func (drainNode) prepare(req Request) (Prepared, error) {
	return prepareNodes(req, req.Action.DrainNode, "drain", true)
}

// accesses are the cordon of each node the record names, the list of their pods and
// the eviction of those pods, which may belong to any namespace: a drain is the
// cluster admin's to grant.
func (drainNode) accesses(req Request) ([]rights.Access, error) {
	return append(nodePatches(req.Record.Objects),
		rights.Access{Verb: "list", Resource: "pods"},
		rights.Access{Verb: "create", Resource: "pods", Subresource: "eviction"}), nil
}

// drainTimeout is the action's timeout, or DefaultDrainTimeout.
func drainTimeout(a *v1alpha1.NodeAction) time.Duration {
	if a != nil && a.Timeout != nil && a.Timeout.Duration > 0 {
		return a.Timeout.Duration
	}
	return DefaultDrainTimeout
}

// DrainDeadline is when a Pending drain turns Failed by itself: the record's time plus
// the action's timeout. It is zero for other actions and for a record without a time.
func DrainDeadline(req Request) time.Time {
	if req.Action.DrainNode == nil || req.Record == nil || req.Record.Time.IsZero() {
		return time.Time{}
	}
	return req.Record.Time.Add(drainTimeout(req.Action.DrainNode))
}

// DrainRetryAt is when the controller should execute a drain it left Pending at now
// again: after DrainRetryInterval, or at the deadline if that comes first. It is zero
// for other actions.
func DrainRetryAt(req Request, now time.Time) time.Time {
	deadline := DrainDeadline(req)
	if deadline.IsZero() {
		return time.Time{}
	}
	next := now.Add(DrainRetryInterval)
	if deadline.Before(next) {
		return deadline
	}
	return next
}

// drainClass is what a drain does with one pod on the node.
type drainClass int

const (
	drainEvict drainClass = iota
	// drainTerminating: already on its way out; it counts as moved.
	drainTerminating
	// drainFinished: Succeeded or Failed; it holds nothing, and its owner cleans it up.
	drainFinished
	// drainDaemonSet: it tolerates the cordon and its controller would put it back.
	drainDaemonSet
	// drainStatic: a mirror of a static pod, which only the kubelet can remove.
	drainStatic
	// drainUnmanaged: no controller would recreate it elsewhere, so evicting it would
	// only destroy it. It is left on the node and named in the outcome.
	drainUnmanaged
)

// classifyForDrain says what a drain does with a pod, as kubectl drain does by default.
func classifyForDrain(p *corev1.Pod) drainClass {
	if _, ok := p.Annotations[corev1.MirrorPodAnnotationKey]; ok {
		return drainStatic
	}
	if p.DeletionTimestamp != nil {
		return drainTerminating
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return drainFinished
	}
	ref := metav1.GetControllerOf(p)
	switch {
	case ref == nil:
		return drainUnmanaged
	case ref.Kind == "DaemonSet" && ref.APIVersion == "apps/v1":
		return drainDaemonSet
	}
	return drainEvict
}

// nodeDrain is what one Execute did on one node.
type nodeDrain struct {
	name    string
	gone    bool
	evicted []string // evicted by this call
	moved   []string // already terminating or gone
	left    []string // not to be evicted: no controller would recreate them
	skipped int      // DaemonSet, static and finished pods
	// waiting counts the pods still to evict; stuck says the node could not be
	// cordoned or its pods listed, so what is on it is not known.
	waiting int
	stuck   bool
	// problems say why: budget refusals, errors, no time left in this call.
	problems []string
}

func (d nodeDrain) done() bool { return d.gone || (d.waiting == 0 && !d.stuck) }

func (drainNode) execute(ctx context.Context, e *Effectors, req Request) Outcome {
	rec := req.Record
	if len(rec.Objects) == 0 {
		return failed("The ledger record names no nodes to drain")
	}
	timeout := drainTimeout(req.Action.DrainNode)
	deadline := e.recordTime(rec).Add(timeout)
	cctx, cancel := context.WithTimeout(ctx, drainCallBudget)
	defer cancel()
	drains := make([]nodeDrain, 0, len(rec.Objects))
	for _, name := range rec.Objects {
		drains = append(drains, e.drainOne(cctx, name, stampOf(req)))
	}
	past := e.Clock != nil && !e.Clock.Now().Before(deadline)
	return drainOutcome(drains, rec.Target, timeout, deadline, past)
}

// nodeApp is what a node action stamps on the nodes it cordons as
// plan.NodeAppAnnotation: the app's namespace/name. The node guard counts a cordoned
// node against the maxNodes of the app it names, from the node itself, so the count
// never depends on the app's bounded history.
func nodeApp(app *v1alpha1.AutonomicApp) string {
	if app == nil {
		return ""
	}
	return plan.AppKey(app.Namespace, app.Name)
}

// drainOne cordons one node, stamped with the action id, the app and the action's time,
// and evicts what it can of its pods.
func (e *Effectors) drainOne(ctx context.Context, name string, st nodeStamp) nodeDrain {
	id := st.id
	d := nodeDrain{name: name}
	if err := ctx.Err(); err != nil {
		d.problems = append(d.problems, fmt.Sprintf("Stopped before draining Node/%s: %v", name, err))
		d.stuck = true
		return d
	}
	switch res, msg := e.cordon(ctx, name, st); res {
	case nodeGone:
		d.gone = true
		return d
	case nodeCordonFailed:
		// Evicting from a node that is not cordoned would let the replacements land on it.
		d.problems = append(d.problems, strings.TrimSuffix(msg, "."))
		d.stuck = true
		return d
	}
	pods, err := e.podsOnNode(ctx, name)
	if err != nil {
		d.problems = append(d.problems, fmt.Sprintf("Could not list the pods of Node/%s: %v", name, err))
		d.stuck = true
		return d
	}
	for i := range pods {
		p := &pods[i]
		if !d.evicts(p) {
			continue
		}
		key := p.Namespace + "/" + p.Name
		if err := ctx.Err(); err != nil {
			d.waiting++
			if d.waiting == 1 {
				d.problems = append(d.problems, fmt.Sprintf("Stopped before evicting every pod of Node/%s: %v", name, err))
			}
			continue
		}
		switch res, msg := e.evictForDrain(ctx, p, id); res {
		case podEvicted:
			d.evicted = append(d.evicted, key)
		case podDone:
			d.moved = append(d.moved, key)
		default:
			d.waiting++
			d.problems = append(d.problems, strings.TrimSuffix(msg, "."))
		}
	}
	return d
}

// podsOnNode lists the pods bound to a node, by namespace and name.
func (e *Effectors) podsOnNode(ctx context.Context, name string) ([]corev1.Pod, error) {
	pods := &corev1.PodList{}
	if err := e.Client.List(ctx, pods, client.MatchingFields{PodNodeNameField: name}); err != nil {
		return nil, err
	}
	// A cache without the index would hand out every pod.
	onNode := slices.DeleteFunc(pods.Items, func(p corev1.Pod) bool { return p.Spec.NodeName != name })
	slices.SortFunc(onNode, func(a, b corev1.Pod) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return onNode, nil
}

// evicts reports whether the drain evicts a pod of the node (classifyForDrain), and
// notes in d a pod it leaves: as moved, as left for want of a controller, or as skipped.
func (d *nodeDrain) evicts(p *corev1.Pod) bool {
	key := p.Namespace + "/" + p.Name
	switch classifyForDrain(p) {
	case drainEvict:
		return true
	case drainTerminating:
		d.moved = append(d.moved, key)
	case drainUnmanaged:
		d.left = append(d.left, key)
	default:
		d.skipped++
	}
	return false
}

// observe reports a drain as done once every node the record names carries the action's
// cordon and holds no pod the drain would evict (classifyForDrain), with the outcome
// Execute would report then. A node that is gone holds no effect to see; a pod still to
// evict, such as one a PodDisruptionBudget refused, means the drain is in progress.
func (drainNode) observe(ctx context.Context, e *Effectors, req Request) (Outcome, bool) {
	rec := req.Record
	if !e.observeCordons(ctx, req) {
		return Outcome{}, false
	}
	drains := make([]nodeDrain, 0, len(rec.Objects))
	for _, name := range rec.Objects {
		d := nodeDrain{name: name}
		pods, err := e.podsOnNode(ctx, name)
		if err != nil {
			return Outcome{}, false
		}
		for i := range pods {
			if d.evicts(&pods[i]) {
				return Outcome{}, false
			}
		}
		drains = append(drains, d)
	}
	timeout := drainTimeout(req.Action.DrainNode)
	return drainOutcome(drains, rec.Target, timeout, e.recordTime(rec).Add(timeout), false), true
}

// evictForDrain stamps the action id on a pod of a node being drained and evicts it,
// with the pod's UID as a precondition so that a pod that replaced it under the same
// name is never evicted.
func (e *Effectors) evictForDrain(ctx context.Context, pod *corev1.Pod, id string) (evictResult, string) {
	key := pod.Namespace + "/" + pod.Name
	logger := log.FromContext(ctx).WithValues("pod", klog.KObj(pod), "node", pod.Spec.NodeName, "actionID", id)
	logger.Info("Evicting pod from a node being drained")
	return e.stampAndEvict(ctx, logger, pod, id, key)
}

// drainOutcome turns what one Execute did into the action's outcome: Succeeded when no
// pod is left to evict, Pending while some are and the deadline has not passed, Failed
// after. Problems come first, so that a truncated message still says what blocks.
func drainOutcome(drains []nodeDrain, target string, timeout time.Duration, deadline time.Time, past bool) Outcome {
	var problems, details, stuck []string
	waiting := 0
	for _, d := range drains {
		problems = append(problems, d.problems...)
		waiting += d.waiting
		if d.stuck {
			stuck = append(stuck, "Node/"+d.name)
		}
		if len(drains) == 1 {
			details = append(details, d.details())
		} else {
			details = append(details, "Node/"+d.name+": "+d.details())
		}
	}
	detail := strings.Join(details, "; ")
	if !slices.ContainsFunc(drains, func(d nodeDrain) bool { return !d.done() }) {
		return succeeded("Drained %s: %s", target, detail)
	}
	var left []string
	if waiting > 0 {
		left = append(left, fmt.Sprintf("%d %s left to evict", waiting, podNoun(waiting)))
	}
	if len(stuck) > 0 {
		left = append(left, namesOf(stuck)+" not cordoned or listed")
	}
	if past {
		return failed("The drain of %s did not finish within %s, %s: %s. %s",
			target, timeout, strings.Join(left, ", "), someOf(problems, 3, "; "), sentence(detail))
	}
	return Outcome{Result: v1alpha1.ResultPending, Message: sentence(fmt.Sprintf("Draining %s until %s, %s: %s. %s",
		target, deadline.UTC().Format(time.RFC3339), strings.Join(left, ", "), someOf(problems, 3, "; "), sentence(detail)))}
}

// details says what the drain of one node did, for the outcome's message.
func (d nodeDrain) details() string {
	if d.gone {
		return "the node no longer exists"
	}
	var parts []string
	if len(d.evicted) > 0 {
		parts = append(parts, fmt.Sprintf("evicted %d %s (%s)", len(d.evicted), podNoun(len(d.evicted)), someOf(d.evicted, 5, ", ")))
	}
	if len(d.moved) > 0 {
		parts = append(parts, fmt.Sprintf("%d already terminating or gone (%s)", len(d.moved), someOf(d.moved, 5, ", ")))
	}
	if len(d.left) > 0 {
		parts = append(parts, fmt.Sprintf("left %d %s that no controller would recreate (%s)", len(d.left), podNoun(len(d.left)), someOf(d.left, 5, ", ")))
	}
	if d.skipped > 0 {
		parts = append(parts, fmt.Sprintf("skipped %d DaemonSet, static or finished %s", d.skipped, podNoun(d.skipped)))
	}
	switch {
	case len(parts) > 0:
		return strings.Join(parts, ", ")
	case d.stuck || d.waiting > 0:
		return "nothing evicted yet"
	}
	return "no pod to evict"
}

// someOf joins at most n items with sep, then says how many more there are.
func someOf(items []string, n int, sep string) string {
	if len(items) <= n {
		return strings.Join(items, sep)
	}
	return fmt.Sprintf("%s%sand %d more", strings.Join(items[:n], sep), sep, len(items)-n)
}

func podNoun(n int) string {
	if n == 1 {
		return "pod"
	}
	return "pods"
}
