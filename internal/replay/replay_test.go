package replay

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/analyze"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// testApp is an app with a workload web, a standby web-eu, sensors cpu (resource) and
// latency (prometheus), and the given symptoms, policies and guards.
func testApp(symptoms []v1alpha1.Symptom, policies []v1alpha1.Policy, guards *v1alpha1.Guards) *v1alpha1.AutonomicApp {
	return &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "shop"},
		Spec: v1alpha1.AutonomicAppSpec{
			Components: []v1alpha1.Component{
				{Name: "web", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}},
				{Name: "web-eu", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web-eu"}},
			},
			Healing: v1alpha1.Healing{
				Sensors: []v1alpha1.Sensor{
					{Name: "cpu", Resource: &v1alpha1.ResourceSensor{Component: "web", Resource: v1alpha1.ResourceCPU}},
					{Name: "latency", Prometheus: &v1alpha1.PrometheusSensor{Address: "http://prometheus:9090", Query: "latency"}},
				},
				Symptoms: symptoms,
				Policies: policies,
				Guards:   guards,
			},
		},
	}
}

func autoscaleCPU(name string, minR *int32, maxR int32, target int32, behavior *autoscalingv2.HorizontalPodAutoscalerBehavior) v1alpha1.Policy {
	return v1alpha1.Policy{Name: name, Autoscale: &v1alpha1.AutoscalePolicy{
		Component: "web", MinReplicas: minR, MaxReplicas: maxR, Behavior: behavior,
		Metrics: []v1alpha1.AutoscaleMetric{{Sensor: "cpu", Target: &v1alpha1.MetricTarget{AverageUtilization: &target}}},
	}}
}

func autoscaleBand(name, lower, upper string, behavior *autoscalingv2.HorizontalPodAutoscalerBehavior) v1alpha1.Policy {
	return v1alpha1.Policy{Name: name, Autoscale: &v1alpha1.AutoscalePolicy{
		Component: "web", MaxReplicas: 50, Behavior: behavior,
		Metrics: []v1alpha1.AutoscaleMetric{{Sensor: "latency", Band: &v1alpha1.Band{Lower: lower, Upper: upper}}},
	}}
}

func ladder(name string, when []string, actions ...v1alpha1.Action) v1alpha1.Policy {
	var steps []v1alpha1.RemediationStep
	for _, a := range actions {
		steps = append(steps, v1alpha1.RemediationStep{Action: a, Timeout: &metav1.Duration{Duration: 10 * time.Minute}})
	}
	return v1alpha1.Policy{Name: name, Remediate: &v1alpha1.RemediatePolicy{When: when, Steps: steps}}
}

func restart(c string) v1alpha1.Action {
	return v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: c}}
}

func notify(msg string) v1alpha1.Action {
	return v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: msg}}
}

// workload is a workload component's recorded sensors.
func workload(desired, ready, crashLooping int32) ComponentSample {
	st := v1alpha1.ComponentStatus{Found: true, DesiredReplicas: desired, ReadyReplicas: ready, AvailableReplicas: ready,
		CrashLoopingPods: crashLooping, Healthy: ready == desired && crashLooping == 0}
	return ComponentSample{Numbers: analyze.ComponentNumbers(st, false)}
}

// series builds n frames step apart from t0; at(i) fills the sensors of frame i (a
// sensor left out is unavailable) and web's recorded replicas.
func series(n int, step time.Duration, at func(i int, f *Frame)) []Frame {
	out := make([]Frame, n)
	for i := range out {
		f := Frame{Time: t0.Add(time.Duration(i) * step), Sensors: map[string]float64{},
			Components: map[string]ComponentSample{"web": workload(2, 2, 0), "web-eu": workload(1, 1, 0)}}
		if at != nil {
			at(i, &f)
		}
		out[i] = f
	}
	return out
}

func input(app *v1alpha1.AutonomicApp, frames []Frame, step time.Duration, start int32) Input {
	return Input{App: app, Frames: frames, From: frames[0].Time, To: frames[len(frames)-1].Time, Step: step,
		Start: map[string]int32{"web": start}}
}

