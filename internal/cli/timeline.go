package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// TimelineResult is what timeline prints with -o json|yaml: the entries of one app's
// window, oldest first.
type TimelineResult struct {
	Namespace string    `json:"namespace"`
	App       string    `json:"app"`
	Now       time.Time `json:"now"`
	// Since is where the window starts (--since): older entries are left out.
	Since time.Time `json:"since"`
	// Omitted counts the entries of the window that --limit left out, the oldest ones.
	Omitted int `json:"omitted,omitempty"`
	// Warnings are what the plugin could not read, and what that leaves out.
	Warnings []string        `json:"warnings,omitempty"`
	Entries  []TimelineEntry `json:"entries"`
}

// TimelineKind says what a timeline entry records.
type TimelineKind string

const (
	// TimelineSymptom is a symptom of the app that became active or cleared (reason
	// SymptomBecameActive or SymptomCleared), from its Event or, once the Event has
	// expired, from status.symptoms.
	TimelineSymptom TimelineKind = "Symptom"
	// TimelineCondition is the last transition of one of the app's conditions.
	TimelineCondition TimelineKind = "Condition"
	// TimelineAction is an action record of the app's history, at the time its intent was
	// recorded, with its result (reason Action<Result>: ActionSucceeded, ActionFailed,
	// ActionPending, ActionSkipped, ActionCancelled, ActionForbidden); or, once the record
	// has left the bounded history, the Event the action left (ActionSucceeded,
	// ActionFailed, ActionForbidden, ActionCancelled, DryRun).
	TimelineAction TimelineKind = "Action"
	// TimelineOutcome is the verdict on an action record, at the time it was judged
	// (reason ActionVerified, ActionIneffective or ActionOutcomeUnknown).
	TimelineOutcome TimelineKind = "Outcome"
	// TimelineEvent is any other Event: Homeostat's on the app (a policy's plan, an
	// action in progress, NeedsAttention), and the Events of the components' workloads,
	// their ReplicaSets and pods, and of child apps.
	TimelineEvent TimelineKind = "Event"
)

// TimelineEntry is one thing that happened.
type TimelineEntry struct {
	// Time is when it happened; for an Event that repeated, its first occurrence.
	Time time.Time `json:"time"`
	// LastTime and Count are set for an Event that repeated: its last occurrence and how
	// many there were.
	LastTime *time.Time `json:"lastTime,omitempty"`
	Count    int32      `json:"count,omitempty"`
	// Source is Homeostat for what Homeostat recorded about the app, else the object the
	// Event is about, as Kind/name: Deployment/web, Pod/web-6b9d5c7f84-z5t8n.
	Source string       `json:"source"`
	Kind   TimelineKind `json:"kind"`
	// Type is Normal or Warning.
	Type    string `json:"type"`
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
	// Component is the component whose workload, ReplicaSet, pod or child app the entry is
	// about, or that an action targeted.
	Component string `json:"component,omitempty"`
	// Action and ActionID name the action an Action or Outcome entry, or an Event of
	// Homeostat, is about: restartPods, heal-web-mxai1xjo-3f9a1c.
	Action   string `json:"action,omitempty"`
	ActionID string `json:"actionID,omitempty"`
	// Symptom names the symptom of a Symptom entry.
	Symptom string `json:"symptom,omitempty"`
	// Condition is the condition of a Condition entry, with the status it took.
	Condition *TimelineConditionChange `json:"condition,omitempty"`
}

// TimelineConditionChange is the condition a Condition entry is about.
type TimelineConditionChange struct {
	Type   string `json:"type"`
	Status string `json:"status"`
}

// defaultSince is the window timeline shows without --since.
const defaultSince = "1h"

func newTimelineCommand(o *Options) *cobra.Command {
	since, limit, absolute := defaultSince, 0, false
	cmd := &cobra.Command{
		Use:   "timeline APP",
		Short: "List what happened to an app, in order: symptoms, actions, outcomes, conditions and Events",
		Long: `timeline lists what happened to an AutonomicApp, oldest first, in one list: its symptoms
becoming active and clearing; the actions of its history at the time each intent was recorded,
with their result; each action's outcome (Verified, Ineffective, Unknown) when it was judged;
the last transition of each condition; Homeostat's Events on the app; and the Events of its
components: each workload, a Deployment's ReplicaSets and the pods of the workload, including
pods and ReplicaSets already deleted, and the Events of child apps.

TIME is relative to now (-3m12s); --absolute prints RFC3339 times in UTC instead, which
--since accepts. Entries of the same second are ordered cause before effect: a workload's
Warning Events, then symptoms, conditions, outcomes, actions, Homeostat's other Events, and
then the workload's Normal Events. An Event that repeated is listed once, at its first
occurrence, with its count and last time.

What you may not read (Events, pods, ReplicaSets, the workloads) is left out with a warning
on the error stream; the app itself must be readable.`,
		Example: `  kubectl homeostat timeline shop -n shop
  kubectl homeostat timeline shop -n shop --since 15m --limit 40
  kubectl homeostat timeline shop -n shop --since 2026-12-05T14:00:00Z --absolute
  kubectl homeostat timeline shop -n shop -o json`,
		Args: oneApp,
	}
	cmd.Flags().StringVar(&since, "since", defaultSince, "Where the window starts: a duration before now (30m, 2h) or an RFC3339 time.")
	cmd.Flags().IntVar(&limit, "limit", 0, "Show at most this many entries, the latest ones; 0 shows all.")
	cmd.Flags().BoolVar(&absolute, "absolute", false, "Print TIME as RFC3339 in UTC instead of relative to now.")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		now := o.Now()
		from, err := parseSince(since, now)
		if err != nil {
			return err
		}
		if limit < 0 {
			return usageError(fmt.Sprintf("--limit %d is negative: give a number of entries, or 0 for all", limit))
		}
		ctx := cmd.Context()
		app, err := o.getApp(ctx, args[0])
		if err != nil {
			return err
		}
		c, err := o.kube()
		if err != nil {
			return err
		}
		in, err := gatherTimeline(ctx, c, app)
		if err != nil {
			return err
		}
		res := buildTimeline(in, now, from, limit)
		for _, w := range res.Warnings {
			fmt.Fprintf(o.Streams.ErrOut, "Warning: %s\n", w)
		}
		return o.print(res, func(t *Text) { renderTimeline(t, res, absolute) })
	}
	return cmd
}

// parseSince reads --since: a positive duration before now, or an RFC3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, usageError(fmt.Sprintf("--since %s is not a positive duration: give how far back to look, such as 30m or 2h", s))
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, usageError(fmt.Sprintf("--since %q is neither a duration (30m, 2h) nor an RFC3339 time (2026-12-05T14:00:00Z)", s))
}
