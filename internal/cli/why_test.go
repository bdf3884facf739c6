package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// whyNow is the fake clock of the why tests.
var whyNow = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

func mt(d time.Duration) *metav1.Time { t := metav1.NewTime(whyNow.Add(d)); return &t }

func i32(v int32) *int32 { return &v }

// shopApp is an app in the middle of a crash-loop episode: its first step acted, the
// second is held by the cooldown; its latency symptom is pending; its autoscaler is held
// by the scale-down window and maxReplicas.
func whyShopApp() *v1alpha1.AutonomicApp {
	app := &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop", Generation: 3},
		Spec: v1alpha1.AutonomicAppSpec{
			Components: []v1alpha1.Component{
				{Name: "web", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}},
				{Name: "payments", AppRef: &v1alpha1.AppReference{Name: "payments"}},
			},
			Healing: v1alpha1.Healing{
				Sensors: []v1alpha1.Sensor{
					{Name: "latency_p95", Interval: &metav1.Duration{Duration: 10 * time.Second}},
					{Name: "rps"},
				},
				Symptoms: []v1alpha1.Symptom{
					{Name: "CrashLooping", Expression: "components.web.crashLoopingPods > 0"},
					{Name: "SlowResponses", Expression: "has(sensors.latency_p95) && sensors.latency_p95 > 0.3",
						For: &metav1.Duration{Duration: 2 * time.Minute}, ClearFor: &metav1.Duration{Duration: time.Minute}},
				},
				Policies: []v1alpha1.Policy{
					{Name: "heal-web", Remediate: &v1alpha1.RemediatePolicy{When: []string{"CrashLooping"}, Steps: []v1alpha1.RemediationStep{
						{Action: v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "web"}}, Timeout: &metav1.Duration{Duration: 2 * time.Minute}},
						{Action: v1alpha1.Action{Rollback: &v1alpha1.ComponentAction{Component: "web"}}, Timeout: &metav1.Duration{Duration: 5 * time.Minute}},
						{Action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "web keeps crashing"}}},
					}}},
					{Name: "scale-web", Autoscale: &v1alpha1.AutoscalePolicy{Component: "web", MinReplicas: i32(2), MaxReplicas: 6,
						Metrics:  []v1alpha1.AutoscaleMetric{{Sensor: "rps", Target: &v1alpha1.MetricTarget{}}, {Sensor: "latency_p95", Band: &v1alpha1.Band{Lower: "0.1", Upper: "0.3"}}},
						Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{}}},
				},
				Guards: &v1alpha1.Guards{Cooldown: &metav1.Duration{Duration: 30 * time.Second},
					MaxActions: &v1alpha1.RateLimit{Count: 10, Per: metav1.Duration{Duration: time.Hour}}, MaxUnhealthyPods: ptrIntStr(intstr.FromString("50%"))},
			},
		},
	}
	app.Status = v1alpha1.AutonomicAppStatus{
		ObservedGeneration: 3,
		Phase:              v1alpha1.PhaseRemediating,
		Conditions: []metav1.Condition{
			{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Reconciled", LastTransitionTime: *mt(-time.Hour)},
			{Type: v1alpha1.ConditionHealthy, Status: metav1.ConditionFalse, Reason: "ComponentsUnhealthy", Message: "web is unhealthy: 2 of 3 pods are crash-looping.", LastTransitionTime: *mt(-3 * time.Minute)},
			{Type: v1alpha1.ConditionRemediating, Status: metav1.ConditionTrue, Reason: "EpisodeOpen", Message: "heal-web is at step 2 of 3.", LastTransitionTime: *mt(-150 * time.Second)},
		},
		Components: []v1alpha1.ComponentStatus{
			{Name: "web", Kind: "Deployment", Found: true, DesiredReplicas: 3, ReadyReplicas: 1, AvailableReplicas: 1, UnavailableReplicas: 2, Restarts: 14, CrashLoopingPods: 2,
				Message: "2 of 3 pods are crash-looping."},
			{Name: "payments", Kind: "AutonomicApp", Found: true, Healthy: true, Phase: v1alpha1.PhaseHealthy},
		},
		Sensors: []v1alpha1.SensorStatus{
			{Name: "latency_p95", Value: "0.42", ObservedAt: mt(-4 * time.Second)},
			{Name: "rps", Error: "Get \"http://127.0.0.1:9/metrics\": connection refused", ConsecutiveFailures: 3, ObservedAt: mt(-95 * time.Second)},
		},
		Symptoms: []v1alpha1.SymptomStatus{
			{Name: "CrashLooping", Active: true, Holding: true, Since: mt(-150 * time.Second)},
			{Name: "SlowResponses", Holding: true, Since: mt(-time.Hour), PendingSince: mt(-40 * time.Second)},
		},
		Policies: []v1alpha1.PolicyStatus{
			{Name: "heal-web", State: v1alpha1.PolicyHeld, Reason: "Cooldown", Step: 2, EpisodeStart: mt(-150 * time.Second), HeldUntil: mt(25 * time.Second),
				Message: "Step 2 (rollback) is held: the app acted 5s ago and its cooldown is 30s."},
			{Name: "scale-web", State: v1alpha1.PolicyHeld, Reason: "SensorsUnavailable", DesiredReplicas: i32(3),
				Message: "Keeping web at 3 replicas: sensor rps is unavailable and missing data never scales down.",
				Autoscale: &v1alpha1.AutoscaleStatus{CurrentReplicas: 3, RecommendedReplicas: 2, LimitedBy: []string{v1alpha1.LimitScaleDownStabilized}, LimitedUntil: mt(4 * time.Minute),
					Metrics: []v1alpha1.MetricRecommendation{
						{Sensor: "rps", State: v1alpha1.MetricUnavailable, Message: "rps is unavailable"},
						{Sensor: "latency_p95", State: v1alpha1.MetricActive, Value: "0.42", Replicas: i32(4), Message: "latency_p95 0.42 is above the band's upper 0.3: one more replica"},
					}}},
		},
		History: []v1alpha1.ActionRecord{
			{ID: "heal-web-2", Time: *mt(-5 * time.Second), Policy: "heal-web", Step: 1, Action: "restartPods", Component: "web", Target: "Deployment/web",
				Reason: "CrashLooping is active: step 1 of 3, restart the unhealthy pods of web.", Result: v1alpha1.ResultSucceeded},
		},
	}
	return app
}

