// Package monitoring_test checks the monitoring mixin: promtool accepts the alerts and
// their unit tests pass; every alert has a severity, a summary, a description and a
// runbook section; every dashboard query parses (with Prometheus's own parser, through
// promtool) and names only metrics the manager exports, so a renamed metric breaks this
// test; and the kustomize output carries exactly these rules and dashboards.
//
// The queries are parsed by `promtool check rules` on a generated rules file with each
// query as a recording rule, not by importing github.com/prometheus/prometheus/promql/parser:
// that module would upgrade a score of shared dependencies of the manager (otel, grpc,
// x/net) and the go directive, for a test. promtool is Debian's prometheus package, which
// the e2e suite needs too.
package monitoring_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	"github.com/homeostat-dev/homeostat/config/monitoring"
)

var update = flag.Bool("update", false, "write prometheus-rule.yaml (the PrometheusRule) from prometheus-rules.yaml")

const (
	rulesFile     = "prometheus-rules.yaml"
	rulesTestFile = "prometheus-rules.test.yaml"
	ruleResource  = "prometheus-rule.yaml"
	runbookBase   = "https://github.com/homeostat-dev/homeostat/blob/main/docs/runbooks.md#"
)

// sampleVars are the values the dashboards' template variables take in these tests.
var sampleVars = map[string]string{
	"datasource":      "prometheus",
	"namespace":       "shop",
	"app":             "shop",
	"__rate_interval": "1m",
}

// alerts are the alerts prometheus-rules.yaml must define.
var alerts = []string{"HomeostatAppNeedsAttention", "HomeostatStormActive", "HomeostatActionsFailing",
	"HomeostatSensorsUnavailable", "HomeostatReconcileErrors", "HomeostatManagerDown"}

