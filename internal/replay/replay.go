package replay

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/analyze"
	"github.com/homeostat-dev/homeostat/internal/knowledge"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// MinStep is the finest step a replay takes: the shortest interval a sensor may have.
const MinStep = time.Second

// InvalidSpecError is a spec the manager would not run: its policies stay off until the
// errors are fixed, so there is nothing to replay.
type InvalidSpecError struct {
	Errors []analyze.FieldError
}

func (e *InvalidSpecError) Error() string {
	msgs := make([]string, 0, len(e.Errors))
	for _, fe := range e.Errors {
		msgs = append(msgs, fe.Error())
	}
	return "the spec is invalid: " + strings.Join(msgs, "; ")
}

// Run replays the history of in through the app's policies and returns what they would
// have decided. It fails when the spec is one the manager would not run
// (*InvalidSpecError) or the range is empty.
func Run(in Input) (Result, error) {
	switch {
	case in.App == nil:
		return Result{}, errors.New("no app to replay")
	case in.Step < MinStep:
		return Result{}, fmt.Errorf("the step %s is finer than %s", in.Step, MinStep)
	case in.To.Before(in.From):
		return Result{}, fmt.Errorf("the range ends (%s) before it starts (%s)", stamp(in.To), stamp(in.From))
	}
	fromShared := func(string) bool { return false }
	if in.Merged != nil {
		m := in.Merged
		fromShared = func(p string) bool { return m.FromShared(plan.EntryPolicy, p) }
	}
	if errs := analyze.ValidateMerged(in.App, fromShared); len(errs) > 0 {
		return Result{}, &InvalidSpecError{Errors: errs}
	}
	r := newRun(in)
	r.replay()
	return r.result(), nil
}

// run is one replay: the app whose status is the simulated knowledge (symptoms, policies,
// ledger), and what the manager keeps in memory between reconciles.
type run struct {
	in       Input
	app      *v1alpha1.AutonomicApp
	compiled *analyze.Compiled
	// replicas are the simulated replicas of each autoscaled component.
	replicas map[string]int32
	tracked  []string
	// autoscalers are each autoscale policy's recommendations and scale events, kept as
	// controllers' autoscaleMemory keeps them.
	autoscalers map[string]*autoscalerMemory
	// scales holds, per autoscale policy that intends a scale in this pass, the
	// recommender's decision, to remember the scale event once it is carried out.
	scales map[string]plan.AutoscaleDecision
	// absentSince is when each sensor's current absence began.
	absentSince map[string]time.Time
	// fed are the values fed to each autoscale metric ("policy/sensor"), for forecasts.
	fed map[string][]plan.Sample
	seq int

	res        Result
	decisionOf map[string]int // record id -> index in res.Decisions
	stats      map[string]*policyStats
	replicaAcc map[string]*replicaAcc
	series     map[string]*ReplicaSeries
}

func newRun(in Input) *run {
	app := in.App.DeepCopy()
	app.Status = v1alpha1.AutonomicAppStatus{}
	compiled, _ := analyze.Compile(app.Spec.Symptoms, analyze.DeclaredFor(app), "spec.symptoms")
	r := &run{
		in: in, app: app, compiled: compiled,
		replicas: map[string]int32{}, autoscalers: map[string]*autoscalerMemory{},
		absentSince: map[string]time.Time{}, fed: map[string][]plan.Sample{},
		decisionOf: map[string]int{}, stats: map[string]*policyStats{},
		replicaAcc: map[string]*replicaAcc{}, series: map[string]*ReplicaSeries{},
	}
	r.res.Decisions = []Decision{}
	for _, p := range app.Spec.Policies {
		r.stats[p.Name] = &policyStats{metrics: map[string]*MetricSummary{}}
		a := p.Autoscale
		if a == nil || a.Component == "*" || r.workloadRef(a.Component) == nil || slices.Contains(r.tracked, a.Component) {
			continue
		}
		r.tracked = append(r.tracked, a.Component)
		start := r.startReplicas(a)
		r.replicas[a.Component] = start
		r.series[a.Component] = &ReplicaSeries{Component: a.Component, Start: start}
		r.replicaAcc[a.Component] = &replicaAcc{}
	}
	return r
}