func mustRun(t *testing.T, in Input) Result {
	t.Helper()
	res, err := Run(in)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func acts(res Result) []Decision {
	var out []Decision
	for _, d := range res.Decisions {
		if d.Kind == KindAct {
			out = append(out, d)
		}
	}
	return out
}

func i32(v int32) *int32 { return &v }

func TestAutoscalerScalesUpAtTheFirstStepAfterTheLoadCrossesTheTarget(t *testing.T) {
	step := 15 * time.Second
	tests := []struct {
		name      string
		crossAt   int
		value     float64
		wantTo    int32
		wantSteps int
	}{
		{"a load twice the target doubles the replicas", 8, 140, 4, 20},
		{"a load just above the tolerance adds one replica", 3, 80, 3, 20},
		{"a load within the tolerance changes nothing", 5, 75, 0, 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frames := series(tc.wantSteps, step, func(i int, f *Frame) {
				f.Sensors["cpu"] = 50
				if i >= tc.crossAt {
					f.Sensors["cpu"] = tc.value
				}
			})
			app := testApp(nil, []v1alpha1.Policy{autoscaleCPU("scale-web", i32(1), 10, 70, nil)}, nil)
			res := mustRun(t, input(app, frames, step, 2))
			got := acts(res)
			if tc.wantTo == 0 {
				if len(got) != 0 {
					t.Fatalf("scaled within the tolerance: %+v", got)
				}
				return
			}
			// One scale, at the first step the value is above the target; after it the
			// load spread over more replicas is within the target, so it stays.
			if len(got) != 1 {
				t.Fatalf("want one scale, got %d: %+v", len(got), got)
			}
			d := got[0]
			if want := frames[tc.crossAt].Time; !d.Time.Equal(want) {
				t.Errorf("scaled at %s, want %s, the first step above the target", d.Time, want)
			}
			if d.Action != "scale" || *d.FromReplicas != 2 || *d.Replicas != tc.wantTo {
				t.Errorf("got %s %v->%v, want scale 2->%d", d.Action, *d.FromReplicas, *d.Replicas, tc.wantTo)
			}
			if !strings.Contains(d.Reason, "Scaling web up from 2 to") {
				t.Errorf("reason %q is not plan's", d.Reason)
			}
			if len(res.Replicas) != 1 || res.Replicas[0].Max != tc.wantTo || res.Replicas[0].Min != 2 {
				t.Errorf("replicas %+v", res.Replicas)
			}
		})
	}
}

// noisy is a deterministic series around 0.2, within ±0.09.
func noisy(i int) float64 {
	x := uint32(i*2654435761 + 12345)
	return 0.2 + (float64(x%1000)/1000-0.5)*0.18
}

func TestAWiderBandActsLessThanANarrowOneOnTheSameNoisySeries(t *testing.T) {
	step := 15 * time.Second
	frames := series(240, step, func(i int, f *Frame) { f.Sensors["latency"] = noisy(i) })
	zero := int32(0)
	fast := &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &zero}}
	count := func(lower, upper string) int {
		app := testApp(nil, []v1alpha1.Policy{autoscaleBand("scale-web", lower, upper, fast)}, nil)
		return len(acts(mustRun(t, input(app, frames, step, 4))))
	}
	narrow, wide := count("0.19", "0.21"), count("0.1", "0.3")
	if narrow == 0 {
		t.Fatalf("the narrow band never acted on a noisy series")
	}
	if wide >= narrow {
		t.Errorf("wide band acted %d times, narrow %d: want fewer", wide, narrow)
	}
}

