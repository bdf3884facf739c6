package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// simNow is the clock of the command tests: half an hour after the history starts.
var simNow = hT0.Add(30 * time.Minute)

const latencyQuery = `histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{job="web"}[1m])))`

// shopApp is the app of the command tests: web autoscaled on cpu, healed when it crash
// loops.
func shopApp() *v1alpha1.AutonomicApp {
	util, minR := int32(70), int32(2)
	return &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "shop", Labels: map[string]string{"team": "shop"}},
		Spec: v1alpha1.AutonomicAppSpec{
			Components: []v1alpha1.Component{{Name: "web", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}}},
			Healing: v1alpha1.Healing{
				Sensors: []v1alpha1.Sensor{
					{Name: "cpu", Resource: &v1alpha1.ResourceSensor{Component: "web", Resource: v1alpha1.ResourceCPU}},
					{Name: "latency", Prometheus: &v1alpha1.PrometheusSensor{Address: "http://prometheus.monitoring:9090", Query: latencyQuery}},
				},
				Symptoms: []v1alpha1.Symptom{{Name: "CrashLooping", Expression: "components.web.crashLoopingPods > 0"}},
				Policies: []v1alpha1.Policy{
					{Name: "heal-web", Remediate: &v1alpha1.RemediatePolicy{When: []string{"CrashLooping"},
						Steps: []v1alpha1.RemediationStep{{Action: v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "web"}}}}}},
					{Name: "scale-web", Autoscale: &v1alpha1.AutoscalePolicy{Component: "web", MinReplicas: &minR, MaxReplicas: 10,
						Metrics: []v1alpha1.AutoscaleMetric{{Sensor: "cpu", Target: &v1alpha1.MetricTarget{AverageUtilization: &util}}}}},
				},
			},
		},
	}
}

// pageSlow is a HealingPolicy that selects shop: it pages when latency is high.
func pageSlow() *v1alpha1.HealingPolicy {
	return &v1alpha1.HealingPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "page-slow", Namespace: "shop"},
		Spec: v1alpha1.HealingPolicySpec{
			AppSelector: metav1.LabelSelector{MatchLabels: map[string]string{"team": "shop"}},
			Healing: v1alpha1.Healing{
				Symptoms: []v1alpha1.Symptom{{Name: "Slow", Expression: "has(sensors.latency) && sensors.latency > 0.3"}},
				Policies: []v1alpha1.Policy{{Name: "page", Remediate: &v1alpha1.RemediatePolicy{When: []string{"Slow"},
					Steps: []v1alpha1.RemediationStep{{Action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "shop is slow"}}}}}}},
			},
		},
	}
}

// shopHistory is the recorded history of shop over the half hour before simNow: the cpu
// load steps up at +10m, web crash loops from +20m to +22m, latency rises at +15m.
func shopHistory(t *testing.T) (*fakePrometheus, string) {
	fp := &fakePrometheus{series: map[string][]fakeSeries{
		shopComponents: componentSeries("shop", "shop", "web", func(at time.Time) (map[string]float64, bool) {
			n := map[string]float64{"desiredReplicas": 2, "readyReplicas": 2, "availableReplicas": 2, "readyRatio": 1, "healthy": 1, "found": 1}
			if d := at.Sub(hT0); d >= 20*time.Minute && d < 22*time.Minute {
				n["crashLoopingPods"], n["readyReplicas"], n["healthy"] = 1, 1, 0
			}
			return n, true
		}),
		shopSensors: {sensorValueSeries("shop", "shop", "cpu", func(at time.Time) (float64, bool) {
			if at.Sub(hT0) >= 10*time.Minute {
				return 140, true
			}
			return 50, true
		})},
		latencyQuery: {{labels: map[string]string{}, value: func(at time.Time) (float64, bool) {
			if at.Sub(hT0) >= 15*time.Minute {
				return 0.5, true
			}
			return 0.1, true
		}}},
	}}
	srv := newFakePrometheus(t, fp)
	return fp, srv.URL
}

