package plan

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

var foT0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// candidate builders: the pods of component c carry app=c.
func foHealthy(c string, weight, n int32) FailoverCandidate {
	return FailoverCandidate{Component: c, Weight: weight, Kind: "Deployment", Found: true, Healthy: true,
		ReadyReplicas: n, DesiredReplicas: n, MatchLabels: map[string]string{"app": c},
		PodLabels: map[string]string{"app": c, "pod-template-hash": "abc"}}
}

func foDown(c string, weight, desired int32) FailoverCandidate {
	f := foHealthy(c, weight, desired)
	f.Healthy, f.ReadyReplicas, f.CrashLoopingPods = false, 0, desired
	return f
}

func foStarting(c string, weight, ready, desired int32) FailoverCandidate {
	f := foHealthy(c, weight, desired)
	f.Healthy, f.ReadyReplicas = false, ready
	return f
}

func foZero(c string, weight int32) FailoverCandidate {
	// A workload at zero replicas is healthy by the monitor's measure: 0 of 0 ready.
	return foHealthy(c, weight, 0)
}

func foSelects(c string) map[string]string { return map[string]string{"app": c} }

func foIn(sel map[string]string, cands ...FailoverCandidate) FailoverInput {
	return FailoverInput{Now: foT0, Service: "web", Selection: v1alpha1.SelectionFailover, ScaleStandby: true,
		Candidates: cands, ServiceFound: true, ServiceSelector: sel}
}

