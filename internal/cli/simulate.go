package cli

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/analyze"
	"github.com/homeostat-dev/homeostat/internal/plan"
	"github.com/homeostat-dev/homeostat/internal/replay"
)

// defaultSimulationStep is the step when no sensor sets a shorter interval: a sensor's
// default interval.
const defaultSimulationStep = 15 * time.Second

// SimulateResult is what simulate prints with -o json|yaml: the range, where the history
// came from, and what the current spec (and, with --policy-file, the edited one) would
// have decided.
type SimulateResult struct {
	Namespace string          `json:"namespace"`
	App       string          `json:"app"`
	From      time.Time       `json:"from"`
	To        time.Time       `json:"to"`
	Step      replay.Duration `json:"step"`
	// History says where the history was read.
	History HistorySource `json:"history"`
	// SharedPolicies are the HealingPolicies and ClusterHealingPolicies merged into the
	// app's spec, as the manager merges them.
	SharedPolicies []string `json:"sharedPolicies,omitempty"`
	// Warnings say what is missing from the history or was assumed.
	Warnings []string `json:"warnings,omitempty"`
	// Notes are the modelling assumptions behind every number.
	Notes []string `json:"notes"`
	// Current is the replay of the app's current spec; Edited that of the spec
	// --policy-file makes, and Comparison sets the two side by side.
	Current    SimulatedRun       `json:"current"`
	Edited     *SimulatedRun      `json:"edited,omitempty"`
	Comparison *replay.Comparison `json:"comparison,omitempty"`
}

// HistorySource is where the history was read.
type HistorySource struct {
	// Prometheus is the address (any password redacted).
	Prometheus string `json:"prometheus"`
	// Queries are the range queries run.
	Queries []string `json:"queries"`
}

// SimulatedRun is the replay of one spec.
type SimulatedRun struct {
	// Spec is "current", or the --policy-file the spec was edited with.
	Spec string `json:"spec"`
	replay.Result
}

// simulateFlags are simulate's own flags.
type simulateFlags struct {
	from, to   string
	step       time.Duration
	policyFile string
	prometheus string
}

