package execute

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"unicode"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/egress"
	"github.com/homeostat-dev/homeostat/internal/text"
)

// Effectors carries out actions against the API server. It holds no state of its own
// apart from the webhook POSTs its runner has in flight, and is safe for concurrent use
// by several reconciles.
type Effectors struct {
	// Client writes to the API server. Its reads may come from the informer cache: every
	// effector tolerates a stale read, because what it writes is fixed by the ledger
	// record and a repeated write changes nothing.
	Client client.Client
	// Recorder emits the Events of the Execute stage on the app. It is the events.k8s.io
	// recorder a controller-runtime manager returns from GetEventRecorder. Nil drops them.
	Recorder events.EventRecorder
	// Clock is the package's only clock; nothing here calls time.Now(). Times an effector
	// writes come from the ledger record, so a retry writes the same bytes.
	Clock clock.PassiveClock
	// Egress is the admin's policy for the requests of webhook actions: the addresses
	// they may reach, the most of a body they read and the longest an attempt may take.
	// Nil means egress.Default(), which refuses loopback among others.
	Egress *egress.Policy
	// MaxNodesPerAction is the cluster admin's ceiling on a node action's maxNodes
	// (--max-nodes-per-action): Prepare takes at most this many nodes, whatever the
	// action asks. 0 is no ceiling.
	MaxNodesPerAction int32
	// ManagerNamespace is the manager's own namespace, where the webhooks of
	// ClusterHealingPolicies read their header Secrets; "" when it is not known.
	ManagerNamespace string
	// Webhooks sends the POSTs of webhook actions in the background, so that Execute
	// never waits on a receiver. Nil: one of the effectors' own, with the defaults and no
	// Notify (the controller's recheck then collects the outcome).
	Webhooks *WebhookRunner

	ownWebhooks sync.Once
}

// webhooks is the runner of webhook POSTs.
func (e *Effectors) webhooks() *WebhookRunner {
	e.ownWebhooks.Do(func() {
		if e.Webhooks == nil {
			e.Webhooks = &WebhookRunner{}
		}
	})
	return e.Webhooks
}

// egress is the policy webhook actions obey.
func (e *Effectors) egress() *egress.Policy {
	if e.Egress == nil {
		return egress.Default()
	}
	return e.Egress
}

// Action kinds: the JSON names of the members of v1alpha1.Action, as recorded in
// ActionRecord.Action.
const (
	KindRestartPods    = "restartPods"
	KindRolloutRestart = "rolloutRestart"
	KindRollback       = "rollback"
	KindScale          = "scale"
	KindFailover       = "failover"
	KindCordonNode     = "cordonNode"
	KindDrainNode      = "drainNode"
	KindRunJob         = "runJob"
	KindWebhook        = "webhook"
	KindNotify         = "notify"
)

// Event reasons of the Execute stage.
const (
	// ReasonActionSucceeded is the Normal Event of an action that took effect.
	ReasonActionSucceeded = "ActionSucceeded"
	// ReasonActionFailed is the Warning Event of an action that was refused or errored.
	ReasonActionFailed = "ActionFailed"
	// ReasonActionForbidden is the Warning Event of an action the tenant's rights refused
	// before anything was changed.
	ReasonActionForbidden = "ActionForbidden"
	// ReasonActionProgressing is the Normal Event of an action that has started and not
	// finished, such as a runJob whose Job runs.
	ReasonActionProgressing = "ActionProgressing"
	// ReasonNeedsAttention is the Warning Event of a notify action: a human is needed.
	ReasonNeedsAttention = "NeedsAttention"
)

// maxMessage bounds, in bytes, ActionRecord.Message (1024 characters) and an Event's note
// (1024 bytes).
const maxMessage = 1024

// Kind returns the name of the action's set member; see v1alpha1.Action.Kind.
func Kind(a v1alpha1.Action) string { return a.Kind() }

// effector carries out one kind of action. Each lives in its own file and registers
// itself from init, so adding an action is adding a file.
type effector interface {
	// prepare fixes the action's targets from the request alone; it does no I/O.
	prepare(req Request) (Prepared, error)
	// execute carries out the recorded intent, idempotently.
	execute(ctx context.Context, e *Effectors, req Request) Outcome
}

// observer is implemented by the effectors whose effect can be read back from the
// cluster, next to effector. A kind without it cannot tell, and Observe says so.
type observer interface {
	// observe reports, reading only, whether the recorded intent's effect is complete on
	// its target, and then the outcome Execute would report if it ran now. It finds the
	// target with the helpers execute uses.
	observe(ctx context.Context, e *Effectors, req Request) (Outcome, bool)
}

var registry = map[string]effector{}

// register adds the effector of a kind. It is called from init only.
func register(kind string, f effector) {
	if _, dup := registry[kind]; dup {
		panic("execute: effector " + kind + " registered twice")
	}
	registry[kind] = f
}

// Prepare fixes the concrete targets of an action before its intent is written to the
// ledger: the pods to evict, the revision to roll back to, the replica count to set. It
// reads only the request (what the monitor gathered), never the API server. An error
// says in a sentence why the action cannot be taken now; the planner records it.
func (e *Effectors) Prepare(req Request) (Prepared, error) {
	kind := Kind(req.Action)
	if kind == "" {
		return Prepared{}, errors.New("the action sets none of its members")
	}
	f, ok := registry[kind]
	if !ok {
		return Prepared{Kind: kind}, fmt.Errorf("action %s is not supported yet", kind)
	}
	p, err := f.prepare(e.withNodeCeiling(req))
	p.Kind = kind
	if err != nil {
		return p, err
	}
	return declare(f, req, p)
}