func TestElect(t *testing.T) {
	scaledUp := &FailoverChange{Phase: PhaseScaleUpStandby, Component: "web-standby", At: foT0.Add(-10 * time.Second)}
	moved := &FailoverChange{Phase: PhaseMoveTraffic, Component: "web-standby", From: "web", At: foT0.Add(-5 * time.Second),
		Reason: "web is unhealthy (0 of 3 ready); moving traffic to web-standby (weight 50)."}
	cases := []struct {
		name     string
		in       FailoverInput
		mutate   func(*FailoverInput)
		phase    FailoverPhase
		primary  string
		elected  string
		comp     string
		from     string
		replicas int32
		state    v1alpha1.PolicyState
		reason   string
		message  string        // a substring
		next     time.Duration // from foT0; 0 for none
	}{
		{name: "Failover keeps a healthy primary",
			in:    foIn(foSelects("web"), foHealthy("web", 100, 3), foZero("web-standby", 50)),
			phase: PhaseSteady, primary: "web", elected: "web", state: v1alpha1.PolicyIdle, reason: ReasonPrimaryHealthy,
			message: "web is the primary and healthy (3 of 3 ready); Service/web selects its pods."},
		{name: "Failover keeps a healthy primary of lower weight and says so",
			in:    foIn(foSelects("web-standby"), foHealthy("web", 100, 3), foHealthy("web-standby", 50, 3)),
			phase: PhaseSteady, primary: "web-standby", elected: "web-standby", state: v1alpha1.PolicyIdle, reason: ReasonPrimaryHealthy,
			message: "Selection Failover keeps it although web (weight 100) is healthy too."},
		{name: "Best moves to the higher weight once it is healthy",
			in:     foIn(foSelects("web-standby"), foHealthy("web", 100, 3), foHealthy("web-standby", 50, 3)),
			mutate: func(in *FailoverInput) { in.Selection = v1alpha1.SelectionBest; in.StatusPrimary = "web-standby" },
			phase:  PhaseMoveTraffic, primary: "web-standby", elected: "web", comp: "web", from: "web-standby",
			state: v1alpha1.PolicyActing, reason: ReasonHigherWeight,
			message: "web (weight 100) is healthy (3 of 3 ready) and selection Best prefers it to the primary web-standby (weight 50); moving traffic to web (weight 100)."},
		{name: "Best stays on the highest weight",
			in:     foIn(foSelects("web"), foHealthy("web", 100, 3), foHealthy("web-standby", 50, 3)),
			mutate: func(in *FailoverInput) { in.Selection = v1alpha1.SelectionBest },
			phase:  PhaseSteady, primary: "web", elected: "web", state: v1alpha1.PolicyIdle, reason: ReasonPrimaryHealthy},
		{name: "Best does not move to a higher weight that is not healthy",
			in:     foIn(foSelects("web-standby"), foStarting("web", 100, 2, 3), foHealthy("web-standby", 50, 3)),
			mutate: func(in *FailoverInput) { in.Selection = v1alpha1.SelectionBest },
			phase:  PhaseSteady, primary: "web-standby", elected: "web-standby", state: v1alpha1.PolicyIdle, reason: ReasonPrimaryHealthy},
		{name: "Best never elects a candidate at zero replicas by preference",
			in:     foIn(foSelects("web-standby"), foZero("web", 100), foHealthy("web-standby", 50, 3)),
			mutate: func(in *FailoverInput) { in.Selection = v1alpha1.SelectionBest },
			phase:  PhaseSteady, primary: "web-standby", elected: "web-standby", state: v1alpha1.PolicyIdle},
		{name: "an unhealthy primary moves to a ready standby",
			in:    foIn(foSelects("web"), foDown("web", 100, 3), foHealthy("web-standby", 50, 3)),
			phase: PhaseMoveTraffic, primary: "web", elected: "web-standby", comp: "web-standby", from: "web",
			state: v1alpha1.PolicyActing, reason: ReasonPrimaryUnhealthy,
			message: "web is unhealthy (0 of 3 ready, 3 crash-looping); moving traffic to web-standby (weight 50)."},
		{name: "a primary that is only partly ready is unhealthy too",
			in:    foIn(foSelects("web"), foStarting("web", 100, 2, 3), foHealthy("web-standby", 50, 3)),
			phase: PhaseMoveTraffic, primary: "web", comp: "web-standby", from: "web", elected: "web-standby",
			state: v1alpha1.PolicyActing, reason: ReasonPrimaryUnhealthy,
			message: "web is unhealthy (2 of 3 ready); moving traffic to web-standby (weight 50)."},
		{name: "a standby at zero is scaled to the primary's replicas first",
			in:    foIn(foSelects("web"), foDown("web", 100, 3), foZero("web-standby", 50)),
			phase: PhaseScaleUpStandby, primary: "web", elected: "web-standby", comp: "web-standby", replicas: 3,
			state: v1alpha1.PolicyActing, reason: ReasonPrimaryUnhealthy,
			message: "scaling web-standby (weight 50) from 0 to 3 replicas before traffic moves to it."},
		{name: "the standby it scaled up is waited for until it is ready",
			in:     foIn(foSelects("web"), foDown("web", 100, 3), foStarting("web-standby", 50, 1, 3)),
			mutate: func(in *FailoverInput) { in.Last = scaledUp },
			phase:  PhaseWaitStandbyReady, primary: "web", elected: "web-standby", comp: "web-standby",
			state: v1alpha1.PolicyWaiting, reason: ReasonWaitingForStandby,
			message: "waiting for web-standby (weight 50) to be ready (1 of 3 ready) before traffic moves to it, at the latest until 2026-11-25T10:04:50Z.",
			next:    5*time.Minute - 10*time.Second},
		{name: "traffic moves once every replica of the standby is ready",
			in:     foIn(foSelects("web"), foDown("web", 100, 3), foHealthy("web-standby", 50, 3)),
			mutate: func(in *FailoverInput) { in.Last = scaledUp },
			phase:  PhaseMoveTraffic, primary: "web", elected: "web-standby", comp: "web-standby", from: "web",
			state: v1alpha1.PolicyActing, reason: ReasonPrimaryUnhealthy},
		{name: "after the move the old primary is scaled down",
			in:     foIn(foSelects("web-standby"), foDown("web", 100, 3), foHealthy("web-standby", 50, 3)),
			mutate: func(in *FailoverInput) { in.Last, in.LastMove, in.StatusPrimary = moved, moved, "web-standby" },
			phase:  PhaseScaleDownOldPrimary, primary: "web-standby", elected: "web-standby", comp: "web", replicas: 0,
			state: v1alpha1.PolicyActing, reason: ReasonScalingDownOld,
			message: "Traffic moved from web to web-standby at 2026-11-25T09:59:55Z; scaling the old primary web down from 3 to 0 replicas."},
		{name: "without scaleStandby the old primary keeps its replicas",
			in: foIn(foSelects("web-standby"), foDown("web", 100, 3), foHealthy("web-standby", 50, 3)),
			mutate: func(in *FailoverInput) {
				in.Last, in.LastMove, in.StatusPrimary, in.ScaleStandby = moved, moved, "web-standby", false
			},
			phase: PhaseSteady, primary: "web-standby", elected: "web-standby", state: v1alpha1.PolicyIdle, reason: ReasonPrimaryHealthy},
		{name: "once the old primary is down the status says since when and why",
			in: foIn(foSelects("web-standby"), foZero("web", 100), foHealthy("web-standby", 50, 3)),
			mutate: func(in *FailoverInput) {
				in.Last = &FailoverChange{Phase: PhaseScaleDownOldPrimary, Component: "web", At: foT0}
				in.LastMove, in.StatusPrimary = moved, "web-standby"
			},
			phase: PhaseSteady, primary: "web-standby", elected: "web-standby", state: v1alpha1.PolicyIdle, reason: ReasonPrimaryHealthy,
			message: "web-standby is the primary and healthy (3 of 3 ready); Service/web selects its pods. Traffic moved to it at 2026-11-25T09:59:55Z: web is unhealthy (0 of 3 ready); moving traffic to web-standby (weight 50)."},
		{name: "the old primary back up and healthy: Failover stays",
			in: foIn(foSelects("web-standby"), foHealthy("web", 100, 3), foHealthy("web-standby", 50, 3)),
			mutate: func(in *FailoverInput) {
				in.Last = &FailoverChange{Phase: PhaseScaleDownOldPrimary, Component: "web", At: foT0}
				in.StatusPrimary = "web-standby"
			},
			phase: PhaseSteady, primary: "web-standby", elected: "web-standby", state: v1alpha1.PolicyIdle},
		{name: "the old primary back up and healthy: Best moves back",
			in: foIn(foSelects("web-standby"), foHealthy("web", 100, 3), foHealthy("web-standby", 50, 3)),
			mutate: func(in *FailoverInput) {
				in.Last = &FailoverChange{Phase: PhaseScaleDownOldPrimary, Component: "web", At: foT0}
				in.StatusPrimary, in.Selection = "web-standby", v1alpha1.SelectionBest
			},
			phase: PhaseMoveTraffic, primary: "web-standby", elected: "web", comp: "web", from: "web-standby",
			state: v1alpha1.PolicyActing, reason: ReasonHigherWeight},
		{name: "no candidate can take traffic: keep the current primary and say so",
			in:    foIn(foSelects("web"), foDown("web", 100, 3), foDown("web-standby", 50, 3)),
			phase: PhaseSteady, primary: "web", state: v1alpha1.PolicyWaiting, reason: ReasonNoHealthyCandidate,
			message: "The primary web cannot take traffic (0 of 3 ready, 3 crash-looping) and no other candidate can (web-standby: 0 of 3 ready, 3 crash-looping); Service/web keeps selecting web"},
		{name: "a standby at zero is not scaled up without scaleStandby",
			in:     foIn(foSelects("web"), foDown("web", 100, 3), foZero("web-standby", 50)),
			mutate: func(in *FailoverInput) { in.ScaleStandby = false },
			phase:  PhaseSteady, primary: "web", state: v1alpha1.PolicyWaiting, reason: ReasonNoHealthyCandidate,
			message: "web-standby: scaled to 0 and scaleStandby is false"},
		{name: "no primary and nothing healthy: the Service is left alone",
			in:    foIn(map[string]string{"app": "legacy"}, foDown("a", 100, 1), foDown("b", 100, 1)),
			phase: PhaseSteady, state: v1alpha1.PolicyWaiting, reason: ReasonNoHealthyCandidate,
			message: "No candidate can take traffic (a: 0 of 1 ready, 1 crash-looping; b: 0 of 1 ready, 1 crash-looping); Service/web is left as it is"},
		{name: "ties in weight go to the earlier candidate",
			in:    foIn(foSelects("web"), foDown("web", 100, 3), foHealthy("eu", 50, 3), foHealthy("us", 50, 3)),
			phase: PhaseMoveTraffic, primary: "web", elected: "eu", comp: "eu", from: "web", state: v1alpha1.PolicyActing},
		{name: "ties in weight go to the primary before spec order",
			in:     foIn(foSelects("us"), foHealthy("eu", 100, 3), foHealthy("us", 100, 3)),
			mutate: func(in *FailoverInput) { in.Selection = v1alpha1.SelectionBest },
			phase:  PhaseSteady, primary: "us", elected: "us", state: v1alpha1.PolicyIdle},
		{name: "an unset weight counts as 100",
			in:     foIn(foSelects("b"), foHealthy("a", 0, 1), foHealthy("b", 99, 1)),
			mutate: func(in *FailoverInput) { in.Selection = v1alpha1.SelectionBest },
			phase:  PhaseMoveTraffic, elected: "a", comp: "a", from: "b", primary: "b", reason: ReasonHigherWeight},
		{name: "a ready standby is preferred to one at zero of higher weight",
			in:    foIn(foSelects("web"), foDown("web", 100, 3), foZero("eu", 90), foHealthy("us", 50, 3)),
			phase: PhaseMoveTraffic, primary: "web", elected: "us", comp: "us", from: "web"},
		{name: "of several standbys at zero the highest weight is scaled up",
			in:    foIn(foSelects("web"), foDown("web", 100, 2), foZero("eu", 50), foZero("us", 90)),
			phase: PhaseScaleUpStandby, primary: "web", elected: "us", comp: "us", replicas: 2},
		{name: "a primary a person scaled to zero is not scaled back up; a standby is, to one replica",
			in:    foIn(foSelects("web"), foZero("web", 100), foZero("web-standby", 50)),
			phase: PhaseScaleUpStandby, primary: "web", elected: "web-standby", comp: "web-standby", replicas: 1,
			reason: ReasonPrimaryUnhealthy, message: "web is unhealthy (scaled to 0)"},
		{name: "a primary whose workload was deleted fails over",
			in: foIn(foSelects("web"), func() FailoverCandidate { c := foDown("web", 100, 0); c.Found = false; return c }(),
				foHealthy("web-standby", 50, 3)),
			mutate: func(in *FailoverInput) { in.StatusPrimary = "web" },
			phase:  PhaseMoveTraffic, primary: "web", elected: "web-standby", comp: "web-standby", from: "web",
			message: "web is unhealthy (Deployment not found)"},
		{name: "the primary recorded in status wins over a Service someone changed",
			in:     foIn(foSelects("web-standby"), foHealthy("web", 100, 3), foHealthy("web-standby", 50, 3)),
			mutate: func(in *FailoverInput) { in.StatusPrimary = "web" },
			phase:  PhaseMoveTraffic, primary: "web", elected: "web", comp: "web", from: "",
			state: v1alpha1.PolicyActing, reason: ReasonSelectorDrifted,
			message: "Service/web selects app=web-standby, not the selector of the primary web (app=web); moving traffic to web (weight 100)."},
		{name: "a move the status missed is taken as done",
			in:     foIn(foSelects("web-standby"), foDown("web", 100, 3), foHealthy("web-standby", 50, 3)),
			mutate: func(in *FailoverInput) { in.StatusPrimary = "web" },
			phase:  PhaseSteady, primary: "web-standby", elected: "web-standby", state: v1alpha1.PolicyIdle},
		{name: "a Service without a selector is pointed at the best candidate",
			in:    foIn(nil, foHealthy("web", 100, 3), foHealthy("web-standby", 50, 3)),
			phase: PhaseMoveTraffic, elected: "web", comp: "web", reason: ReasonNoPrimary,
			message: "Service/web has no selector and no primary is recorded; moving traffic to web (weight 100)."},
		{name: "a Service selecting a subset of the primary's labels names the primary and is set exactly",
			in:    foIn(map[string]string{"tier": "web"}, withLabels(foHealthy("web", 100, 3), "tier", "web"), foZero("web-standby", 50)),
			phase: PhaseMoveTraffic, primary: "web", elected: "web", comp: "web", reason: ReasonSelectorDrifted},
		{name: "a ladder's demotion moves traffic off a healthy primary",
			in:     foIn(foSelects("web"), foHealthy("web", 100, 3), foHealthy("web-standby", 50, 3)),
			mutate: func(in *FailoverInput) { in.Demoted = map[string]string{"web": "heal-web"} },
			phase:  PhaseMoveTraffic, primary: "web", elected: "web-standby", comp: "web-standby", from: "web",
			reason:  ReasonPrimaryDemoted,
			message: "heal-web treats the primary web as failed while its episode is open; moving traffic to web-standby (weight 50)."},
		{name: "a demoted primary with no alternative stays",
			in:     foIn(foSelects("web"), foHealthy("web", 100, 3), foDown("web-standby", 50, 3)),
			mutate: func(in *FailoverInput) { in.Demoted = map[string]string{"web": "heal-web"} },
			phase:  PhaseSteady, primary: "web", state: v1alpha1.PolicyWaiting, reason: ReasonNoHealthyCandidate,
			message: "The primary web cannot take traffic (treated as failed by heal-web)"},
		{name: "a standby not ready within the timeout is no longer waited for",
			in: foIn(foSelects("web"), foDown("web", 100, 3), foStarting("web-standby", 50, 1, 3)),
			mutate: func(in *FailoverInput) {
				in.Last = &FailoverChange{Phase: PhaseScaleUpStandby, Component: "web-standby", At: foT0.Add(-StandbyReadyTimeout)}
			},
			phase: PhaseSteady, primary: "web", state: v1alpha1.PolicyWaiting, reason: ReasonNoHealthyCandidate,
			message: "web-standby: 1 of 3 ready, not ready within 5m0s of being scaled up"},
		{name: "a standby that crash-loops is not waited for",
			in:     foIn(foSelects("web"), foDown("web", 100, 3), foDown("web-standby", 50, 3)),
			mutate: func(in *FailoverInput) { in.Last = scaledUp },
			phase:  PhaseSteady, primary: "web", state: v1alpha1.PolicyWaiting, reason: ReasonNoHealthyCandidate},
		{name: "Failover: the primary recovered before the standby was ready, so the standby goes back to zero",
			in:     foIn(foSelects("web"), foHealthy("web", 100, 3), foStarting("web-standby", 50, 1, 3)),
			mutate: func(in *FailoverInput) { in.Last = scaledUp },
			phase:  PhaseScaleDownStandby, primary: "web", elected: "web", comp: "web-standby", replicas: 0,
			state: v1alpha1.PolicyActing, reason: ReasonStandbyNotNeeded,
			message: "web-standby was scaled up at 2026-11-25T09:59:50Z for a move that is no longer needed, so it goes back from 3 to 0 replicas."},
		{name: "Best: a starting standby of higher weight is waited for, not scaled down",
			in: foIn(foSelects("b"), foStarting("a", 100, 1, 2), foHealthy("b", 50, 2)),
			mutate: func(in *FailoverInput) {
				in.Selection = v1alpha1.SelectionBest
				in.Last = &FailoverChange{Phase: PhaseScaleUpStandby, Component: "a", At: foT0}
			},
			phase: PhaseSteady, primary: "b", elected: "b", state: v1alpha1.PolicyWaiting, reason: ReasonWaitingForStandby,
			message: "selection Best moves traffic to it once it is ready", next: StandbyReadyTimeout},
		{name: "a missing Service is waited for",
			in:     foIn(nil, foHealthy("web", 100, 3), foZero("web-standby", 50)),
			mutate: func(in *FailoverInput) { in.ServiceFound = false; in.StatusPrimary = "web" },
			phase:  PhaseSteady, primary: "web", state: v1alpha1.PolicyWaiting, reason: ReasonServiceNotFound,
			message: "Service web was not found in the app's namespace"},
		{name: "matchExpressions are refused",
			in: foIn(foSelects("web"), foHealthy("web", 100, 3),
				func() FailoverCandidate { c := foZero("web-standby", 50); c.MatchExpressions = true; return c }()),
			phase: PhaseSteady, state: v1alpha1.PolicyInvalid, reason: ReasonUnsupportedSelector,
			message: "The Deployment of candidate web-standby selects its pods with matchExpressions, which a Service's selector cannot express"},
		{name: "a selector that also selects another candidate's pods is refused",
			in: foIn(foSelects("web"), foHealthy("web", 100, 3),
				withLabels(foZero("web-standby", 50), "app", "web")),
			phase: PhaseSteady, state: v1alpha1.PolicyInvalid, reason: ReasonOverlappingSelectors},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if tc.mutate != nil {
				tc.mutate(&in)
			}
			d := Elect(in)
			if d.Phase != tc.phase || d.Primary != tc.primary || d.Component != tc.comp || d.From != tc.from || d.Replicas != tc.replicas {
				t.Errorf("Elect() = phase %s primary %q component %q from %q replicas %d; want %s %q %q %q %d\nmessage: %s",
					d.Phase, d.Primary, d.Component, d.From, d.Replicas, tc.phase, tc.primary, tc.comp, tc.from, tc.replicas, d.Message)
			}
			if tc.elected != "" && d.Elected != tc.elected {
				t.Errorf("Elected = %q, want %q", d.Elected, tc.elected)
			}
			if tc.state != "" && d.State != tc.state {
				t.Errorf("State = %s, want %s (%s)", d.State, tc.state, d.Message)
			}
			if tc.reason != "" && d.Reason != tc.reason {
				t.Errorf("Reason = %s, want %s (%s)", d.Reason, tc.reason, d.Message)
			}
			if !strings.Contains(d.Message, tc.message) {
				t.Errorf("Message = %q, want it to contain %q", d.Message, tc.message)
			}
			var wantNext time.Time
			if tc.next != 0 {
				wantNext = foT0.Add(tc.next)
			}
			if !d.NextCheck.Equal(wantNext) {
				t.Errorf("NextCheck = %v, want %v", d.NextCheck, wantNext)
			}
			if d.Phase != PhaseSteady && d.State != v1alpha1.PolicyActing && d.State != v1alpha1.PolicyWaiting {
				t.Errorf("a change has state %s", d.State)
			}
			// Messages may start with a component name, which is lower case.
			if len(d.Message) > 1024 || !strings.HasSuffix(d.Message, ".") {
				t.Errorf("Message %q is not a sentence within the status limit", d.Message)
			}
		})
	}
}

