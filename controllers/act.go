package controllers

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/execute"
	"github.com/homeostat-dev/homeostat/internal/knowledge"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/plan"
	"github.com/homeostat-dev/homeostat/internal/rights"
	"github.com/homeostat-dev/homeostat/internal/text"
)

// The one act path. Every policy kind's planner returns a plan.Decision, and apply
// carries each out the same way:
//
//	outcomes  -> the verdicts on earlier actions, written into their records
//	intent    -> targets, Prepare, guards, the tenant's rights -> records (Pending) and
//	             the acted policy status, written to status -> effectors -> results ->
//	             plan.Completed
//
// resumePending finishes the intents an earlier run left Pending through the same
// guards (plan.CheckResume) and the same completion, so a restart changes nothing about
// how an action ends.

// runPolicies decides each policy in spec order and carries out what it decides.
func (r *AppReconciler) runPolicies(ctx context.Context, s *session, active map[string]bool) error {
	app := s.app
	prev := map[string]v1alpha1.PolicyStatus{}
	for _, p := range app.Status.Policies {
		prev[p.Name] = p
	}
	out := make([]v1alpha1.PolicyStatus, 0, len(s.view.Spec.Policies))
	for _, pol := range s.view.Spec.Policies {
		old := prev[pol.Name]
		d, err := r.decide(ctx, s, pol, old, active)
		if err != nil {
			return err
		}
		st, ran, err := r.apply(ctx, s, pol.Name, old, d)
		if err != nil {
			return err
		}
		if ran && pol.Autoscale != nil {
			r.rememberScale(s, pol)
		}
		st = bounded(st, s.source(pol.Name))
		if newDecision(old, st) {
			r.Metrics.Decisions.WithLabelValues(decisionLabel(st)).Inc()
		}
		out = append(out, st)
		// Later policies see this one's state (and its ledger entries) in the same pass.
		app.Status.Policies = knowledge.WithPolicy(app.Status.Policies, st)
	}
	app.Status.Policies = out
	return nil
}

// decide gathers one policy's input and asks its planner.
func (r *AppReconciler) decide(ctx context.Context, s *session, pol v1alpha1.Policy, old v1alpha1.PolicyStatus, active map[string]bool) (plan.Decision, error) {
	switch {
	case pol.Remediate != nil:
		return plan.Remediate(plan.RemediationInput{Now: s.now, Policy: pol, State: old, Active: active}), nil
	case pol.Autoscale != nil:
		return r.decideAutoscale(ctx, s, pol, old)
	case pol.Failover != nil:
		return r.decideFailover(ctx, s, pol, old)
	}
	return plan.Decision{Status: old}, nil
}

func (s *session) source(policy string) string {
	return s.merged.Sources[plan.EntryPolicy+"/"+policy]
}

// bounded is a policy's status as status stores it: with its source, and its message
// cut to the API's bound (plan's messages are whole sentences of any length).
func bounded(st v1alpha1.PolicyStatus, source string) v1alpha1.PolicyStatus {
	st.Source = source
	st.Message = text.Truncate(st.Message, 1024)
	if a := st.Autoscale; a != nil {
		for i := range a.Metrics {
			a.Metrics[i].Message = text.Truncate(a.Metrics[i].Message, 512)
		}
	}
	return st
}

// newDecision says whether a policy's status after a pass is a new decision, to be
// counted once: its state or reason changed, or it recorded a new action. A ladder that
// escalates from one step to the next, or an autoscaler that scales again, stays Acting
// for the same reason, and each of those actions is a decision of its own.
func newDecision(old, st v1alpha1.PolicyStatus) bool {
	return st.State != old.State || st.Reason != old.Reason || (st.LastAction != "" && st.LastAction != old.LastAction)
}

