package analyze

import (
	"strings"
	"testing"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// FuzzCompile compiles and evaluates arbitrary expressions: neither may panic, an
// invalid expression yields errors naming the symptom, and a valid one evaluates to a
// value or an error. The seed corpus is in testdata/fuzz/FuzzCompile.
func FuzzCompile(f *testing.F) {
	for _, seed := range []string{
		"components.web.crashLoopingPods > 0",
		"has(sensors.latency_p95) && sensors.latency_p95 > 0.3",
		"components.exists(c, components[c].crashLoopingPods > 0)",
		"components.all(n, c, c.healthy)",
		"sensors.?cpu.orValue(0.0) > 70",
		"'web' in components && app.labels['tier'] == 'gold'",
	} {
		f.Add(seed)
	}
	in := testInput()
	f.Fuzz(func(t *testing.T, expr string) {
		c, errs := Compile([]v1alpha1.Symptom{{Name: "S", Expression: expr}}, testDecl, "spec.symptoms")
		for _, e := range errs {
			if e.Field != "spec.symptoms[0].expression" || e.Symptom != "S" || !strings.HasPrefix(e.Message, `symptom "S": `) {
				t.Fatalf("malformed error %+v", e)
			}
		}
		if (len(errs) == 0) != (len(c.Names()) == 1) {
			t.Fatalf("errors %v but compiled %v", errs, c.Names())
		}
		for _, ev := range c.Eval(in) {
			if ev.Err != nil && strings.Contains(ev.Err.Error(), "panicked") {
				t.Fatalf("evaluating %q: %v", expr, ev.Err)
			}
			if ev.Err != nil && ev.Holding {
				t.Fatalf("evaluating %q: holding with an error", expr)
			}
		}
	})
}