// startReplicas is where an autoscaled component starts: the replicas given, else its
// first recorded desiredReplicas, else the policy's minReplicas (default 1).
func (r *run) startReplicas(a *v1alpha1.AutoscalePolicy) int32 {
	if n, ok := r.in.Start[a.Component]; ok {
		return n
	}
	for _, f := range r.in.Frames {
		if c, ok := f.Components[a.Component]; ok {
			if n, ok := c.Numbers["desiredReplicas"]; ok {
				return int32(n)
			}
		}
	}
	if a.MinReplicas != nil {
		return *a.MinReplicas
	}
	return 1
}

// replay walks the range step by step; each step with a record is one reconcile.
func (r *run) replay() {
	i := 0
	frames := r.in.Frames
	for now := r.in.From; !now.After(r.in.To); now = now.Add(r.in.Step) {
		for i < len(frames) && frames[i].Time.Before(now) {
			i++
		}
		var f *Frame
		if i < len(frames) && frames[i].Time.Before(now.Add(r.in.Step)) {
			f = &frames[i]
		}
		if f == nil || len(f.Components) == 0 {
			r.gap(now)
			continue
		}
		r.step(f, now)
	}
}

func (r *run) gap(now time.Time) {
	if n := len(r.res.Gaps); n > 0 && r.res.Gaps[n-1].To.Add(r.in.Step).Equal(now) {
		r.res.Gaps[n-1].To = now
		return
	}
	r.res.Gaps = append(r.res.Gaps, Gap{From: now, To: now})
}

// step is one reconcile at now over the frame: analyze, then plan and act.
func (r *run) step(f *Frame, now time.Time) {
	r.res.Steps++
	r.observeSensors(f, now)
	active := r.analyze(f, now)
	r.runPolicies(f, now, active)
	for _, c := range r.tracked {
		r.replicaAcc[c].add(r.replicas[c])
	}
}

// observeSensors notes when each declared sensor's current absence began.
func (r *run) observeSensors(f *Frame, now time.Time) {
	for _, s := range r.app.Spec.Sensors {
		if _, ok := f.Sensors[s.Name]; ok {
			delete(r.absentSince, s.Name)
		} else if _, ok := r.absentSince[s.Name]; !ok {
			r.absentSince[s.Name] = now
		}
	}
}

// analyze evaluates the symptoms with hysteresis, as the controller's analyze does, and
// returns the active set.
func (r *run) analyze(f *Frame, now time.Time) map[string]bool {
	in := analyze.Input{Components: map[string]map[string]any{}, Sensors: map[string]float64{}}
	for k, v := range f.Sensors {
		in.Sensors[k] = v
	}
	healthy := 0
	for _, c := range r.app.Spec.Components {
		vars := r.componentVars(f, c.Name)
		in.Components[c.Name] = vars
		if h, _ := vars["healthy"].(bool); h {
			healthy++
		}
	}
	in.App = analyze.AppVars(r.app, healthy, len(r.app.Spec.Components))
	evals := r.compiled.Eval(in)
	prev := map[string]v1alpha1.SymptomStatus{}
	for _, p := range r.app.Status.Symptoms {
		prev[p.Name] = p
	}
	active := map[string]bool{}
	out := make([]v1alpha1.SymptomStatus, 0, len(r.app.Spec.Symptoms))
	for _, sym := range r.app.Spec.Symptoms {
		p, ok := prev[sym.Name]
		if !ok {
			p = v1alpha1.SymptomStatus{Name: sym.Name}
		}
		next, _ := analyze.Step(p, evals[sym.Name], durationOf(sym.For), durationOf(sym.ClearFor), now)
		out = append(out, next)
		if next.Active {
			active[sym.Name] = true
		}
	}
	r.app.Status.Symptoms = out
	return active
}

// componentVars is `components.<name>` from the frame; a component without a record
// reads as zero, or false.
func (r *run) componentVars(f *Frame, name string) map[string]any {
	s := f.Components[name]
	return analyze.ComponentVarsFromNumbers(s.Numbers, s.Phase, r.isChildApp(name))
}

func (r *run) isChildApp(name string) bool {
	for _, c := range r.app.Spec.Components {
		if c.Name == name {
			return c.AppRef != nil
		}
	}
	return false
}

func (r *run) workloadRef(name string) *v1alpha1.WorkloadReference {
	for _, c := range r.app.Spec.Components {
		if c.Name == name {
			return c.WorkloadRef
		}
	}
	return nil
}