func TestCooldownHoldsASecondActionUntilItEnds(t *testing.T) {
	step := 30 * time.Second
	frames := series(20, step, func(i int, f *Frame) {
		if i >= 2 {
			f.Components["web"] = workload(2, 1, 1)
		}
		if i >= 4 {
			f.Sensors["latency"] = 0.9
		}
	})
	app := testApp(
		[]v1alpha1.Symptom{
			{Name: "CrashLooping", Expression: "components.web.crashLoopingPods > 0"},
			{Name: "Slow", Expression: "has(sensors.latency) && sensors.latency > 0.5"},
		},
		[]v1alpha1.Policy{
			ladder("heal-web", []string{"CrashLooping"}, restart("web")),
			ladder("page", []string{"Slow"}, notify("slow")),
		},
		&v1alpha1.Guards{Cooldown: &metav1.Duration{Duration: 3 * time.Minute}})
	res := mustRun(t, input(app, frames, step, 2))
	var got []string
	for _, d := range res.Decisions {
		got = append(got, d.Time.Sub(t0).String()+" "+d.Policy+" "+d.Kind+" "+d.Guard)
	}
	want := []string{
		"1m0s heal-web Act ",
		"2m0s page Held Cooldown",
		"4m0s page Act ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("decisions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(res.Decisions[1].Reason, "guards.cooldown is 3m0s") {
		t.Errorf("held reason %q does not say the cooldown", res.Decisions[1].Reason)
	}
	if p := res.Policies[1]; p.Actions != 1 || p.Held != 1 {
		t.Errorf("page: %d actions, %d held; want 1 and 1", p.Actions, p.Held)
	}
}

func TestASymptomWithForStartsAnEpisodeOnlyOnceItHeldThatLong(t *testing.T) {
	step := 15 * time.Second
	tests := []struct {
		name    string
		for_    time.Duration
		highAt  int
		highFor int // steps; 0 for the rest of the range
		wantAt  time.Duration
	}{
		{"for 2m starts the episode 2m after the value crossed", 2 * time.Minute, 4, 0, time.Minute + 2*time.Minute},
		{"without for it starts at once", 0, 4, 0, time.Minute},
		{"a crossing shorter than for starts nothing", 2 * time.Minute, 4, 7, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frames := series(40, step, func(i int, f *Frame) {
				f.Sensors["latency"] = 0.1
				if i >= tc.highAt && (tc.highFor == 0 || i < tc.highAt+tc.highFor) {
					f.Sensors["latency"] = 0.9
				}
			})
			sym := v1alpha1.Symptom{Name: "Slow", Expression: "has(sensors.latency) && sensors.latency > 0.5"}
			if tc.for_ > 0 {
				sym.For = &metav1.Duration{Duration: tc.for_}
			}
			app := testApp([]v1alpha1.Symptom{sym}, []v1alpha1.Policy{ladder("heal", []string{"Slow"}, restart("web"))}, nil)
			res := mustRun(t, input(app, frames, step, 2))
			got := acts(res)
			if tc.wantAt < 0 {
				if len(got) != 0 || res.Policies[0].Episodes != 0 {
					t.Fatalf("acted on a crossing shorter than for: %+v", got)
				}
				return
			}
			if len(got) == 0 {
				t.Fatalf("no episode started")
			}
			if at := got[0].Time.Sub(t0); at != tc.wantAt {
				t.Errorf("the episode started at +%s, want +%s", at, tc.wantAt)
			}
			if got[0].Step != 1 || got[0].Action != "restartPods" || res.Policies[0].Episodes != 1 {
				t.Errorf("got %+v, episodes %d", got[0], res.Policies[0].Episodes)
			}
		})
	}
}

func TestAnUnavailableSensorHoldsTheReplicas(t *testing.T) {
	step := 15 * time.Second
	tests := []struct {
		name string
		// available says whether cpu is recorded at step i.
		available func(i int) bool
	}{
		{"never available", func(int) bool { return false }},
		{"lost after a while", func(i int) bool { return i < 10 }},
		{"flickering", func(i int) bool { return i%3 != 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frames := series(80, step, func(i int, f *Frame) {
				if tc.available(i) {
					f.Sensors["cpu"] = 10 // would ask for one replica
				}
			})
			app := testApp(nil, []v1alpha1.Policy{autoscaleCPU("scale-web", i32(1), 10, 70, nil)}, nil)
			res := mustRun(t, input(app, frames, step, 4))
			for _, d := range acts(res) {
				// A flickering sensor lets the scale down through once the scale-down
				// window has passed, at a step where it is available.
				if _, ok := frames[int(d.Time.Sub(t0)/step)].Sensors["cpu"]; !ok || d.Time.Sub(t0) < 5*time.Minute {
					t.Errorf("scaled down on missing data: %+v", d)
				}
			}
			var held bool
			for _, d := range res.Decisions {
				if d.Kind == "Hold" && strings.Contains(d.Reason, "missing data never scales down") {
					held = true
				}
			}
			if !held {
				t.Errorf("no Hold decision says why: %+v", res.Decisions)
			}
			if tc.name != "flickering" && res.Replicas[0].Min != 4 {
				t.Errorf("replicas went down to %d", res.Replicas[0].Min)
			}
			if m := res.Policies[0].Metrics[0]; m.Unavailable == 0 {
				t.Errorf("no unavailable time counted: %+v", m)
			}
		})
	}
}

