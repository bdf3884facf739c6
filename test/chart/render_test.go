package chart_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func TestChartLintsCleanWithDefaultAndEveryValueSet(t *testing.T) {
	for name, vals := range map[string]map[string]any{
		"defaults":   nil,
		"values-all": readValues(t, allValues),
	} {
		t.Run(name, func(t *testing.T) {
			lint := action.NewLint()
			// Strict: a warning fails too.
			lint.Strict = true
			lint.Namespace = namespace
			kv, err := common.ParseKubeVersion(kubeVersion)
			if err != nil {
				t.Fatal(err)
			}
			lint.KubeVersion = kv
			res := lint.Run([]string{chartDir}, vals)
			for _, m := range res.Messages {
				t.Logf("helm lint: %s", m.Error())
			}
			if len(res.Errors) > 0 {
				t.Fatalf("helm lint --strict found %d problems: %v", len(res.Errors), res.Errors)
			}
			if res.TotalChartsLinted != 1 {
				t.Fatalf("helm lint linted %d charts, want 1", res.TotalChartsLinted)
			}
		})
	}
}

func TestChartRendersKnownObjectsWithDefaultValues(t *testing.T) {
	objs := render(t, nil)
	want := []string{
		"ClusterRole homeostat-autonomicapp-editor-role",
		"ClusterRole homeostat-autonomicapp-viewer-role",
		"ClusterRole homeostat-clusterhealingpolicy-editor-role",
		"ClusterRole homeostat-clusterhealingpolicy-viewer-role",
		"ClusterRole homeostat-healingpolicy-editor-role",
		"ClusterRole homeostat-healingpolicy-viewer-role",
		"ClusterRole homeostat-manager-role",
		"ClusterRole homeostat-metrics-auth-role",
		"ClusterRole homeostat-metrics-reader",
		"ClusterRoleBinding homeostat-manager-rolebinding",
		"ClusterRoleBinding homeostat-metrics-auth-rolebinding",
		"CustomResourceDefinition autonomicapps.autonomic.homeostat.dev",
		"CustomResourceDefinition clusterhealingpolicies.autonomic.homeostat.dev",
		"CustomResourceDefinition healingpolicies.autonomic.homeostat.dev",
		"Deployment homeostat-controller-manager",
		"Role homeostat-leader-election-role",
		"RoleBinding homeostat-leader-election-rolebinding",
		"Service homeostat-controller-manager-metrics-service",
		"ServiceAccount homeostat-controller-manager",
	}
	if diff := cmp.Diff(want, keys(objs)); diff != "" {
		t.Errorf("The default render's objects (-want +got):\n%s", diff)
	}
	for _, o := range objs {
		if o.GetKind() == "ValidatingWebhookConfiguration" {
			t.Errorf("The webhook is off by default, as in config/default, but %s renders", key(o))
		}
	}
}

func TestChartRendersKnownObjectsWithEveryValueSet(t *testing.T) {
	objs := render(t, readValues(t, allValues))
	want := []string{
		"Certificate ops-homeostat-serving-cert",
		"ConfigMap ops-homeostat-dashboard-app",
		"ConfigMap ops-homeostat-dashboard-fleet",
		"Deployment ops-homeostat-controller-manager",
		"PodDisruptionBudget ops-homeostat-controller-manager",
		"PrometheusRule ops-homeostat-rules",
		"Service ops-homeostat-controller-manager-metrics-service",
		"Service ops-homeostat-webhook-service",
		"ServiceMonitor ops-homeostat-controller-manager-metrics-monitor",
		"ValidatingWebhookConfiguration ops-homeostat-validating-webhook-configuration",
	}
	if diff := cmp.Diff(want, keys(objs)); diff != "" {
		t.Errorf("The objects rendered with values-all.yaml (-want +got):\n%s", diff)
	}
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" && o.GetNamespace() != "monitoring" {
			t.Errorf("%s is in %q, want dashboards.namespace, monitoring", key(o), o.GetNamespace())
		}
	}
}

// The values whose effect needs another value on: each ancestor's enabled is turned on
// too (webhook.port needs webhook.enabled), and these need more.
var needs = map[string]map[string]any{
	// The cluster domain is in the webhook certificate's DNS names.
	"clusterDomain": {"webhook": map[string]any{"enabled": true}},
	// With the ServiceAccount not created, its name is required.
	"serviceAccount.create": {"serviceAccount": map[string]any{"name": "platform-homeostat"}},
}

