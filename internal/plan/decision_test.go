package plan

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func TestDecideAutoscale(t *testing.T) {
	scaler := immediate(webScaler(1, 10, valueMetric("rps", "100")))
	reading := func(v float64) []MetricInput { return []MetricInput{{Sensor: "rps", Value: v, Available: true}} }
	found := AutoscaleTarget{Found: true, Workload: "Deployment/web"}
	cases := []struct {
		name      string
		policy    v1alpha1.AutoscalePolicy
		target    AutoscaleTarget
		current   int32
		metrics   []MetricInput
		last      *LastScale
		kind      Kind
		state     v1alpha1.PolicyState
		reason    string
		message   string
		replicas  int32 // the intent's replicas; 0 for no intent
		outcome   v1alpha1.ActionOutcome
		nextCheck time.Time
	}{
		{name: `a "*" component is refused`, policy: webScalerFor("*"), target: found, kind: Hold,
			state: v1alpha1.PolicyInvalid, reason: ReasonUnsupported, message: `component "*" is not supported`},
		{name: "no workload yet: waits", policy: scaler, kind: Hold,
			state: v1alpha1.PolicyWaiting, reason: v1alpha1.ReasonComponentNotFound, message: `Component "web" has no workload to scale yet.`},
		{name: "another autoscaler owns the workload: conflict, no intent", policy: scaler,
			target:  AutoscaleTarget{Found: true, Workload: "Deployment/web", Conflict: "HorizontalPodAutoscaler web"},
			current: 2, metrics: reading(900), kind: Hold, state: v1alpha1.PolicyConflict, reason: ReasonConflict,
			message: "HorizontalPodAutoscaler web already scales Deployment/web"},
		{name: "load above target: intends a scale up", policy: scaler, target: found, current: 2, metrics: reading(200),
			kind: Act, state: v1alpha1.PolicyIdle, reason: ReasonScaleUp, replicas: 4},
		{name: "missing data holds and never scales down", policy: scaler, target: found, current: 4,
			metrics: []MetricInput{{Sensor: "rps"}}, kind: Hold, state: v1alpha1.PolicyHeld, reason: ReasonSensorUnavailable},
		{name: "on target: idle", policy: scaler, target: found, current: 2, metrics: reading(100), kind: Idle,
			state: v1alpha1.PolicyIdle, reason: ReasonSteady},
		{name: "a scale still inside its window is not judged yet", policy: scaler, target: found, current: 4, metrics: reading(100),
			last: &LastScale{At: asNow.Add(-30 * time.Second), Delta: 2}, kind: Idle, reason: ReasonSteady,
			nextCheck: asNow.Add(30 * time.Second)},
		{name: "a scale followed by a window on target is verified", policy: scaler, target: found, current: 4, metrics: reading(100),
			last: &LastScale{At: asNow.Add(-time.Minute), Delta: 2}, kind: Idle, outcome: v1alpha1.OutcomeVerified},
		{name: "a scale up that must go on up is ineffective", policy: scaler, target: found, current: 4, metrics: reading(200),
			last: &LastScale{At: asNow.Add(-10 * time.Second), Delta: 2}, kind: Act, replicas: 8, outcome: v1alpha1.OutcomeIneffective},
		{name: "a scale up followed by a scale down is superseded", policy: scaler, target: found, current: 4, metrics: reading(25),
			last: &LastScale{At: asNow.Add(-10 * time.Minute), Delta: 2}, kind: Act, replicas: 1, outcome: v1alpha1.OutcomeUnknown},
		{name: "a scale whose direction is forgotten is superseded, not judged ineffective", policy: scaler, target: found, current: 4,
			metrics: reading(200), last: &LastScale{At: asNow.Add(-10 * time.Second)}, kind: Act, replicas: 8, outcome: v1alpha1.OutcomeUnknown},
		{name: "sensors that cannot tell leave the scale unknown", policy: scaler, target: found, current: 4,
			metrics: []MetricInput{{Sensor: "rps"}}, last: &LastScale{At: asNow.Add(-2 * time.Minute), Delta: 2}, kind: Hold,
			outcome: v1alpha1.OutcomeUnknown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := DecideAutoscale(AutoscalePolicyInput{Name: "scale-web", Target: tc.target, LastScale: tc.last,
				Previous:    v1alpha1.PolicyStatus{LastAction: "old"},
				Recommender: AutoscaleInput{Now: asNow, Policy: tc.policy, CurrentReplicas: tc.current, Metrics: tc.metrics}})
			if d.Kind != tc.kind {
				t.Fatalf("kind = %s, want %s (%s)", d.Kind, tc.kind, d.Status.Message)
			}
			if tc.state != "" && d.Status.State != tc.state {
				t.Errorf("state = %s, want %s", d.Status.State, tc.state)
			}
			if tc.reason != "" && d.Status.Reason != tc.reason {
				t.Errorf("reason = %s, want %s", d.Status.Reason, tc.reason)
			}
			if !strings.Contains(d.Status.Message, tc.message) {
				t.Errorf("message = %q, want %q in it", d.Status.Message, tc.message)
			}
			if d.Status.Name != "scale-web" || d.Status.LastAction != "old" {
				t.Errorf("status must keep the policy's name and last action: %+v", d.Status)
			}
			if got := intentReplicas(d); got != tc.replicas {
				t.Errorf("intent replicas = %d, want %d", got, tc.replicas)
			}
			if d.Intent != nil && (d.Intent.Acted.State != v1alpha1.PolicyActing || !strings.HasPrefix(d.Intent.HeldPrefix, "Scaling web from")) {
				t.Errorf("intent = %+v", d.Intent)
			}
			switch {
			case tc.outcome == "" && len(d.Outcomes) > 0:
				t.Errorf("outcomes = %+v, want none", d.Outcomes)
			case tc.outcome != "" && (len(d.Outcomes) != 1 || d.Outcomes[0].Outcome != tc.outcome || d.Outcomes[0].Policy != "scale-web"):
				t.Errorf("outcomes = %+v, want one %s", d.Outcomes, tc.outcome)
			}
			if !tc.nextCheck.IsZero() && !d.NextCheck.Equal(tc.nextCheck) {
				t.Errorf("next check = %s, want %s (the scale's window ends)", d.NextCheck, tc.nextCheck)
			}
		})
	}
}

