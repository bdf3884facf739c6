// Package chart_test checks the Helm chart in charts/homeostat with the Helm Go SDK, the
// way `helm lint` and `helm template` would, without a cluster: it lints clean, renders
// with its defaults and with every value set (test/chart/testdata/values-all.yaml) into
// objects of known kinds with no unknown fields, its schema rejects wrong values with a
// message that names them, every value is documented and changes what is rendered, the
// files it reads equal those of config/ they are copied from, and what it renders equals
// `kubectl kustomize config/default` (and default-with-webhook, lockdown) where both
// render the same object.
//
// The end-to-end spec test/e2e/helm_test.go installs the chart into a cluster.
package chart_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

const (
	chartDir = "../../charts/homeostat"
	// The release renders config/default's names with this name in this namespace.
	releaseName = "homeostat"
	namespace   = "homeostat-system"
	// The Kubernetes version the chart is rendered for: the one the project builds and
	// tests against (hack/versions.env). Helm's SDK assumes v1.20 in tests otherwise,
	// which the chart's kubeVersion refuses.
	kubeVersion = "v1.37.2"
	allValues   = "testdata/values-all.yaml"
)

// typed holds the Go types of the kinds the chart renders, so that a field the API
// server does not know (a typo, a wrong indent) fails the test.
var typed = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(typed))
	utilruntime.Must(apiextensionsv1.AddToScheme(typed))
}

// loadChart loads the chart from its directory, as `helm install ./charts/homeostat` does.
func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("Loading the chart from %s: %v", chartDir, err)
	}
	return ch
}

// readValues reads a values file as Helm does.
func readValues(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := common.ReadValues(b)
	if err != nil {
		t.Fatalf("Reading %s: %v", path, err)
	}
	return vals
}

// renderErr renders the chart as `helm template homeostat charts/homeostat -n
// homeostat-system` does: an install that never talks to a cluster (lookup finds
// nothing), with the values validated against values.schema.json.
func renderErr(t *testing.T, vals map[string]any) (string, error) {
	t.Helper()
	in := action.NewInstall(action.NewConfiguration())
	in.DryRunStrategy = action.DryRunClient
	in.ReleaseName = releaseName
	in.Namespace = namespace
	kv, err := common.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	in.KubeVersion = kv
	rel, err := in.Run(loadChart(t), vals)
	if err != nil {
		return "", err
	}
	r, ok := rel.(*release.Release)
	if !ok {
		t.Fatalf("The install returned a %T, not a *release.Release", rel)
	}
	return r.Manifest, nil
}

// render renders the chart with vals and decodes the objects, failing the test on any
// error, an object without apiVersion, kind or name, or a field its kind does not have.
func render(t *testing.T, vals map[string]any) []*unstructured.Unstructured {
	t.Helper()
	manifest, err := renderErr(t, vals)
	if err != nil {
		t.Fatalf("Rendering the chart: %v", err)
	}
	objs, err := decode(manifest)
	if err != nil {
		t.Fatalf("Decoding what the chart rendered: %v", err)
	}
	for _, o := range objs {
		if err := validate(o); err != nil {
			t.Errorf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	return objs
}

// decode splits a manifest into its YAML documents, each a Kubernetes object.
func decode(manifest string) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	for i := 0; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var m map[string]any
		if err := yaml.UnmarshalStrict(doc, &m); err != nil {
			return nil, fmt.Errorf("document %d is not valid YAML: %w\n%s", i, err, doc)
		}
		if len(m) == 0 {
			continue // only comments
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs, nil
}

// validate checks an object has apiVersion, kind and a name, and, for the kinds of
// Kubernetes itself, that it converts to its Go type without an unknown field.
func validate(o *unstructured.Unstructured) error {
	if o.GetAPIVersion() == "" || o.GetKind() == "" || o.GetName() == "" {
		return fmt.Errorf("no apiVersion, kind or metadata.name:\n%v", o.Object)
	}
	gvk := schema.FromAPIVersionAndKind(o.GetAPIVersion(), o.GetKind())
	if !typed.Recognizes(gvk) {
		return nil // cert-manager's and the Prometheus Operator's kinds
	}
	obj, err := typed.New(gvk)
	if err != nil {
		return err
	}
	return runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, obj, true)
}

// find returns the rendered object of that kind and name, or nil.
func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func key(o *unstructured.Unstructured) string { return o.GetKind() + " " + o.GetName() }

func keys(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, key(o))
	}
	slices.Sort(out)
	return out
}

// valuesAt returns the value at a dotted path of a values map, and whether it is there.
func valuesAt(vals map[string]any, path string) (any, bool) {
	var cur any = vals
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// withValue returns a copy of vals with the value at a dotted path set.
func withValue(vals map[string]any, path string, v any) map[string]any {
	out := deepCopy(vals)
	parts := strings.Split(path, ".")
	cur := out
	for _, k := range parts[:len(parts)-1] {
		next, ok := cur[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[k] = next
		}
		cur = next
	}
	cur[parts[len(parts)-1]] = v
	return out
}

func deepCopy(m map[string]any) map[string]any {
	b, err := yaml.Marshal(m)
	if err != nil {
		panic(err)
	}
	var out map[string]any
	if err := yaml.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	if out == nil {
		out = map[string]any{}
	}
	return out
}

func repoPath(rel string) string { return filepath.Join("..", "..", rel) }
