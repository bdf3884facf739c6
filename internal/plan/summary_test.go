package plan

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func healthy(name string) ComponentHealth {
	return ComponentHealth{Name: name, Healthy: true, Found: true}
}

func quorum(n int32) *int32 { return &n }

func sick(name, msg string) ComponentHealth {
	return ComponentHealth{Name: name, Found: true, Message: msg}
}

func TestRollupNeedsAllComponentsHealthyUnlessAQuorumIsSet(t *testing.T) {
	cases := []struct {
		name       string
		min        *int32
		components []ComponentHealth
		want       Health
		message    string
	}{
		{name: "no component is all healthy", want: Health{Healthy: true},
			message: "All 0 components are healthy."},
		{name: "by default every component healthy is healthy",
			components: []ComponentHealth{healthy("web"), healthy("api")},
			want:       Health{Healthy: true, HealthyComponents: 2, Total: 2, Needed: 2},
			message:    "All 2 components are healthy."},
		{name: "by default one unhealthy component makes the app unhealthy and is named with its reason",
			components: []ComponentHealth{healthy("web"), sick("api", "1 of 3 replicas are ready.")},
			want:       Health{HealthyComponents: 1, Total: 2, Needed: 2, Unhealthy: []ComponentHealth{sick("api", "1 of 3 replicas are ready.")}},
			message:    "1 of 2 components are healthy, 2 needed; unhealthy: api (1 of 3 replicas are ready)."},
		{name: "a quorum met with one component unhealthy is healthy and still names the unhealthy one",
			min:        quorum(1),
			components: []ComponentHealth{healthy("web"), sick("web-standby", "0 of 2 replicas are ready.")},
			want: Health{Healthy: true, HealthyComponents: 1, Total: 2, Needed: 1,
				Unhealthy: []ComponentHealth{sick("web-standby", "0 of 2 replicas are ready.")}},
			message: "1 of 2 components are healthy, at least 1 needed; unhealthy: web-standby (0 of 2 replicas are ready)."},
		{name: "a quorum met exactly with every component healthy says all are",
			min:        quorum(2),
			components: []ComponentHealth{healthy("web"), healthy("api")},
			want:       Health{Healthy: true, HealthyComponents: 2, Total: 2, Needed: 2},
			message:    "All 2 components are healthy."},
		{name: "a quorum missed is unhealthy and lists every unhealthy component in order",
			min:        quorum(2),
			components: []ComponentHealth{sick("web", "1 of 2 pods are crash-looping."), healthy("api"), sick("db", "The rollout exceeded its progress deadline.")},
			want: Health{HealthyComponents: 1, Total: 3, Needed: 2,
				Unhealthy: []ComponentHealth{sick("web", "1 of 2 pods are crash-looping."), sick("db", "The rollout exceeded its progress deadline.")}},
			message: "1 of 3 components are healthy, 2 needed; unhealthy: web (1 of 2 pods are crash-looping); db (The rollout exceeded its progress deadline)."},
		{name: "a quorum of zero is met with every component unhealthy",
			min:        quorum(0),
			components: []ComponentHealth{sick("web", "0 of 1 replicas are ready.")},
			want:       Health{Healthy: true, Total: 1, Unhealthy: []ComponentHealth{sick("web", "0 of 1 replicas are ready.")}},
			message:    "0 of 1 components are healthy, at least 0 needed; unhealthy: web (0 of 1 replicas are ready)."},
		{name: "a component not found is unhealthy with the monitor's reason",
			components: []ComponentHealth{{Name: "payments", Message: "Child AutonomicApp not found."}},
			want:       Health{Total: 1, Needed: 1, Unhealthy: []ComponentHealth{{Name: "payments", Message: "Child AutonomicApp not found."}}},
			message:    "0 of 1 components are healthy, 1 needed; unhealthy: payments (Child AutonomicApp not found)."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Rollup(tc.min, tc.components)
			if got.Healthy != tc.want.Healthy || got.HealthyComponents != tc.want.HealthyComponents || got.Total != tc.want.Total ||
				got.Needed != tc.want.Needed || !slices.Equal(got.Unhealthy, tc.want.Unhealthy) {
				t.Fatalf("Rollup = %+v\nwant     %+v", got, tc.want)
			}
			if msg := got.Message(); msg != tc.message {
				t.Fatalf("Message = %q\nwant      %q", msg, tc.message)
			}
		})
	}
}