// runPolicies decides each policy in spec order and carries out what it decides, as the
// controller's runPolicies does.
func (r *run) runPolicies(f *Frame, now time.Time, active map[string]bool) {
	st := &r.app.Status
	prev := map[string]v1alpha1.PolicyStatus{}
	for _, p := range st.Policies {
		prev[p.Name] = p
	}
	r.scales = map[string]plan.AutoscaleDecision{}
	out := make([]v1alpha1.PolicyStatus, 0, len(r.app.Spec.Policies))
	for _, pol := range r.app.Spec.Policies {
		old := prev[pol.Name]
		d := r.decide(f, now, pol, old, active)
		ps, ran := r.apply(f, now, pol, old, d)
		if ran && pol.Autoscale != nil {
			r.rememberScale(now, pol)
		}
		out = append(out, ps)
		// Later policies see this one's state (and its ledger entries) in the same pass.
		st.Policies = knowledge.WithPolicy(st.Policies, ps)
	}
	st.Policies = out
}

func (r *run) decide(f *Frame, now time.Time, pol v1alpha1.Policy, old v1alpha1.PolicyStatus, active map[string]bool) plan.Decision {
	switch {
	case pol.Remediate != nil:
		return plan.Remediate(plan.RemediationInput{Now: now, Policy: pol, State: old, Active: active})
	case pol.Autoscale != nil:
		return r.decideAutoscale(f, now, pol, old)
	}
	// Failover policies are not simulated (see NotSimulated): their status stays as it
	// was, with no intent.
	st := old
	st.Name = pol.Name
	return plan.Decision{Kind: plan.Idle, Status: st}
}

// apply carries out one policy's decision, as the controller's apply does, and returns
// the policy's status and whether an action was carried out.
func (r *run) apply(f *Frame, now time.Time, pol v1alpha1.Policy, old v1alpha1.PolicyStatus, d plan.Decision) (v1alpha1.PolicyStatus, bool) {
	r.judge(d.Outcomes, now)
	if d.NewEpisode {
		r.stats[pol.Name].episodes++
	}
	if d.Intent == nil {
		r.explain(now, pol, old, d)
		return d.Status, false
	}
	v, lastID := r.act(f, now, pol, d.Intent)
	if v.Held {
		st := plan.HeldStatus(d.Intent, v)
		if st.State != old.State || st.Reason != old.Reason {
			r.stats[pol.Name].held++
			dec := r.decision(now, pol, KindHeld, st.Message)
			dec.Action, dec.Component, dec.Step, dec.Guard = plan.ActionName(d.Intent.Action), d.Intent.Action.Component(), d.Intent.Step, v.Reason
			if s := d.Intent.Action.Scale; s != nil && s.Replicas != nil && pol.Autoscale != nil {
				if rec, ok := r.scales[pol.Name]; ok {
					dec.FromReplicas, dec.Replicas = ptr(rec.Current), ptr(rec.Desired)
				}
			}
			r.add(dec)
		}
		return st, false
	}
	st := plan.ActedStatus(d.Intent, lastID, now)
	if rec := knowledge.Find(&r.app.Status, lastID); rec != nil && rec.Result != v1alpha1.ResultPending {
		st, _, _ = plan.Completed(st, *rec, d.Intent.Action, d.Intent.Change, now)
	}
	return st, true
}

// explain lists a decision without an intent when the policy's state or reason changed
// and a person would want to know: a ladder that healed, ran out or gave up (plan gives
// it an Event), or an autoscaler that holds on its own judgement.
func (r *run) explain(now time.Time, pol v1alpha1.Policy, old v1alpha1.PolicyStatus, d plan.Decision) {
	st := d.Status
	if st.State == old.State && st.Reason == old.Reason {
		return
	}
	if d.Event == nil && (d.Kind != plan.Hold || pol.Autoscale == nil) {
		return
	}
	dec := r.decision(now, pol, string(d.Kind), st.Message)
	if pol.Autoscale != nil {
		dec.Component = pol.Autoscale.Component
	}
	r.add(dec)
}

func (r *run) decision(now time.Time, pol v1alpha1.Policy, kind, reason string) Decision {
	return Decision{Time: now, Policy: pol.Name, PolicyKind: policyKind(pol), Kind: kind, Reason: reason}
}

func (r *run) add(d Decision) int {
	r.res.Decisions = append(r.res.Decisions, d)
	return len(r.res.Decisions) - 1
}

