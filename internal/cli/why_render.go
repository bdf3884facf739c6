package cli

import (
	"fmt"
	"strings"
	"time"
)

// renderWhy draws the chain of judgement top to bottom: the app, its components, its
// sensors, its symptoms, its policies, its guards.
func renderWhy(t *Text, w *Why) {
	head := fmt.Sprintf("AutonomicApp %s/%s: %s, mode %s", w.Namespace, w.App, orDash(w.Phase), w.Mode)
	if w.Paused != "" {
		head += fmt.Sprintf(", paused (%s)", w.Paused)
	}
	t.Line(0, 2, head)
	for _, warn := range w.Warnings {
		t.Line(0, 2, "Warning: "+warn)
	}
	if w.Stale != "" {
		t.Line(0, 2, "Note: "+w.Stale)
	}
	for _, c := range w.Conditions {
		t.Linef(2, 2, "%s=%s (%s, %s): %s", c.Type, c.Status, c.Reason, ago(w.Now, c.Since), c.Message)
	}

	t.Blank()
	t.Line(0, 0, "Components")
	if len(w.Components) == 0 {
		t.Line(2, 2, "none reported yet")
	}
	var rows [][]string
	for _, c := range w.Components {
		rows = append(rows, []string{c.Name, healthWord(c), componentNumbers(c)})
	}
	t.Table(2, rows)

	if len(w.Sensors) > 0 {
		t.Blank()
		t.Line(0, 0, "Sensors")
		rows = nil
		for _, s := range w.Sensors {
			rows = append(rows, []string{s.Name, sensorValue(s), sensorDetail(w.Now, s)})
		}
		t.Table(2, rows)
	}

	if len(w.Symptoms) > 0 {
		t.Blank()
		t.Line(0, 0, "Symptoms")
		for _, s := range w.Symptoms {
			t.Linef(2, 4, "%s: %s", s.Name, symptomState(w.Now, s))
			if s.Expression != "" {
				t.Line(6, 2, s.Expression)
			}
			if len(s.Reads) > 0 {
				var reads []string
				for _, r := range s.Reads {
					reads = append(reads, r.Name+" = "+r.Value)
				}
				t.Line(6, 2, "reads "+strings.Join(reads, ", "))
			}
			if s.Message != "" {
				t.Line(6, 2, s.Message)
			}
			if s.Source != "" {
				t.Line(6, 2, "from "+s.Source)
			}
		}
	}

	if len(w.Policies) > 0 {
		t.Blank()
		t.Line(0, 0, "Policies")
		for _, p := range w.Policies {
			renderPolicy(t, w.Now, p)
		}
	}

	t.Blank()
	t.Line(0, 0, "Guards")
	g := w.Guards
	var parts []string
	if g.Cooldown != "" {
		parts = append(parts, "cooldown "+g.Cooldown)
	}
	if g.MaxActions != "" {
		parts = append(parts, fmt.Sprintf("maxActions %s (%d used)", g.MaxActions, g.ActionsInWindow))
	}
	if g.MaxUnhealthyPods != "" {
		parts = append(parts, "maxUnhealthyPods "+g.MaxUnhealthyPods)
	}
	if len(parts) == 0 {
		parts = append(parts, "no cooldown, rate limit or unhealthy share set")
	}
	t.Line(2, 2, strings.Join(parts, "; "))
	if g.LastActionAt != nil {
		t.Linef(2, 2, "last action %s", ago(w.Now, *g.LastActionAt))
	}
	if v := g.Verdict; v.Held {
		by := "an action now would be held by " + v.Reason
		if v.Until != nil {
			by += " " + until(w.Now, *v.Until)
		}
		t.Line(2, 4, by+": "+v.Message)
	} else {
		t.Line(2, 4, "an action now would pass the pause, mode, cooldown and rate-limit guards")
	}
	if a := w.LastAction; a != nil {
		t.Blank()
		t.Line(0, 0, "Last action")
		what := a.Action
		if a.Target != "" {
			what += " " + a.Target
		}
		line := fmt.Sprintf("%s %s by %s: %s", ago(w.Now, a.Time.UTC()), what, a.Policy, a.Result)
		if a.Outcome != "" {
			line += ", " + string(a.Outcome)
		}
		t.Line(2, 4, line)
		if a.Reason != "" {
			t.Line(6, 2, a.Reason)
		}
	}
}

