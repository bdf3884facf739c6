package chart_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The chart and config/ install the same manager. With the release named homeostat in
// homeostat-system, the chart renders config/default's names; each object both render is
// compared whole, after normalize has taken out what differs on purpose:
//
//   - Labels. The chart labels every object the Helm way (helm.sh/chart,
//     app.kubernetes.io/name, instance, version, managed-by Helm, not kustomize), where
//     config/ labels most objects with app.kubernetes.io/name and managed-by kustomize,
//     and the generated ones (manager-role, the CRDs) with nothing. Other labels, such as
//     control-plane and the editor roles' aggregate-to-edit, are compared.
//   - Selectors. The chart selects the manager's pods by the release too
//     (app.kubernetes.io/instance), so that two releases never select each other's pods.
//   - The image tag: the chart's appVersion, config/manager's dev.
//   - The CRDs' helm.sh/resource-policy: keep (crds.keep), so that helm uninstall
//     leaves every app.
//   - The webhook certificate's Secret: the chart prefixes its name like every other
//     (homeostat-webhook-server-cert), config/ leaves it webhook-server-cert.
//
// What only one of them renders:
//
//   - config/ renders the Namespace, with the restricted Pod Security Standard's labels.
//     A chart does not own the namespace it is installed into (helm install
//     --create-namespace cannot label it), so the chart's README says to label it.
//   - The chart renders nothing config/default does not, at its defaults.
var (
	normalizedLabels    = []string{"helm.sh/chart", "app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by"}
	normalizedSelectors = []string{"app.kubernetes.io/instance"}
)

// normalize takes out of a rendered object what the chart and config/ make different on
// purpose (the comment above says what and why).
func normalize(o *unstructured.Unstructured) *unstructured.Unstructured {
	o = o.DeepCopy()
	drop := func(keys []string, fields ...string) {
		m, found, _ := unstructured.NestedStringMap(o.Object, fields...)
		if !found {
			return
		}
		for _, k := range keys {
			delete(m, k)
		}
		_ = unstructured.SetNestedStringMap(o.Object, m, fields...)
		if len(m) == 0 {
			unstructured.RemoveNestedField(o.Object, fields...)
		}
	}
	dropKeys := func(fields ...string) { drop(normalizedSelectors, fields...) }
	drop(normalizedLabels, "metadata", "labels")
	if a := o.GetAnnotations(); a != nil {
		delete(a, "helm.sh/resource-policy")
		o.SetAnnotations(a)
		if len(a) == 0 {
			unstructured.RemoveNestedField(o.Object, "metadata", "annotations")
		}
	}
	switch o.GetKind() {
	case "Deployment":
		dropKeys("spec", "selector", "matchLabels")
		dropKeys("spec", "template", "metadata", "labels")
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			c := c.(map[string]any)
			c["image"] = strings.SplitN(c["image"].(string), ":", 2)[0]
		}
		_ = unstructured.SetNestedSlice(o.Object, containers, "spec", "template", "spec", "containers")
		volumes, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "volumes")
		for _, v := range volumes {
			if s, ok := v.(map[string]any)["secret"].(map[string]any); ok {
				s["secretName"] = strings.TrimPrefix(s["secretName"].(string), "homeostat-")
			}
		}
		_ = unstructured.SetNestedSlice(o.Object, volumes, "spec", "template", "spec", "volumes")
	case "Service":
		dropKeys("spec", "selector")
	case "ServiceMonitor":
		dropKeys("spec", "selector", "matchLabels")
	case "Certificate":
		name, _, _ := unstructured.NestedString(o.Object, "spec", "secretName")
		_ = unstructured.SetNestedField(o.Object, strings.TrimPrefix(name, "homeostat-"), "spec", "secretName")
	}
	return o
}