// judge writes plan's verdicts on earlier actions into their records, and into the
// decisions that carried them out.
func (r *run) judge(outcomes []plan.Outcome, now time.Time) {
	for _, o := range outcomes {
		for _, rec := range knowledge.Judge(&r.app.Status, o.Policy, o.Step, o.Since, o.Outcome, now) {
			if i, ok := r.decisionOf[rec.ID]; ok {
				r.res.Decisions[i].Outcome = string(rec.Outcome)
			}
		}
	}
}

// prepared is one target of a decided action with what its effector would fix for it.
type prepared struct {
	component  string
	replicas   *int32
	from       int32
	disruptive bool
}

// act carries out one intent under the ledger's rules, as the controller's act does: it
// resolves the targets, prepares each, checks the guards, and records one action per
// target. Node guards and the tenant's rights are not simulated. It returns the guards'
// verdict and the id of the last record.
func (r *run) act(f *Frame, now time.Time, pol v1alpha1.Policy, in *plan.Intent) (plan.Verdict, string) {
	var ready []prepared
	var firstErr error
	for _, t := range r.targets(f, in.Action) {
		p, err := r.prepare(f, in.Action, t)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		ready = append(ready, p)
	}
	disruptive := slices.ContainsFunc(ready, func(p prepared) bool { return p.disruptive })
	g := r.guardInput(f)
	if in.SkipCooldown {
		g.Cooldown = 0
	}
	if v := plan.CheckGuards(g, disruptive, now); v.Held {
		return v, ""
	}
	return plan.Verdict{}, r.carryOut(now, pol, in, ready, firstErr)
}

// carryOut records the actions the guards let through, as succeeded, and applies their
// simulated effect (a scale's replicas). With no target prepared, the action is
// recorded once as failed, as the controller records it.
func (r *run) carryOut(now time.Time, pol v1alpha1.Policy, in *plan.Intent, ready []prepared, prepareErr error) string {
	st := &r.app.Status
	newRecord := func(component string) v1alpha1.ActionRecord {
		r.seq++
		t := metav1.NewTime(now)
		return v1alpha1.ActionRecord{
			ID: fmt.Sprintf("%s-%d", pol.Name, r.seq), Time: t, Policy: pol.Name, Step: in.Step,
			Action: plan.ActionName(in.Action), Component: component, Reason: in.Reason,
			Result: v1alpha1.ResultSucceeded, FinishedAt: &t,
		}
	}
	stats := r.stats[pol.Name]
	if len(ready) == 0 {
		if prepareErr == nil {
			prepareErr = errors.New("the action has no target")
		}
		rec := newRecord(in.Action.Component())
		rec.Result, rec.Message = v1alpha1.ResultFailed, prepareErr.Error()
		knowledge.Record(st, rec)
		dec := r.decision(now, pol, KindAct, in.Reason+" It fails: "+prepareErr.Error()+".")
		dec.Action, dec.Component, dec.Step, dec.Result = rec.Action, rec.Component, in.Step, string(v1alpha1.ResultFailed)
		dec.Outcome = string(v1alpha1.OutcomeUnknown)
		r.decisionOf[rec.ID] = r.add(dec)
		stats.actions++
		return rec.ID
	}
	last := ""
	for _, p := range ready {
		rec := newRecord(p.component)
		rec.Replicas = p.replicas
		knowledge.Record(st, rec)
		dec := r.decision(now, pol, KindAct, in.Reason)
		dec.Action, dec.Component, dec.Step = rec.Action, rec.Component, in.Step
		if p.replicas != nil {
			dec.FromReplicas, dec.Replicas = ptr(p.from), ptr(*p.replicas)
			r.scaled(now, pol, p.component, p.from, *p.replicas)
		}
		r.decisionOf[rec.ID] = r.add(dec)
		stats.actions++
		last = rec.ID
	}
	return last
}

// scaled applies a scale's simulated effect and counts a flap when it reverses the
// direction of the policy's previous scale within the flap window.
func (r *run) scaled(now time.Time, pol v1alpha1.Policy, component string, from, to int32) {
	if _, ok := r.replicas[component]; ok && to != r.replicas[component] {
		r.replicas[component] = to
		s := r.series[component]
		s.Changes = append(s.Changes, ReplicaChange{Time: now, Replicas: to})
	}
	if pol.Autoscale == nil {
		return
	}
	stats := r.stats[pol.Name]
	up := to > from
	if stats.lastScale != nil && stats.lastScale.up != up && now.Sub(stats.lastScale.at) <= flapWindow(pol.Autoscale) {
		stats.flaps++
	}
	stats.lastScale = &scaleMark{at: now, up: up}
}

