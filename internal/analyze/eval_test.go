package analyze

import (
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// testInput is the shop app: web crash-looping with 2 of 4 replicas ready, the standby
// scaled to zero, payments degraded, cpu available and latency_p95 unavailable.
func testInput() Input {
	return Input{
		Components: map[string]map[string]any{
			"web": ComponentVars(v1alpha1.ComponentStatus{
				Name: "web", Found: true, DesiredReplicas: 4, ReadyReplicas: 2, AvailableReplicas: 2,
				UnavailableReplicas: 2, Restarts: 7, CrashLoopingPods: 1,
			}, false),
			"web-standby": ComponentVars(v1alpha1.ComponentStatus{Name: "web-standby", Found: true, Healthy: true}, false),
			"payments":    ComponentVars(v1alpha1.ComponentStatus{Name: "payments", Found: true, Phase: v1alpha1.PhaseDegraded}, true),
		},
		Sensors: map[string]float64{"cpu": 85.5},
		App: AppVars(&v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{
			Name: "shop", Namespace: "shop", Labels: map[string]string{"tier": "gold"},
		}}, 1, 3),
	}
}

func TestEval(t *testing.T) {
	tests := []struct {
		name    string
		expr    string
		want    bool
		wantErr string // a substring of Err; empty for no error
	}{
		{name: "int field", expr: "components.web.crashLoopingPods > 0", want: true},
		{name: "int field compared with a double", expr: "components.web.restarts > 6.5", want: true},
		{name: "double field compared with an int", expr: "components.web.readyRatio < 1", want: true},
		{name: "ready ratio", expr: "components.web.readyRatio == 0.5", want: true},
		{name: "ready ratio with nothing desired is 1", expr: "components['web-standby'].readyRatio == 1.0", want: true},
		{name: "double sensor compared with an int", expr: "sensors.cpu > 80", want: true},
		{name: "bool field", expr: "components['web-standby'].healthy", want: true},
		{name: "child app phase", expr: "components.payments.phase == 'Degraded'", want: true},
		{name: "comprehension", expr: "components.exists(c, has(components[c].crashLoopingPods) && components[c].crashLoopingPods > 0)", want: true},
		{name: "two-variable comprehension", expr: "components.exists(n, c, !c.healthy && c.found)", want: true},
		{name: "app", expr: "app.name == 'shop' && app.labels.tier == 'gold' && app.healthyComponents < app.totalComponents", want: true},
		{name: "unavailable sensor guarded with has", expr: "has(sensors.latency_p95) && sensors.latency_p95 > 0.3", want: false},
		{name: "unavailable sensor as an optional", expr: "sensors.?latency_p95.orValue(0.0) > 0.3", want: false},
		{name: "unavailable sensor read without has", expr: "sensors.latency_p95 > 0.3",
			wantErr: "no such key: latency_p95 (unavailable sensors: latency_p95; guard a read with has(sensors.latency_p95))"},
		{name: "dyn value that is not a bool", expr: "dyn(components.payments.phase)", wantErr: "the expression returned a value of type string, not a bool"},
		{name: "division by zero", expr: "components.web.restarts / 0 > 1", wantErr: "division by zero"},
		{name: "cost limit", expr: "[" + strings.Repeat("0,", 99) + "0].all(a, [" + strings.Repeat("0,", 99) + "0].all(b, [" + strings.Repeat("0,", 99) + "0].all(c, a + b + c >= 0)))",
			wantErr: "cost limit exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, errs := Compile([]v1alpha1.Symptom{{Name: "S", Expression: tt.expr}}, testDecl, "spec.symptoms")
			if len(errs) != 0 {
				t.Fatalf("Compile: %v", errs)
			}
			got := c.Eval(testInput())["S"]
			if tt.wantErr != "" {
				if got.Err == nil || !strings.Contains(got.Err.Error(), tt.wantErr) {
					t.Fatalf("Eval = %+v, want an error containing %q", got, tt.wantErr)
				}
				if got.Holding {
					t.Error("Holding = true with an error, want false")
				}
				return
			}
			if got.Err != nil || got.Holding != tt.want {
				t.Errorf("Eval = %+v, want Holding %v", got, tt.want)
			}
		})
	}
}