func TestReplicasStayWithinMinAndMax(t *testing.T) {
	step := 15 * time.Second
	frames := series(120, step, func(i int, f *Frame) {
		switch {
		case i < 40:
			f.Sensors["cpu"] = 5000 // far above any target
		default:
			f.Sensors["cpu"] = 1
		}
	})
	app := testApp(nil, []v1alpha1.Policy{autoscaleCPU("scale-web", i32(2), 6, 70, nil)}, nil)
	res := mustRun(t, input(app, frames, step, 1))
	got := acts(res)
	if len(got) == 0 || *got[0].Replicas != 2 || !got[0].Time.Equal(t0) {
		t.Fatalf("a start below minReplicas is not raised at once: %+v", got)
	}
	for _, d := range got {
		if *d.Replicas < 2 || *d.Replicas > 6 {
			t.Errorf("scaled to %d, outside [2, 6]: %+v", *d.Replicas, d)
		}
	}
	r := res.Replicas[0]
	if r.Min != 2 || r.Max != 6 || r.Start != 1 {
		t.Errorf("replicas %+v, want start 1, min 2, max 6", r)
	}
	if last := got[len(got)-1]; *last.Replicas != 2 {
		t.Errorf("the idle load did not bring it back to minReplicas: %+v", last)
	}
}

func TestTheLoadModel(t *testing.T) {
	util := int32(70)
	avg := resource.MustParse("100")
	val := resource.MustParse("500m")
	tests := []struct {
		name     string
		metric   v1alpha1.AutoscaleMetric
		v        float64
		rec, cur int32
		want     float64
		model    string
	}{
		{"utilization is spread over more replicas", v1alpha1.AutoscaleMetric{Target: &v1alpha1.MetricTarget{AverageUtilization: &util}}, 80, 2, 4, 40, ModelLoadConserved},
		{"utilization is concentrated on fewer replicas", v1alpha1.AutoscaleMetric{Target: &v1alpha1.MetricTarget{AverageUtilization: &util}}, 30, 6, 2, 90, ModelLoadConserved},
		{"utilization at zero simulated replicas is the load of one", v1alpha1.AutoscaleMetric{Target: &v1alpha1.MetricTarget{AverageUtilization: &util}}, 30, 2, 0, 60, ModelLoadConserved},
		{"utilization without recorded replicas is as recorded", v1alpha1.AutoscaleMetric{Target: &v1alpha1.MetricTarget{AverageUtilization: &util}}, 30, 0, 3, 30, ModelLoadConserved},
		{"an averageValue is a total: as recorded", v1alpha1.AutoscaleMetric{Target: &v1alpha1.MetricTarget{AverageValue: &avg}}, 300, 2, 4, 300, ModelAsRecorded},
		{"a value target is per replica: spread over more replicas", v1alpha1.AutoscaleMetric{Target: &v1alpha1.MetricTarget{Value: &val}}, 0.7, 2, 4, 0.35, ModelLoadConserved},
		{"a band is per replica: concentrated on fewer", v1alpha1.AutoscaleMetric{Band: &v1alpha1.Band{Lower: "0.1", Upper: "0.3"}}, 0.2, 4, 2, 0.4, ModelLoadConserved},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := modelled(tc.metric, tc.v, tc.rec, tc.cur); got != tc.want {
				t.Errorf("modelled = %v, want %v", got, tc.want)
			}
			if got := Model(tc.metric); got != tc.model {
				t.Errorf("Model = %s, want %s", got, tc.model)
			}
		})
	}

	t.Run("a replay conserves the load: one scale, then steady", func(t *testing.T) {
		step := 15 * time.Second
		frames := series(60, step, func(i int, f *Frame) {
			f.Sensors["cpu"] = 210 // at 2 recorded replicas: 6 at 70%
		})
		app := testApp(nil, []v1alpha1.Policy{autoscaleCPU("scale-web", i32(1), 10, 70, nil)}, nil)
		res := mustRun(t, input(app, frames, step, 2))
		got := acts(res)
		if len(got) != 1 || *got[0].Replicas != 6 {
			t.Fatalf("want one scale to 6, got %+v", got)
		}
		if m := res.Policies[0].Metrics[0]; m.Outside != Duration(step) || m.Above != Duration(step) {
			t.Errorf("outside the target for %s (above %s), want one step", m.Outside, m.Above)
		}
	})
}