func newSimulateCommand(o *Options) *cobra.Command {
	f := simulateFlags{}
	cmd := &cobra.Command{
		Use:   "simulate APP --from TIME [--to TIME] [--step DURATION] [--policy-file FILE] [--prometheus URL]",
		Short: "Replay recorded sensor history through the app's policies: what they would have done",
		Long: `simulate is a backtest. It reads the app's recorded history from Prometheus (the component
sensors and polled sensors the manager exports, and each prometheus sensor's own query) and
replays it through the same analyze and plan code the manager decides with, one reconcile per
step under a fake clock. It prints the decisions the app's policies, with the HealingPolicies
and ClusterHealingPolicies that select it, would have made: when, which policy, which action
(and replicas for a scale), and plan's reason; then per policy the actions, holds, flaps,
replicas and time away from each autoscale metric's goal.

With --policy-file, the spec in the file runs over the same history beside the current one,
and the two are compared. The file holds one manifest: an AutonomicApp, whose spec replaces
the app's spec, or a HealingPolicy or ClusterHealingPolicy, simulated as if applied and
selecting the app, merged into the app's spec as the manager merges shared policies.

Prometheus' address is --prometheus, or else the HOMEOSTAT_PROMETHEUS environment variable.
It must scrape the manager's metrics endpoint, and the manager must run with --sensor-gauges
(on by default). Nothing is changed in the cluster.

The numbers rest on assumptions the output notes: scaling is simulated with the load
conserved, every action succeeds, the effect of remediation cannot be simulated (the
recorded component sensors show what really happened), and failover policies are not
simulated.`,
		Example: `  # What would the app's policies have done over the last 6 hours?
  kubectl homeostat simulate shop -n shop --from -6h --prometheus http://127.0.0.1:9090

  # Would a wider band have scaled less yesterday morning?
  export HOMEOSTAT_PROMETHEUS=http://127.0.0.1:9090
  kubectl homeostat simulate shop -n shop --from 2025-03-01T06:00:00Z --to 2025-03-01T12:00:00Z \
    --policy-file shop-wider-band.yaml`,
		Args: oneApp,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.simulate(cmd.Context(), args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.from, "from", "", "Start of the history to replay: a duration before now (-6h, -30m, -2d), an RFC3339 time, or now. Required.")
	fl.StringVar(&f.to, "to", "now", "End of the history to replay: a duration before now, an RFC3339 time, or now.")
	fl.DurationVar(&f.step, "step", 0, "Time between two replayed reconciles, in whole seconds, at least 1s; default: the shortest sensor interval of the app, 15s without sensors.")
	fl.StringVar(&f.policyFile, "policy-file", "", "A YAML file with an AutonomicApp, HealingPolicy or ClusterHealingPolicy to replay beside the current spec, and compare.")
	fl.StringVar(&f.prometheus, "prometheus", "", "Prometheus' base URL, for example http://127.0.0.1:9090; default $"+PrometheusEnv+".")
	return cmd
}

// simulate runs the command once.
func (o *Options) simulate(ctx context.Context, name string, f simulateFlags) error {
	now := o.Now().UTC().Truncate(time.Second)
	from, to, err := simulationRange(f.from, f.to, now)
	if err != nil {
		return err
	}
	if f.step != 0 && (f.step < replay.MinStep || f.step%time.Second != 0) {
		return usageError(fmt.Sprintf("--step %s: give a whole number of seconds, at least %s (the shortest sensor interval)", f.step, replay.MinStep))
	}
	var pf *policyFile
	if f.policyFile != "" {
		if pf, err = readPolicyFile(f.policyFile); err != nil {
			return err
		}
	}
	addr, err := prometheusAddress(f.prometheus)
	if err != nil {
		return err
	}
	app, err := o.getApp(ctx, name)
	if err != nil {
		return err
	}
	res := SimulateResult{Namespace: app.Namespace, App: app.Name, From: from, To: to, Notes: slices.Clone(replay.Notes)}

	shared, nsLabels, warnings, err := o.sharedPolicies(ctx, app)
	if err != nil {
		return err
	}
	res.Warnings = append(res.Warnings, warnings...)
	for _, p := range shared {
		res.SharedPolicies = append(res.SharedPolicies, p.Source())
	}
	res.Warnings = append(res.Warnings, appWarnings(app)...)
	view, merged := plan.MergedView(app, shared)
	if errs := analyze.ValidateMerged(view, merged.PolicyFromShared); len(errs) > 0 {
		return fmt.Errorf("AutonomicApp %s/%s is invalid, so the manager runs none of its policies and there is nothing to replay: %s",
			app.Namespace, app.Name, (&replay.InvalidSpecError{Errors: errs}).Error())
	}
	views := []*v1alpha1.AutonomicApp{view}
	var eview *v1alpha1.AutonomicApp
	var emerged plan.Merged
	if pf != nil {
		var w []string
		eview, emerged, w = pf.view(app, slices.Clone(shared), nsLabels)
		res.Warnings = append(res.Warnings, w...)
		if errs := analyze.ValidateMerged(eview, emerged.PolicyFromShared); len(errs) > 0 {
			return pf.fileErrors(eview, emerged, errs)
		}
		views = append(views, eview)
	}

	step, w := simulationStep(f.step, from, to, views...)
	res.Warnings = append(res.Warnings, w...)
	res.Step = replay.Duration(step)
	reader, err := newHistoryReader(addr, from, to, step)
	if err != nil {
		return err
	}
	var sources []sensorSource
	for _, v := range views {
		for _, s := range v.Spec.Sensors {
			if src := sourceOf(s); !slices.Contains(sources, src) {
				sources = append(sources, src)
			}
		}
	}
	hist, w, err := reader.readHistory(ctx, app.Namespace, app.Name, sources)
	if err != nil {
		return err
	}
	res.Warnings = append(res.Warnings, w...)
	res.History = HistorySource{Prometheus: reader.shown, Queries: reader.queries}
	seen := map[string]bool{}
	for _, v := range views {
		for _, cw := range hist.componentWarnings(v, from, to) {
			if !seen[cw] {
				seen[cw] = true
				res.Warnings = append(res.Warnings, cw)
			}
		}
	}

	start := hist.startReplicas()
	cur, err := replay.Run(replay.Input{App: view, Merged: &merged, Frames: hist.frames(view), Start: start, From: from, To: to, Step: step})
	if err != nil {
		return err
	}
	res.Current = SimulatedRun{Spec: "current", Result: cur}
	if eview != nil {
		ed, err := replay.Run(replay.Input{App: eview, Merged: &emerged, Frames: hist.frames(eview), Start: start, From: from, To: to, Step: step})
		if err != nil {
			return err
		}
		res.Edited = &SimulatedRun{Spec: pf.path, Result: ed}
		c := replay.Compare(cur, ed)
		res.Comparison = &c
	}
	return o.print(res, func(t *Text) { renderSimulate(t, res) })
}

// appWarnings say what of the app's state the simulation does not follow.
func appWarnings(app *v1alpha1.AutonomicApp) []string {
	var out []string
	if m := app.Spec.Mode; m != "" && m != v1alpha1.ModeActive {
		out = append(out, fmt.Sprintf("the app's mode is %s: its policies are simulated as if it were Active", m))
	}
	if _, ok := app.Annotations[v1alpha1.PausedAnnotation]; ok {
		out = append(out, "the app carries the paused annotation: its policies are simulated as if it did not")
	}
	for _, p := range app.Status.Policies {
		if p.State == v1alpha1.PolicyConflict {
			out = append(out, fmt.Sprintf("policy %s is in Conflict now (%s): the simulation assumes no other autoscaler", p.Name, p.Message))
		}
	}
	return out
}

// simulationRange reads --from and --to: from must be given and be before to, and to
// must not be in the future.
func simulationRange(fromFlag, toFlag string, now time.Time) (time.Time, time.Time, error) {
	if fromFlag == "" {
		return time.Time{}, time.Time{}, usageError("give --from, the start of the history to replay, for example --from -6h")
	}
	from, err := parseWhen("--from", fromFlag, now)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	to, err := parseWhen("--to", toFlag, now)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	if to.After(now) {
		return time.Time{}, time.Time{}, usageError(fmt.Sprintf("--to %s is in the future; the history ends now (%s)", simStamp(to), simStamp(now)))
	}
	if !from.Before(to) {
		return time.Time{}, time.Time{}, usageError(fmt.Sprintf("--from %s is not before --to %s: give a start before the end", simStamp(from), simStamp(to)))
	}
	return from, to, nil
}

// parseWhen reads a time flag: now, a duration before now (-6h, -30m, -2d, Prometheus'
// duration syntax), or an RFC3339 time; the result is whole seconds, in UTC.
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	switch {
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "-"):
		if d, err := model.ParseDuration(s[1:]); err == nil && d > 0 {
			return now.Add(-time.Duration(d)).Truncate(time.Second), nil
		}
	default:
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t.UTC().Truncate(time.Second), nil
		}
	}
	hint := ""
	if _, err := model.ParseDuration(s); err == nil {
		hint = fmt.Sprintf(" (%s before now is -%s)", s, s)
	}
	return time.Time{}, usageError(fmt.Sprintf("%s %q is not a time%s: give a duration before now (-6h, -30m, -2d), "+
		"an RFC3339 time (2025-03-01T12:00:00Z) or now", flag, s, hint))
}

// simulationStep is --step, or else the shortest sensor interval of the specs (15s
// without sensors), raised with a warning when the range would take more than
// maxSimulatedSteps steps.
func simulationStep(flag time.Duration, from, to time.Time, specs ...*v1alpha1.AutonomicApp) (time.Duration, []string) {
	step := flag
	if step == 0 {
		step = defaultSimulationStep
		for _, v := range specs {
			for _, s := range v.Spec.Sensors {
				if s.Interval != nil && s.Interval.Duration > 0 {
					step = min(step, s.Interval.Duration)
				}
			}
		}
		step = max(step.Truncate(time.Second), replay.MinStep)
	}
	span := to.Sub(from)
	if n := int64(span/step) + 1; n > maxSimulatedSteps {
		raised := time.Duration(math.Ceil(span.Seconds()/float64(maxSimulatedSteps-1))) * time.Second
		return raised, []string{fmt.Sprintf("%s to %s at a step of %s is %d steps; the step is raised to %s to stay within %d",
			simStamp(from), simStamp(to), step, n, raised, maxSimulatedSteps)}
	}
	return step, nil
}