func withLabels(c FailoverCandidate, k, v string) FailoverCandidate {
	c.PodLabels = maps.Clone(c.PodLabels)
	c.PodLabels[k] = v
	return c
}

// TestElectWalksAFailoverThrough replays a whole failover and recovery, feeding each
// decision's effect back as the next observation.
func TestElectWalksAFailoverThrough(t *testing.T) {
	for _, sel := range []v1alpha1.FailoverSelection{v1alpha1.SelectionFailover, v1alpha1.SelectionBest} {
		t.Run(string(sel), func(t *testing.T) {
			web, standby := foHealthy("web", 100, 3), foZero("web-standby", 50)
			in := foIn(foSelects("web"), web, standby)
			in.Selection = sel
			var phases []FailoverPhase
			step := func(now time.Duration) FailoverDecision {
				in.Now = foT0.Add(now)
				d := Elect(in)
				phases = append(phases, d.Phase)
				ch := &FailoverChange{Phase: d.Phase, Component: d.Component, From: d.From, At: in.Now, Reason: d.Message}
				switch d.Phase {
				case PhaseScaleUpStandby:
					in.Candidates[1] = foStarting("web-standby", 50, 0, d.Replicas)
					in.Last = ch
				case PhaseMoveTraffic:
					in.ServiceSelector = foSelects(d.Component)
					in.StatusPrimary = d.Component
					in.Last, in.LastMove = ch, ch
				case PhaseScaleDownOldPrimary:
					for i := range in.Candidates {
						if in.Candidates[i].Component == d.Component {
							in.Candidates[i] = foZero(d.Component, in.Candidates[i].Weight)
						}
					}
					in.Last = ch
				default:
					in.StatusPrimary = d.Primary
				}
				return d
			}
			step(0)                                  // steady on web
			in.Candidates[0] = foDown("web", 100, 3) // every pod of web NotReady
			step(time.Second)                        // scale the standby up
			step(2 * time.Second)                    // wait
			in.Candidates[1] = foHealthy("web-standby", 50, 3)
			if d := step(3 * time.Second); d.Component != "web-standby" {
				t.Fatalf("traffic moved to %q", d.Component)
			}
			step(4 * time.Second) // scale web down
			d := step(5 * time.Second)
			if d.Primary != "web-standby" || d.Reason != ReasonPrimaryHealthy {
				t.Fatalf("after the failover: primary %q reason %s", d.Primary, d.Reason)
			}
			// A person fixes web and scales it back up.
			in.Candidates[0] = foHealthy("web", 100, 3)
			step(time.Minute)
			step(time.Minute + time.Second)
			d = step(time.Minute + 2*time.Second)
			want := []FailoverPhase{PhaseSteady, PhaseScaleUpStandby, PhaseWaitStandbyReady, PhaseMoveTraffic, PhaseScaleDownOldPrimary, PhaseSteady}
			if sel == v1alpha1.SelectionBest {
				want = append(want, PhaseMoveTraffic, PhaseScaleDownOldPrimary, PhaseSteady)
				if d.Primary != "web" {
					t.Errorf("Best ends on %q, want web", d.Primary)
				}
			} else {
				want = append(want, PhaseSteady, PhaseSteady, PhaseSteady)
				if d.Primary != "web-standby" {
					t.Errorf("Failover ends on %q, want web-standby", d.Primary)
				}
			}
			if !slices.Equal(phases, want) {
				t.Errorf("phases = %v\nwant     %v", phases, want)
			}
		})
	}
}

