package plan

// StormInput is what the cluster-wide storm breaker's rule reads: how many of the managed
// apps are unhealthy, and the flags that set how many make a storm.
type StormInput struct {
	// Unhealthy counts the apps last seen unhealthy.
	Unhealthy int
	// Seen counts the apps whose health has been seen since the manager started.
	Seen int
	// Managed counts every managed app, seen or not; 0 when not counted. Apps not seen
	// yet count as healthy, so the breaker does not engage because the first apps seen
	// after a start happened to be the broken ones.
	Managed int
	// Threshold is --storm-threshold, a share of the apps between 0 and 1.
	Threshold float64
	// MinUnhealthy is --storm-min-unhealthy.
	MinUnhealthy int
}

// StormVerdict is the storm breaker's rule applied to one count of the apps.
type StormVerdict struct {
	// Engaged is true when disruptive actions must stop cluster-wide.
	Engaged bool
	// Unhealthy and Total are the counts the rule was applied to: the apps unhealthy,
	// and the apps managed (the larger of those seen and those counted).
	Unhealthy, Total int
}

// Storm is the storm breaker's rule: it engages when more than Threshold of the managed
// apps, and at least MinUnhealthy of them, are unhealthy at once, and releases as soon as
// that no longer holds: one line both ways, no hysteresis.
//
// More apps managed can only make the share smaller, so a caller may count the managed
// apps (a list of its cache) only when the apps seen already make a storm.
func Storm(in StormInput) StormVerdict {
	total := max(in.Seen, in.Managed)
	return StormVerdict{
		Engaged:   total > 0 && in.Unhealthy >= in.MinUnhealthy && float64(in.Unhealthy) > in.Threshold*float64(total),
		Unhealthy: in.Unhealthy,
		Total:     total,
	}
}