func TestFlapsAreReversalsWithinTheWindow(t *testing.T) {
	zero := int32(0)
	fast := &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &zero}}
	tenMin := int32(600)
	slow := &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &tenMin}}
	// high says whether the load is high at minute i, for n minutes.
	alternate := func(every int) func(int) bool { return func(i int) bool { return (i/every)%2 == 0 } }
	highLowHigh := func(lowFrom, highAgain int) func(int) bool {
		return func(i int) bool { return i < lowFrom || i >= highAgain }
	}
	tests := []struct {
		name       string
		n          int
		high       func(int) bool
		behavior   *autoscalingv2.HorizontalPodAutoscalerBehavior
		wantScales int
		wantFlaps  int
		wantWindow time.Duration
	}{
		{"every minute: each reversal after the first scale is a flap", 6, alternate(1), fast, 6, 5, 5 * time.Minute},
		{"every six minutes: reversals more than 5m apart are not flaps", 36, alternate(6), fast, 6, 0, 5 * time.Minute},
		// Down at 17m (5m after the load fell at 12m), up again at 24m: 7m apart.
		{"a reversal 7m after the default window's scale down is not a flap", 36, highLowHigh(12, 24), nil, 3, 0, 5 * time.Minute},
		// Down at 22m (10m after 12m), up again at 29m: 7m apart, within 10m.
		{"a 10m scale-down window widens the flap window", 40, highLowHigh(12, 29), slow, 3, 1, 10 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			step := time.Minute
			frames := series(tc.n, step, func(i int, f *Frame) {
				f.Sensors["cpu"] = 20 // at 2 recorded replicas: 1 replica at 70%
				if tc.high(i) {
					f.Sensors["cpu"] = 140
				}
			})
			app := testApp(nil, []v1alpha1.Policy{autoscaleCPU("scale-web", i32(1), 10, 70, tc.behavior)}, nil)
			res := mustRun(t, input(app, frames, step, 2))
			p := res.Policies[0]
			var scales []string
			for _, d := range acts(res) {
				scales = append(scales, fmt.Sprintf("+%s %d->%d", d.Time.Sub(t0), *d.FromReplicas, *d.Replicas))
			}
			if len(scales) != tc.wantScales || p.Flaps != tc.wantFlaps || time.Duration(p.FlapWindow) != tc.wantWindow {
				t.Errorf("%d scales, %d flaps within %s; want %d, %d within %s; scales: %s",
					len(scales), p.Flaps, p.FlapWindow, tc.wantScales, tc.wantFlaps, tc.wantWindow, strings.Join(scales, ", "))
			}
		})
	}
}

func TestGapsDecideNothing(t *testing.T) {
	step := 15 * time.Second
	frames := series(40, step, func(i int, f *Frame) {
		f.Sensors["cpu"] = 140
		if i >= 4 && i < 10 {
			f.Components = nil
		}
	})
	// The steps from 20 on have no frame at all.
	frames = frames[:20]
	app := testApp(nil, []v1alpha1.Policy{autoscaleCPU("scale-web", i32(1), 10, 70, nil)}, nil)
	in := input(app, frames, step, 2)
	in.To = t0.Add(39 * step)
	res := mustRun(t, in)
	want := []Gap{{From: t0.Add(4 * step), To: t0.Add(9 * step)}, {From: t0.Add(20 * step), To: t0.Add(39 * step)}}
	if len(res.Gaps) != 2 || res.Gaps[0] != want[0] || res.Gaps[1] != want[1] {
		t.Errorf("gaps %+v, want %+v", res.Gaps, want)
	}
	if res.Steps != 14 {
		t.Errorf("%d steps evaluated, want 14", res.Steps)
	}
}