// promtool runs promtool with args in this directory and fails the test if it fails.
func promtool(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Fatal("promtool is not on PATH. It comes with Debian's prometheus package: run `bash hack/tools.sh promtool` " +
			"(as root it installs the package with apt-get, as for the e2e suite), or `apt-get install prometheus`")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "promtool", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

type rule struct {
	Alert       string            `json:"alert,omitempty"`
	Record      string            `json:"record,omitempty"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type ruleGroups struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []rule `json:"rules"`
	} `json:"groups"`
}

func readRules(t *testing.T) ruleGroups {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var g ruleGroups
	if err := yaml.UnmarshalStrict(b, &g); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	return g
}

func alertRules(t *testing.T) map[string]rule {
	t.Helper()
	out := map[string]rule{}
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out[r.Alert] = r
			}
		}
	}
	return out
}

func TestRulesPassPromtoolCheck(t *testing.T) {
	promtool(t, "check", "rules", rulesFile)
}

func TestRulesUnitTestsFireAndStayQuietForEveryAlert(t *testing.T) {
	promtool(t, "test", "rules", rulesTestFile)

	b, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	var suite struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `json:"alertname"`
				ExpAlerts []map[string]any `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(b, &suite); err != nil {
		t.Fatal(err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range suite.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for name := range alertRules(t) {
		if !fires[name] {
			t.Errorf("%s has no case in %s where it fires", name, rulesTestFile)
		}
		if !quiet[name] {
			t.Errorf("%s has no case in %s where it stays quiet", name, rulesTestFile)
		}
	}
}

func TestEveryAlertHasASeveritySummaryDescriptionAndRunbook(t *testing.T) {
	runbooks, err := os.ReadFile("../../docs/runbooks.md")
	if err != nil {
		t.Fatal(err)
	}
	rules := alertRules(t)
	for _, name := range alerts {
		if _, ok := rules[name]; !ok {
			t.Errorf("%s defines no alert %s", rulesFile, name)
		}
	}
	for name, r := range rules {
		if s := r.Labels["severity"]; !slices.Contains([]string{"critical", "warning", "info"}, s) {
			t.Errorf("%s: severity %q, want critical, warning or info", name, s)
		}
		for _, a := range []string{"summary", "description"} {
			if r.Annotations[a] == "" {
				t.Errorf("%s has no %s annotation", name, a)
			}
		}
		anchor := strings.ToLower(name)
		if got := r.Annotations["runbook_url"]; got != runbookBase+anchor {
			t.Errorf("%s: runbook_url %q, want %q", name, got, runbookBase+anchor)
		}
		// GitHub's anchor of a heading "## HomeostatFoo" is "homeostatfoo".
		if !regexp.MustCompile(`(?m)^## ` + name + `\s*$`).Match(runbooks) {
			t.Errorf("docs/runbooks.md has no section \"## %s\" for the alert's runbook_url", name)
		}
	}
}

// dashboardFiles are the dashboards under dashboards/.
func dashboardFiles(t *testing.T) []string {
	t.Helper()
	entries, err := monitoring.Dashboards.ReadDir("dashboards")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		files = append(files, e.Name())
	}
	if !slices.Equal(files, []string{"homeostat-app.json", "homeostat-fleet.json"}) {
		t.Fatalf("dashboards/ holds %q, want homeostat-app.json and homeostat-fleet.json", files)
	}
	return files
}

func allQueries(t *testing.T) []monitoring.Query {
	t.Helper()
	var out []monitoring.Query
	for _, f := range dashboardFiles(t) {
		qs, err := monitoring.DashboardQueries(f, sampleVars)
		if err != nil {
			t.Fatal(err)
		}
		if len(qs) == 0 {
			t.Fatalf("%s has no queries", f)
		}
		out = append(out, qs...)
	}
	return out
}

func TestDashboardsAreImportable(t *testing.T) {
	for _, f := range dashboardFiles(t) {
		t.Run(f, func(t *testing.T) {
			b, err := monitoring.Dashboards.ReadFile("dashboards/" + f)
			if err != nil {
				t.Fatal(err)
			}
			var d struct {
				UID           string           `json:"uid"`
				Title         string           `json:"title"`
				SchemaVersion int              `json:"schemaVersion"`
				Panels        []map[string]any `json:"panels"`
				Templating    struct {
					List []struct {
						Name, Type string
						Query      any
					} `json:"list"`
				} `json:"templating"`
			}
			if err := json.Unmarshal(b, &d); err != nil {
				t.Fatal(err)
			}
			if d.UID != strings.TrimSuffix(f, ".json") || d.Title == "" {
				t.Errorf("uid %q and title %q, want the uid %q and a title", d.UID, d.Title, strings.TrimSuffix(f, ".json"))
			}
			if d.SchemaVersion < 36 {
				t.Errorf("schemaVersion %d: want 36 or later (Grafana 9+), where data sources are referenced by uid", d.SchemaVersion)
			}
			vars := map[string]string{}
			for _, v := range d.Templating.List {
				vars[v.Name] = v.Type
			}
			if vars["datasource"] != "datasource" {
				t.Errorf("no datasource variable of type datasource: %v", vars)
			}
			if f == "homeostat-app.json" && (vars["namespace"] != "query" || vars["app"] != "query") {
				t.Errorf("the app dashboard needs the query variables namespace and app: %v", vars)
			}
			// Every panel and target reads from ${datasource}.
			var check func(ps []map[string]any)
			check = func(ps []map[string]any) {
				for _, p := range ps {
					if p["type"] != "row" && p["type"] != "text" && !usesDatasourceVar(p["datasource"]) {
						t.Errorf("panel %q: datasource %v, want {type: prometheus, uid: ${datasource}}", p["title"], p["datasource"])
					}
					if ts, ok := p["targets"].([]any); ok {
						for _, tg := range ts {
							if !usesDatasourceVar(tg.(map[string]any)["datasource"]) {
								t.Errorf("panel %q: a target's datasource is not ${datasource}", p["title"])
							}
						}
					}
					if sub, ok := p["panels"].([]any); ok {
						var inner []map[string]any
						for _, s := range sub {
							inner = append(inner, s.(map[string]any))
						}
						check(inner)
					}
				}
			}
			check(d.Panels)
		})
	}
}

func usesDatasourceVar(ds any) bool {
	m, ok := ds.(map[string]any)
	return ok && m["type"] == "prometheus" && m["uid"] == "${datasource}"
}

// TestDashboardQueriesParse parses every query with Prometheus's parser: promtool
// checks a rules file that records each one.
func TestDashboardQueriesParse(t *testing.T) {
	qs := allQueries(t)
	var rules []rule
	for i, q := range qs {
		rules = append(rules, rule{Record: fmt.Sprintf("homeostat_dashboard_query_%d", i), Expr: q.Expr})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboards", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboards.rules.yaml")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("promtool"); err == nil {
		// Name the queries that fail, not just their rule numbers.
		if out, err := exec.Command("promtool", "check", "rules", file).CombinedOutput(); err != nil {
			for _, m := range regexp.MustCompile(`"homeostat_dashboard_query_(\d+)": (.*)`).FindAllStringSubmatch(string(out), -1) {
				i, _ := strconv.Atoi(m[1])
				t.Errorf("%s\n  %s", qs[i], m[2])
			}
		}
	}
	out := promtool(t, "check", "rules", file)
	if want := fmt.Sprintf("SUCCESS: %d rules found", len(qs)); !strings.Contains(out, want) {
		t.Fatalf("promtool: %s, want %q", out, want)
	}
}

func TestDashboardAndAlertQueriesNameOnlyExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	type named struct{ where, expr string }
	var exprs []named
	for _, q := range allQueries(t) {
		exprs = append(exprs, named{q.String(), q.Expr})
	}
	for name, r := range alertRules(t) {
		exprs = append(exprs, named{"alert " + name, r.Expr})
	}
	for _, e := range exprs {
		names := metricNames(e.expr)
		if len(names) == 0 {
			t.Errorf("%s: no metric name found", e.where)
		}
		for _, n := range names {
			if !exported[n] {
				t.Errorf("%s: %s is not a metric the manager exports (controllers/metrics.go, controller-runtime)", e.where, n)
			}
		}
	}
}

func TestMetricNamesFindsTheMetricsOfAnExpression(t *testing.T) {
	got := metricNames(`histogram_quantile(0.9, sum by (le, app) (rate(foo_bucket{a="b", c=~"x|y"}[1m]))) / on (app) group_left (phase) bar > bool 0 or vector(1) unless absent(baz) and ignoring (x) qux offset 5m`)
	if want := []string{"bar", "baz", "foo_bucket", "qux"}; !slices.Equal(got, want) {
		t.Errorf("metricNames = %q, want %q", got, want)
	}
}

// keywords are PromQL words that are not metric names where they stand alone.
var keywords = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
	"group_left", "group_right", "inf", "nan", "atan2"}