func TestMissingComponentNamesTheFirstComponentNotFound(t *testing.T) {
	if got := MissingComponent([]ComponentHealth{healthy("web"), sick("api", "0 of 1 replicas are ready.")}); got != "" {
		t.Fatalf("every component found: MissingComponent = %q, want none", got)
	}
	got := MissingComponent([]ComponentHealth{healthy("web"), {Name: "api", Message: `Deployment "api" not found.`},
		{Name: "db", Message: `StatefulSet "db" not found.`}})
	if want := `Component "api": Deployment "api" not found. Create it or fix spec.components.`; got != want {
		t.Fatalf("MissingComponent = %q\nwant                %q", got, want)
	}
}

// The policies of the summary tests: a ladder whose second step notifies a person.
var summaryPolicies = []v1alpha1.Policy{
	{Name: "heal-web", Remediate: &v1alpha1.RemediatePolicy{When: []string{"CrashLooping"}, Steps: []v1alpha1.RemediationStep{
		{Action: v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "web"}}},
		{Action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "web keeps crashing"}}},
	}}},
	{Name: "heal-api", Remediate: &v1alpha1.RemediatePolicy{When: []string{"Slow"}, Steps: []v1alpha1.RemediationStep{
		{Action: v1alpha1.Action{RolloutRestart: &v1alpha1.ComponentAction{Component: "api"}}},
	}}},
}

// want is one condition the summary must set; absent lists the types it must remove.
type want struct {
	typ, reason, message string
	status               metav1.ConditionStatus
}