func webScalerFor(component string) v1alpha1.AutoscalePolicy {
	p := webScaler(1, 10, valueMetric("rps", "100"))
	p.Component = component
	return p
}

func intentReplicas(d Decision) int32 {
	if d.Intent == nil || d.Intent.Action.Scale == nil || d.Intent.Action.Scale.Replicas == nil {
		return 0
	}
	return *d.Intent.Action.Scale.Replicas
}

func TestDecideFailover(t *testing.T) {
	down := foIn(foSelects("web"), foDown("web", 100, 3), foHealthy("web-standby", 50, 3))
	steady := foIn(foSelects("web"), foHealthy("web", 100, 3), foHealthy("web-standby", 50, 3))
	movedBack := foIn(foSelects("web-standby"), foHealthy("web", 100, 3), foDown("web-standby", 50, 3))
	movedBack.StatusPrimary = "web-standby"
	cases := []struct {
		name       string
		in         FailoverPolicyInput
		kind       Kind
		reason     string
		message    string
		phase      FailoverPhase
		skipCool   bool
		outcome    v1alpha1.ActionOutcome
		eventWarns bool
		event      string
	}{
		{name: "a child not yet judged: the election waits", in: FailoverPolicyInput{NotJudged: "payments", Election: down},
			kind: Hold, reason: ReasonCandidateNotJudged, message: "Child app payments has not reported its health yet"},
		{name: "a healthy primary: idle", in: FailoverPolicyInput{Election: steady}, kind: Idle, reason: ReasonPrimaryHealthy},
		{name: "a failed primary: intends the move", in: FailoverPolicyInput{Election: down}, kind: Act, phase: PhaseMoveTraffic},
		{name: "the move right after the standby came up is not held by cooldown",
			in:   FailoverPolicyInput{Election: down, Latest: &FailoverChange{Phase: PhaseScaleUpStandby, Component: "web-standby"}},
			kind: Act, phase: PhaseMoveTraffic, skipCool: true},
		{name: "the same move failed a moment ago: waits to retry, and says why",
			in: FailoverPolicyInput{Election: down, LastRecord: &FailoverRecordView{Phase: PhaseMoveTraffic, Component: "web-standby",
				Result: v1alpha1.ResultFailed, At: foT0.Add(-time.Second), Message: "services is forbidden"}},
			kind: Wait, reason: ReasonRetryingChange, message: "The last attempt failed: services is forbidden. It is tried again at 2026-11-25T10:00:09Z.",
			eventWarns: true, event: ReasonRetryingChange},
		{name: "the same move failed long ago: tried again", in: FailoverPolicyInput{Election: down, LastRecord: &FailoverRecordView{
			Phase: PhaseMoveTraffic, Component: "web-standby", Result: v1alpha1.ResultFailed, At: foT0.Add(-time.Minute)}},
			kind: Act, phase: PhaseMoveTraffic},
		{name: "the same move recorded in DryRun is recorded once", in: FailoverPolicyInput{Election: down, LastRecord: &FailoverRecordView{
			Phase: PhaseMoveTraffic, Component: "web-standby", Result: v1alpha1.ResultSkipped, At: foT0.Add(-time.Hour), ID: "fo-1"}},
			kind: Idle, message: "DryRun, nothing is changed: "},
		{name: "changes steady for the window with a healthy primary are verified",
			in:   FailoverPolicyInput{Election: steady, UnjudgedOldest: foT0.Add(-3 * time.Minute), UnjudgedNewest: foT0.Add(-2 * time.Minute)},
			kind: Idle, outcome: v1alpha1.OutcomeVerified},
		{name: "a primary that failed again makes the earlier changes ineffective",
			in:   FailoverPolicyInput{Election: movedBack, UnjudgedOldest: foT0.Add(-3 * time.Minute), UnjudgedNewest: foT0.Add(-2 * time.Minute)},
			kind: Act, phase: PhaseMoveTraffic, outcome: v1alpha1.OutcomeIneffective},
		{name: "a missing Service is a warning", in: FailoverPolicyInput{Election: FailoverInput{Now: foT0, Service: "web"}},
			kind: Hold, reason: ReasonServiceNotFound, eventWarns: true, event: ReasonServiceNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Name = "fo"
			d := DecideFailover(tc.in)
			if d.Kind != tc.kind {
				t.Fatalf("kind = %s, want %s (%s)", d.Kind, tc.kind, d.Status.Message)
			}
			if tc.reason != "" && d.Status.Reason != tc.reason {
				t.Errorf("reason = %s, want %s", d.Status.Reason, tc.reason)
			}
			if !strings.Contains(d.Status.Message, tc.message) {
				t.Errorf("message = %q, want %q in it", d.Status.Message, tc.message)
			}
			if (d.Intent != nil) != (tc.phase != "") {
				t.Fatalf("intent = %+v, want phase %q", d.Intent, tc.phase)
			}
			if d.Intent != nil {
				if d.Intent.Change == nil || d.Intent.Change.Phase != tc.phase || d.Intent.Action.Failover == nil || d.Intent.Action.Failover.Policy != "fo" {
					t.Errorf("intent = %+v, change %+v", d.Intent, d.Intent.Change)
				}
				if d.Intent.SkipCooldown != tc.skipCool {
					t.Errorf("skip cooldown = %v, want %v", d.Intent.SkipCooldown, tc.skipCool)
				}
			}
			if tc.outcome != "" && (len(d.Outcomes) != 1 || d.Outcomes[0].Outcome != tc.outcome) {
				t.Errorf("outcomes = %+v, want %s", d.Outcomes, tc.outcome)
			}
			if tc.outcome == "" && len(d.Outcomes) != 0 {
				t.Errorf("outcomes = %+v, want none", d.Outcomes)
			}
			if tc.event != "" && (d.Event == nil || d.Event.Reason != tc.event || d.Event.Warning != tc.eventWarns) {
				t.Errorf("event = %+v, want %s (warning %v)", d.Event, tc.event, tc.eventWarns)
			}
		})
	}
}