// metricNames lists the metric names an expression selects: the identifiers left once
// strings, label matchers, ranges, grouping clauses, numbers and function calls are taken
// out. It is no parser (TestDashboardQueriesParse parses them); it finds names.
func metricNames(expr string) []string {
	for _, re := range []string{
		`"(?:[^"\\]|\\.)*"`, `'(?:[^'\\]|\\.)*'`, // strings
		`\{[^}]*\}`, `\[[^\]]*\]`, // matchers and ranges
		`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`, // grouping
		`\b\d+(?:\.\d+)?(?:[smhdwy]|ms)?\b`,                               // numbers and durations
		`\b[a-zA-Z_]\w*\s*\(`,                                             // function calls
	} {
		expr = regexp.MustCompile(re).ReplaceAllString(expr, " ")
	}
	var out []string
	for _, w := range regexp.MustCompile(`[a-zA-Z_:][\w:]*`).FindAllString(expr, -1) {
		if !slices.Contains(keywords, strings.ToLower(w)) {
			out = append(out, w)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// exportedMetrics are the names the manager serves, read from the source that registers
// them: controllers/metrics.go for Homeostat's own, controller-runtime's controller
// metrics and its work queue metrics. A histogram serves _bucket, _sum and _count.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	add := func(name string, histogram bool) {
		out[name] = true
		if histogram {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				out[name+s] = true
			}
		}
	}
	own := metricsOf(t, "../../controllers/metrics.go")
	if len(own) < 10 {
		t.Fatalf("found only %d metrics in controllers/metrics.go: %v", len(own), own)
	}
	for name, h := range own {
		add(name, h)
	}
	dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/controller-runtime").Output()
	if err != nil {
		t.Fatalf("finding controller-runtime's source: %v", err)
	}
	cr := metricsOf(t, filepath.Join(strings.TrimSpace(string(dir)), "pkg", "internal", "controller", "metrics", "metrics.go"))
	if _, ok := cr["controller_runtime_reconcile_errors_total"]; !ok {
		t.Fatalf("controller-runtime's controller metrics were not found: %v", cr)
	}
	for name, h := range cr {
		add(name, h)
	}
	for _, key := range []string{crmetrics.DepthKey, crmetrics.AddsKey, crmetrics.QueueLatencyKey, crmetrics.WorkDurationKey,
		crmetrics.UnfinishedWorkKey, crmetrics.LongestRunningProcessorKey, crmetrics.RetriesKey} {
		add(crmetrics.WorkQueueSubsystem+"_"+key, strings.HasSuffix(key, "_duration_seconds"))
	}
	return out
}