func ptrIntStr(v intstr.IntOrString) *intstr.IntOrString { return &v }

func TestWhyPrintsTheChainOfJudgement(t *testing.T) {
	app := whyShopApp()
	w := explainWhy(app, app, whyNow)
	for _, c := range []struct {
		name, format string
		width        int
	}{
		{"why.txt", "", 100},
		{"why_narrow.txt", "", 50},
		{"why.json", "json", 100},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := printTo(&b, c.format, c.width, w, func(tx *Text) { renderWhy(tx, w) }); err != nil {
				t.Fatal(err)
			}
			if c.format == "" {
				for i, l := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
					if n := len([]rune(l)); n > c.width && !strings.Contains(l, "http://") {
						t.Errorf("line %d is %d columns wide, more than %d: %q", i+1, n, c.width, l)
					}
				}
			}
			golden(t, c.name, b.Bytes())
		})
	}
}

func TestWhyNamesTheGuardThatHoldsAPolicyAndWhenItLifts(t *testing.T) {
	app := whyShopApp()
	w := explainWhy(app, app, whyNow)
	p := w.Policies[0]
	if p.HeldBy != "Cooldown" || p.HeldUntil == nil || !p.HeldUntil.Equal(whyNow.Add(25*time.Second)) {
		t.Errorf("heal-web held by %q until %v; want Cooldown until %s", p.HeldBy, p.HeldUntil, whyNow.Add(25*time.Second))
	}
	if p.Next == nil || p.Next.Step != 2 || p.Next.Action != "rollback" || p.Next.At == nil || !p.Next.At.Equal(whyNow.Add(25*time.Second)) {
		t.Errorf("heal-web's next move = %+v; want step 2 rollback when the cooldown ends", p.Next)
	}
	s := w.Symptoms[1]
	if s.ChangesAt == nil || !s.ChangesAt.Equal(whyNow.Add(80*time.Second)) {
		t.Errorf("SlowResponses becomes active at %v; want pendingSince + for = %s", s.ChangesAt, whyNow.Add(80*time.Second))
	}
	if fmt.Sprint(s.Reads) != "[{sensors.latency_p95 0.42}]" || fmt.Sprint(w.Symptoms[0].Reads) != "[{components.web.crashLoopingPods 2}]" {
		t.Errorf("reads = %v and %v", s.Reads, w.Symptoms[0].Reads)
	}
	// The guards' verdict on an action now: the cooldown from the last action 5s ago.
	if !w.Guards.Verdict.Held || w.Guards.Verdict.Reason != "Cooldown" || w.Guards.Verdict.Until == nil || !w.Guards.Verdict.Until.Equal(whyNow.Add(25*time.Second)) {
		t.Errorf("guards' verdict = %+v", w.Guards.Verdict)
	}
	if w.Guards.ActionsInWindow != 1 {
		t.Errorf("%d actions in maxActions' window, want 1", w.Guards.ActionsInWindow)
	}
	b, err := json.Marshal(w)
	if err != nil || !strings.Contains(string(b), `"heldUntil":"2026-12-05T10:00:25Z"`) {
		t.Errorf("JSON misses the hold's end: %s %v", b, err)
	}
}