// simOptions are Options over a fake cluster holding objs, printing to the returned buffer.
func simOptions(t *testing.T, output string, c client.WithWatch) (*Options, *bytes.Buffer) {
	t.Helper()
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	t.Setenv(PrometheusEnv, "")
	cf := genericclioptions.NewConfigFlags(false)
	ns := "shop"
	cf.Namespace = &ns
	out := &bytes.Buffer{}
	return &Options{Streams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: out, ErrOut: io.Discard}, Config: cf,
		Output: output, Width: 100, Now: func() time.Time { return simNow }, scheme: Scheme(), client: c}, out
}

func fakeCluster(objs ...client.Object) client.WithWatch {
	return fake.NewClientBuilder().WithScheme(Scheme()).WithObjects(objs...).Build()
}

func runSimulate(t *testing.T, o *Options, out *bytes.Buffer, f simulateFlags) SimulateResult {
	t.Helper()
	if err := o.simulate(context.Background(), "shop", f); err != nil {
		t.Fatalf("simulate: %v", err)
	}
	var res SimulateResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("the JSON does not parse: %v\n%s", err, out)
	}
	return res
}

func decisionLines(run SimulatedRun) []string {
	var out []string
	for _, d := range run.Decisions {
		out = append(out, d.Time.Sub(hT0).String()+" "+d.Policy+" "+decisionCell(d))
	}
	return out
}

func TestSimulateReplaysTheAppWithItsSharedPolicies(t *testing.T) {
	_, prom := shopHistory(t)
	o, out := simOptions(t, "json", fakeCluster(shopApp(), pageSlow()))
	res := runSimulate(t, o, out, simulateFlags{from: "-30m", to: "now", prometheus: prom})

	if !res.From.Equal(hT0) || !res.To.Equal(simNow) || time.Duration(res.Step) != 15*time.Second {
		t.Errorf("range %s..%s step %s", res.From, res.To, res.Step)
	}
	if len(res.SharedPolicies) != 1 || res.SharedPolicies[0] != "HealingPolicy shop/page-slow" {
		t.Errorf("shared policies %q", res.SharedPolicies)
	}
	// The ladders have one step of the default 1m timeout: each runs out a minute after
	// it acts while its symptom holds; heal-web's symptom clears at +22m, and the
	// episode closes once it stayed clear for the verification window.
	want := []string{
		"10m0s scale-web scale web 2 -> 4",
		"15m0s page notify, step 1",
		"16m0s page ladder exhausted",
		"20m0s heal-web restartPods web, step 1",
		"21m0s heal-web ladder exhausted",
		"23m0s heal-web healed",
	}
	if got := decisionLines(res.Current); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("decisions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if res.Current.Replicas[0].Component != "web" || res.Current.Replicas[0].Start != 2 || res.Current.Replicas[0].Max != 4 {
		t.Errorf("replicas %+v", res.Current.Replicas)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("warnings %q", res.Warnings)
	}
	if res.History.Prometheus != prom || len(res.History.Queries) != 4 {
		t.Errorf("history %+v", res.History)
	}
	if len(res.Notes) == 0 || res.Edited != nil || res.Comparison != nil {
		t.Errorf("notes %d, edited %v, comparison %v", len(res.Notes), res.Edited, res.Comparison)
	}
}

func TestSimulateSaysSoWhenTheUserMayNotListSharedPolicies(t *testing.T) {
	_, prom := shopHistory(t)
	c := fake.NewClientBuilder().WithScheme(Scheme()).WithObjects(shopApp(), pageSlow()).WithInterceptorFuncs(interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if _, ok := list.(*v1alpha1.ClusterHealingPolicyList); ok {
				return apierrors.NewForbidden(schema.GroupResource{Group: "autonomic.homeostat.dev", Resource: "clusterhealingpolicies"}, "", nil)
			}
			return c.List(ctx, list, opts...)
		},
	}).Build()
	o, out := simOptions(t, "json", c)
	res := runSimulate(t, o, out, simulateFlags{from: "-30m", to: "now", prometheus: prom})
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "You may not read the ClusterHealingPolicies") {
		t.Errorf("warnings %q", res.Warnings)
	}
	// The namespace's HealingPolicies, which the user may read, still count.
	if len(res.SharedPolicies) != 1 || len(res.Current.Policies) != 3 {
		t.Errorf("shared %q, policies %d: want the app's own two and the HealingPolicy's", res.SharedPolicies, len(res.Current.Policies))
	}
}