// metricsOf reads the metric names a Go file registers: the Name of every
// prometheus.*Opts literal, true for a HistogramOpts, and the name of every
// prometheus.NewDesc (a collector's family, built at scrape time; never a histogram here).
func metricsOf(t *testing.T, file string) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if call, ok := n.(*ast.CallExpr); ok {
			if fn, ok := call.Fun.(*ast.SelectorExpr); ok && fn.Sel.Name == "NewDesc" && len(call.Args) > 0 {
				if s, ok := call.Args[0].(*ast.BasicLit); ok {
					if name, err := strconv.Unquote(s.Value); err == nil {
						out[name] = false
					}
				}
			}
			return true
		}
		lit, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		sel, ok := lit.Type.(*ast.SelectorExpr)
		if !ok || !strings.HasSuffix(sel.Sel.Name, "Opts") {
			return true
		}
		for _, el := range lit.Elts {
			kv, ok := el.(*ast.KeyValueExpr)
			if !ok || fmt.Sprint(kv.Key) != "Name" {
				continue
			}
			if s, ok := kv.Value.(*ast.BasicLit); ok {
				if name, err := strconv.Unquote(s.Value); err == nil {
					out[name] = sel.Sel.Name == "HistogramOpts"
				}
			}
		}
		return true
	})
	return out
}

// TestKustomizeRendersExactlyTheRulesAndDashboards renders this directory as `kubectl
// apply -k` would and compares the PrometheusRule's groups with prometheus-rules.yaml,
// and each dashboard ConfigMap with its file. With -update, it first writes
// prometheus-rule.yaml from prometheus-rules.yaml.
func TestKustomizeRendersExactlyTheRulesAndDashboards(t *testing.T) {
	if *update {
		writeRuleResource(t)
	}
	objs := kustomize(t)
	var rules []*unstructured.Unstructured
	dashboards := map[string]string{}
	for _, o := range objs {
		switch o.GetKind() {
		case "PrometheusRule":
			rules = append(rules, o)
		case "ConfigMap":
			if o.GetLabels()["grafana_dashboard"] != "1" {
				t.Errorf("ConfigMap %s lacks the label grafana_dashboard: \"1\" Grafana's sidecar looks for", o.GetName())
			}
			data, _, _ := unstructured.NestedStringMap(o.Object, "data")
			for k, v := range data {
				dashboards[k] = v
			}
		default:
			t.Errorf("kustomize renders a %s %s; want only a PrometheusRule and dashboard ConfigMaps", o.GetKind(), o.GetName())
		}
	}
	if len(rules) != 1 || rules[0].GetAPIVersion() != "monitoring.coreos.com/v1" {
		t.Fatalf("kustomize renders %d PrometheusRules, want one of monitoring.coreos.com/v1", len(rules))
	}
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := yaml.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	spec, _, _ := unstructured.NestedMap(rules[0].Object, "spec")
	if !reflect.DeepEqual(spec, want) {
		t.Errorf("The PrometheusRule's spec differs from %s: run `go test ./config/monitoring -run Kustomize -update`", rulesFile)
	}
	for _, f := range dashboardFiles(t) {
		b, err := monitoring.Dashboards.ReadFile("dashboards/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if dashboards[f] != string(b) {
			t.Errorf("No rendered ConfigMap holds dashboards/%s as it is", f)
		}
	}
	if len(dashboards) != len(dashboardFiles(t)) {
		t.Errorf("The ConfigMaps hold %d dashboards, want %d", len(dashboards), len(dashboardFiles(t)))
	}
}

// writeRuleResource writes prometheus-rule.yaml: a PrometheusRule whose spec is
// prometheus-rules.yaml as it is, comments and all.
func writeRuleResource(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var body strings.Builder
	for line := range strings.SplitSeq(strings.TrimRight(string(b), "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if line == "" {
			body.WriteString("\n")
			continue
		}
		body.WriteString("  " + line + "\n")
	}
	out := `# Generated from prometheus-rules.yaml by ` + "`go test ./config/monitoring -run Kustomize -update`" + `; do not edit.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: homeostat
  labels:
    app.kubernetes.io/name: homeostat
spec:
` + body.String()
	if err := os.WriteFile(ruleResource, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// kustomize renders this directory with `kubectl kustomize`, as config_test does.
func kustomize(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	if _, err := exec.LookPath("kubectl"); err != nil {
		msg := "kubectl is not in PATH. This test renders config/monitoring with `kubectl kustomize`: run " +
			"`bash hack/tools.sh kubernetes` and put the directory of `bash hack/tools.sh path kubectl` first on PATH (make test does)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; CI is set, so this fails instead of skipping")
		}
		t.Skip("Skipping: " + msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "kubectl", "kustomize", ".")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl kustomize config/monitoring: %v\n%s", err, stderr.String())
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(&stdout, 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	return objs
}