// FlapMinWindow is the shortest window within which a reversed scale counts as a flap.
const FlapMinWindow = 5 * time.Minute

// flapWindow is the larger of the policy's scale-down stabilization window and
// FlapMinWindow.
func flapWindow(a *v1alpha1.AutoscalePolicy) time.Duration {
	return max(plan.ResolveBehavior(a.Behavior).ScaleDown.StabilizationWindow, FlapMinWindow)
}

// targets resolves the components an action acts on (plan.Targets); "" stands for
// actions without one.
func (r *run) targets(f *Frame, a v1alpha1.Action) []string {
	in := make([]plan.TargetComponent, 0, len(r.app.Spec.Components))
	for _, c := range r.app.Spec.Components {
		_, unhealthy := podCounts(f.Components[c.Name])
		in = append(in, plan.TargetComponent{Name: c.Name, Workload: c.WorkloadRef != nil, UnhealthyPods: unhealthy})
	}
	return plan.Targets(a, in)
}

// prepare is what the action's effector would fix before the guards: a scale's replicas
// (and whether it takes capacity away), and whether the action is disruptive. Only a
// scale can fail here: one that would change nothing, as its effector refuses it.
func (r *run) prepare(f *Frame, a v1alpha1.Action, component string) (prepared, error) {
	p := prepared{component: component}
	switch {
	case a.Scale != nil:
		cur := r.currentReplicas(f, component)
		n, err := plan.ScaleReplicas(a.Scale, cur)
		if err != nil {
			return p, fmt.Errorf("%s cannot be scaled: %w", component, err)
		}
		if n == cur {
			return p, fmt.Errorf("%s already has %d replicas, so scaling would change nothing", component, n)
		}
		p.replicas, p.from, p.disruptive = &n, cur, n < cur
	case a.RestartPods != nil, a.RolloutRestart != nil, a.Rollback != nil, a.CordonNode != nil, a.DrainNode != nil:
		p.disruptive = true
	}
	return p, nil
}

// currentReplicas is a component's replicas: simulated when it is autoscaled, else as
// recorded.
func (r *run) currentReplicas(f *Frame, component string) int32 {
	if n, ok := r.replicas[component]; ok {
		return n
	}
	return int32(f.Components[component].Numbers["desiredReplicas"])
}

// guardInput gathers what the guards read, as the controller's guardInput does: the
// simulated ledger, the guards of the spec, and the recorded pods. The app runs as if
// Active, without the paused annotation, a stale cache or the storm breaker.
func (r *run) guardInput(f *Frame) plan.GuardInput {
	st := &r.app.Status
	g := plan.GuardInput{
		Mode:         v1alpha1.ModeActive,
		LastActionAt: knowledge.LastActionAt(st),
		ActionTimes:  knowledge.ActionTimes(st),
	}
	if gd := r.app.Spec.Guards; gd != nil {
		g.Cooldown = durationOf(gd.Cooldown)
		g.MaxActions = gd.MaxActions
		g.MaxUnhealthyPods = gd.MaxUnhealthyPods
	}
	if r.in.Merged != nil {
		g.MaxUnhealthyPodsAlso = r.in.Merged.MaxUnhealthyPodsAlso
	}
	for _, c := range r.app.Spec.Components {
		if c.WorkloadRef == nil {
			continue
		}
		total, unhealthy := podCounts(f.Components[c.Name])
		g.TotalPods += total
		g.UnhealthyPods += unhealthy
	}
	return g
}

// podCounts estimates a workload's pods from its recorded sensors: desiredReplicas in
// all, of which those not ready (or crash-looping, OOM-killed, pending, if more) are
// unhealthy.
func podCounts(c ComponentSample) (total, unhealthy int) {
	n := c.Numbers
	total = int(max(n["desiredReplicas"], 0))
	unhealthy = int(max(n["desiredReplicas"]-n["readyReplicas"], n["crashLoopingPods"], n["oomKilledPods"], n["pendingPods"], 0))
	return total, min(unhealthy, total)
}

func policyKind(p v1alpha1.Policy) string {
	switch {
	case p.Remediate != nil:
		return "Remediate"
	case p.Autoscale != nil:
		return "Autoscale"
	case p.Failover != nil:
		return "Failover"
	}
	return ""
}

func durationOf(d *metav1.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.Duration
}

func ptr[T any](v T) *T { return &v }

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