// kustomize renders a kustomization as `make deploy` does: `kubectl kustomize`, no
// cluster needed. Like config/config_test.go, it skips without kubectl on PATH, unless CI
// is set.
func kustomize(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	if _, err := exec.LookPath("kubectl"); err != nil {
		msg := "kubectl is not in PATH: these tests compare the chart with `kubectl kustomize config/...`; run " +
			"`bash hack/tools.sh kubernetes` and put the directory of `bash hack/tools.sh path kubectl` first on PATH (make test does)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; CI is set, so this fails instead of skipping")
		}
		t.Skip("Skipping: " + msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "kubectl", "kustomize", dir).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, ee.Stderr)
		}
		t.Fatalf("kubectl kustomize %s: %v", dir, err)
	}
	objs, err := decode(string(out))
	if err != nil {
		t.Fatalf("Decoding kubectl kustomize %s: %v", dir, err)
	}
	return objs
}

// compare checks that every object of config/ the chart also renders is equal once
// normalized, and that the only objects of one and not the other are those listed.
func compare(t *testing.T, chartObjs, configObjs []*unstructured.Unstructured, onlyConfig, onlyChart []string) {
	t.Helper()
	var gotOnlyConfig, gotOnlyChart []string
	for _, want := range configObjs {
		got := find(chartObjs, want.GetKind(), want.GetName())
		if got == nil {
			gotOnlyConfig = append(gotOnlyConfig, key(want))
			continue
		}
		if got.GetNamespace() != want.GetNamespace() {
			t.Errorf("%s is in namespace %q in the chart, %q in config/", key(want), got.GetNamespace(), want.GetNamespace())
		}
		if diff := cmp.Diff(normalize(want).Object, normalize(got).Object); diff != "" {
			t.Errorf("%s differs between config/ and the chart (-config +chart):\n%s", key(want), diff)
		}
	}
	for _, got := range chartObjs {
		if find(configObjs, got.GetKind(), got.GetName()) == nil {
			gotOnlyChart = append(gotOnlyChart, key(got))
		}
	}
	if diff := cmp.Diff(onlyConfig, gotOnlyConfig); diff != "" {
		t.Errorf("The objects only config/ renders (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(onlyChart, gotOnlyChart); diff != "" {
		t.Errorf("The objects only the chart renders (-want +got):\n%s", diff)
	}
}

func TestChartRendersWhatConfigDefaultDoes(t *testing.T) {
	compare(t, render(t, nil), kustomize(t, repoPath("config/default")),
		[]string{"Namespace homeostat-system"}, nil)
}

// The chart with webhook.certManager.enabled renders config/default-with-webhook: the
// webhook, its Service, cert-manager's Issuer and Certificate, and the manager's flags,
// port and volume.
func TestChartWithTheCertManagerWebhookRendersWhatConfigDefaultWithWebhookDoes(t *testing.T) {
	compare(t, render(t, map[string]any{"webhook": map[string]any{"enabled": true, "certManager": map[string]any{"enabled": true}}}),
		kustomize(t, repoPath("config/default-with-webhook")),
		[]string{"Namespace homeostat-system"}, nil)
}

// The chart with lockdown.enabled renders config/lockdown: the same objects, the
// manager with the same flags in the same order.
func TestChartWithLockdownRendersWhatConfigLockdownDoes(t *testing.T) {
	compare(t, render(t, map[string]any{"lockdown": map[string]any{"enabled": true}}),
		kustomize(t, repoPath("config/lockdown")),
		[]string{"Namespace homeostat-system"}, nil)
}

// The chart's ServiceMonitor is config/prometheus's, as config/default's [PROMETHEUS]
// block installs it (named and namespaced like the rest).
func TestChartServiceMonitorIsConfigPrometheus(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "prometheus"), os.DirFS(repoPath("config/prometheus"))); err != nil {
		t.Fatal(err)
	}
	kustomization := "namespace: homeostat-system\nnamePrefix: homeostat-\nresources:\n- prometheus\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		t.Fatal(err)
	}
	var monitors []*unstructured.Unstructured
	for _, o := range render(t, map[string]any{"serviceMonitor": map[string]any{"enabled": true}}) {
		if o.GetKind() == "ServiceMonitor" {
			monitors = append(monitors, o)
		}
	}
	compare(t, monitors, kustomize(t, dir), nil, nil)
}