func TestSimulateComparesAnEditedSpec(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name         string
		file         string
		wantEdited   []string
		wantWarnings []string
		wantDiff     string
	}{
		{
			name: "an AutonomicApp whose spec replaces the app's",
			file: write("app.yaml", `apiVersion: autonomic.homeostat.dev/v1alpha1
kind: AutonomicApp
metadata: {name: shop, namespace: shop}
spec:
  components:
  - name: web
    workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  sensors:
  - name: cpu
    resource: {component: web, resource: cpu}
  - name: latency
    prometheus:
      address: http://prometheus.monitoring:9090
      query: 'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{job="web"}[1m])))'
  policies:
  - name: scale-web
    autoscale:
      component: web
      minReplicas: 2
      maxReplicas: 3
      metrics:
      - sensor: cpu
        target: {averageUtilization: 70}
`),
			// Without heal-web, and at most 3 replicas; page still comes from the
			// HealingPolicy.
			wantEdited: []string{
				"10m0s scale-web scale web 2 -> 3",
				"15m0s page notify, step 1",
				"16m0s page ladder exhausted",
			},
			wantDiff: "scale web 2 -> 4 | scale web 2 -> 3",
		},
		{
			name: "a HealingPolicy that replaces the one of the same name",
			file: write("hp.yaml", `apiVersion: autonomic.homeostat.dev/v1alpha1
kind: HealingPolicy
metadata: {name: page-slow, namespace: shop}
spec:
  appSelector: {matchLabels: {team: other}}
  symptoms:
  - name: Slow
    expression: "has(sensors.latency) && sensors.latency > 0.3"
    for: 5m
  policies:
  - name: page
    remediate:
      when: [Slow]
      steps:
      - action: {notify: {message: "shop is slow"}}
`),
			wantEdited: []string{
				"10m0s scale-web scale web 2 -> 4",
				"20m0s heal-web restartPods web, step 1",
				"20m0s page notify, step 1",
				"21m0s heal-web ladder exhausted",
				"21m0s page ladder exhausted",
				"23m0s heal-web healed",
			},
			wantWarnings: []string{"HealingPolicy page-slow does not select AutonomicApp shop/shop; it is simulated as if it did"},
			wantDiff:     "notify, step 1 | -",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, prom := shopHistory(t)
			o, out := simOptions(t, "json", fakeCluster(shopApp(), pageSlow()))
			res := runSimulate(t, o, out, simulateFlags{from: "-30m", to: "now", prometheus: prom, policyFile: tc.file})
			if res.Edited == nil || res.Comparison == nil || res.Edited.Spec != tc.file {
				t.Fatalf("no edited run: %+v", res)
			}
			if got := decisionLines(*res.Edited); strings.Join(got, "\n") != strings.Join(tc.wantEdited, "\n") {
				t.Errorf("edited decisions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.wantEdited, "\n"))
			}
			if strings.Join(res.Warnings, "\n") != strings.Join(tc.wantWarnings, "\n") {
				t.Errorf("warnings %q, want %q", res.Warnings, tc.wantWarnings)
			}
			if res.Comparison.SameDecisions || len(res.Comparison.FirstDifferences) == 0 {
				t.Fatalf("no differences: %+v", res.Comparison)
			}
			d := res.Comparison.FirstDifferences[0]
			if got := decisionOrNone(d.Current) + " | " + decisionOrNone(d.Edited); got != tc.wantDiff {
				t.Errorf("first difference %q, want %q", got, tc.wantDiff)
			}
		})
	}
}

func TestSimulateUsageErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		f    simulateFlags
		code int
		want string
	}{
		{"no --from", simulateFlags{to: "now"}, ExitUsage, "give --from"},
		{"--from not before --to", simulateFlags{from: "-10m", to: "-20m"}, ExitUsage, "--from 2025-03-01T12:20:00Z is not before --to 2025-03-01T12:10:00Z"},
		{"--from equal to --to", simulateFlags{from: "now", to: "now"}, ExitUsage, "--from 2025-03-01T12:30:00Z is not before --to"},
		{"--from is not a time", simulateFlags{from: "6h", to: "now"}, ExitUsage, `--from "6h" is not a time (6h before now is -6h)`},
		{"--to in the future", simulateFlags{from: "-1h", to: "2030-01-01T00:00:00Z"}, ExitUsage, "--to 2030-01-01T00:00:00Z is in the future"},
		{"a step finer than 1s", simulateFlags{from: "-1h", to: "now", step: 500 * time.Millisecond}, ExitUsage, "--step 500ms"},
		{"no Prometheus", simulateFlags{from: "-1h", to: "now"}, ExitPrometheus, "--prometheus URL or the HOMEOSTAT_PROMETHEUS environment variable"},
		{"a policy file with an unknown field", simulateFlags{from: "-1h", to: "now", policyFile: write("typo.yaml", `apiVersion: autonomic.homeostat.dev/v1alpha1
kind: AutonomicApp
metadata: {name: shop}
spec:
  components: [{name: web, workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}}]
  polices: []
`)}, ExitUsage, `typo.yaml: error unmarshaling JSON: while decoding JSON: json: unknown field "polices"`},
		{"a policy file breaking a rule of the schema", simulateFlags{from: "-1h", to: "now", policyFile: write("two.yaml", `apiVersion: autonomic.homeostat.dev/v1alpha1
kind: HealingPolicy
metadata: {name: x}
spec:
  appSelector: {}
  policies:
  - name: scale
    autoscale:
      component: web
      maxReplicas: 3
      metrics: [{sensor: cpu, target: {averageUtilization: 70}, band: {lower: "1", upper: "2"}}]
`)}, ExitUsage, "two.yaml: spec.policies[0].autoscale.metrics[0]: exactly one of target, band must be set"},
		{"a policy file of another kind", simulateFlags{from: "-1h", to: "now", policyFile: write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\n")},
			ExitUsage, `cm.yaml: apiVersion is "v1"`},
		{"a policy file of two documents", simulateFlags{from: "-1h", to: "now", policyFile: write("two-docs.yaml",
			"apiVersion: autonomic.homeostat.dev/v1alpha1\nkind: HealingPolicy\nmetadata: {name: a}\n---\napiVersion: autonomic.homeostat.dev/v1alpha1\nkind: HealingPolicy\nmetadata: {name: b}\n")},
			ExitUsage, "two-docs.yaml: the file holds 2 documents"},
		{"a missing policy file", simulateFlags{from: "-1h", to: "now", policyFile: filepath.Join(dir, "nope.yaml")}, ExitUsage, "nope.yaml: no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, _ := simOptions(t, "json", fakeCluster(shopApp()))
			err := o.simulate(context.Background(), "shop", tc.f)
			if err == nil || exitCode(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v (exit %d), want exit %d saying %q", err, exitCode(err), tc.code, tc.want)
			}
		})
	}
}

func TestSimulateRefusesAnEditedSpecTheManagerWouldNotRun(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, body, want string
	}{
		{"an AutonomicApp whose symptom reads an unknown sensor", `apiVersion: autonomic.homeostat.dev/v1alpha1
kind: AutonomicApp
metadata: {name: shop}
spec:
  components: [{name: web, workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}}]
  symptoms:
  - {name: Hot, expression: "sensors.cpuu > 90.0"}
`, `spec.symptoms[0].expression: symptom "Hot": unknown sensor "cpuu"`},
		{"a HealingPolicy whose ladder names an unknown symptom, at its own index", `apiVersion: autonomic.homeostat.dev/v1alpha1
kind: HealingPolicy
metadata: {name: extra, namespace: shop}
spec:
  appSelector: {matchLabels: {team: shop}}
  policies:
  - name: other
    remediate: {when: [CrashLooping], steps: [{action: {notify: {message: hi}}}]}
  - name: restart-slow
    remediate: {when: [Slo], steps: [{action: {rolloutRestart: {component: web}}}]}
`, `spec.policies[1].remediate.when[0]: policy "restart-slow": remediate.when names symptom "Slo"`},
		{"an AutonomicApp without the sensor a shared policy reads", `apiVersion: autonomic.homeostat.dev/v1alpha1
kind: AutonomicApp
metadata: {name: shop}
spec:
  components: [{name: web, workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}}]
`, `spec.symptoms[0].expression (from HealingPolicy shop/page-slow): symptom "Slow": unknown sensor "latency"`},
		{"an AutonomicApp whose rate limit allows no action", `apiVersion: autonomic.homeostat.dev/v1alpha1
kind: AutonomicApp
metadata: {name: shop}
spec:
  components: [{name: web, workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}}]
  guards: {maxActions: {count: 0, per: 1h}}
`, `spec.guards.maxActions.count: count must be from 1 to 50`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "edit.yaml")
			if err := os.WriteFile(p, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, prom := shopHistory(t)
			o, _ := simOptions(t, "json", fakeCluster(shopApp(), pageSlow()))
			err := o.simulate(context.Background(), "shop", simulateFlags{from: "-30m", to: "now", prometheus: prom, policyFile: p})
			if err == nil || exitCode(err) != ExitUsage || !strings.Contains(err.Error(), "--policy-file "+p) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v (exit %d), want a usage error naming the file and %q", err, exitCode(err), tc.want)
			}
		})
	}
}