// Execute carries out an action whose intent is already in the ledger. It is idempotent:
// run twice with the same Record it changes things once. It never returns an error: a
// refusal or a failure is an Outcome with Result Failed and a message that says what
// happened. Every call emits an Event on the app naming the action, target and id.
func (e *Effectors) Execute(ctx context.Context, req Request) Outcome {
	kind := Kind(req.Action)
	out := e.execute(ctx, kind, req)
	out.Message = text.Truncate(out.Message, maxMessage)
	e.emit(req, kind, out)
	return out
}

func (e *Effectors) execute(ctx context.Context, kind string, req Request) Outcome {
	if kind == "" {
		return failed("The action sets none of its members, so nothing was done")
	}
	if req.Record == nil || req.Record.ID == "" {
		return failed("Action %s has no ledger record with an id, so it was not carried out", kind)
	}
	f, ok := registry[kind]
	if !ok {
		return failed("Action %s is not supported yet", kind)
	}
	return f.execute(ctx, e, req)
}

// Observe reports, without changing anything, whether the recorded intent's effect is
// already complete on its target: ok is true with the real Outcome (Succeeded or Failed)
// when it is; ok is false when the effect is absent, partial or still in progress, or
// when the kind cannot tell.
//
// The controller asks it of an intent it finds Pending in the ledger after a restart
// and that a guard now holds: an effect already there is recorded as its outcome, any
// other intent is cancelled. It reads through Client (possibly from the cache), writes
// nothing and emits no Event. A request without a ledger record, an action without an
// effector and a target that is not found are all ok=false.
func (e *Effectors) Observe(ctx context.Context, req Request) (Outcome, bool) {
	if req.Record == nil || req.Record.ID == "" {
		return Outcome{}, false
	}
	o, ok := registry[Kind(req.Action)].(observer)
	if !ok {
		return Outcome{}, false
	}
	out, done := o.observe(ctx, e, req)
	if !done || (out.Result != v1alpha1.ResultSucceeded && out.Result != v1alpha1.ResultFailed) {
		return Outcome{}, false
	}
	out.Message = text.Truncate(out.Message, maxMessage)
	return out, true
}

// Stop ends what an action whose intent is cancelled still runs in the background: the
// POST of a webhook that waits for a sender is never sent, and one in flight is
// cancelled with its retries. For other kinds it does nothing: their effects are in the
// cluster, where Observe reads them.
func (e *Effectors) Stop(req Request) {
	if Kind(req.Action) != KindWebhook || req.App == nil || req.Record == nil {
		return
	}
	e.webhooks().cancel(webhookKey(req))
}

// emit records the Event of an executed action on the app, with the workload as the
// related object.
func (e *Effectors) emit(req Request, kind string, out Outcome) {
	if e.Recorder == nil || req.App == nil {
		return
	}
	eventType, reason := corev1.EventTypeNormal, ReasonActionSucceeded
	switch out.Result {
	case v1alpha1.ResultFailed:
		eventType, reason = corev1.EventTypeWarning, ReasonActionFailed
	case v1alpha1.ResultForbidden:
		eventType, reason = corev1.EventTypeWarning, ReasonActionForbidden
	case v1alpha1.ResultPending:
		if req.Record != nil && req.Record.Message == out.Message {
			return // the same progress, reported when it was first seen
		}
		reason = ReasonActionProgressing
	}
	var id, target string
	if req.Record != nil {
		id, target = req.Record.ID, req.Record.Target
	}
	what := kind
	if target != "" {
		what += " on " + target
	}
	suffix := fmt.Sprintf(" (%s, action %s)", what, id)
	note := text.Truncate(out.Message, maxMessage-len(suffix)) + suffix
	var related *corev1.ObjectReference
	if req.Target != nil && req.Target.Workload != nil && req.Target.Ref != nil {
		w := req.Target.Workload
		related = &corev1.ObjectReference{
			APIVersion: req.Target.Ref.APIVersion, Kind: req.Target.Ref.Kind,
			Namespace: w.GetNamespace(), Name: w.GetName(), UID: w.GetUID(),
		}
	}
	if related != nil {
		e.Recorder.Eventf(req.App, related, eventType, reason, kind, "%s", note)
		return
	}
	e.Recorder.Eventf(req.App, nil, eventType, reason, kind, "%s", note)
}

// patch sends one patch of obj to the API server as the homeostat field manager and
// decodes the result into obj. It is the one write path of the effectors, apart from the
// eviction and scale subresources.
func (e *Effectors) patch(ctx context.Context, obj client.Object, pt types.PatchType, body []byte) error {
	return e.Client.Patch(ctx, obj, client.RawPatch(pt, body), client.FieldOwner(v1alpha1.FieldManager))
}

// stamp merge-patches the action id annotation onto obj's metadata, changing nothing else.
func (e *Effectors) stamp(ctx context.Context, obj client.Object, id string) error {
	return e.patch(ctx, obj, types.MergePatchType, mustJSON(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{v1alpha1.ActionIDAnnotation: id}},
	}))
}

// stampedWith reports whether obj carries the action id annotation with id, which says
// that the action changed it.
func stampedWith(obj client.Object, id string) bool {
	return obj.GetAnnotations()[v1alpha1.ActionIDAnnotation] == id
}

func succeeded(format string, args ...any) Outcome {
	return Outcome{Result: v1alpha1.ResultSucceeded, Message: sentence(fmt.Sprintf(format, args...))}
}

func failed(format string, args ...any) Outcome {
	return Outcome{Result: v1alpha1.ResultFailed, Message: sentence(fmt.Sprintf(format, args...))}
}

// sentence starts s with a capital letter, so that an error text (lowercase by Go's
// convention) reads as a message.
func sentence(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}