func TestCompleted(t *testing.T) {
	ladder := v1alpha1.PolicyStatus{Name: "heal", Step: 2, StepStart: at(time.Minute), State: v1alpha1.PolicyActing, Message: "m."}
	move := &ChangeIntent{Phase: PhaseMoveTraffic, Component: "web-standby"}
	failoverAction := v1alpha1.Action{Failover: &v1alpha1.FailoverAction{Policy: "fo"}}
	restart := v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "web"}}
	now := t0.Add(2 * time.Minute)
	cases := []struct {
		name      string
		st        v1alpha1.PolicyStatus
		rec       v1alpha1.ActionRecord
		action    v1alpha1.Action
		change    *ChangeIntent
		check     func(v1alpha1.PolicyStatus) bool
		nextCheck time.Time
		event     bool
	}{
		{name: "a ladder step that ran keeps its step and remembers the record", st: ladder, action: restart,
			rec:   v1alpha1.ActionRecord{ID: "a", Step: 2, Result: v1alpha1.ResultSucceeded},
			check: func(s v1alpha1.PolicyStatus) bool { return s.LastAction == "a" && s.StepStart != nil && s.Step == 2 }},
		{name: "a cancelled step has not acted: it acts again once no guard holds it", st: ladder, action: restart,
			rec:   v1alpha1.ActionRecord{ID: "a", Step: 2, Result: v1alpha1.ResultCancelled},
			check: func(s v1alpha1.PolicyStatus) bool { return s.StepStart == nil && s.Step == 2 }},
		{name: "a ladder's failover action brings the failover policy round at once", st: ladder, action: failoverAction,
			rec:   v1alpha1.ActionRecord{ID: "a", Step: 2, Result: v1alpha1.ResultSucceeded},
			check: func(s v1alpha1.PolicyStatus) bool { return true }, nextCheck: now},
		{name: "a traffic move that took effect names the new primary and looks again at once",
			st: v1alpha1.PolicyStatus{Name: "fo", Primary: "web"}, action: failoverAction, change: move,
			rec:   v1alpha1.ActionRecord{ID: "m", Result: v1alpha1.ResultSucceeded},
			check: func(s v1alpha1.PolicyStatus) bool { return s.Primary == "web-standby" && s.LastAction == "m" }, nextCheck: now},
		{name: "a failed change waits for its retry and says so", st: v1alpha1.PolicyStatus{Name: "fo", Message: "Moving."},
			action: failoverAction, change: move,
			rec: v1alpha1.ActionRecord{ID: "m", Result: v1alpha1.ResultFailed, Message: "refused", Time: metav1.NewTime(now)},
			check: func(s v1alpha1.PolicyStatus) bool {
				return s.Reason == ReasonRetryingChange && s.Message == "Moving. The last attempt failed: refused. It is tried again at 2026-11-25T10:02:10Z."
			},
			nextCheck: now.Add(FailoverRetryDelay), event: true},
		{name: "a change the tenant's rights refused waits for its retry like a failed one", st: v1alpha1.PolicyStatus{Name: "fo", Message: "Moving."},
			action: failoverAction, change: move,
			rec: v1alpha1.ActionRecord{ID: "m", Result: v1alpha1.ResultForbidden, Message: "ServiceAccount shop/healer may not patch services", Time: metav1.NewTime(now)},
			check: func(s v1alpha1.PolicyStatus) bool {
				return s.Reason == ReasonRetryingChange && strings.Contains(s.Message, "may not patch services")
			},
			nextCheck: now.Add(FailoverRetryDelay), event: true},
		{name: "a change recorded in DryRun says nothing changed", st: v1alpha1.PolicyStatus{Name: "fo", Message: "Moving."},
			action: failoverAction, change: move, rec: v1alpha1.ActionRecord{ID: "m", Result: v1alpha1.ResultSkipped, DryRun: true},
			check: func(s v1alpha1.PolicyStatus) bool {
				return s.Message == "DryRun, nothing is changed: Moving." && s.Primary == ""
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, next, ev := Completed(tc.st, tc.rec, tc.action, tc.change, now)
			if !tc.check(st) {
				t.Errorf("status = %+v", st)
			}
			if !next.Equal(tc.nextCheck) {
				t.Errorf("next check = %s, want %s", next, tc.nextCheck)
			}
			if (ev != nil) != tc.event {
				t.Errorf("event = %+v, want one: %v", ev, tc.event)
			}
		})
	}
}