func renderPolicy(t *Text, now time.Time, p WhyPolicy) {
	head := fmt.Sprintf("%s (%s): %s", p.Name, p.Kind, orDash(p.State))
	switch {
	case p.HeldBy != "" && p.HeldUntil != nil:
		head += " by " + p.HeldBy + " " + until(now, *p.HeldUntil)
	case p.HeldBy != "":
		head += " by " + p.HeldBy
	case p.Reason != "":
		head += " " + p.Reason
	}
	if p.Steps > 0 && p.Step > 0 {
		head += fmt.Sprintf(", step %d of %d", p.Step, p.Steps)
	}
	if p.Primary != "" {
		head += ", primary " + p.Primary
	}
	t.Line(2, 4, head)
	if p.Message != "" {
		t.Line(6, 2, p.Message)
	}
	if a := p.Autoscale; a != nil {
		var rows [][]string
		for _, m := range a.Metrics {
			r := "-"
			if m.Replicas != nil {
				r = fmt.Sprintf("→ %d", *m.Replicas)
			}
			rows = append(rows, []string{m.Sensor, string(m.State), orDash(m.Value), r, m.Message})
		}
		t.Table(6, rows)
		line := fmt.Sprintf("current %d, metrics recommend %d", a.CurrentReplicas, a.RecommendedReplicas)
		if p.DesiredReplicas != nil {
			line += fmt.Sprintf(", desired %d", *p.DesiredReplicas)
		}
		if len(a.LimitedBy) > 0 {
			line += ", limited by " + limitNames(a.LimitedBy)
			if a.LimitedUntil != nil {
				line += " " + until(now, a.LimitedUntil.UTC())
			}
		}
		t.Line(6, 2, line)
	}
	if n := p.Next; n != nil {
		line := "next: " + n.What
		if n.At != nil {
			line += ", " + at(now, *n.At)
		}
		t.Line(6, 2, line)
	}
	if p.Source != "" {
		t.Line(6, 2, "from "+p.Source)
	}
}

func healthWord(c WhyComponent) string {
	switch {
	case !c.Found:
		return "missing"
	case c.Healthy:
		return "healthy"
	}
	return "unhealthy"
}

// componentNumbers are the numbers behind a component's health, those that are not zero.
func componentNumbers(c WhyComponent) string {
	if c.Child || c.Kind == "AutonomicApp" {
		s := "child app, phase " + orDash(string(c.Phase))
		if c.Message != "" {
			s += ": " + c.Message
		}
		return s
	}
	parts := []string{fmt.Sprintf("%s, ready %d/%d, available %d", orDash(c.Kind), c.ReadyReplicas, c.DesiredReplicas, c.AvailableReplicas)}
	for _, n := range []struct {
		v    int32
		name string
	}{{c.Restarts, "restarts"}, {c.CrashLoopingPods, "crash-looping"}, {c.OOMKilledPods, "OOM-killed"}, {c.PendingPods, "pending"}} {
		if n.v > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", n.name, n.v))
		}
	}
	if c.RolloutStuck {
		parts = append(parts, "rollout stuck")
	}
	s := strings.Join(parts, ", ")
	if c.Message != "" {
		s += ": " + c.Message
	}
	return s
}

func sensorValue(s WhySensor) string {
	if s.Error != "" || s.Value == "" {
		return "unavailable"
	}
	return s.Value
}

func sensorDetail(now time.Time, s WhySensor) string {
	var parts []string
	if s.ObservedAt != nil {
		parts = append(parts, "read "+ago(now, s.ObservedAt.UTC()))
	}
	if s.Interval != "" {
		parts = append(parts, "every "+s.Interval)
	}
	if s.Error != "" {
		e := s.Error
		if s.ConsecutiveFailures > 0 {
			e += fmt.Sprintf(" (%d failed polls in a row)", s.ConsecutiveFailures)
		}
		parts = append(parts, e)
	}
	if s.Source != "" {
		parts = append(parts, "from "+s.Source)
	}
	return strings.Join(parts, "; ")
}

func symptomState(now time.Time, s WhySymptom) string {
	var b strings.Builder
	switch {
	case s.Active && s.Since != nil:
		fmt.Fprintf(&b, "active for %s", age(now, *s.Since))
	case s.Active:
		b.WriteString("active")
	case s.Since != nil:
		fmt.Fprintf(&b, "clear for %s", age(now, *s.Since))
	default:
		b.WriteString("clear")
	}
	switch {
	case s.ChangesAt != nil && s.Active:
		fmt.Fprintf(&b, "; its expression has been false for %s, so it clears %s (clearFor %s)",
			age(now, *s.PendingSince), at(now, *s.ChangesAt), orDash(s.ClearFor))
	case s.ChangesAt != nil:
		fmt.Fprintf(&b, "; its expression has held for %s, so it becomes active %s (for %s)",
			age(now, *s.PendingSince), at(now, *s.ChangesAt), orDash(s.For))
	case s.Active && s.Holding:
		b.WriteString("; its expression holds")
	case s.Active:
		b.WriteString("; its expression is false")
	case s.Holding:
		b.WriteString("; its expression holds")
	}
	return b.String()
}

// age is a duration, rounded for a person: 45s, 3m12s, 2h5m, 3d4h.
func age(now, t time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		d = -d
	}
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// ago says how long before now t was.
func ago(now, t time.Time) string {
	if t.After(now) {
		return "in " + age(now, t)
	}
	return age(now, t) + " ago"
}

// at says when t is, from now: "in 25s (10:04:10Z)", or "25s ago (...)" once passed.
func at(now, t time.Time) string {
	return fmt.Sprintf("%s (%s)", ago(now, t), t.UTC().Format("15:04:05Z"))
}

// until is "until 10:04:10Z (in 25s)".
func until(now, t time.Time) string {
	return fmt.Sprintf("until %s (%s)", t.UTC().Format("15:04:05Z"), ago(now, t))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
