package cli

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/homeostat-dev/homeostat/internal/replay"
)

// renderSimulate lays out a simulation for the terminal: the header (app, range, step,
// where the history came from, warnings), the decisions and summary of each run, the
// comparison with --policy-file, and the modelling notes. It is a pure function of the
// result.
func renderSimulate(t *Text, r SimulateResult) {
	t.Linef(0, 2, "Simulation of AutonomicApp %s/%s from %s to %s, one reconcile every %s.",
		r.Namespace, r.App, simStamp(r.From), simStamp(r.To), short(time.Duration(r.Step)))
	t.Linef(0, 2, "History: Prometheus %s: %s.", r.History.Prometheus, historyWhat(r.History.Queries))
	if len(r.SharedPolicies) > 0 {
		t.Linef(0, 2, "Policies: the app's own, merged with %s.", strings.Join(r.SharedPolicies, ", "))
	} else {
		t.Line(0, 2, "Policies: the app's own; no HealingPolicy or ClusterHealingPolicy selects it.")
	}
	for _, w := range r.Warnings {
		t.Line(0, 2, "Warning: "+withStop(w))
	}
	t.Blank()
	renderRun(t, "the current spec", r.Current)
	if r.Edited != nil {
		t.Blank()
		renderRun(t, "the edited spec ("+r.Edited.Spec+")", *r.Edited)
		if r.Comparison != nil {
			t.Blank()
			renderComparison(t, r.Edited.Spec, *r.Comparison)
		}
	}
	t.Blank()
	t.Line(0, 0, "Notes:")
	for _, n := range r.Notes {
		t.Line(2, 2, "- "+n)
	}
}

// renderRun lays out one run: its decisions, in time order, then its summary.
func renderRun(t *Text, what string, run SimulatedRun) {
	if len(run.Decisions) == 0 {
		t.Linef(0, 2, "Decisions of %s: none; its policies would have done nothing over %s.",
			what, countNoun(run.Steps, "reconcile", "reconciles"))
	} else {
		t.Linef(0, 2, "Decisions of %s: %d over %s.", what, len(run.Decisions), countNoun(run.Steps, "reconcile", "reconciles"))
		// One row per decision (time, policy, what it did), the policies aligned across
		// rows, and plan's reason under it.
		width := 0
		for _, d := range run.Decisions {
			width = max(width, utf8.RuneCountInString(d.Policy))
		}
		for _, d := range run.Decisions {
			pad := strings.Repeat(" ", width-utf8.RuneCountInString(d.Policy))
			t.Table(2, [][]string{{simStamp(d.Time), d.Policy + pad, decisionCell(d)}})
			t.Line(6, 0, reasonCell(d))
		}
	}
	for _, g := range run.Gaps {
		t.Linef(2, 2, "No component sensors were recorded from %s to %s: nothing was decided then.", simStamp(g.From), simStamp(g.To))
	}
	if len(run.Policies) == 0 {
		t.Line(0, 2, "The spec has no policies.")
		return
	}
	t.Blank()
	t.Linef(0, 2, "Summary of %s:", what)
	if wideText(t) {
		rows := [][]string{{"POLICY", "KIND", "ACTIONS", "HELD", "FLAPS", "REPLICAS", "DETAILS"}}
		for _, p := range run.Policies {
			rows = append(rows, []string{p.Policy, p.Kind, count0(p.Simulated, p.Actions), count0(p.Simulated, p.Held),
				flapsCell(&p), replicasCell(p.Replicas), detailsCell(p)})
		}
		t.Table(2, rows)
	} else {
		for _, p := range run.Policies {
			t.Linef(2, 4, "%s (%s)", p.Policy, p.Kind)
			t.Linef(6, 0, "actions %s, held %s, flaps %s, replicas %s; %s", count0(p.Simulated, p.Actions),
				count0(p.Simulated, p.Held), flapsCell(&p), replicasCell(p.Replicas), detailsCell(p))
		}
	}
	if hasReplicas(run) {
		t.Line(2, 2, "Replicas are the simulated replicas: min/max/time-weighted mean.")
	}
	for _, n := range run.NotSimulated {
		t.Linef(2, 4, "%s: %s", n.Policy, n.Reason)
	}
}