func TestCheckResume(t *testing.T) {
	cases := []struct {
		name       string
		g          GuardInput
		disruptive bool
		held       bool
		reason     string
	}{
		{name: "an active app carries the intent on", g: GuardInput{Mode: v1alpha1.ModeActive}},
		{name: "paused by mode", g: GuardInput{Mode: v1alpha1.ModePaused}, held: true, reason: ReasonPaused},
		{name: "paused by the annotation", g: GuardInput{PausedAnnotation: true}, held: true, reason: ReasonPaused},
		{name: "switched to DryRun", g: GuardInput{Mode: v1alpha1.ModeDryRun}, held: true, reason: ReasonDryRun},
		{name: "a stale cache", g: GuardInput{StaleCache: "The watch of pods failed."}, held: true, reason: ReasonStaleCache},
		{name: "a storm holds a disruptive intent", g: GuardInput{Storm: true}, disruptive: true, held: true, reason: ReasonStorm},
		{name: "a storm lets a notify through", g: GuardInput{Storm: true}},
		{name: "cooldown does not hold a resumed intent: its own record would",
			g: GuardInput{Cooldown: time.Hour, LastActionAt: t0}},
		{name: "the rate limit does not either", g: GuardInput{MaxActions: &v1alpha1.RateLimit{Count: 1, Per: metav1.Duration{Duration: time.Hour}},
			ActionTimes: []time.Time{t0}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := CheckResume(tc.g, tc.disruptive, t0)
			if v.Held != tc.held || v.Reason != tc.reason || (v.Held && v.Message == "") {
				t.Errorf("verdict = %+v, want held %v reason %q", v, tc.held, tc.reason)
			}
		})
	}
	if ResumeDisruptive("notify") || ResumeDisruptive("webhook") || ResumeDisruptive("runJob") || !ResumeDisruptive("drainNode") || !ResumeDisruptive("scale") {
		t.Error("ResumeDisruptive must count every action that changes workloads, pods or nodes, and only those")
	}
}