func TestFailoverPoliciesAreNotSimulated(t *testing.T) {
	frames := series(4, 15*time.Second, nil)
	app := testApp(nil, []v1alpha1.Policy{{Name: "web-failover", Failover: &v1alpha1.FailoverPolicy{Service: "web",
		Candidates: []v1alpha1.FailoverCandidate{{Component: "web"}, {Component: "web-eu"}}}}}, nil)
	res := mustRun(t, input(app, frames, 15*time.Second, 2))
	if len(res.NotSimulated) != 1 || res.NotSimulated[0].Policy != "web-failover" || !strings.Contains(res.NotSimulated[0].Reason, "not recorded") {
		t.Errorf("not simulated: %+v", res.NotSimulated)
	}
	if res.Policies[0].Simulated || res.Policies[0].Kind != "Failover" {
		t.Errorf("summary %+v", res.Policies[0])
	}
}

func TestAnInvalidSpecNamesTheField(t *testing.T) {
	app := testApp([]v1alpha1.Symptom{{Name: "Bad", Expression: "sensors.nope > 1"}}, nil, nil)
	_, err := Run(input(app, series(2, 15*time.Second, nil), 15*time.Second, 2))
	var inv *InvalidSpecError
	if !errors.As(err, &inv) || inv.Errors[0].Field != "spec.symptoms[0].expression" {
		t.Fatalf("err = %v", err)
	}
}

func TestOutcomesAreJudgedWithinTheReplay(t *testing.T) {
	step := 30 * time.Second
	frames := series(40, step, func(i int, f *Frame) {
		if i >= 2 && i < 4 {
			f.Components["web"] = workload(2, 1, 1)
		}
	})
	app := testApp([]v1alpha1.Symptom{{Name: "CrashLooping", Expression: "components.web.crashLoopingPods > 0"}},
		[]v1alpha1.Policy{ladder("heal-web", []string{"CrashLooping"}, restart("web"))}, nil)
	res := mustRun(t, input(app, frames, step, 2))
	var kinds []string
	for _, d := range res.Decisions {
		kinds = append(kinds, d.Kind+":"+d.Outcome)
	}
	if got := strings.Join(kinds, " "); got != "Act:Verified Healed:" {
		t.Errorf("decisions %s, want the restart verified and the episode healed", got)
	}
}

func TestCompareListsTheFirstDecisionsThatDiffer(t *testing.T) {
	d := func(sec int, policy, kind string, to int32) Decision {
		return Decision{Time: t0.Add(time.Duration(sec) * time.Second), Policy: policy, Kind: kind, Action: "scale",
			Replicas: &to, Reason: "r"}
	}
	cur := Result{
		Decisions: []Decision{d(0, "a", KindAct, 3), d(15, "a", KindAct, 4), d(30, "b", KindAct, 2)},
		Policies:  []PolicySummary{{Policy: "a", Actions: 2}, {Policy: "b", Actions: 1}},
	}
	ed := Result{
		Decisions: []Decision{d(0, "a", KindAct, 3), d(15, "a", KindAct, 5), d(45, "c", KindAct, 1)},
		Policies:  []PolicySummary{{Policy: "a", Actions: 2}, {Policy: "c", Actions: 1}},
	}
	c := Compare(cur, ed)
	if c.SameDecisions || len(c.FirstDifferences) != 3 {
		t.Fatalf("differences %+v", c.FirstDifferences)
	}
	first := c.FirstDifferences[0]
	if first.Current == nil || first.Edited == nil || *first.Current.Replicas != 4 || *first.Edited.Replicas != 5 {
		t.Errorf("the first difference pairs the two decisions of policy a at +15s: %+v", first)
	}
	if c.FirstDifferences[1].Edited != nil || c.FirstDifferences[2].Current != nil {
		t.Errorf("unpaired decisions: %+v", c.FirstDifferences[1:])
	}
	var names []string
	for _, p := range c.Policies {
		names = append(names, p.Policy)
	}
	if strings.Join(names, ",") != "a,b,c" || c.Policies[1].Edited != nil || c.Policies[2].Current != nil {
		t.Errorf("policies %+v", c.Policies)
	}
	if !Compare(cur, cur).SameDecisions {
		t.Errorf("a run differs from itself")
	}
}