// TestEveryValueIsDocumentedSetAndWired checks each value of the schema: it has a
// description, values.yaml has it, README.md's table lists it, values-all.yaml sets it
// to something other than its default, and that alone changes what the chart renders.
func TestEveryValueIsDocumentedSetAndWired(t *testing.T) {
	leaves := schemaLeaves(t)
	defaults := readValues(t, filepath.Join(chartDir, "values.yaml"))
	all := readValues(t, allValues)
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	base := normalized(t, render(t, nil))
	for _, leaf := range leaves {
		t.Run(leaf.path, func(t *testing.T) {
			if leaf.description == "" {
				t.Errorf("values.schema.json has no description for %s", leaf.path)
			}
			def, ok := valuesAt(defaults, leaf.path)
			if !ok {
				t.Errorf("values.yaml does not have %s", leaf.path)
			}
			if !strings.Contains(string(readme), "| `"+leaf.path+"` |") {
				t.Errorf("README.md's values table has no row for `%s`", leaf.path)
			}
			set, ok := valuesAt(all, leaf.path)
			if !ok {
				t.Fatalf("%s does not set %s", allValues, leaf.path)
			}
			if fmt.Sprint(set) == fmt.Sprint(def) {
				t.Errorf("%s sets %s to its default, %v", allValues, leaf.path, def)
			}
			vals := map[string]any{}
			parts := strings.Split(leaf.path, ".")
			for i := 1; i < len(parts); i++ {
				parent := strings.Join(parts[:i], ".")
				if _, ok := valuesAt(defaults, parent+".enabled"); ok && parent+".enabled" != leaf.path {
					vals = withValue(vals, parent+".enabled", true)
				}
			}
			for k, v := range needs[leaf.path] {
				vals = withValue(vals, k, v)
			}
			before := base
			if len(vals) > 0 {
				before = normalized(t, render(t, vals))
			}
			after := normalized(t, render(t, withValue(vals, leaf.path, set)))
			if cmp.Equal(before, after) {
				t.Errorf("Setting %s to %v (with %v) changes nothing the chart renders", leaf.path, set, vals)
			}
		})
	}
}

type leaf struct{ path, description string }

// schemaLeaves returns the values of values.schema.json: the properties that have no
// properties of their own.
func schemaLeaves(t *testing.T) []leaf {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	var out []leaf
	var walk func(prefix string, props map[string]json.RawMessage)
	walk = func(prefix string, props map[string]json.RawMessage) {
		for name, raw := range props {
			var p struct {
				Description string                     `json:"description"`
				Properties  map[string]json.RawMessage `json:"properties"`
				Type        any                        `json:"type"`
			}
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatalf("values.schema.json at %s%s: %v", prefix, name, err)
			}
			// issuerRef's properties describe one value, an object.
			if len(p.Properties) > 0 && prefix+name != "webhook.certManager.issuerRef" {
				walk(prefix+name+".", p.Properties)
				continue
			}
			out = append(out, leaf{prefix + name, p.Description})
		}
	}
	walk("", s.Properties)
	slices.SortFunc(out, func(a, b leaf) int { return strings.Compare(a.path, b.path) })
	if len(out) < 50 {
		t.Fatalf("values.schema.json has only %d values", len(out))
	}
	return out
}

// normalized turns rendered objects into comparable YAML, with the randomness of a
// certificate the chart makes replaced by what it says: its DNS names and how long it
// is valid.
func normalized(t *testing.T, objs []*unstructured.Unstructured) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range objs {
		o = o.DeepCopy()
		if o.GetKind() == "Secret" {
			crt, _, _ := unstructured.NestedString(o.Object, "data", "tls.crt")
			c := parseCert(t, crt)
			days := c.NotAfter.Sub(c.NotBefore).Round(24*time.Hour) / (24 * time.Hour)
			o.Object["data"] = map[string]any{"tls.crt": fmt.Sprintf("dns=%v days=%d", c.DNSNames, days)}
		}
		if o.GetKind() == "ValidatingWebhookConfiguration" {
			webhooks, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
			for _, w := range webhooks {
				if cc, ok := w.(map[string]any)["clientConfig"].(map[string]any); ok && cc["caBundle"] != nil {
					cc["caBundle"] = "CA"
				}
			}
			_ = unstructured.SetNestedSlice(o.Object, webhooks, "webhooks")
		}
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		out[o.GetNamespace()+"/"+key(o)] = string(b)
	}
	return out
}