func TestSimulateCommandLine(t *testing.T) {
	t.Setenv(PrometheusEnv, "")
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"a relative --from is a value, not a flag", []string{"simulate", "shop", "--from", "-6h"}, ExitPrometheus, "--prometheus URL"},
		{"--from is required", []string{"simulate", "shop"}, ExitUsage, "give --from"},
		{"the app is required", []string{"simulate", "--from", "-6h"}, ExitUsage, "name the AutonomicApp"},
		{"--from after --to names --from", []string{"simulate", "shop", "--from", "-1h", "--to", "-2h"}, ExitUsage, "error: --from "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Main(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, tc.args)
			if code != tc.code || !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d saying %q", code, errOut.String(), tc.code, tc.want)
			}
		})
	}
}

func TestSimulationStep(t *testing.T) {
	sensors := func(intervals ...time.Duration) *v1alpha1.AutonomicApp {
		a := &v1alpha1.AutonomicApp{}
		for _, d := range intervals {
			s := v1alpha1.Sensor{Name: "s"}
			if d > 0 {
				s.Interval = &metav1.Duration{Duration: d}
			}
			a.Spec.Sensors = append(a.Spec.Sensors, s)
		}
		return a
	}
	tests := []struct {
		name     string
		flag     time.Duration
		span     time.Duration
		specs    []*v1alpha1.AutonomicApp
		want     time.Duration
		warnings int
	}{
		{"no sensors: 15s", 0, time.Hour, []*v1alpha1.AutonomicApp{sensors()}, 15 * time.Second, 0},
		{"sensors without an interval: 15s", 0, time.Hour, []*v1alpha1.AutonomicApp{sensors(0)}, 15 * time.Second, 0},
		{"the shortest interval of both specs", 0, time.Hour, []*v1alpha1.AutonomicApp{sensors(30 * time.Second), sensors(0, 5*time.Second)}, 5 * time.Second, 0},
		{"never finer than 1s", 0, time.Hour, []*v1alpha1.AutonomicApp{sensors(500 * time.Millisecond)}, time.Second, 0},
		{"the flag wins", 10 * time.Second, time.Hour, []*v1alpha1.AutonomicApp{sensors(5 * time.Second)}, 10 * time.Second, 0},
		{"a long range raises the step, with a warning", 0, 7 * 24 * time.Hour, []*v1alpha1.AutonomicApp{sensors(time.Second)}, 7 * time.Second, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, w := simulationStep(tc.flag, hT0, hT0.Add(tc.span), tc.specs...)
			if got != tc.want || len(w) != tc.warnings {
				t.Errorf("step %s with warnings %q, want %s with %d", got, w, tc.want, tc.warnings)
			}
		})
	}
}

func TestParseWhen(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"now", simNow, true},
		{"-6h", simNow.Add(-6 * time.Hour), true},
		{"-30m", simNow.Add(-30 * time.Minute), true},
		{"-2d", simNow.Add(-48 * time.Hour), true},
		{"-1h30m", simNow.Add(-90 * time.Minute), true},
		{"2025-03-01T10:00:00Z", time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC), true},
		{"2025-03-01T11:00:00.750+01:00", time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC), true},
		{"-0s", time.Time{}, false},
		{"yesterday", time.Time{}, false},
	}
	for _, tc := range tests {
		got, err := parseWhen("--from", tc.in, simNow)
		if (err == nil) != tc.ok || (tc.ok && !got.Equal(tc.want)) {
			t.Errorf("parseWhen(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}