func decisionLabel(st v1alpha1.PolicyStatus) string {
	switch st.State {
	case v1alpha1.PolicyHeld:
		return "Held:" + st.Reason
	case v1alpha1.PolicyGaveUp:
		return st.Reason
	case v1alpha1.PolicyActing:
		return "Act"
	case v1alpha1.PolicyWaiting:
		return "Wait"
	}
	return st.Reason
}

// apply carries out one policy's decision and returns the policy's status, and whether
// an action was carried out (not held, not only recorded).
func (r *AppReconciler) apply(ctx context.Context, s *session, policy string, old v1alpha1.PolicyStatus, d plan.Decision) (v1alpha1.PolicyStatus, bool, error) {
	s.requeueAt(d.NextCheck)
	r.judge(s, d.Outcomes)
	if d.Intent == nil {
		r.explain(s, old, d.Status, d.Event)
		return d.Status, false, nil
	}
	if len(knowledge.Pending(&s.app.Status)) > 0 {
		// An earlier intent could not be finished this pass; never stack another on it.
		return old, false, nil
	}
	res, err := r.act(ctx, s, policy, d.Intent)
	if err != nil {
		return old, false, err
	}
	if res.held.Held {
		st := plan.HeldStatus(d.Intent, res.held)
		s.requeueAt(res.held.Until)
		r.explain(s, old, st, plan.HeldEvent(policy, st))
		return st, false, nil
	}
	st := plan.ActedStatus(d.Intent, res.lastID, s.now)
	if rec := knowledge.Find(&s.app.Status, res.lastID); rec != nil && rec.Result != v1alpha1.ResultPending {
		var next time.Time
		var ev *plan.Event
		st, next, ev = plan.Completed(st, *rec, d.Intent.Action, d.Intent.Change, s.now)
		s.requeueAt(next)
		r.explain(s, old, st, ev)
	}
	if d.Intent.RecheckAfter > 0 {
		// A ladder step's timeout runs from now: when it ends the ladder escalates,
		// whether or not anything else brings the app back (a notify or webhook step
		// changes nothing that is watched; a polled sensor may hold steady).
		s.requeueAt(s.now.Add(d.Intent.RecheckAfter))
	}
	return st, !res.recordOnly, nil
}