// renderComparison sets the two runs side by side, then lists the first decisions that
// differ.
func renderComparison(t *Text, file string, c replay.Comparison) {
	t.Linef(0, 2, "Comparison, current -> edited (%s):", file)
	rows := [][]string{{"POLICY", "ACTIONS", "HELD", "FLAPS", "REPLICAS", "AWAY FROM GOAL"}}
	for _, p := range c.Policies {
		rows = append(rows, []string{p.Policy,
			sideBySide(p.Current, p.Edited, func(s *replay.PolicySummary) string { return count0(s.Simulated, s.Actions) }),
			sideBySide(p.Current, p.Edited, func(s *replay.PolicySummary) string { return count0(s.Simulated, s.Held) }),
			sideBySide(p.Current, p.Edited, flapsCell),
			sideBySide(p.Current, p.Edited, func(s *replay.PolicySummary) string { return replicasCell(s.Replicas) }),
			awayComparison(p.Current, p.Edited),
		})
	}
	if wideText(t) {
		t.Table(2, rows)
	} else {
		for _, r := range rows[1:] {
			t.Line(2, 4, r[0])
			t.Linef(6, 0, "actions %s, held %s, flaps %s, replicas %s; away from goal: %s", r[1], r[2], r[3], r[4], r[5])
		}
	}
	if c.SameDecisions {
		t.Line(0, 2, "Both specs make the same decisions over this history.")
		return
	}
	t.Line(0, 2, "First decisions that differ:")
	if wideText(t) {
		rows = [][]string{{"TIME", "POLICY", "CURRENT", "EDITED"}}
		for _, d := range c.FirstDifferences {
			rows = append(rows, []string{simStamp(d.Time), differingPolicy(d), decisionOrNone(d.Current), decisionOrNone(d.Edited)})
		}
		t.Table(2, rows)
		return
	}
	for _, d := range c.FirstDifferences {
		t.Linef(2, 4, "%s  %s", simStamp(d.Time), differingPolicy(d))
		t.Line(6, 9, "current: "+decisionOrNone(d.Current))
		t.Line(6, 8, "edited: "+decisionOrNone(d.Edited))
	}
}

// historyWhat says which series the queries read: the manager's, by name, and how many
// sensors' own queries.
func historyWhat(queries []string) string {
	var manager []string
	own := 0
	for _, q := range queries {
		name, _, _ := strings.Cut(q, "{")
		if strings.HasPrefix(q, "homeostat_") {
			manager = append(manager, name)
		} else {
			own++
		}
	}
	s := "the manager's " + joinWithAnd(manager)
	if own > 0 {
		s += ", and the own query of " + countNoun(own, "prometheus sensor", "prometheus sensors")
	}
	return s
}

