package plan

// NamespaceHealth is what the storm breaker counts of one namespace's apps.
type NamespaceHealth struct {
	// Unhealthy and Healthy count the apps of the namespace whose health was judged: the
	// spec is valid, every component resolves, and the hierarchy holds.
	Unhealthy, Healthy int
	// Unjudged counts the apps whose health cannot be judged; the rule ignores them.
	Unjudged int
	// Unseen counts the apps not reconciled since the manager started; 0 when not
	// counted. They count as healthy in their namespace until they are seen, so that a
	// restart does not engage the breaker on the first apps it happens to see. No app
	// stays unseen: the first reconcile of each judges it or finds it cannot be judged.
	Unseen int
}

// StormInput is what the cluster-wide storm breaker's rule reads: the health of the
// managed apps, by namespace, and the flags that set how much makes a storm.
type StormInput struct {
	// Namespaces holds one entry per namespace with managed apps.
	Namespaces []NamespaceHealth
	// Threshold is --storm-threshold, a share between 0 and 1, of a namespace's apps and
	// of the namespaces.
	Threshold float64
	// MinUnhealthy is --storm-min-unhealthy.
	MinUnhealthy int
	// MinNamespaces is --storm-min-namespaces; below 1 it is 1.
	MinNamespaces int
}

// StormVerdict is the storm breaker's rule applied to one count of the apps.
type StormVerdict struct {
	// Engaged is true when disruptive actions must stop cluster-wide.
	Engaged bool
	// Stormy and Namespaces are the namespaces in a storm of their own and the
	// namespaces counted (those with an app judged or unseen).
	Stormy, Namespaces int
	// Unhealthy and Total are the apps judged unhealthy and the apps counted (judged or
	// unseen), in every namespace counted.
	Unhealthy, Total int
}

// Storm is the storm breaker's rule, which counts namespaces, not apps. A namespace is in
// a storm when more than Threshold of its judged apps are unhealthy; the breaker engages
// when more than Threshold of the namespaces, at least MinNamespaces of them, are in a
// storm and at least MinUnhealthy apps are unhealthy in all, and releases as soon as
// that no longer holds: one line both ways, no hysteresis.
//
// So one namespace, whatever it holds, is one vote: it can neither make a storm alone
// (with MinNamespaces of 2 or more) nor outweigh the others with healthy apps. An app
// that cannot be judged (an invalid spec, a missing component, a broken hierarchy) counts
// nowhere. Namespaces are the cluster admin's to create, so no tenant can add votes.
//
// More apps unseen can only make a storm smaller, so a caller may count them (a list of
// its cache) only when the apps seen already make a storm.
func Storm(in StormInput) StormVerdict {
	var v StormVerdict
	for _, ns := range in.Namespaces {
		counted := ns.Unhealthy + ns.Healthy + ns.Unseen
		if counted == 0 {
			continue
		}
		v.Namespaces++
		v.Unhealthy += ns.Unhealthy
		v.Total += counted
		if float64(ns.Unhealthy) > in.Threshold*float64(counted) {
			v.Stormy++
		}
	}
	v.Engaged = v.Stormy >= max(in.MinNamespaces, 1) &&
		float64(v.Stormy) > in.Threshold*float64(v.Namespaces) &&
		v.Unhealthy >= in.MinUnhealthy
	return v
}