// explain emits a policy's Plan Event when its state or reason changed.
func (r *AppReconciler) explain(s *session, old, st v1alpha1.PolicyStatus, ev *plan.Event) {
	if ev == nil || (st.State == old.State && st.Reason == old.Reason) {
		return
	}
	typ := corev1.EventTypeNormal
	if ev.Warning {
		typ = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(s.app, nil, typ, ev.Reason, "Plan", "%s", ev.Message)
}

// judge writes the planners' verdicts into the records they judge, with an Event per
// verdict and the outcome metric per record.
func (r *AppReconciler) judge(s *session, outcomes []plan.Outcome) {
	for _, o := range outcomes {
		recs := knowledge.Judge(&s.app.Status, o.Policy, o.Step, o.Since, o.Outcome, s.now)
		if len(recs) == 0 {
			continue
		}
		for _, rec := range recs {
			r.Metrics.ActionOutcomes.WithLabelValues(rec.Action, string(rec.Outcome)).Inc()
		}
		typ := corev1.EventTypeNormal
		if o.Outcome == v1alpha1.OutcomeIneffective {
			typ = corev1.EventTypeWarning
		}
		rec := recs[0]
		who := fmt.Sprintf("Policy %s", o.Policy)
		if rec.Step > 0 {
			who = fmt.Sprintf("Policy %s step %d", o.Policy, rec.Step)
		}
		r.Recorder.Eventf(s.app, nil, typ, knowledge.OutcomeEventReason(o.Outcome), rec.Action, "%s: %s (action %s) is %s: %s",
			who, rec.Action, rec.ID, knowledge.OutcomeWord(o.Outcome), o.Message)
	}
}

// actResult says what act did.
type actResult struct {
	// held is set when a guard held the action back; nothing was recorded.
	held plan.Verdict
	// lastID is the id of the last record written.
	lastID string
	// recordOnly is true when the action was only recorded: in DryRun, or refused by
	// the tenant's rights (Forbidden).
	recordOnly bool
}

// preparedTarget is one target of a decided action with what Prepare fixed for it, and
// the id its record will have (fixed before Prepare, so an effector can name what it
// creates after it).
type preparedTarget struct {
	target *monitor.Component
	p      execute.Prepared
	id     string
}

// act carries out one intent under the ledger's rules: it resolves the targets (a
// component, or each component for "*"), fixes each target's objects (Prepare), checks
// the guards and then the tenant's rights, records one intent per target and writes them
// to status, with the policy's acted status, before anything changes, then runs the
// effectors and records their results. In DryRun the records are written as Skipped and
// nothing runs. An action the tenant's rights refuse is recorded once as Forbidden, and
// nothing runs.
func (r *AppReconciler) act(ctx context.Context, s *session, policy string, in *plan.Intent) (actResult, error) {
	targets := s.targets(in.Action)
	if in.Change != nil {
		targets = []*monitor.Component{s.component(in.Change.Component)}
	}
	var ready []preparedTarget
	var firstErr error
	var refused *refusal
	for _, t := range targets {
		// The id is fixed before Prepare, so an effector can name what it will create
		// after it (runJob's Job) in the record's target and objects.
		id := knowledge.NewID(policy, s.now)
		req := s.request(policy, in.Action, t, &v1alpha1.ActionRecord{ID: id, Time: metav1.NewTime(s.now)})
		var p execute.Prepared
		var err error
		if c := in.Change; c != nil {
			p, err = r.Effectors.PrepareFailover(req, execute.FailoverChange{Phase: c.Phase, Service: c.Service, From: c.From, Replicas: c.Replicas})
		} else {
			p, err = r.Effectors.Prepare(req)
		}
		if f, ok := rights.IsForbidden(err); ok && refused == nil {
			// A rule of the tenant's rights refuses the action as decided (runJob's Job
			// would run as another ServiceAccount): the guards speak first, then it is
			// recorded as Forbidden.
			refused = &refusal{target: t, id: id, err: f}
		}
		if err != nil {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		ready = append(ready, preparedTarget{target: t, p: p, id: id})
	}
	disruptive := slices.ContainsFunc(ready, func(p preparedTarget) bool { return p.p.Disruptive })
	g := r.guardInput(s)
	if in.SkipCooldown {
		g.Cooldown = 0
	}
	verdict := plan.CheckGuards(g, disruptive, s.now)
	if verdict.Held {
		return actResult{held: verdict}, nil
	}
	if na := nodeAction(in.Action); na != nil && len(ready) > 0 {
		var candidates []string
		for _, p := range ready {
			candidates = append(candidates, p.p.Objects...)
		}
		v, err := r.nodeGuard(ctx, s, policy, na, candidates)
		if err != nil {
			return actResult{}, err
		}
		if v.Held {
			return actResult{held: v}, nil
		}
	}
	if v := recentlyForbidden(s, policy, in, targets); v.Held {
		return actResult{held: v}, nil
	}
	if refused == nil {
		refused = r.authorize(ctx, s, ready)
	}
	if refused != nil {
		return r.forbid(s, policy, in, verdict, *refused), nil
	}
	return r.carryOut(ctx, s, policy, in, verdict, ready, firstErr)
}

// recentlyForbidden holds an intent the tenant's rights refused a moment ago (see
// plan.CheckForbidden), so that a policy that decides the same action on every pass (an
// autoscaler) records the refusal once a plan.ForbiddenRetryDelay, not every pass.
func recentlyForbidden(s *session, policy string, in *plan.Intent, targets []*monitor.Component) plan.Verdict {
	if s.subject == nil {
		return plan.Verdict{}
	}
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = componentName(t)
	}
	return plan.CheckForbidden(knowledge.LastOf(&s.app.Status, policy), plan.ActionName(in.Action), in.Step, names, s.now)
}

// refusal is an action the tenant's rights refuse, with the target it was refused on,
// what Prepare fixed for it (if it could) and the id its record was to have.
type refusal struct {
	target *monitor.Component
	p      execute.Prepared
	id     string
	err    *rights.Forbidden
}

// authorize asks whether the app's ServiceAccount may make every access of every
// prepared target, target by target, and returns the first refusal, or nil when all
// are allowed or the app acts as the manager (no ServiceAccount). An authorizer that
// cannot answer refuses.
func (r *AppReconciler) authorize(ctx context.Context, s *session, ready []preparedTarget) *refusal {
	if s.subject == nil {
		return nil
	}
	for _, p := range ready {
		if err := r.Rights.Check(ctx, *s.subject, p.p.Accesses...); err != nil {
			f, ok := rights.IsForbidden(err)
			if !ok {
				f = &rights.Forbidden{Subject: *s.subject, Err: err}
			}
			return &refusal{target: p.target, p: p.p, id: p.id, err: f}
		}
	}
	return nil
}

// forbid records an action the tenant's rights refused: one record, Forbidden, with the
// permission that is missing and the rule that grants it, a Warning Event, and nothing
// carried out. The policy goes on as after a failed action: a ladder escalates when the
// step's timeout ends, a failover tries again after its retry delay.
func (r *AppReconciler) forbid(s *session, policy string, in *plan.Intent, verdict plan.Verdict, ref refusal) actResult {
	rec := newRecord(s, policy, in, verdict, componentName(ref.target))
	rec.ID = cmp.Or(ref.id, rec.ID)
	rec.Target, rec.Objects = ref.p.Target, ref.p.Objects
	rec.Failover = cmp.Or(ref.p.Failover, rec.Failover)
	msg := "Refused by the tenant's rights, nothing was done: " + ref.err.Error() + "."
	rec.Result, rec.Message, rec.FinishedAt = v1alpha1.ResultForbidden, text.Truncate(msg, 1024), &rec.Time
	knowledge.Record(&s.app.Status, rec)
	r.finished(knowledge.Find(&s.app.Status, rec.ID))
	r.Recorder.Eventf(s.app, nil, corev1.EventTypeWarning, execute.ReasonActionForbidden, rec.Action, "%s: %s",
		actor(policy, in.Step), text.Truncate(msg, 900))
	return actResult{lastID: rec.ID, recordOnly: true}
}

// actor names a policy, and its step, in messages: "Policy heal step 2".
func actor(policy string, step int32) string {
	if step > 0 {
		return fmt.Sprintf("Policy %s step %d", policy, step)
	}
	return fmt.Sprintf("Policy %s", policy)
}

// newRecord is a Pending record of the intent for a component, as carryOut writes it
// before the effector runs.
func newRecord(s *session, policy string, in *plan.Intent, verdict plan.Verdict, component string) v1alpha1.ActionRecord {
	detected := metav1.NewTime(s.triggeredAt)
	return v1alpha1.ActionRecord{
		ID: knowledge.NewID(policy, s.now), Time: metav1.NewTime(s.now), Policy: policy, Step: in.Step,
		Action: plan.ActionName(in.Action), Component: component, Reason: text.Truncate(in.Reason, 1024),
		Result: v1alpha1.ResultPending, DryRun: verdict.RecordOnly, DetectedAt: &detected,
		Failover: changeRecord(policy, in.Change),
	}
}

// carryOut records the intents of an action the guards let through and carries them
// out: one record per prepared target, all written to status before anything changes,
// then the effectors and their results. In DryRun the records are written as Skipped and
// nothing runs (the guards' verdict says RecordOnly). With no target prepared, the
// action is recorded once as Failed with prepareErr (so a ladder moves on, and a
// failover waits before it tries again).
func (r *AppReconciler) carryOut(ctx context.Context, s *session, policy string, in *plan.Intent, verdict plan.Verdict, ready []preparedTarget, prepareErr error) (actResult, error) {
	app := s.app
	who := actor(policy, in.Step)
	newRecord := func(component string) v1alpha1.ActionRecord { return newRecord(s, policy, in, verdict, component) }
	if len(ready) == 0 {
		// Nothing to act on: the step is recorded as failed, so the ladder moves on.
		if prepareErr == nil {
			prepareErr = fmt.Errorf("the action has no target")
		}
		rec := newRecord(in.Action.Component())
		rec.Result, rec.Message, rec.FinishedAt = v1alpha1.ResultFailed, text.Truncate(prepareErr.Error(), 1024), &rec.Time
		knowledge.Record(&app.Status, rec)
		r.finished(knowledge.Find(&app.Status, rec.ID))
		r.Recorder.Eventf(app, nil, corev1.EventTypeWarning, "ActionFailed", rec.Action, "%s: %s", who, prepareErr.Error())
		return actResult{lastID: rec.ID}, nil
	}

	recs := make([]v1alpha1.ActionRecord, 0, len(ready))
	for _, p := range ready {
		rec := newRecord(componentName(p.target))
		rec.ID = p.id
		rec.Target, rec.Objects, rec.Replicas = p.p.Target, p.p.Objects, p.p.Replicas
		rec.Failover = cmp.Or(p.p.Failover, rec.Failover)
		if rec.DryRun {
			rec.Result, rec.Message, rec.FinishedAt = v1alpha1.ResultSkipped, "DryRun: the action was decided and recorded; nothing was changed.", &rec.Time
			r.Recorder.Eventf(app, nil, corev1.EventTypeNormal, "DryRun", rec.Action, "%s would run %s on %s: %s",
				who, rec.Action, rec.Target, in.Reason)
		}
		knowledge.Record(&app.Status, rec)
		if rec.DryRun {
			r.finished(knowledge.Find(&app.Status, rec.ID))
		}
		recs = append(recs, rec)
	}
	last := recs[len(recs)-1].ID
	if recs[0].DryRun {
		return actResult{lastID: last, recordOnly: true}, nil
	}

	// Knowledge first: the intents, and the policy's status that acted on them, are
	// durable before anything changes. A manager that dies between the intent and the
	// result then finds both the Pending record and the step it belongs to: it finishes
	// the record and waits out the step, instead of acting on the step again.
	acted := bounded(plan.ActedStatus(in, last, s.now), s.source(policy))
	app.Status.Policies = knowledge.WithPolicy(app.Status.Policies, acted)
	if err := s.flush(ctx); err != nil {
		return actResult{}, err
	}
	if v := os.Getenv(CrashAfterIntentEnv); v == "*" || v == recs[0].Action {
		logf.FromContext(ctx).Info("Exiting after recording an intent, as the test hook asks", "id", recs[0].ID)
		os.Exit(3)
	}
	r.Metrics.DetectToAct.Observe(r.Clock.Since(s.triggeredAt).Seconds())
	for i, rec := range recs {
		r.execute(ctx, s, rec, in.Action, ready[i].target)
	}
	return actResult{lastID: last}, nil
}

// changeRecord is the typed ledger entry of a failover policy's change.
func changeRecord(policy string, c *plan.ChangeIntent) *v1alpha1.FailoverRecord {
	if c == nil {
		return nil
	}
	return &v1alpha1.FailoverRecord{Phase: v1alpha1.FailoverPhase(c.Phase), Policy: policy, Component: c.Component, From: c.From, Service: c.Service}
}

// targets resolves the components an action acts on (plan.Targets): nil stands for
// actions without one.
func (s *session) targets(a v1alpha1.Action) []*monitor.Component {
	in := make([]plan.TargetComponent, 0, len(s.components))
	for i := range s.components {
		c := &s.components[i]
		_, unhealthy, _ := monitor.HealthyPods(c)
		in = append(in, plan.TargetComponent{Name: c.Name, Workload: c.Ref != nil, UnhealthyPods: unhealthy})
	}
	var out []*monitor.Component
	for _, name := range plan.Targets(a, in) {
		if name == "" {
			out = append(out, nil)
		} else {
			out = append(out, s.component(name))
		}
	}
	return out
}

func componentName(c *monitor.Component) string {
	if c == nil {
		return ""
	}
	return c.Name
}

// execute runs an effector for a recorded intent and records its result.
func (r *AppReconciler) execute(ctx context.Context, s *session, rec v1alpha1.ActionRecord, action v1alpha1.Action, target *monitor.Component) {
	recCopy := rec
	req := s.request(rec.Policy, action, target, &recCopy)
	out := r.Effectors.Execute(ctx, req)
	if out.Result == v1alpha1.ResultPending {
		// A long action (a Job, a drain) reports progress: the record stays Pending with
		// the message (unchanged progress writes nothing), and the next reconcile runs the
		// effector again. A watch on what it changed (the Job) brings the app back when it
		// finishes; the deadline is when it fails by its timeout.
		knowledge.Progress(&s.app.Status, rec.ID, out.Message)
		if t := execute.DrainRetryAt(req, r.Clock.Now()); !t.IsZero() {
			// A drain polls the budgets that refused it; nothing else wakes the app.
			s.requeueAt(t)
		} else if d := execute.PendingDeadline(req); !d.IsZero() {
			s.requeueAt(d)
		} else if t := execute.WebhookRecheckAt(req, r.Clock.Now()); !t.IsZero() {
			// A webhook's POST runs in the background and wakes the app itself.
			s.requeueAt(t)
		} else {
			s.requeueAt(r.Clock.Now().Add(pendingRecheck))
		}
		return
	}
	knowledge.Complete(&s.app.Status, rec.ID, out.Result, out.Message, r.Clock.Now())
	r.finished(knowledge.Find(&s.app.Status, rec.ID))
	logf.FromContext(ctx).Info("Action finished", "id", rec.ID, "policy", rec.Policy, "step", rec.Step,
		"action", rec.Action, "target", rec.Target, "result", out.Result, "message", out.Message)
}

// finished counts a record whose result is final, and its outcome when it has one
// already (a record that changed nothing is Unknown at once).
func (r *AppReconciler) finished(rec *v1alpha1.ActionRecord) {
	if rec == nil {
		return
	}
	r.Metrics.Actions.WithLabelValues(rec.Policy, rec.Action, string(rec.Result)).Inc()
	if rec.Outcome != "" {
		r.Metrics.ActionOutcomes.WithLabelValues(rec.Action, string(rec.Outcome)).Inc()
	}
}

// resumePending finishes the intents an earlier run recorded and did not see through (a
// crash, a lost leader lease). The guards that stop every action are asked again first
// (plan.CheckResume): an intent they hold is not carried on, and ends Cancelled with
// their reason, unless its effect is already complete on its target, whose real result
// is then recorded. Otherwise the effector runs again with the same record; effectors
// are idempotent, so the effect happens once. Either way the policy's status is
// completed as for an action of this run (plan.Completed).
func (r *AppReconciler) resumePending(ctx context.Context, s *session) error {
	for _, rec := range knowledge.Pending(&s.app.Status) {
		action, target, change, ok := r.actionOf(s, rec)
		if !ok {
			knowledge.Complete(&s.app.Status, rec.ID, v1alpha1.ResultFailed,
				fmt.Sprintf("The intent could not be resumed: policy %q has no step %d any more.", rec.Policy, rec.Step), s.now)
			r.finished(knowledge.Find(&s.app.Status, rec.ID))
		} else if v := plan.CheckResume(r.guardInput(s), plan.ResumeDisruptive(rec.Action), s.now); v.Held {
			// Nothing changes in the cluster: the cancel is written with the rest of
			// this pass's status, in one write.
			r.cancel(ctx, s, rec, action, target, v)
			r.completePolicy(s, rec.ID, action, change)
			continue
		} else if f := r.authorizeResumed(ctx, s, rec, action, target); f != nil {
			// The tenant's rights no longer allow it (a Role revoked, a ServiceAccount set
			// since): it is not carried on.
			msg := "Refused by the tenant's rights when carried on, nothing more was done: " + f.Error() +
				". What the action changed before stays as it is."
			knowledge.Complete(&s.app.Status, rec.ID, v1alpha1.ResultForbidden, msg, s.now)
			r.finished(knowledge.Find(&s.app.Status, rec.ID))
			r.Recorder.Eventf(s.app, nil, corev1.EventTypeWarning, execute.ReasonActionForbidden, rec.Action, "%s (%s on %s, action %s)",
				text.Truncate(msg, 800), rec.Action, cmp.Or(rec.Target, "the app"), rec.ID)
		} else {
			logf.FromContext(ctx).V(1).Info("Carrying on with an unfinished action", "id", rec.ID, "policy", rec.Policy, "step", rec.Step)
			r.execute(ctx, s, rec, action, target)
		}
		r.completePolicy(s, rec.ID, action, change)
		// The effect is recorded before anything else is decided.
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
	return nil
}

// authorizeResumed asks, before an unfinished intent is carried on, whether the app's
// ServiceAccount may still make what the record's effector will do (a drain evicts more
// pods on each pass); nil when it may, or when the app acts as the manager.
func (r *AppReconciler) authorizeResumed(ctx context.Context, s *session, rec v1alpha1.ActionRecord, action v1alpha1.Action, target *monitor.Component) *rights.Forbidden {
	if s.subject == nil {
		return nil
	}
	recCopy := rec
	acc, err := r.Effectors.Accesses(s.request(rec.Policy, action, target, &recCopy))
	if err == nil {
		err = r.Rights.Check(ctx, *s.subject, acc...)
	}
	if err == nil {
		return nil
	}
	f, ok := rights.IsForbidden(err)
	if !ok {
		f = &rights.Forbidden{Subject: *s.subject, Err: err}
	}
	return f
}

// request is what the effectors are asked to carry out for the app: the action, its
// target and record, as the app's ServiceAccount, and whether the policy that decided
// it is a ClusterHealingPolicy's.
func (s *session) request(policy string, action v1alpha1.Action, target *monitor.Component, rec *v1alpha1.ActionRecord) execute.Request {
	return execute.Request{App: s.app, Action: action, Target: target, Record: rec, Subject: s.subject,
		ClusterPolicy: strings.HasPrefix(s.source(policy), clusterPolicyKind+" ")}
}

// cancel ends an unfinished intent that a guard holds: with its real result when its effect
// is already complete on the target, else Cancelled, and nothing more is done for it.
func (r *AppReconciler) cancel(ctx context.Context, s *session, rec v1alpha1.ActionRecord, action v1alpha1.Action, target *monitor.Component, v plan.Verdict) {
	recCopy := rec
	if out, done := r.Effectors.Observe(ctx, s.request(rec.Policy, action, target, &recCopy)); done {
		knowledge.Complete(&s.app.Status, rec.ID, out.Result, out.Message, s.now)
		r.finished(knowledge.Find(&s.app.Status, rec.ID))
		return
	}
	r.Effectors.Stop(execute.Request{App: s.app, Record: &recCopy, Action: action, Target: target})
	msg := fmt.Sprintf("Cancelled before it finished: %s Nothing more is done for this action; what it changed before stays as it is.", v.Message)
	knowledge.Complete(&s.app.Status, rec.ID, v1alpha1.ResultCancelled, msg, s.now)
	r.finished(knowledge.Find(&s.app.Status, rec.ID))
	r.Recorder.Eventf(s.app, nil, corev1.EventTypeNormal, "ActionCancelled", rec.Action, "%s (%s on %s, action %s)",
		msg, rec.Action, cmp.Or(rec.Target, "the app"), rec.ID)
	logf.FromContext(ctx).Info("Cancelled an unfinished action a guard holds", "id", rec.ID, "policy", rec.Policy, "guard", v.Reason)
}

// completePolicy brings the status of the policy a finished resumed record belongs to
// up to date, in the same status write as the record's result.
func (r *AppReconciler) completePolicy(s *session, id string, action v1alpha1.Action, change *plan.ChangeIntent) {
	rec := knowledge.Find(&s.app.Status, id)
	if rec == nil || rec.Result == v1alpha1.ResultPending {
		return
	}
	st := v1alpha1.PolicyStatus{Name: rec.Policy}
	for _, p := range s.app.Status.Policies {
		if p.Name == rec.Policy {
			st = p
		}
	}
	st, next, _ := plan.Completed(st, *rec, action, change, s.now)
	s.requeueAt(next)
	s.app.Status.Policies = knowledge.WithPolicy(s.app.Status.Policies, bounded(st, s.source(rec.Policy)))
}

// actionOf finds what a Pending record acts on: the ladder step's action, or the
// failover policy's change, with its target component.
func (r *AppReconciler) actionOf(s *session, rec v1alpha1.ActionRecord) (v1alpha1.Action, *monitor.Component, *plan.ChangeIntent, bool) {
	if fr, ok := knowledge.FailoverOf(rec); ok && fr.Phase != v1alpha1.FailoverDemote {
		for _, p := range s.view.Spec.Policies {
			if p.Name == rec.Policy && p.Failover != nil {
				change := &plan.ChangeIntent{Phase: plan.FailoverPhase(fr.Phase), Service: fr.Service, Component: fr.Component, From: fr.From,
					Replicas: ptrValue(rec.Replicas)}
				return v1alpha1.Action{Failover: &v1alpha1.FailoverAction{Policy: p.Name}}, s.component(fr.Component), change, true
			}
		}
		return v1alpha1.Action{}, nil, nil, false
	}
	for _, p := range s.view.Spec.Policies {
		if p.Name != rec.Policy || p.Remediate == nil || rec.Step < 1 || int(rec.Step) > len(p.Remediate.Steps) {
			continue
		}
		a := p.Remediate.Steps[rec.Step-1].Action
		if plan.ActionName(a) != rec.Action {
			return v1alpha1.Action{}, nil, nil, false
		}
		return a, s.component(cmp.Or(rec.Component, a.Component())), nil, true
	}
	return v1alpha1.Action{}, nil, nil, false
}

func ptrValue(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// guardInput gathers what the guards read: mode, pause, the ledger, the pods.
func (r *AppReconciler) guardInput(s *session) plan.GuardInput {
	app := s.app
	g := plan.GuardInput{
		Mode:         app.Spec.Mode,
		LastActionAt: knowledge.LastActionAt(&app.Status),
		ActionTimes:  knowledge.ActionTimes(&app.Status),
	}
	_, g.PausedAnnotation = app.Annotations[v1alpha1.PausedAnnotation]
	g.Storm = r.Storm.engaged()
	g.StaleCache, g.StaleCacheRecheck = r.cacheHealth.stale()
	if gd := s.view.Spec.Guards; gd != nil {
		g.Cooldown = durationOf(gd.Cooldown)
		g.MaxActions = gd.MaxActions
		g.MaxUnhealthyPods = gd.MaxUnhealthyPods
	}
	g.MaxUnhealthyPodsAlso = s.merged.MaxUnhealthyPodsAlso
	for i := range s.components {
		total, unhealthy, terminating := monitor.HealthyPods(&s.components[i])
		g.TotalPods += total
		g.UnhealthyPods += unhealthy
		g.InFlightPods += terminating
	}
	return g
}