func TestWhyShowsAPausedAppAndAStaleStatus(t *testing.T) {
	app := whyShopApp()
	app.Annotations = map[string]string{v1alpha1.PausedAnnotation: "migration"}
	app.Generation = 4
	w := explainWhy(app, app, whyNow)
	if w.Paused != "migration" || !strings.Contains(w.Stale, "generation 4") {
		t.Errorf("paused %q, stale %q", w.Paused, w.Stale)
	}
	if !w.Guards.Verdict.Held || w.Guards.Verdict.Reason != "Paused" {
		t.Errorf("a paused app's guards say %+v", w.Guards.Verdict)
	}
}

func TestPauseAndResumeSayWhatChanged(t *testing.T) {
	var b bytes.Buffer
	for _, r := range []PauseResult{
		{Namespace: "shop", App: "shop", Paused: true, Changed: true, Reason: "database migration until 14:00"},
		{Namespace: "shop", App: "shop", Paused: true, Reason: "true"},
		{Namespace: "shop", App: "shop", Changed: true},
		{Namespace: "shop", App: "shop"},
	} {
		if err := printTo(&b, "", 100, r, func(t *Text) { renderPause(t, r) }); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "pause.txt", b.Bytes())
}

func TestWhysGuardsCountTheLedgerAsTheManagerDoes(t *testing.T) {
	app := whyShopApp()
	app.Spec.Mode = v1alpha1.ModeDryRun
	app.Spec.Guards.Cooldown = &metav1.Duration{Duration: 5 * time.Minute}
	// A DryRun decision a minute ago: the manager's cooldown counts it.
	app.Status.History = []v1alpha1.ActionRecord{{ID: "heal-web-1", Time: *mt(-time.Minute), Policy: "heal-web", Action: "restartPods",
		Result: v1alpha1.ResultSkipped, DryRun: true}}
	w := explainWhy(app, app, whyNow)
	if v := w.Guards.Verdict; !v.Held || v.Reason != "Cooldown" || v.Until == nil || !v.Until.Equal(whyNow.Add(4*time.Minute)) {
		t.Errorf("verdict %+v: want held by Cooldown until %s, as the manager's guards count a DryRun record", v, whyNow.Add(4*time.Minute))
	}
	// A pending status with a zero pendingSince is shown without a change time.
	app.Status.Symptoms[1].PendingSince = &metav1.Time{}
	w = explainWhy(app, app, whyNow)
	if w.Symptoms[1].ChangesAt != nil {
		t.Errorf("changesAt %v from a zero pendingSince", w.Symptoms[1].ChangesAt)
	}
	var b bytes.Buffer
	if err := printTo(&b, "", 80, w, func(tx *Text) { renderWhy(tx, w) }); err != nil {
		t.Fatal(err)
	}
}

func TestAnUnknownCommandIsAUsageError(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main(genericiooptions.IOStreams{Out: &out, ErrOut: &errOut}, []string{"wy", "shop"}); code != ExitUsage {
		t.Errorf("exit %d for an unknown command, want %d: %s", code, ExitUsage, errOut.String())
	}
}