func TestSummarize(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	readySince := now.Add(-time.Hour)
	started := metav1.NewTime(now.Add(-time.Minute))
	storm := StormVerdict{Engaged: true, Stormy: 2, Namespaces: 3, Unhealthy: 4, Total: 6}
	base := func() SummaryInput {
		return SummaryInput{Now: now, Mode: v1alpha1.ModeActive, Components: []ComponentHealth{healthy("web"), healthy("api")},
			Policies: summaryPolicies,
			Ready:    &Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonReconciled, Since: readySince}}
	}
	acting := v1alpha1.PolicyStatus{Name: "heal-web", State: v1alpha1.PolicyActing, Step: 1, StepStart: &started, Message: "Restarted the pods of web."}
	notified := v1alpha1.PolicyStatus{Name: "heal-web", State: v1alpha1.PolicyWaiting, Step: 2, StepStart: &started, Message: "web keeps crashing"}
	gaveUp := v1alpha1.PolicyStatus{Name: "heal-api", State: v1alpha1.PolicyGaveUp, Reason: v1alpha1.ReasonGaveUp, Message: "3 episodes within 1h."}

	cases := []struct {
		name   string
		in     func(*SummaryInput)
		phase  v1alpha1.Phase
		want   []want
		absent []string
	}{
		{name: "every component healthy and nothing open is Healthy and Active",
			phase: v1alpha1.PhaseHealthy,
			want: []want{
				{v1alpha1.ConditionHealthy, v1alpha1.ReasonComponentsHealthy, "All 2 components are healthy.", metav1.ConditionTrue},
				{v1alpha1.ConditionRemediating, v1alpha1.ReasonNoEpisode, "No remediation episode is open.", metav1.ConditionFalse},
				{v1alpha1.ConditionNeedsAttention, v1alpha1.ReasonNothingNeeded, "No policy needs a person.", metav1.ConditionFalse},
				{v1alpha1.ConditionSensorsAvailable, v1alpha1.ReasonNoSensors, "The app declares no polled sensors; component sensors are event-driven.", metav1.ConditionTrue},
				{v1alpha1.ConditionSuspended, v1alpha1.ReasonActive, "Policies act.", metav1.ConditionFalse},
			},
			absent: []string{v1alpha1.ConditionStalled, v1alpha1.ConditionReconciling}},
		{name: "an unhealthy component is Degraded",
			in:    func(in *SummaryInput) { in.Components[1] = sick("api", "0 of 2 replicas are ready.") },
			phase: v1alpha1.PhaseDegraded,
			want: []want{{v1alpha1.ConditionHealthy, v1alpha1.ReasonComponentsUnhealthy,
				"1 of 2 components are healthy, 2 needed; unhealthy: api (0 of 2 replicas are ready).", metav1.ConditionFalse}}},
		{name: "a quorum met with a component unhealthy is Healthy",
			in: func(in *SummaryInput) {
				in.MinHealthyComponents = quorum(1)
				in.Components[1] = sick("api", "0 of 2 replicas are ready.")
			},
			phase: v1alpha1.PhaseHealthy,
			want: []want{{v1alpha1.ConditionHealthy, v1alpha1.ReasonComponentsHealthy,
				"1 of 2 components are healthy, at least 1 needed; unhealthy: api (0 of 2 replicas are ready).", metav1.ConditionTrue}}},
		{name: "an active symptom with healthy components is Degraded",
			in: func(in *SummaryInput) {
				in.Symptoms = []v1alpha1.SymptomStatus{{Name: "Idle"}, {Name: "Slow", Active: true}}
			},
			phase: v1alpha1.PhaseDegraded,
			want:  []want{{v1alpha1.ConditionHealthy, v1alpha1.ReasonComponentsHealthy, "All 2 components are healthy.", metav1.ConditionTrue}}},
		{name: "symptoms all clear leave the app Healthy",
			in:    func(in *SummaryInput) { in.Symptoms = []v1alpha1.SymptomStatus{{Name: "Slow"}} },
			phase: v1alpha1.PhaseHealthy},
		{name: "a policy on a step is Remediating",
			in: func(in *SummaryInput) {
				in.PolicyStatus = []v1alpha1.PolicyStatus{acting, {Name: "heal-api", State: v1alpha1.PolicyIdle}}
				in.Components[0] = sick("web", "1 of 2 pods are crash-looping.")
			},
			phase: v1alpha1.PhaseRemediating,
			want: []want{
				{v1alpha1.ConditionRemediating, v1alpha1.ReasonEpisodeOpen, "Remediation episodes are open: heal-web.", metav1.ConditionTrue},
				{v1alpha1.ConditionNeedsAttention, v1alpha1.ReasonNothingNeeded, "No policy needs a person.", metav1.ConditionFalse},
			}},
		{name: "every open episode is named in spec order",
			in: func(in *SummaryInput) {
				in.PolicyStatus = []v1alpha1.PolicyStatus{acting, {Name: "heal-api", State: v1alpha1.PolicyWaiting, Step: 1, StepStart: &started}}
			},
			phase: v1alpha1.PhaseRemediating,
			want:  []want{{v1alpha1.ConditionRemediating, v1alpha1.ReasonEpisodeOpen, "Remediation episodes are open: heal-web; heal-api.", metav1.ConditionTrue}}},
		{name: "a notify step that has started needs a person",
			in:    func(in *SummaryInput) { in.PolicyStatus = []v1alpha1.PolicyStatus{notified} },
			phase: v1alpha1.PhaseNeedsAttention,
			want: []want{
				{v1alpha1.ConditionRemediating, v1alpha1.ReasonEpisodeOpen, "Remediation episodes are open: heal-web.", metav1.ConditionTrue},
				{v1alpha1.ConditionNeedsAttention, v1alpha1.ReasonNotified, "heal-web: web keeps crashing", metav1.ConditionTrue},
			}},
		{name: "a notify step not started yet needs nobody",
			in: func(in *SummaryInput) {
				p := notified
				p.StepStart = nil
				in.PolicyStatus = []v1alpha1.PolicyStatus{p}
			},
			phase: v1alpha1.PhaseRemediating,
			want:  []want{{v1alpha1.ConditionNeedsAttention, v1alpha1.ReasonNothingNeeded, "No policy needs a person.", metav1.ConditionFalse}}},
		{name: "a policy the app no longer runs is not on a notify step",
			in: func(in *SummaryInput) {
				p := notified
				p.Name = "gone"
				in.PolicyStatus = []v1alpha1.PolicyStatus{p}
			},
			phase: v1alpha1.PhaseRemediating,
			want:  []want{{v1alpha1.ConditionNeedsAttention, v1alpha1.ReasonNothingNeeded, "No policy needs a person.", metav1.ConditionFalse}}},
		{name: "a policy that gave up needs a person and closes its episode",
			in:    func(in *SummaryInput) { in.PolicyStatus = []v1alpha1.PolicyStatus{gaveUp} },
			phase: v1alpha1.PhaseNeedsAttention,
			want: []want{
				{v1alpha1.ConditionRemediating, v1alpha1.ReasonNoEpisode, "No remediation episode is open.", metav1.ConditionFalse},
				{v1alpha1.ConditionNeedsAttention, v1alpha1.ReasonGaveUp, "heal-api: 3 episodes within 1h.", metav1.ConditionTrue},
			}},
		{name: "a policy that gave up outweighs one that notified, and both are named",
			in:    func(in *SummaryInput) { in.PolicyStatus = []v1alpha1.PolicyStatus{notified, gaveUp} },
			phase: v1alpha1.PhaseNeedsAttention,
			want: []want{{v1alpha1.ConditionNeedsAttention, v1alpha1.ReasonGaveUp,
				"heal-web: web keeps crashing; heal-api: 3 episodes within 1h.", metav1.ConditionTrue}}},
		{name: "every sensor available",
			in: func(in *SummaryInput) {
				in.Sensors = []v1alpha1.SensorStatus{{Name: "cpu"}, {Name: "latency"}}
			},
			phase: v1alpha1.PhaseHealthy,
			want:  []want{{v1alpha1.ConditionSensorsAvailable, v1alpha1.ReasonSensorsAvailable, "All 2 sensors are available.", metav1.ConditionTrue}}},
		{name: "an unavailable sensor is named with its error",
			in: func(in *SummaryInput) {
				in.Sensors = []v1alpha1.SensorStatus{{Name: "cpu"}, {Name: "latency", Error: "Not polled yet."}, {Name: "probe", Error: "connection refused"}}
			},
			phase: v1alpha1.PhaseHealthy,
			want: []want{{v1alpha1.ConditionSensorsAvailable, v1alpha1.ReasonSensorsUnavailable,
				"2 of 3 sensors are unavailable: latency (Not polled yet); probe (connection refused). Symptoms read them as absent, and autoscalers do not scale down on missing data.",
				metav1.ConditionFalse}}},
		{name: "a sensor whose timeout the egress maximum cuts is named while available",
			in: func(in *SummaryInput) {
				in.Sensors = []v1alpha1.SensorStatus{{Name: "cpu"}, {Name: "probe"}}
				in.CappedTimeouts = []CappedTimeout{{Sensor: "probe", Asked: 2 * time.Minute, Cap: 30 * time.Second}}
			},
			phase: v1alpha1.PhaseHealthy,
			want: []want{{v1alpha1.ConditionSensorsAvailable, v1alpha1.ReasonSensorsAvailable,
				"All 2 sensors are available. The admin's --egress-max-timeout caps sensor timeouts: probe asks for 2m0s and gets 30s.",
				metav1.ConditionTrue}}},
		{name: "a sensor whose timeout the egress maximum cuts is named while unavailable",
			in: func(in *SummaryInput) {
				in.Sensors = []v1alpha1.SensorStatus{{Name: "probe", Error: "no answer within 30s"}}
				in.CappedTimeouts = []CappedTimeout{{Sensor: "probe", Asked: 2 * time.Minute, Cap: 30 * time.Second}}
			},
			phase: v1alpha1.PhaseHealthy,
			want: []want{{v1alpha1.ConditionSensorsAvailable, v1alpha1.ReasonSensorsUnavailable,
				"1 of 1 sensors are unavailable: probe (no answer within 30s). Symptoms read them as absent, and autoscalers do not scale down on missing data." +
					" The admin's --egress-max-timeout caps sensor timeouts: probe asks for 2m0s and gets 30s.",
				metav1.ConditionFalse}}},
		{name: "mode Paused is Paused, even when a person is needed",
			in: func(in *SummaryInput) {
				in.Mode = v1alpha1.ModePaused
				in.PolicyStatus = []v1alpha1.PolicyStatus{gaveUp}
			},
			phase: v1alpha1.PhasePaused,
			want: []want{{v1alpha1.ConditionSuspended, v1alpha1.ReasonModePaused,
				"spec.mode is Paused: symptoms are reported, no action is taken.", metav1.ConditionTrue}}},
		{name: "mode Paused outweighs the annotation and the storm",
			in: func(in *SummaryInput) {
				in.Mode, in.PausedAnnotation, in.Storm = v1alpha1.ModePaused, true, storm
			},
			phase: v1alpha1.PhasePaused,
			want:  []want{{v1alpha1.ConditionSuspended, v1alpha1.ReasonModePaused, "spec.mode is Paused: symptoms are reported, no action is taken.", metav1.ConditionTrue}}},
		{name: "the paused annotation is Paused",
			in:    func(in *SummaryInput) { in.PausedAnnotation = true },
			phase: v1alpha1.PhasePaused,
			want: []want{{v1alpha1.ConditionSuspended, v1alpha1.ReasonPausedAnnotation,
				"The autonomic.homeostat.dev/paused annotation is set: no action is taken until it is removed.", metav1.ConditionTrue}}},
		{name: "the paused annotation outweighs DryRun and the storm",
			in: func(in *SummaryInput) {
				in.Mode, in.PausedAnnotation, in.Storm = v1alpha1.ModeDryRun, true, storm
			},
			phase: v1alpha1.PhasePaused,
			want: []want{{v1alpha1.ConditionSuspended, v1alpha1.ReasonPausedAnnotation,
				"The autonomic.homeostat.dev/paused annotation is set: no action is taken until it is removed.", metav1.ConditionTrue}}},
		{name: "DryRun suspends the actions but does not pause the phase",
			in: func(in *SummaryInput) {
				in.Mode = v1alpha1.ModeDryRun
				in.PolicyStatus = []v1alpha1.PolicyStatus{acting}
			},
			phase: v1alpha1.PhaseRemediating,
			want: []want{{v1alpha1.ConditionSuspended, v1alpha1.ReasonDryRun,
				"spec.mode is DryRun: decisions are recorded in history, nothing is changed.", metav1.ConditionTrue}}},
		{name: "DryRun outweighs the storm",
			in:    func(in *SummaryInput) { in.Mode, in.Storm = v1alpha1.ModeDryRun, storm },
			phase: v1alpha1.PhaseHealthy,
			want: []want{{v1alpha1.ConditionSuspended, v1alpha1.ReasonDryRun,
				"spec.mode is DryRun: decisions are recorded in history, nothing is changed.", metav1.ConditionTrue}}},
		{name: "the storm breaker suspends an Active app with its counts",
			in:    func(in *SummaryInput) { in.Storm = storm },
			phase: v1alpha1.PhaseHealthy,
			want: []want{{v1alpha1.ConditionSuspended, v1alpha1.ReasonStormDetected,
				"2 of 3 namespaces have more than --storm-threshold of their apps unhealthy at once (4 of 6 apps in all): " +
					"disruptive actions are stopped cluster-wide until the share falls.",
				metav1.ConditionTrue}}},
		{name: "a storm verdict that is not engaged leaves the app Active",
			in:    func(in *SummaryInput) { in.Storm = StormVerdict{Unhealthy: 2, Total: 6} },
			phase: v1alpha1.PhaseHealthy,
			want:  []want{{v1alpha1.ConditionSuspended, v1alpha1.ReasonActive, "Policies act.", metav1.ConditionFalse}}},
		{name: "a spec that cannot run is Stalled with Ready's reason and message",
			in: func(in *SummaryInput) {
				in.Ready = &Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonInvalidSpec,
					Message: "The spec is invalid and no policy runs until it is fixed: Broken.", Since: readySince}
			},
			phase: v1alpha1.PhaseHealthy,
			want: []want{{v1alpha1.ConditionStalled, v1alpha1.ReasonInvalidSpec,
				"The spec is invalid and no policy runs until it is fixed: Broken.", metav1.ConditionTrue}},
			absent: []string{v1alpha1.ConditionReconciling}},
		{name: "a component still to appear is Reconciling with Ready's reason and message",
			in: func(in *SummaryInput) {
				in.Components[0] = ComponentHealth{Name: "web", Message: `Deployment "web" not found.`}
				in.Ready = &Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonComponentNotFound,
					Message: `Component "web": Deployment "web" not found. Create it or fix spec.components.`, Since: readySince}
			},
			phase: v1alpha1.PhaseDegraded,
			want: []want{{v1alpha1.ConditionReconciling, v1alpha1.ReasonComponentNotFound,
				`Component "web": Deployment "web" not found. Create it or fix spec.components.`, metav1.ConditionTrue}},
			absent: []string{v1alpha1.ConditionStalled}},
		{name: "a ServiceAccount still to appear is Reconciling, not Stalled: a GitOps sync may create it next",
			in: func(in *SummaryInput) {
				in.Ready = &Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonServiceAccountNotFound,
					Message: "ServiceAccount shop/healer does not exist.", Since: readySince}
			},
			phase: v1alpha1.PhaseHealthy,
			want: []want{{v1alpha1.ConditionReconciling, v1alpha1.ReasonServiceAccountNotFound,
				"ServiceAccount shop/healer does not exist.", metav1.ConditionTrue}},
			absent: []string{v1alpha1.ConditionStalled}},
		{name: "no Ready condition yet sets neither kstatus condition",
			in:     func(in *SummaryInput) { in.Ready = nil },
			phase:  v1alpha1.PhaseHealthy,
			absent: []string{v1alpha1.ConditionStalled, v1alpha1.ConditionReconciling}},
		{name: "nothing enforced replaces what the app asks for: Overridden is absent",
			phase:  v1alpha1.PhaseHealthy,
			absent: []string{v1alpha1.ConditionOverridden}},
		{name: "an enforced ClusterHealingPolicy that replaces an entry and tightens a guard says so",
			in: func(in *SummaryInput) {
				by := SharedPolicy{Kind: "ClusterHealingPolicy", Name: "guardrails"}
				in.Overrides = []Override{
					{Entry: EntryPolicy, Name: "heal-web", From: "the app", By: by},
					{Entry: EntryGuards, Name: "cooldown", From: "the app", By: by, Was: "10s", Now: "1m0s"},
				}
			},
			phase: v1alpha1.PhaseHealthy,
			want: []want{{v1alpha1.ConditionOverridden, v1alpha1.ReasonEnforcedByClusterPolicy,
				"The cluster admin's enforced shared policy applies instead of what this app asks for: " +
					"policy heal-web from the app is replaced by the enforced ClusterHealingPolicy guardrails; " +
					"guards.cooldown 10s from the app is tightened to 1m0s by the enforced ClusterHealingPolicy guardrails.",
				metav1.ConditionTrue}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			if tc.in != nil {
				tc.in(&in)
			}
			got := Summarize(in)
			if got.Phase != tc.phase {
				t.Errorf("phase = %s, want %s", got.Phase, tc.phase)
			}
			if h := Rollup(in.MinHealthyComponents, in.Components); got.Health.Healthy != h.Healthy || got.Health.Message() != h.Message() {
				t.Errorf("health = %+v, want the rollup %+v", got.Health, h)
			}
			for _, w := range tc.want {
				i := slices.IndexFunc(got.Conditions, func(c Condition) bool { return c.Type == w.typ })
				if i < 0 {
					t.Errorf("no %s condition in %+v", w.typ, got.Conditions)
					continue
				}
				c := got.Conditions[i]
				if c.Status != w.status || c.Reason != w.reason || c.Message != w.message {
					t.Errorf("%s = %s %s %q\nwant %s %s %q", w.typ, c.Status, c.Reason, c.Message, w.status, w.reason, w.message)
				}
				since := now
				if w.typ == v1alpha1.ConditionStalled || w.typ == v1alpha1.ConditionReconciling {
					since = readySince
				}
				if !c.Since.Equal(since) {
					t.Errorf("%s is since %s, want %s", w.typ, c.Since, since)
				}
			}
			for _, typ := range tc.absent {
				if !slices.Contains(got.Absent, typ) {
					t.Errorf("%s is not removed: absent %v", typ, got.Absent)
				}
				if slices.ContainsFunc(got.Conditions, func(c Condition) bool { return c.Type == typ }) {
					t.Errorf("%s is both set and removed", typ)
				}
			}
			// The five conditions the summary owns are always set, in this order.
			var types []string
			for _, c := range got.Conditions[:5] {
				types = append(types, c.Type)
			}
			if wantTypes := []string{v1alpha1.ConditionHealthy, v1alpha1.ConditionRemediating, v1alpha1.ConditionNeedsAttention,
				v1alpha1.ConditionSensorsAvailable, v1alpha1.ConditionSuspended}; !slices.Equal(types, wantTypes) {
				t.Errorf("conditions %v, want %v first", types, wantTypes)
			}
			if len(got.Conditions)+len(got.Absent) != 8 {
				t.Errorf("%d conditions set and %d removed, want 8 in all", len(got.Conditions), len(got.Absent))
			}
		})
	}
}