func joinWithAnd(items []string) string {
	switch len(items) {
	case 0:
		return "nothing"
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// wideText says whether the text is wide enough for tables.
func wideText(t *Text) bool { return t.Width >= 80 }

func differingPolicy(d replay.DecisionDifference) string {
	if d.Current != nil {
		return d.Current.Policy
	}
	if d.Edited != nil {
		return d.Edited.Policy
	}
	return ""
}

// withStop ends s with a full stop unless it ends with a mark of its own.
func withStop(s string) string {
	if strings.HasSuffix(s, ".") || strings.HasSuffix(s, "?") || strings.HasSuffix(s, "!") {
		return s
	}
	return s + "."
}

// decisionCell says what a decision did, in a few words: "scale web 2 -> 4",
// "restartPods web, step 1", "held: notify, step 1 (Cooldown)".
func decisionCell(d replay.Decision) string {
	switch d.Kind {
	case replay.KindAct, replay.KindHeld:
		s := d.Action
		if d.Component != "" {
			s += " " + d.Component
		}
		if d.FromReplicas != nil && d.Replicas != nil {
			s += fmt.Sprintf(" %d -> %d", *d.FromReplicas, *d.Replicas)
		}
		if d.Step > 0 {
			s += fmt.Sprintf(", step %d", d.Step)
		}
		if d.Result != "" {
			s += " (" + strings.ToLower(d.Result) + ")"
		}
		if d.Kind == replay.KindHeld {
			s = fmt.Sprintf("held: %s (%s)", s, d.Guard)
		}
		return s
	case replay.KindHold:
		return strings.TrimSpace("hold " + d.Component)
	case replay.KindHealed:
		return "healed"
	case replay.KindExhausted:
		return "ladder exhausted"
	case replay.KindGiveUp:
		return "gave up"
	}
	return d.Kind
}

func decisionOrNone(d *replay.Decision) string {
	if d == nil {
		return "-"
	}
	return decisionCell(*d)
}

// reasonCell is plan's reason, with the verdict plan reached later in the replay.
func reasonCell(d replay.Decision) string {
	if d.Outcome == "" {
		return d.Reason
	}
	return fmt.Sprintf("%s Outcome: %s.", withStop(d.Reason), d.Outcome)
}

func count0(simulated bool, n int) string {
	if !simulated {
		return "-"
	}
	return fmt.Sprint(n)
}

func flapsCell(p *replay.PolicySummary) string {
	if p.Kind != "Autoscale" {
		return "-"
	}
	return fmt.Sprint(p.Flaps)
}

func replicasCell(r *replay.ReplicaStats) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%d/%d/%s", r.Min, r.Max, trimDecimals(r.Mean))
}

func hasReplicas(run SimulatedRun) bool {
	for _, p := range run.Policies {
		if p.Replicas != nil {
			return true
		}
	}
	return false
}

// detailsCell is the rest of a policy's summary: where it comes from, a ladder's
// episodes, an autoscaler's time away from each metric's goal.
func detailsCell(p replay.PolicySummary) string {
	var parts []string
	switch {
	case !p.Simulated:
		parts = append(parts, "not simulated")
	case p.Kind == "Remediate":
		parts = append(parts, countNoun(p.Episodes, "episode", "episodes"))
	case p.Kind == "Autoscale":
		parts = append(parts, "flap window "+short(time.Duration(p.FlapWindow)))
		for _, m := range p.Metrics {
			model := "as recorded"
			if m.Model == replay.ModelLoadConserved {
				model = "load conserved"
			}
			s := fmt.Sprintf("%s (%s, %s): outside %s", m.Sensor, m.Goal, model, short(time.Duration(m.Outside)))
			if m.Outside > 0 {
				s += fmt.Sprintf(" (above %s, below %s)", short(time.Duration(m.Above)), short(time.Duration(m.Below)))
			}
			if m.Unavailable > 0 {
				s += ", unavailable " + short(time.Duration(m.Unavailable))
			}
			parts = append(parts, s)
		}
	}
	if p.Source != "" {
		parts = append(parts, "from "+p.Source)
	}
	return strings.Join(parts, "; ")
}

// awayComparison is each metric's time outside its goal in both runs.
func awayComparison(cur, ed *replay.PolicySummary) string {
	var sensors []string
	outside := map[string][2]string{}
	for i, s := range []*replay.PolicySummary{cur, ed} {
		if s == nil {
			continue
		}
		for _, m := range s.Metrics {
			o, ok := outside[m.Sensor]
			if !ok {
				sensors = append(sensors, m.Sensor)
				o = [2]string{"-", "-"}
			}
			o[i] = short(time.Duration(m.Outside))
			outside[m.Sensor] = o
		}
	}
	if len(sensors) == 0 {
		return "-"
	}
	var parts []string
	for _, s := range sensors {
		parts = append(parts, fmt.Sprintf("%s outside %s -> %s", s, outside[s][0], outside[s][1]))
	}
	return strings.Join(parts, "; ")
}

// sideBySide is "current -> edited" of one cell, "-" for a side without the policy.
func sideBySide(cur, ed *replay.PolicySummary, cell func(*replay.PolicySummary) string) string {
	side := func(s *replay.PolicySummary) string {
		if s == nil {
			return "-"
		}
		return cell(s)
	}
	a, b := side(cur), side(ed)
	if a == "-" && b == "-" {
		return "-"
	}
	return a + " -> " + b
}

func trimDecimals(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", f), "0"), ".")
}

func countNoun(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
