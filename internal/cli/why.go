package cli

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/analyze"
	"github.com/homeostat-dev/homeostat/internal/knowledge"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

func newWhyCommand(o *Options) *cobra.Command {
	watchFlag := false
	cmd := &cobra.Command{
		Use:   "why APP",
		Short: "Explain the chain of judgement now: components, sensors, symptoms, policies and guards",
		Long: `why explains, top to bottom, what Homeostat sees of an AutonomicApp and what it decided:
each component's health and the numbers behind it; each sensor's reading; each symptom with
the values it reads, how long it has held and when its for or clearFor ends; each policy's
state and step, the guard that holds it and until when, and its next step and when it will
be taken; for an autoscaler, what each metric recommends and which bound or behavior rule
changed it. It reads the app's status and the shared policies that select it.`,
		Example: `  kubectl homeostat why shop -n shop
  kubectl homeostat why shop -n shop --watch
  kubectl homeostat why shop -n shop -o json`,
		Args: oneApp,
		RunE: func(cmd *cobra.Command, args []string) error {
			if watchFlag {
				return o.watchWhy(cmd.Context(), args[0])
			}
			w, err := o.gatherWhy(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return o.print(w, func(t *Text) { renderWhy(t, w) })
		},
	}
	cmd.Flags().BoolVarP(&watchFlag, "watch", "w", false, "Redraw whenever the app's status changes, and when a time it shows is reached.")
	return cmd
}

// Why is the chain of judgement of one app, as `why` prints it.
type Why struct {
	Namespace string    `json:"namespace"`
	App       string    `json:"app"`
	Now       time.Time `json:"now"`
	Phase     string    `json:"phase,omitempty"`
	Mode      string    `json:"mode"`
	// Paused is the paused annotation's value, when the app carries it.
	Paused string `json:"paused,omitempty"`
	// Stale is set when the manager has not yet seen the app's latest spec.
	Stale string `json:"stale,omitempty"`
	// Warnings are what the plugin could not read, and what that leaves out.
	Warnings   []string               `json:"warnings,omitempty"`
	Conditions []WhyCondition         `json:"conditions,omitempty"`
	Components []WhyComponent         `json:"components,omitempty"`
	Sensors    []WhySensor            `json:"sensors,omitempty"`
	Symptoms   []WhySymptom           `json:"symptoms,omitempty"`
	Policies   []WhyPolicy            `json:"policies,omitempty"`
	Guards     WhyGuards              `json:"guards"`
	LastAction *v1alpha1.ActionRecord `json:"lastAction,omitempty"`

	// resourceVersion is the app's, as read: --watch watches from it.
	resourceVersion string
}

// WhyCondition is a condition of the app that is not as a healthy app has it.
type WhyCondition struct {
	Type    string    `json:"type"`
	Status  string    `json:"status"`
	Reason  string    `json:"reason,omitempty"`
	Message string    `json:"message,omitempty"`
	Since   time.Time `json:"since"`
}

// WhyComponent is one component's health and the numbers behind it.
type WhyComponent struct {
	v1alpha1.ComponentStatus `json:",inline"`
	// Child is true for a child app.
	Child bool `json:"child,omitempty"`
}

// WhySensor is one polled sensor's last reading.
type WhySensor struct {
	v1alpha1.SensorStatus `json:",inline"`
	// Interval is how often it is polled.
	Interval string `json:"interval,omitempty"`
}

// WhySymptom is one symptom: its expression, the values it reads, and its hysteresis.
type WhySymptom struct {
	Name       string `json:"name"`
	Expression string `json:"expression,omitempty"`
	Active     bool   `json:"active"`
	// Holding is whether the expression holds now.
	Holding bool `json:"holding"`
	// Since is when it last became active or cleared.
	Since *time.Time `json:"since,omitempty"`
	// PendingSince is when the expression started to differ from the state; ChangesAt is
	// when the state follows if it keeps differing (pendingSince plus for or clearFor).
	PendingSince *time.Time `json:"pendingSince,omitempty"`
	ChangesAt    *time.Time `json:"changesAt,omitempty"`
	For          string     `json:"for,omitempty"`
	ClearFor     string     `json:"clearFor,omitempty"`
	// Reads are the sensors and component fields the expression reads, with their values.
	Reads   []WhyValue `json:"reads,omitempty"`
	Message string     `json:"message,omitempty"`
	Source  string     `json:"source,omitempty"`
}

// WhyValue is a name an expression reads and its value now ("unavailable" for a
// sensor without a reading).
type WhyValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// WhyPolicy is one policy's state, what holds it, and what it does next.
type WhyPolicy struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Source string `json:"source,omitempty"`
	State  string `json:"state,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Message is the policy's own sentence from status.
	Message string `json:"message,omitempty"`
	Step    int32  `json:"step,omitempty"`
	Steps   int    `json:"steps,omitempty"`
	// HeldBy names the guard that holds the policy's action; HeldUntil when it may lift.
	HeldBy    string     `json:"heldBy,omitempty"`
	HeldUntil *time.Time `json:"heldUntil,omitempty"`
	// Next is what the policy does next by time alone.
	Next            *WhyMove                  `json:"next,omitempty"`
	DesiredReplicas *int32                    `json:"desiredReplicas,omitempty"`
	Autoscale       *v1alpha1.AutoscaleStatus `json:"autoscale,omitempty"`
	Primary         string                    `json:"primary,omitempty"`
}

// WhyMove is a policy's next move.
type WhyMove struct {
	Step   int32      `json:"step,omitempty"`
	Action string     `json:"action,omitempty"`
	At     *time.Time `json:"at,omitempty"`
	What   string     `json:"what"`
}

// WhyGuards are the app's guards and what they would say of an action now.
type WhyGuards struct {
	Cooldown     string     `json:"cooldown,omitempty"`
	LastActionAt *time.Time `json:"lastActionAt,omitempty"`
	MaxActions   string     `json:"maxActions,omitempty"`
	// ActionsInWindow counts the app's actions inside maxActions' window.
	ActionsInWindow  int    `json:"actionsInWindow,omitempty"`
	MaxUnhealthyPods string `json:"maxUnhealthyPods,omitempty"`
	// Verdict is what the guards (pause, mode, cooldown, rate limit) say of a
	// non-disruptive action now; the storm breaker, a stale cache and the unhealthy share
	// are the manager's to judge and show in the policies that they hold.
	Verdict WhyVerdict `json:"verdict"`
}

// WhyVerdict is the guards' verdict on an action now.
type WhyVerdict struct {
	Held    bool       `json:"held"`
	Reason  string     `json:"reason,omitempty"`
	Message string     `json:"message,omitempty"`
	Until   *time.Time `json:"until,omitempty"`
}

// gatherWhy reads the app and the shared policies that select it, and explains them.
func (o *Options) gatherWhy(ctx context.Context, name string) (*Why, error) {
	app, err := o.getApp(ctx, name)
	if err != nil {
		return nil, err
	}
	view, warnings, err := o.mergedView(ctx, app)
	if err != nil {
		return nil, err
	}
	w := explainWhy(app, view, o.Now())
	w.Warnings = append(w.Warnings, warnings...)
	w.resourceVersion = app.ResourceVersion
	return w, nil
}

// explainWhy is the chain of judgement of app, whose merged spec is view, at now.
func explainWhy(app, view *v1alpha1.AutonomicApp, now time.Time) *Why {
	now = now.UTC()
	st := &app.Status
	w := &Why{Namespace: app.Namespace, App: app.Name, Now: now, Phase: string(st.Phase), Mode: string(app.Spec.Mode)}
	if w.Mode == "" {
		w.Mode = string(v1alpha1.ModeActive)
	}
	if v, ok := app.Annotations[v1alpha1.PausedAnnotation]; ok {
		w.Paused = v
		if v == "" {
			w.Paused = "true"
		}
	}
	if st.ObservedGeneration != app.Generation {
		w.Stale = fmt.Sprintf("The manager has not yet reconciled generation %d of the spec (status is of generation %d): what follows may be about to change.",
			app.Generation, st.ObservedGeneration)
	}
	for _, c := range st.Conditions {
		if conditionAsHealthy(c.Type, string(c.Status)) {
			continue
		}
		w.Conditions = append(w.Conditions, WhyCondition{Type: c.Type, Status: string(c.Status), Reason: c.Reason, Message: c.Message, Since: c.LastTransitionTime.UTC()})
	}
	children := map[string]bool{}
	for _, c := range view.Spec.Components {
		children[c.Name] = c.AppRef != nil
	}
	for _, c := range st.Components {
		w.Components = append(w.Components, WhyComponent{ComponentStatus: c, Child: children[c.Name]})
	}
	intervals := map[string]string{}
	for _, s := range view.Spec.Sensors {
		if s.Interval != nil {
			intervals[s.Name] = short(s.Interval.Duration)
		}
	}
	sensors := map[string]v1alpha1.SensorStatus{}
	for _, s := range st.Sensors {
		sensors[s.Name] = s
		w.Sensors = append(w.Sensors, WhySensor{SensorStatus: s, Interval: intervals[s.Name]})
	}
	comps := map[string]v1alpha1.ComponentStatus{}
	for _, c := range st.Components {
		comps[c.Name] = c
	}
	specs := map[string]v1alpha1.Symptom{}
	for _, s := range view.Spec.Symptoms {
		specs[s.Name] = s
	}
	for _, s := range st.Symptoms {
		w.Symptoms = append(w.Symptoms, whySymptom(s, specs[s.Name], sensors, comps))
	}
	policies := map[string]v1alpha1.Policy{}
	for _, p := range view.Spec.Policies {
		policies[p.Name] = p
	}
	for _, p := range st.Policies {
		w.Policies = append(w.Policies, whyPolicy(p, policies[p.Name]))
	}
	w.Guards = whyGuards(app, view, now)
	if len(st.History) > 0 {
		last := st.History[0]
		w.LastAction = &last
	}
	return w
}

// conditionAsHealthy is true for a condition in the state a healthy, running app has it.
func conditionAsHealthy(typ, status string) bool {
	switch typ {
	case v1alpha1.ConditionReady, v1alpha1.ConditionHealthy, v1alpha1.ConditionSensorsAvailable:
		return status == "True"
	case v1alpha1.ConditionRemediating, v1alpha1.ConditionNeedsAttention, v1alpha1.ConditionSuspended:
		return status == "False"
	}
	// Conditions kstatus reads (Reconciling, Stalled) and others: shown when True.
	return status != "True"
}

func whySymptom(s v1alpha1.SymptomStatus, spec v1alpha1.Symptom, sensors map[string]v1alpha1.SensorStatus, comps map[string]v1alpha1.ComponentStatus) WhySymptom {
	out := WhySymptom{Name: s.Name, Expression: spec.Expression, Active: s.Active, Holding: s.Holding, Message: s.Message, Source: s.Source,
		Since: timeOf(s.Since), PendingSince: timeOf(s.PendingSince)}
	if spec.For != nil {
		out.For = short(spec.For.Duration)
	}
	if spec.ClearFor != nil {
		out.ClearFor = short(spec.ClearFor.Duration)
	}
	if out.PendingSince != nil {
		wait := spec.For
		if s.Active {
			wait = spec.ClearFor
		}
		at := *out.PendingSince
		if wait != nil {
			at = at.Add(wait.Duration)
		}
		at = at.UTC()
		out.ChangesAt = &at
	}
	if spec.Expression == "" {
		return out
	}
	names, fieldRefs := analyze.Reads(spec.Expression)
	for _, n := range names {
		v := "unavailable"
		if ss, ok := sensors[n]; ok && ss.Error == "" && ss.Value != "" {
			v = ss.Value
		}
		out.Reads = append(out.Reads, WhyValue{Name: "sensors." + n, Value: v})
	}
	for _, f := range fieldRefs {
		comp, field, _ := strings.Cut(f, ".")
		v := "unknown"
		if c, ok := comps[comp]; ok {
			v = componentField(c, field)
		}
		out.Reads = append(out.Reads, WhyValue{Name: "components." + f, Value: v})
	}
	return out
}

func whyPolicy(p v1alpha1.PolicyStatus, spec v1alpha1.Policy) WhyPolicy {
	out := WhyPolicy{Name: p.Name, Kind: policyKind(spec), Source: p.Source, State: string(p.State), Reason: p.Reason, Message: p.Message,
		Step: p.Step, DesiredReplicas: p.DesiredReplicas, Autoscale: p.Autoscale, Primary: p.Primary}
	if p.State == v1alpha1.PolicyHeld {
		out.HeldBy = p.Reason
		out.HeldUntil = timeOf(p.HeldUntil)
	}
	if r := spec.Remediate; r != nil {
		out.Steps = len(r.Steps)
		if m := plan.NextMove(r, p); m.What != "" {
			out.Next = &WhyMove{Step: m.Step, Action: m.Action, What: m.What}
			if !m.At.IsZero() {
				at := m.At.UTC()
				out.Next.At = &at
			}
		}
	}
	if a := p.Autoscale; a != nil && a.LimitedUntil != nil && len(a.LimitedBy) > 0 && p.DesiredReplicas != nil && *p.DesiredReplicas != a.RecommendedReplicas {
		at := a.LimitedUntil.UTC()
		out.Next = &WhyMove{At: &at, What: fmt.Sprintf("look again when %s ends", limitNames(a.LimitedBy))}
	}
	return out
}

func policyKind(p v1alpha1.Policy) string {
	switch {
	case p.Remediate != nil:
		return "remediate"
	case p.Autoscale != nil:
		return "autoscale"
	case p.Failover != nil:
		return "failover"
	}
	// A policy in status whose spec the plugin cannot see (a shared policy it may not read).
	return "unknown"
}

func whyGuards(app, view *v1alpha1.AutonomicApp, now time.Time) WhyGuards {
	var g WhyGuards
	in := plan.GuardInput{Mode: app.Spec.Mode}
	_, in.PausedAnnotation = app.Annotations[v1alpha1.PausedAnnotation]
	// The ledger's records, as the manager's guards count them (DryRun's and refused
	// ones too).
	in.ActionTimes = knowledge.ActionTimes(&app.Status)
	in.LastActionAt = knowledge.LastActionAt(&app.Status)
	if !in.LastActionAt.IsZero() {
		g.LastActionAt = utc(in.LastActionAt)
	}
	if gd := view.Spec.Guards; gd != nil {
		if gd.Cooldown != nil {
			in.Cooldown = gd.Cooldown.Duration
			g.Cooldown = short(gd.Cooldown.Duration)
		}
		if m := gd.MaxActions; m != nil {
			in.MaxActions = m
			g.MaxActions = fmt.Sprintf("%d per %s", m.Count, short(m.Per.Duration))
			for _, t := range in.ActionTimes {
				if now.Sub(t) < m.Per.Duration {
					g.ActionsInWindow++
				}
			}
		}
		if gd.MaxUnhealthyPods != nil {
			g.MaxUnhealthyPods = gd.MaxUnhealthyPods.String()
		}
	}
	v := plan.CheckGuards(in, false, now)
	g.Verdict = WhyVerdict{Held: v.Held, Reason: v.Reason, Message: v.Message}
	if v.Held && !v.Until.IsZero() {
		g.Verdict.Until = utc(v.Until)
	}
	return g
}

// watchWhy redraws why whenever the app changes, and when the nearest time it shows
// (a hold's end, a symptom's for, a step's timeout) is reached.
func (o *Options) watchWhy(ctx context.Context, name string) error {
	w, err := o.gatherWhy(ctx, name)
	if err != nil {
		return err
	}
	c, err := o.kube()
	if err != nil {
		return err
	}
	tty := false
	if f, ok := o.Streams.Out.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	draw := func(w *Why) error {
		if tty && o.Output == "" {
			fmt.Fprint(o.Streams.Out, "\033[H\033[2J")
		}
		return o.print(w, func(t *Text) { renderWhy(t, w) })
	}
	for {
		if err := draw(w); err != nil {
			return err
		}
		if err := o.waitForChange(ctx, c, w); err != nil {
			return err
		}
		if w, err = o.gatherWhy(ctx, name); err != nil {
			return err
		}
		switch {
		case o.Output == "yaml":
			// One YAML document per drawing.
			fmt.Fprintln(o.Streams.Out, "---")
		case !tty && o.Output == "":
			fmt.Fprintln(o.Streams.Out, "---")
		}
	}
}

// waitForChange returns when the app changes after what w shows, or when the nearest
// time w shows is reached; a watch that ends is started again.
func (o *Options) waitForChange(ctx context.Context, c client.WithWatch, w *Why) error {
	// From the version drawn: a change made since is the watch's first event.
	var list v1alpha1.AutonomicAppList
	wi, err := c.Watch(ctx, &list, &client.ListOptions{Namespace: w.Namespace,
		FieldSelector: fields.OneTermEqualSelector("metadata.name", w.App),
		Raw:           &metav1.ListOptions{ResourceVersion: w.resourceVersion, AllowWatchBookmarks: false}})
	if err != nil {
		return apiError(err, "watching AutonomicApp "+w.Namespace+"/"+w.App)
	}
	defer wi.Stop()
	var timer <-chan time.Time
	if next := w.nextTime(); !next.IsZero() {
		timer = time.After(max(next.Sub(o.Now()), 0) + 500*time.Millisecond)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer:
			return nil
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return nil
			}
			switch ev.Type {
			case watch.Deleted:
				return withCode(ExitNotFound, fmt.Errorf("AutonomicApp %s/%s was deleted", w.Namespace, w.App))
			case watch.Error:
				if err := apierrors.FromObject(ev.Object); apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
					// Too old to watch from: read the app again.
					return nil
				}
				return apiError(apierrors.FromObject(ev.Object), "watching AutonomicApp "+w.Namespace+"/"+w.App)
			case watch.Bookmark:
				continue
			}
			return nil
		}
	}
}

// nextTime is the nearest future time the explanation shows, or zero.
func (w *Why) nextTime() time.Time {
	var ts []time.Time
	for _, s := range w.Symptoms {
		if s.ChangesAt != nil {
			ts = append(ts, *s.ChangesAt)
		}
	}
	for _, p := range w.Policies {
		if p.HeldUntil != nil {
			ts = append(ts, *p.HeldUntil)
		}
		if p.Next != nil && p.Next.At != nil {
			ts = append(ts, *p.Next.At)
		}
	}
	ts = slices.DeleteFunc(ts, func(t time.Time) bool { return !t.After(w.Now) })
	if len(ts) == 0 {
		return time.Time{}
	}
	return slices.MinFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
}

// timeOf is a status time in UTC, or nil.
func timeOf(t *metav1.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	return utc(t.Time)
}

func utc(t time.Time) *time.Time {
	u := t.UTC()
	return &u
}

// componentField is a component's field as a symptom reads it.
func componentField(c v1alpha1.ComponentStatus, field string) string {
	v, ok := analyze.ComponentVars(c, c.Kind == "AutonomicApp")[field]
	if !ok {
		return "unknown"
	}
	return fmt.Sprint(v)
}

// limitNames joins the rules that limit an autoscaler, as a phrase.
func limitNames(limits []string) string {
	return strings.Join(limits, " and ")
}