func parseCert(t *testing.T, b64 string) *x509.Certificate {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("A certificate is not base64: %v", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatalf("A certificate is not PEM:\n%s", raw)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSchemaRejectsAWrongValueAndSaysWhichAndWhy(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
		want []string
	}{{
		name: "a string for a number",
		vals: map[string]any{"replicas": "two"},
		want: []string{"values don't meet the specifications of the schema", "/replicas", "got string, want integer"},
	}, {
		name: "a misspelt value",
		vals: map[string]any{"replica": 2},
		want: []string{"additional properties 'replica' not allowed"},
	}, {
		name: "a number for a percentage",
		vals: map[string]any{"manager": map[string]any{"storm": map[string]any{"threshold": 50}}},
		want: []string{"/manager/storm/threshold", "got number, want string"},
	}, {
		name: "a duration without a unit",
		vals: map[string]any{"manager": map[string]any{"egress": map[string]any{"maxTimeout": "10"}}},
		want: []string{"/manager/egress/maxTimeout", "does not match pattern"},
	}, {
		name: "an unknown pull policy",
		vals: map[string]any{"image": map[string]any{"pullPolicy": "Sometimes"}},
		want: []string{"/image/pullPolicy", "value must be one of"},
	}, {
		name: "a flag that is not one",
		vals: map[string]any{"extraArgs": []any{"sensor-workers=16"}},
		want: []string{"/extraArgs/0", "does not match pattern"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderErr(t, tc.vals)
			if err == nil {
				t.Fatalf("The chart rendered with %v", tc.vals)
			}
			t.Logf("helm says: %v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("The error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestCRDsAreTemplatesKeptOnUninstallAndOptional(t *testing.T) {
	ch := loadChart(t)
	if crds := ch.CRDObjects(); len(crds) > 0 {
		t.Errorf("The chart has %d files in crds/, which Helm never upgrades; the CRDs belong in templates/crds/", len(crds))
	}
	crdsOf := func(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
		var out []*unstructured.Unstructured
		for _, o := range objs {
			if o.GetKind() == "CustomResourceDefinition" {
				out = append(out, o)
			}
		}
		return out
	}
	crds := crdsOf(render(t, nil))
	if len(crds) != 3 {
		t.Fatalf("The chart renders %d CRDs by default, want 3", len(crds))
	}
	for _, c := range crds {
		if got := c.GetAnnotations()["helm.sh/resource-policy"]; got != "keep" {
			t.Errorf("CRD %s has helm.sh/resource-policy %q, want keep: an uninstall would delete every app", c.GetName(), got)
		}
	}
	for _, c := range crdsOf(render(t, map[string]any{"crds": map[string]any{"keep": false, "annotations": map[string]any{"a": "b"}}})) {
		if _, ok := c.GetAnnotations()["helm.sh/resource-policy"]; ok {
			t.Errorf("CRD %s keeps the resource policy with crds.keep=false", c.GetName())
		}
		if c.GetAnnotations()["a"] != "b" {
			t.Errorf("CRD %s lacks the annotations of crds.annotations: %v", c.GetName(), c.GetAnnotations())
		}
	}
	if got := crdsOf(render(t, map[string]any{"crds": map[string]any{"install": false}})); len(got) > 0 {
		t.Errorf("crds.install=false renders %d CRDs", len(got))
	}
}

// TestSelfSignedWebhookCertificateServesTheWebhookService checks the certificate the
// chart makes without cert-manager: signed by the CA in the webhook configuration's
// caBundle, for the webhook Service's DNS names, for webhook.selfSigned.validityDays.
func TestSelfSignedWebhookCertificateServesTheWebhookService(t *testing.T) {
	objs := render(t, map[string]any{"webhook": map[string]any{"enabled": true, "selfSigned": map[string]any{"validityDays": 30}}})
	secret := find(objs, "Secret", "homeostat-webhook-server-cert")
	vwc := find(objs, "ValidatingWebhookConfiguration", "homeostat-validating-webhook-configuration")
	if secret == nil || vwc == nil {
		t.Fatalf("The webhook renders no Secret or no ValidatingWebhookConfiguration: %v", keys(objs))
	}
	if got := secret.Object["type"]; got != "kubernetes.io/tls" {
		t.Errorf("The Secret's type is %v, want kubernetes.io/tls", got)
	}
	crtB64, _, _ := unstructured.NestedString(secret.Object, "data", "tls.crt")
	crt := parseCert(t, crtB64)
	webhooks, _, _ := unstructured.NestedSlice(vwc.Object, "webhooks")
	if len(webhooks) != 1 {
		t.Fatalf("%d webhooks, want 1", len(webhooks))
	}
	caB64, _, _ := unstructured.NestedString(webhooks[0].(map[string]any), "clientConfig", "caBundle")
	caPEM, err := base64.StdEncoding.DecodeString(caB64)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("The caBundle holds no certificate")
	}
	svc, _, _ := unstructured.NestedString(webhooks[0].(map[string]any), "clientConfig", "service", "name")
	for _, host := range []string{svc + "." + namespace + ".svc", svc + "." + namespace + ".svc.cluster.local"} {
		if _, err := crt.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("The API server could not trust the certificate for %s: %v", host, err)
		}
	}
	if days := crt.NotAfter.Sub(crt.NotBefore).Round(24*time.Hour) / (24 * time.Hour); days != 30 {
		t.Errorf("The certificate is valid for %d days, want webhook.selfSigned.validityDays, 30", days)
	}
	d := find(objs, "Deployment", "homeostat-controller-manager")
	vols, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "volumes")
	if len(vols) != 1 || fmt.Sprint(vols[0].(map[string]any)["secret"]) != "map[secretName:homeostat-webhook-server-cert]" {
		t.Errorf("The manager does not mount the certificate's Secret: %v", vols)
	}
}

// TestManagerAcceptsTheFlagsTheChartRenders runs the manager built from main.go with
// the args the chart renders with every value set, and with the lockdown preset, and
// --help: Go's flag package rejects a flag it does not know, or a value of the wrong
// type, before it prints the help.
func TestManagerAcceptsTheFlagsTheChartRenders(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the manager")
	}
	bin := filepath.Join(t.TempDir(), "manager")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = repoPath(".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("Building the manager: %v\n%s", err, out)
	}
	for name, vals := range map[string]map[string]any{
		"values-all": readValues(t, allValues),
		"lockdown":   {"lockdown": map[string]any{"enabled": true}},
		"defaults":   nil,
	} {
		t.Run(name, func(t *testing.T) {
			args := managerArgs(t, render(t, vals))
			out, err := exec.Command(bin, append(args, "--help")...).CombinedOutput()
			if err != nil {
				t.Fatalf("The manager refuses the chart's args %q: %v\n%s", args, err, lastLines(string(out), 5))
			}
		})
	}
	// The check can fail: a misspelt flag in extraArgs stops the manager.
	args := managerArgs(t, render(t, map[string]any{"extraArgs": []any{"--sensor-worker=16"}}))
	out, err := exec.Command(bin, append(args, "--help")...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "flag provided but not defined: -sensor-worker") {
		t.Errorf("The manager accepted --sensor-worker (%v):\n%s", err, lastLines(string(out), 5))
	}
}

func managerArgs(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		var args []string
		for _, a := range containers[0].(map[string]any)["args"].([]any) {
			args = append(args, a.(string))
		}
		return args
	}
	t.Fatal("The chart renders no Deployment")
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func TestExplicitValuesWinOverTheLockdownPreset(t *testing.T) {
	args := managerArgs(t, render(t, map[string]any{
		"lockdown": map[string]any{"enabled": true},
		"manager": map[string]any{
			"defaultServiceAccount": "healer",
			"nodeActions":           map[string]any{"namespaces": []any{"infra"}, "maxNodesPerAction": 3},
		},
	}))
	for _, want := range []string{"--default-service-account=healer", "--node-actions-namespaces=infra", "--max-nodes-per-action=3",
		"--egress-max-timeout=10s", "--max-unavailable-nodes=10%"} {
		if !slices.Contains(args, want) {
			t.Errorf("The args lack %s: %q", want, args)
		}
	}
	for _, unwanted := range regexp.MustCompile(`\s+`).Split("--default-service-account=homeostat-tenant --node-actions-namespaces= --max-nodes-per-action=1", -1) {
		if slices.Contains(args, unwanted) {
			t.Errorf("The preset's %s wins over the explicit value: %q", unwanted, args)
		}
	}
}