func TestEvalNamesTheTypeOfAResultThatIsNotABoolNeverItsValue(t *testing.T) {
	const secret = "aHVudGVyMi1zM2NyM3Q="
	in := testInput()
	in.App["labels"] = map[string]string{"token": secret}
	for _, expr := range []string{"dyn(app.labels.token)", "dyn(app.labels)", "dyn([app.labels.token])", "dyn(size(app.labels.token))"} {
		c, errs := Compile([]v1alpha1.Symptom{{Name: "S", Expression: expr}}, testDecl, "spec.symptoms")
		if len(errs) != 0 {
			t.Fatalf("Compile(%s): %v", expr, errs)
		}
		got := c.Eval(in)["S"]
		if got.Err == nil || strings.Contains(got.Err.Error(), secret) || !strings.Contains(got.Err.Error(), "returned a value of type") {
			t.Errorf("Eval(%s) = %v, want an error that names the type and not the value", expr, got.Err)
		}
	}
}

func TestEvalMissingInputsIsAnErrorNotAPanic(t *testing.T) {
	c, errs := Compile([]v1alpha1.Symptom{
		{Name: "Component", Expression: "components.web.healthy"},
		{Name: "Sensor", Expression: "has(sensors.cpu)"},
		{Name: "App", Expression: "app.name == ''"},
	}, testDecl, "spec.symptoms")
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	got := c.Eval(Input{}) // all nil maps
	if ev := got["Component"]; ev.Err == nil || !strings.Contains(ev.Err.Error(), "no such key: web") {
		t.Errorf("Component = %+v, want a no such key error", ev)
	}
	if ev := got["Sensor"]; ev.Err != nil || ev.Holding {
		t.Errorf("Sensor = %+v, want false without error", ev)
	}
	if ev := got["App"]; ev.Err == nil {
		t.Errorf("App = %+v, want a no such key error", ev)
	}
	var nilCompiled *Compiled
	if got := nilCompiled.Eval(testInput()); len(got) != 0 {
		t.Errorf("nil Compiled Eval = %v, want empty", got)
	}
}

func TestEvalAProgramThatDidNotCompile(t *testing.T) {
	p := &program{problem: "expression does not compile: boom"}
	ev := p.eval(map[string]any{}, nil)
	if ev.Err == nil || ev.Holding {
		t.Errorf("eval = %+v, want an error", ev)
	}
}

func TestComponentVars(t *testing.T) {
	w := ComponentVars(v1alpha1.ComponentStatus{
		Healthy: true, Found: true, DesiredReplicas: 3, ReadyReplicas: 1, AvailableReplicas: 1,
		UnavailableReplicas: 2, Restarts: 4, CrashLoopingPods: 1, OOMKilledPods: 1, PendingPods: 1,
		RolloutStuck: true,
	}, false)
	if len(w) != len(workloadFieldTypes) {
		t.Errorf("workload keys = %d, want %d", len(w), len(workloadFieldTypes))
	}
	for k, typ := range workloadFieldTypes {
		var ok bool
		switch typ {
		case "int":
			_, ok = w[k].(int64)
		case "double":
			_, ok = w[k].(float64)
		case "bool":
			_, ok = w[k].(bool)
		}
		if !ok {
			t.Errorf("%s = %T, want %s", k, w[k], typ)
		}
	}
	if w["readyRatio"] != 1.0/3.0 || w["restarts"] != int64(4) || w["rolloutStuck"] != true {
		t.Errorf("vars = %v", w)
	}
	if r := ComponentVars(v1alpha1.ComponentStatus{}, false)["readyRatio"]; r != 1.0 {
		t.Errorf("readyRatio with nothing desired = %v, want 1", r)
	}
	a := ComponentVars(v1alpha1.ComponentStatus{Healthy: true, Found: true, Phase: v1alpha1.PhaseHealthy, ReadyReplicas: 3}, true)
	if len(a) != 3 || a["healthy"] != true || a["found"] != true || a["phase"] != "Healthy" {
		t.Errorf("child app vars = %v, want healthy, found and phase only", a)
	}
}

func TestAppVars(t *testing.T) {
	v := AppVars(nil, 0, 2)
	if v["name"] != "" || v["totalComponents"] != int64(2) || v["labels"] == nil {
		t.Errorf("AppVars(nil) = %v", v)
	}
	if len(v) != len(appFieldTypes) {
		t.Errorf("keys = %d, want %d", len(v), len(appFieldTypes))
	}
}

func TestReadsNamesTheSensorsAndComponentFieldsAnExpressionReads(t *testing.T) {
	s, f := Reads(`components.web.crashLoopingPods > 0 || (has(sensors.p95) && sensors.p95 > 0.3) || components['db'].healthy == false`)
	if !slices.Equal(s, []string{"p95"}) || !slices.Equal(f, []string{"web.crashLoopingPods", "db.healthy"}) {
		t.Errorf("Reads = %v, %v", s, f)
	}
	if s, f := Reads(`sensors.`); s != nil || f != nil {
		t.Errorf("an expression that does not compile reads %v, %v", s, f)
	}
}