func TestTargets(t *testing.T) {
	comps := []TargetComponent{{Name: "web", Workload: true, UnhealthyPods: 1}, {Name: "db", Workload: true}, {Name: "payments"}}
	restart := func(c string, pods v1alpha1.PodSelection) v1alpha1.Action {
		return v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: c, Pods: pods}}
	}
	cases := []struct {
		name  string
		a     v1alpha1.Action
		comps []TargetComponent
		want  []string
	}{
		{name: "an action without a component has one target, the app", a: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "m"}}, comps: comps, want: []string{""}},
		{name: "a named component", a: restart("db", ""), comps: comps, want: []string{"db"}},
		{name: `"*" restarting unhealthy pods: the components that have some`, a: restart("*", ""), comps: comps, want: []string{"web"}},
		{name: `"*" restarting all pods: every workload component`, a: restart("*", v1alpha1.PodsAll), comps: comps, want: []string{"web", "db"}},
		{name: `"*" with no unhealthy pod anywhere: every workload component`, a: restart("*", ""),
			comps: []TargetComponent{{Name: "web", Workload: true}, {Name: "db", Workload: true}}, want: []string{"web", "db"}},
		{name: `"*" for another action: every workload component, never a child app`,
			a: v1alpha1.Action{RolloutRestart: &v1alpha1.ComponentAction{Component: "*"}}, comps: comps, want: []string{"web", "db"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Targets(tc.a, tc.comps); strings.Join(got, ",") != strings.Join(tc.want, ",") || len(got) != len(tc.want) {
				t.Errorf("Targets = %q, want %q", got, tc.want)
			}
		})
	}
}
