package cli

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
)

// timelineMessageRoom is the narrowest message column of the four-column layout; a
// narrower terminal gets two lines per entry instead.
const timelineMessageRoom = 30

// renderTimeline writes r as a table: TIME, SOURCE, WHAT and the message, wrapped to the
// width. TIME is relative to r.Now, or with absolute RFC3339 in UTC. When the message
// would get fewer than timelineMessageRoom columns, each entry takes two rows instead:
// TIME and WHAT, then SOURCE and the message under WHAT.
func renderTimeline(t *Text, r TimelineResult, absolute bool) {
	stamp := func(tm time.Time) string {
		if absolute {
			return tm.UTC().Truncate(time.Second).Format(time.RFC3339)
		}
		return relativeTime(r.Now, tm)
	}
	ref := fmt.Sprintf("AutonomicApp %s/%s", r.Namespace, r.App)
	since, now := r.Since.UTC().Truncate(time.Second).Format(time.RFC3339), r.Now.UTC().Truncate(time.Second).Format(time.RFC3339)
	if len(r.Entries) == 0 {
		t.Linef(0, 2, "%s: nothing happened from %s to now, %s; a longer --since looks further back.", ref, since, now)
		return
	}
	head := fmt.Sprintf("%s: %s from %s to now, %s.", ref, nounCount(len(r.Entries), "entry", "entries"), since, now)
	if r.Omitted > 0 {
		head += fmt.Sprintf(" --limit left out %s.", nounCount(r.Omitted, "earlier entry", "earlier entries"))
	}
	t.Line(0, 2, head)
	t.Blank()

	type cells struct{ time, source, what, message string }
	all := make([]cells, len(r.Entries))
	tw, sw, ww := len("TIME"), len("SOURCE"), len("WHAT")
	for i, e := range r.Entries {
		c := cells{stamp(e.Time), e.Source, timelineWhat(e), timelineMessage(e, stamp)}
		all[i] = c
		tw, sw, ww = max(tw, utf8.RuneCountInString(c.time)), max(sw, utf8.RuneCountInString(c.source)), max(ww, utf8.RuneCountInString(c.what))
	}
	if t.Width-(tw+sw+ww+6) >= timelineMessageRoom {
		rows := [][]string{{"TIME", "SOURCE", "WHAT", "MESSAGE"}}
		for _, c := range all {
			rows = append(rows, []string{c.time, c.source, c.what, c.message})
		}
		t.Table(0, rows)
		return
	}
	rows := [][]string{{"TIME", "WHAT"}, {"", "SOURCE: MESSAGE"}}
	for _, c := range all {
		rows = append(rows, []string{c.time, c.what}, []string{"", c.source + ": " + c.message})
	}
	t.Table(0, rows)
}

// timelineWhat is the WHAT of an entry: its reason; for an action, the action and its
// result (restartPods Succeeded); for a condition, its type and status (Healthy=False);
// after "Warning" for a Warning.
func timelineWhat(e TimelineEntry) string {
	w := e.Reason
	switch e.Kind {
	case TimelineAction:
		w = strings.TrimSpace(e.Action + " " + strings.TrimPrefix(e.Reason, "Action"))
	case TimelineCondition:
		if e.Condition != nil {
			w = e.Condition.Type + "=" + e.Condition.Status
		}
	}
	if e.Type == corev1.EventTypeWarning {
		w = "Warning " + w
	}
	return w
}

// timelineMessage is an entry's message; a condition's starts with its reason, and an
// Event that repeated says how often and when it was last seen.
func timelineMessage(e TimelineEntry, stamp func(time.Time) string) string {
	msg := e.Message
	if e.Kind == TimelineCondition && e.Reason != "" {
		msg = strings.TrimSpace(e.Reason + ": " + msg)
	}
	if e.Count > 1 && e.LastTime != nil {
		msg = strings.TrimSpace(fmt.Sprintf("%s (%d times, the last at %s)", msg, e.Count, stamp(*e.LastTime)))
	}
	return msg
}

// relativeTime is t from now, to the second: -45s, -3m12s, -1h02m05s, -2d03h; +5s for a
// time after now (a clock ahead of this one), now for the same second.
func relativeTime(now, t time.Time) string {
	d := now.Truncate(time.Second).Sub(t.Truncate(time.Second))
	sign := "-"
	if d < 0 {
		sign, d = "+", -d
	}
	s := int64(d / time.Second)
	switch {
	case s == 0:
		return "now"
	case s < 60:
		return fmt.Sprintf("%s%ds", sign, s)
	case s < 3600:
		return fmt.Sprintf("%s%dm%02ds", sign, s/60, s%60)
	case s < 48*3600:
		return fmt.Sprintf("%s%dh%02dm%02ds", sign, s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%s%dd%02dh", sign, s/86400, s/3600%24)
}

func nounCount(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