func TestContinuesFailover(t *testing.T) {
	up := &FailoverChange{Phase: PhaseScaleUpStandby, Component: "b"}
	demote := &FailoverChange{Phase: PhaseDemote, Component: "a"}
	cases := []struct {
		name   string
		d      FailoverDecision
		latest *FailoverChange
		want   bool
	}{
		{"the move to the standby the last action scaled up", FailoverDecision{Phase: PhaseMoveTraffic, Component: "b"}, up, true},
		{"a move elsewhere", FailoverDecision{Phase: PhaseMoveTraffic, Component: "c"}, up, false},
		{"the first change after a demotion", FailoverDecision{Phase: PhaseScaleUpStandby, Component: "b"}, demote, true},
		{"a move after a demotion", FailoverDecision{Phase: PhaseMoveTraffic, Component: "b"}, demote, true},
		{"scaling the old primary down never is", FailoverDecision{Phase: PhaseScaleDownOldPrimary, Component: "a"}, up, false},
		{"no latest action", FailoverDecision{Phase: PhaseMoveTraffic, Component: "b"}, nil, false},
		{"an unrelated latest action", FailoverDecision{Phase: PhaseMoveTraffic, Component: "b"}, &FailoverChange{Phase: PhaseMoveTraffic, Component: "b"}, false},
	}
	for _, tc := range cases {
		if got := ContinuesFailover(tc.d, tc.latest); got != tc.want {
			t.Errorf("%s: ContinuesFailover() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRepeatFailoverChange(t *testing.T) {
	cases := []struct {
		name   string
		result v1alpha1.ActionResult
		since  time.Duration
		wait   bool
		until  time.Duration
	}{
		{"a failure is not retried at once", v1alpha1.ResultFailed, time.Second, true, FailoverRetryDelay},
		{"a failure is retried after the delay", v1alpha1.ResultFailed, FailoverRetryDelay, false, FailoverRetryDelay},
		{"a change the tenant's rights refused waits like a failure", v1alpha1.ResultForbidden, time.Second, true, FailoverRetryDelay},
		{"and is asked again after the delay", v1alpha1.ResultForbidden, FailoverRetryDelay, false, FailoverRetryDelay},
		{"a change that took effect is not made again while the cache may lag", v1alpha1.ResultSucceeded, time.Second, true, FailoverSettleDelay},
		{"a change someone reverted is made again after the settle delay", v1alpha1.ResultSucceeded, FailoverSettleDelay, false, FailoverSettleDelay},
		{"a pending record never waits here", v1alpha1.ResultPending, 0, false, 0},
	}
	for _, tc := range cases {
		wait, until := RepeatFailoverChange(tc.result, foT0, foT0.Add(tc.since))
		if wait != tc.wait {
			t.Errorf("%s: wait = %v", tc.name, wait)
		}
		if tc.until != 0 && !until.Equal(foT0.Add(tc.until)) {
			t.Errorf("%s: until = %v", tc.name, until)
		}
	}
}
