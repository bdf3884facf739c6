package analyze

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// testDecl is the shop app of the design: two workloads, a child app, two sensors.
var testDecl = Declared{
	Components: map[string]ComponentKind{"web": Workload, "web-standby": Workload, "payments": App},
	Sensors:    []string{"latency_p95", "cpu"},
}

func TestCompile(t *testing.T) {
	tests := []struct {
		name string
		expr string
		// wantErr are substrings of the one error message; empty for a valid expression.
		wantErr []string
	}{
		// Valid expressions.
		{name: "workload field", expr: "components.web.crashLoopingPods > 0"},
		{name: "index form with a dash", expr: "components['web-standby'].readyReplicas < 1"},
		{name: "index form of a field", expr: "components.web['readyRatio'] < 0.5"},
		{name: "child app fields", expr: "!components.payments.healthy || components.payments.phase == 'Degraded' || !components.payments.found"},
		{name: "bool field alone", expr: "components.web.rolloutStuck"},
		{name: "sensor guarded with has", expr: "has(sensors.latency_p95) && sensors.latency_p95 > 0.3"},
		{name: "sensor compared with an int", expr: "sensors.cpu > 70"},
		{name: "has on a component and a field", expr: "has(components.web) && has(components.web.restarts)"},
		{name: "in a declared component", expr: "'web' in components"},
		{name: "int field compared with a double", expr: "components.web.restarts > 0.5"},
		{name: "comprehension with a dynamic key", expr: "components.exists(c, components[c].crashLoopingPods > 0)"},
		{name: "comprehension over child app fields", expr: "components.exists(c, components[c].phase == 'Degraded')"},
		{name: "two-variable comprehension", expr: "components.all(name, c, c.healthy)"},
		{name: "comprehension variable named like a global", expr: "[1, 2].exists(sensors, sensors > 1)"},
		{name: "app fields", expr: "app.name == 'shop' && app.namespace != '' && app.labels['tier'] == 'gold' && app.healthyComponents < app.totalComponents"},
		{name: "optional sensor", expr: "sensors.?latency_p95.orValue(0.0) > 0.3"},
		{name: "strings extension", expr: "app.name.lowerAscii().startsWith('shop')"},
		{name: "sets extension", expr: "sets.contains(['web', 'payments'], ['web'])"},
		{name: "string function on a dyn field", expr: "components.payments.phase.startsWith('Deg')"},
		{name: "two-variable comprehension over labels", expr: "app.labels.all(k, v, v.matches('^[a-z]+$'))"},
		{name: "nested comprehensions within the estimated cost", expr: "components.exists(c, components.exists(d, components[c].restarts + components[d].restarts > 10))"},

		// Invalid whatever the app declares.
		{name: "syntax error", expr: "components.web.restarts >", wantErr: []string{`symptom "S": expression does not compile`, "Syntax error"}},
		{name: "undeclared variable", expr: "pods > 0", wantErr: []string{"expression does not compile", "undeclared reference to 'pods'"}},
		{name: "returns an int", expr: "components.web.restarts", wantErr: []string{`symptom "S": expression must return a bool, but returns int`}},
		{name: "returns an int by index", expr: "components['web']['restarts']", wantErr: []string{"must return a bool, but returns int"}},
		// A dyn result that is not a known field is accepted and checked when evaluated.
		{name: "dyn result of a conditional", expr: "app.name == 'shop' ? components.payments.healthy : components.web.healthy"},
		{name: "returns a double", expr: "sensors.cpu", wantErr: []string{"must return a bool, but returns double"}},
		{name: "returns a string", expr: "app.name", wantErr: []string{"must return a bool, but returns string"}},
		{name: "returns a string literal", expr: "'yes'", wantErr: []string{"must return a bool, but returns string"}},
		{name: "returns an optional", expr: "sensors.?cpu", wantErr: []string{"must return a bool, but returns optional_type(double)"}},
		{name: "string function multiplying its input", expr: "app.name.replace('', '" + strings.Repeat("x", 200) + "').replace('', '" + strings.Repeat("x", 900) + "').replace('', '" + strings.Repeat("x", 900) + "').size() > 0",
			wantErr: []string{"expression is too expensive: its estimated worst-case cost 41497157760 exceeds the limit of 10000000"}},
		{name: "too long", expr: strings.Repeat("true && ", 600) + "true", wantErr: []string{"expression does not compile", "size exceeds limit"}},

		// Unknown names.
		{name: "unknown component", expr: "components.nope.healthy", wantErr: []string{`symptom "S": unknown component "nope" (declared components: payments, web, web-standby)`}},
		{name: "unknown component by index", expr: "components['nope'].healthy", wantErr: []string{`unknown component "nope"`}},
		{name: "unknown component in has", expr: "has(components.nope)", wantErr: []string{`unknown component "nope"`}},
		{name: "unknown component in in", expr: "'nope' in components", wantErr: []string{`unknown component "nope"`}},
		{name: "unknown component suggests its case", expr: "components.Web.healthy", wantErr: []string{`unknown component "Web"`, `did you mean "web"?`}},
		{name: "misspelt workload field", expr: "components.web.crashloopingPods > 0", wantErr: []string{`symptom "S": component "web" has no field "crashloopingPods" (fields of a workload component: availableReplicas, crashLoopingPods,`, `did you mean "crashLoopingPods"?`}},
		{name: "misspelt field by index", expr: "components['web']['crashloopingPods'] > 0", wantErr: []string{`component "web" has no field "crashloopingPods"`}},
		{name: "misspelt field in has", expr: "has(components.web.restart)", wantErr: []string{`component "web" has no field "restart"`}},
		{name: "misspelt field through an optional", expr: "components.?web.?restart.orValue(0) > 0", wantErr: []string{`component "web" has no field "restart"`}},
		{name: "workload field of a child app", expr: "components.payments.readyReplicas > 0", wantErr: []string{`component "payments" has no field "readyReplicas" (fields of a child-app component: found, healthy, phase)`}},
		{name: "misspelt field with a dynamic key", expr: "components.exists(c, components[c].crashloopingPods > 0)", wantErr: []string{`no component has a field "crashloopingPods" (component fields: availableReplicas,`}},
		{name: "misspelt field of a comprehension value", expr: "components.all(n, c, c.healty)", wantErr: []string{`no component has a field "healty"`}},
		{name: "unknown sensor", expr: "sensors.latency > 0.3", wantErr: []string{`symptom "S": unknown sensor "latency" (declared sensors: cpu, latency_p95)`}},
		{name: "unknown sensor in has", expr: "has(sensors.nope) && true", wantErr: []string{`unknown sensor "nope"`}},
		{name: "unknown sensor by index", expr: "sensors['nope'] > 1.0", wantErr: []string{`unknown sensor "nope"`}},
		{name: "unknown sensor through an optional", expr: "sensors.?nope.hasValue()", wantErr: []string{`unknown sensor "nope"`}},
		{name: "unknown sensor in a map literal", expr: "{'a': sensors.nope}['a'] > 1.0", wantErr: []string{`unknown sensor "nope"`}},
		{name: "unknown sensor in a list literal", expr: "[sensors.nope].exists(x, x > 1.0)", wantErr: []string{`unknown sensor "nope"`}},
		{name: "unknown sensor in a conditional", expr: "app.name == 'shop' ? sensors.nope > 1.0 : false", wantErr: []string{`unknown sensor "nope"`}},
		{name: "unknown component shadowed outside its comprehension", expr: "[1].exists(components, components > 0) && components.nope.healthy", wantErr: []string{`unknown component "nope"`}},
		{name: "unknown app field", expr: "app.nmae == 'shop'", wantErr: []string{`unknown app field "nmae" (app fields: healthyComponents, labels, name, namespace, totalComponents)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			symptoms := []v1alpha1.Symptom{{Name: "S", Expression: tt.expr}}
			c, errs := Compile(symptoms, testDecl, "spec.symptoms")
			if len(tt.wantErr) == 0 {
				if len(errs) != 0 {
					t.Fatalf("Compile(%q) = %v, want no errors", tt.expr, errs)
				}
				if got := c.Names(); len(got) != 1 || got[0] != "S" {
					t.Fatalf("Names() = %v, want [S]", got)
				}
				return
			}
			if len(errs) != 1 {
				t.Fatalf("Compile(%q) = %d errors %v, want 1", tt.expr, len(errs), errs)
			}
			if errs[0].Field != "spec.symptoms[0].expression" || errs[0].Symptom != "S" {
				t.Errorf("error at %q for %q, want spec.symptoms[0].expression for S", errs[0].Field, errs[0].Symptom)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(errs[0].Message, want) {
					t.Errorf("message %q does not contain %q", errs[0].Message, want)
				}
			}
			if len(c.Names()) != 0 {
				t.Errorf("Names() = %v, want none: an invalid symptom is left out", c.Names())
			}
		})
	}
}

func TestCompileKeepsValidSymptomsAndReportsEachProblem(t *testing.T) {
	symptoms := []v1alpha1.Symptom{
		{Name: "CrashLooping", Expression: "components.web.crashLoopingPods > 0"},
		{Name: "Broken", Expression: "components.nope.healthy && sensors.gone > 1.0"},
		{Name: "SlowResponses", Expression: "has(sensors.latency_p95) && sensors.latency_p95 > 0.3"},
	}
	c, errs := Compile(symptoms, testDecl, "spec.symptoms")
	if got := c.Names(); fmt.Sprint(got) != "[CrashLooping SlowResponses]" {
		t.Errorf("Names() = %v, want [CrashLooping SlowResponses]", got)
	}
	if len(errs) != 2 {
		t.Fatalf("errors = %v, want two (component and sensor)", errs)
	}
	for _, e := range errs {
		if e.Field != "spec.symptoms[1].expression" || e.Symptom != "Broken" {
			t.Errorf("error %v, want it at spec.symptoms[1].expression for Broken", e)
		}
	}
	if !strings.Contains(errs[0].Message, `unknown component "nope"`) || !strings.Contains(errs[1].Message, `unknown sensor "gone"`) {
		t.Errorf("messages = %q, %q", errs[0].Message, errs[1].Message)
	}
	if want := `spec.symptoms[1].expression: symptom "Broken": unknown component "nope"`; !strings.HasPrefix(errs[0].Error(), want) {
		t.Errorf("Error() = %q, want prefix %q", errs[0].Error(), want)
	}
}

func TestCompileWithNothingDeclared(t *testing.T) {
	_, errs := Compile([]v1alpha1.Symptom{{Name: "S", Expression: "sensors.cpu > 1.0 || components.web.healthy"}}, Declared{}, "spec.symptoms")
	if len(errs) != 2 {
		t.Fatalf("errors = %v, want 2", errs)
	}
	if !strings.Contains(errs[0].Message, "(no sensors are declared)") || !strings.Contains(errs[1].Message, "(no components are declared)") {
		t.Errorf("messages = %q, %q", errs[0].Message, errs[1].Message)
	}
}

func TestCompileCachesPrograms(t *testing.T) {
	expr := "components.web.pendingPods > 3 && 'cache-test' != ''"
	symptoms := []v1alpha1.Symptom{{Name: "Pending", Expression: expr}}
	before := compilations.Load()
	first, errs := Compile(symptoms, testDecl, "spec.symptoms")
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	// Another app with other names, compiling the same text: a cache hit, checked
	// against its own declarations.
	second, errs := Compile(symptoms, Declared{Components: map[string]ComponentKind{"web": Workload}}, "spec.symptoms")
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if got := compilations.Load() - before; got != 1 {
		t.Errorf("compilations = %d, want 1", got)
	}
	if first.symptoms[0].prog != second.symptoms[0].prog {
		t.Error("the second Compile built a new program, want the cached one")
	}
	// The cached program is still checked against what each app declares.
	if _, errs := Compile(symptoms, Declared{Components: map[string]ComponentKind{"api": Workload}}, "spec.symptoms"); len(errs) != 1 {
		t.Errorf("errors = %v, want an unknown component", errs)
	}
	// Failures are cached too.
	bad := []v1alpha1.Symptom{{Name: "Bad", Expression: "components.web.restarts + 'cache-test'"}}
	before = compilations.Load()
	Compile(bad, testDecl, "spec.symptoms")
	Compile(bad, testDecl, "spec.symptoms")
	if got := compilations.Load() - before; got != 1 {
		t.Errorf("compilations of an invalid expression = %d, want 1", got)
	}
}

func TestCompileConcurrently(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			expr := fmt.Sprintf("components.web.restarts > %d", i%4)
			c, errs := Compile([]v1alpha1.Symptom{{Name: "S", Expression: expr}}, testDecl, "spec.symptoms")
			if len(errs) != 0 {
				t.Error(errs)
				return
			}
			in := Input{Components: map[string]map[string]any{"web": ComponentVars(v1alpha1.ComponentStatus{Restarts: 2}, false)}}
			if ev := c.Eval(in)["S"]; ev.Err != nil {
				t.Error(ev.Err)
			}
		})
	}
	wg.Wait()
}

func TestLRUEvictsLeastRecentlyUsed(t *testing.T) {
	c := newLRU(2)
	a, b, d := &program{}, &program{}, &program{}
	c.add("a", a)
	c.add("b", b)
	if got, _ := c.get("a"); got != a { // a is now the most recent
		t.Fatal("a missing")
	}
	c.add("d", d)
	if _, ok := c.get("b"); ok {
		t.Error("b is still cached, want it evicted as the least recently used")
	}
	if _, ok := c.get("a"); !ok {
		t.Error("a was evicted, want it kept")
	}
	if got := c.add("a", &program{}); got != a {
		t.Error("add replaced an existing entry, want the first one kept")
	}
	if c.len() != 2 {
		t.Errorf("len = %d, want 2", c.len())
	}
}

func TestDeclaredFor(t *testing.T) {
	app := &v1alpha1.AutonomicApp{Spec: v1alpha1.AutonomicAppSpec{
		Components: []v1alpha1.Component{
			{Name: "web", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}},
			{Name: "payments", AppRef: &v1alpha1.AppReference{Name: "payments"}},
		},
		Healing: v1alpha1.Healing{Sensors: []v1alpha1.Sensor{{Name: "cpu"}, {Name: "probe"}}},
	}}
	d := DeclaredFor(app)
	if d.Components["web"] != Workload || d.Components["payments"] != App || len(d.Components) != 2 {
		t.Errorf("Components = %v", d.Components)
	}
	if fmt.Sprint(d.Sensors) != "[cpu probe]" {
		t.Errorf("Sensors = %v", d.Sensors)
	}
	if d := DeclaredFor(nil); len(d.Components) != 0 || len(d.Sensors) != 0 {
		t.Errorf("DeclaredFor(nil) = %v, want empty", d)
	}
}
