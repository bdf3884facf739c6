package plan

import (
	"fmt"
	"math"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// Guard reasons, in the order the guards are checked.
const (
	ReasonPaused           = "Paused"
	ReasonStaleCache       = "StaleCache"
	ReasonStorm            = v1alpha1.ReasonStormDetected
	ReasonCooldown         = "Cooldown"
	ReasonRateLimited      = "RateLimited"
	ReasonTooManyUnhealthy = "TooManyUnhealthy"
	ReasonDryRun           = "DryRun"
)

// GuardInput is what the guards look at before an action.
type GuardInput struct {
	// Mode is the app's spec.mode.
	Mode v1alpha1.Mode
	// PausedAnnotation is true when the app carries the paused annotation.
	PausedAnnotation bool
	// StaleCache, when not empty, says in a sentence why the manager's view of the
	// cluster may be old: a watch of its cache failed (the API server was unreachable) and
	// has not listed again since. Every action waits; StaleCacheRecheck is when to look
	// again.
	StaleCache        string
	StaleCacheRecheck time.Time
	// Storm is true while the cluster-wide storm breaker holds disruptive actions.
	Storm bool
	// Cooldown is the least time between two actions of the app.
	Cooldown time.Duration
	// LastActionAt is when the app last acted (zero when never).
	LastActionAt time.Time
	// MaxActions caps actions per window; nil when unset.
	MaxActions *v1alpha1.RateLimit
	// ActionTimes are the times of the app's recent actions, from the ledger.
	ActionTimes []time.Time
	// MaxUnhealthyPods is the unhealthy share (or count) above which disruptive actions
	// wait; nil when unset.
	MaxUnhealthyPods *intstr.IntOrString
	// MaxUnhealthyPodsAlso is a second such limit, of the other kind (a count beside a
	// percentage), that an enforced ClusterHealingPolicy sets (Merged.MaxUnhealthyPodsAlso):
	// both must hold. Nil when unset.
	MaxUnhealthyPodsAlso *intstr.IntOrString
	// TotalPods, UnhealthyPods and InFlightPods count the app's pods; in-flight pods are
	// those an unfinished action is disrupting, and count as unhealthy.
	TotalPods, UnhealthyPods, InFlightPods int
}

// Verdict of the guards on one action.
type Verdict struct {
	// Held is true when the action must wait.
	Held bool
	// Reason is a CamelCase word for the guard that held it.
	Reason string
	// Message says which guard held the action and until when, in a sentence.
	Message string
	// Until is when the guard may let the action through; zero when only a change of
	// the observed state can.
	Until time.Time
	// RecordOnly is true, for an action no guard holds, when the app's mode is DryRun:
	// the decision is recorded in the ledger as it would be in Active mode, and nothing
	// is changed.
	RecordOnly bool
}

// CheckGuards decides whether an action may run now. Guards are checked in a fixed
// order: pause, stale cache, storm breaker, cooldown, rate limit, unhealthy share. The
// storm breaker and the unhealthy share hold only disruptive actions.
func CheckGuards(g GuardInput, disruptive bool, now time.Time) Verdict {
	if g.Mode == v1alpha1.ModePaused {
		return Verdict{Held: true, Reason: ReasonPaused, Message: "The app's mode is Paused: no action is taken until it is Active or DryRun."}
	}
	if g.PausedAnnotation {
		return Verdict{Held: true, Reason: ReasonPaused, Message: fmt.Sprintf("The app carries the %s annotation: no action is taken until it is removed.", v1alpha1.PausedAnnotation)}
	}
	if g.StaleCache != "" {
		return Verdict{Held: true, Reason: ReasonStaleCache, Until: g.StaleCacheRecheck,
			Message: g.StaleCache + " No action runs on a view of the cluster that may be old."}
	}
	if disruptive && g.Storm {
		return Verdict{Held: true, Reason: ReasonStorm, Message: "Too many apps in the cluster are unhealthy at once: disruptive actions are suspended cluster-wide until the share falls."}
	}
	if g.Cooldown > 0 && !g.LastActionAt.IsZero() {
		if until := g.LastActionAt.Add(g.Cooldown); now.Before(until) {
			return Verdict{Held: true, Reason: ReasonCooldown, Until: until, Message: fmt.Sprintf(
				"Cooldown: the app last acted at %s and guards.cooldown is %s; the action waits until %s.",
				stamp(g.LastActionAt), g.Cooldown, stamp(until))}
		}
	}
	if g.MaxActions != nil {
		if held, until, n := rateLimited(g.ActionTimes, int(g.MaxActions.Count), g.MaxActions.Per.Duration, now); held {
			return Verdict{Held: true, Reason: ReasonRateLimited, Until: until, Message: fmt.Sprintf(
				"Rate limit: %d actions within %s already (guards.maxActions allows %d); the action waits until %s.",
				n, g.MaxActions.Per.Duration, g.MaxActions.Count, stamp(until))}
		}
	}
	for _, limit := range []*intstr.IntOrString{g.MaxUnhealthyPods, g.MaxUnhealthyPodsAlso} {
		if !disruptive || limit == nil {
			continue
		}
		if held, msg := tooManyUnhealthy(g, limit); held {
			return Verdict{Held: true, Reason: ReasonTooManyUnhealthy, Message: msg}
		}
	}
	// DryRun passes the same guards as Active, so it records the decisions Active would
	// make, when it would make them.
	return Verdict{RecordOnly: g.Mode == v1alpha1.ModeDryRun}
}

// CheckResume decides whether an intent that an earlier run recorded and did not finish
// (a crash, a lost lease) may be carried on now. It passes the guards that say the
// manager must not act at all: pause, a stale cache, the storm breaker for a disruptive
// intent, and DryRun, which a resumed intent must not ignore either. Cooldown, the rate
// limit and the unhealthy share counted the intent when it was recorded, and its own
// record would hold it now.
func CheckResume(g GuardInput, disruptive bool, now time.Time) Verdict {
	v := CheckGuards(GuardInput{Mode: g.Mode, PausedAnnotation: g.PausedAnnotation, StaleCache: g.StaleCache,
		StaleCacheRecheck: g.StaleCacheRecheck, Storm: g.Storm}, disruptive, now)
	if !v.Held && v.RecordOnly {
		return Verdict{Held: true, Reason: ReasonDryRun, Message: "The app's mode is DryRun: an intent recorded before is not carried on."}
	}
	return v
}

// ResumeDisruptive says whether a resumed intent of the action counts as disruptive for
// the storm breaker. The record no longer says what Prepare found, so every action that
// changes workloads, pods or nodes counts; notify, webhook and runJob do not, as when
// they are first decided.
func ResumeDisruptive(action string) bool {
	switch action {
	case "notify", "webhook", "runJob":
		return false
	}
	return true
}

// rateLimited counts the actions in the window (now-per, now]. When count or more are
// there, the next action may run once the oldest of the newest count leaves the window.
func rateLimited(times []time.Time, count int, per time.Duration, now time.Time) (bool, time.Time, int) {
	var in []time.Time
	for _, t := range times {
		if now.Sub(t) < per {
			in = append(in, t)
		}
	}
	if len(in) < count || count < 1 {
		// The API allows no count below 1; a limit of none limits nothing.
		return false, time.Time{}, len(in)
	}
	oldest := in[0]
	for _, t := range in {
		if t.Before(oldest) {
			oldest = t
		}
	}
	return true, oldest.Add(per), len(in)
}

// tooManyUnhealthy holds a disruptive action when the pods already unhealthy or being
// disrupted exceed the limit: the problem is wider than a few pods, and taking more
// capacity away would make it worse. It is Cluster API's maxUnhealthy circuit breaker.
func tooManyUnhealthy(g GuardInput, bound *intstr.IntOrString) (bool, string) {
	if g.TotalPods == 0 {
		return false, ""
	}
	limit, err := intstr.GetScaledValueFromIntOrPercent(bound, g.TotalPods, false)
	if err != nil {
		return true, fmt.Sprintf("guards.maxUnhealthyPods %q is invalid: %v.", bound.String(), err)
	}
	bad := g.UnhealthyPods + g.InFlightPods
	if bad <= limit {
		return false, ""
	}
	return true, fmt.Sprintf(
		"%d of %d pods are unhealthy or being disrupted (%d%%), above guards.maxUnhealthyPods %s: the problem looks wider than these pods, so disruptive actions wait.",
		bad, g.TotalPods, int(math.Round(100*float64(bad)/float64(g.TotalPods))), bound.String())
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
