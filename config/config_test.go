// Package config_test renders the kustomize tree in config/ the way `make deploy` does
// (`kubectl kustomize`, no cluster needed) and checks what an installer relies on: the
// manager runs under the restricted Pod Security Standard, the RBAC has no wildcards and
// no Secret list or watch, everything lands in homeostat-system, and the optional
// webhook, cert-manager and Prometheus pieces are wired to the names the manager uses.
//
// The tests work on a copy of config/. The files `make manifests` generates
// (rbac/role.yaml, webhook/manifests.yaml) are stubbed in the copy when they do not exist
// yet, and the test says so in its log.
package config_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const (
	namespace      = "homeostat-system"
	image          = "homeostat:dev"
	managerName    = "homeostat-controller-manager"
	managerSA      = "homeostat-controller-manager"
	metricsService = "homeostat-controller-manager-metrics-service"
)

// The generated files that may not exist yet, and the stand-ins the tests render with.
var generated = map[string]string{
	"rbac/role.yaml": `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: manager-role
rules: []
`,
	"webhook/manifests.yaml": `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: validating-webhook-configuration
webhooks:
- admissionReviewVersions: [v1]
  clientConfig:
    service:
      name: webhook-service
      namespace: system
      path: /validate-autonomic-homeostat-dev-v1alpha1-autonomicapp
  failurePolicy: Fail
  name: vautonomicapp.homeostat.dev
  rules:
  - apiGroups: [autonomic.homeostat.dev]
    apiVersions: [v1alpha1]
    operations: [CREATE, UPDATE]
    resources: [autonomicapps]
  sideEffects: None
`,
}

var (
	treeOnce sync.Once
	treeDir  string
	treeErr  error
	stubbed  []string

	rendered  sync.Map // dir -> []*unstructured.Unstructured
	toldStubs sync.Map // test name -> true once it has logged the stand-ins
)

func TestMain(m *testing.M) {
	code := m.Run()
	if treeDir != "" {
		_ = os.RemoveAll(filepath.Dir(treeDir))
	}
	os.Exit(code)
}

// tree returns a copy of config/, with stand-ins for the generated files that are missing.
func tree(t *testing.T) string {
	t.Helper()
	treeOnce.Do(func() {
		tmp, err := os.MkdirTemp("", "homeostat-config-")
		if err != nil {
			treeErr = err
			return
		}
		treeDir = filepath.Join(tmp, "config")
		if treeErr = os.CopyFS(treeDir, os.DirFS(".")); treeErr != nil {
			return
		}
		for _, rel := range slices.Sorted(maps.Keys(generated)) {
			path := filepath.Join(treeDir, rel)
			if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
				if treeErr = os.WriteFile(path, []byte(generated[rel]), 0o644); treeErr != nil {
					return
				}
				stubbed = append(stubbed, rel)
			}
		}
	})
	if treeErr != nil {
		t.Fatalf("Copying config/ to a temporary directory: %v", treeErr)
	}
	if _, told := toldStubs.LoadOrStore(t.Name(), true); !told {
		for _, rel := range stubbed {
			t.Logf("config/%s does not exist yet (`make manifests` generates it): rendering with a stand-in", rel)
		}
	}
	return treeDir
}

// render runs `kubectl kustomize` on dir (relative to config/) and decodes the objects.
func render(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	if _, err := exec.LookPath("kubectl"); err != nil {
		msg := "kubectl is not in PATH. These tests render config/ with `kubectl kustomize` (no cluster " +
			"needed): run `bash hack/tools.sh kubernetes` and put the directory of `bash hack/tools.sh path kubectl` " +
			"first on PATH (make test does)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; CI is set, so this fails instead of skipping")
		}
		t.Skip("Skipping: " + msg)
	}
	root := tree(t)
	if objs, ok := rendered.Load(dir); ok {
		return objs.([]*unstructured.Unstructured)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "kubectl", "kustomize", filepath.Join(root, dir))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl kustomize config/%s: %v\n%s", dir, err, stderr.String())
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(&stdout, 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("Decoding the output of kubectl kustomize config/%s: %v", dir, err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	if len(objs) == 0 {
		t.Fatalf("kubectl kustomize config/%s rendered no objects", dir)
	}
	rendered.Store(dir, objs)
	return objs
}

// renderUncommented renders config/default with the commented YAML of the blocks tagged
// with tags (e.g. "[WEBHOOK]") uncommented, as a user enabling them would.
func renderUncommented(t *testing.T, tags ...string) []*unstructured.Unstructured {
	t.Helper()
	root := tree(t)
	name := "default-uncommented-" + strings.ToLower(strings.Join(tags, "-"))
	name = regexp.MustCompile(`[^a-z-]`).ReplaceAllString(name, "")
	src, err := os.ReadFile(filepath.Join(root, "default", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := uncomment(string(src), tags...)
	if err != nil {
		t.Fatalf("Uncommenting config/default/kustomization.yaml: %v", err)
	}
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(root, "default"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(root, "default", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "kustomization.yaml" {
			b = []byte(out)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return render(t, name)
}

// uncomment removes the leading "#" from the commented YAML of the blocks tagged with one
// of tags. A block starts at a comment line that contains a tag and ends at the first line
// that is not a comment. In a block, "# text" is prose and stays; "#key:", "#- item" and
// "#  indented" are YAML.
func uncomment(text string, tags ...string) (string, error) {
	yamlLine := regexp.MustCompile(`^#([^\s#]|  )`)
	tagged := regexp.MustCompile(`\[[A-Z]+\]`)
	found := map[string]bool{}
	current := ""
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		if !strings.HasPrefix(line, "#") {
			current = ""
			continue
		}
		if tag := tagged.FindString(line); tag != "" {
			current = tag
		}
		if slices.Contains(tags, current) && yamlLine.MatchString(line) {
			lines[i] = line[1:]
			found[current] = true
		}
	}
	for _, tag := range tags {
		if !found[tag] {
			return "", fmt.Errorf("no commented YAML under %s", tag)
		}
	}
	return strings.Join(lines, "\n"), nil
}

func TestDefaultRunsTheManagerUnderTheRestrictedPodSecurityStandard(t *testing.T) {
	for _, dir := range []string{"default", "default-with-webhook"} {
		t.Run(dir, func(t *testing.T) {
			objs := render(t, dir)
			ns := get[corev1.Namespace](t, objs, "Namespace", "", namespace)
			if got := ns.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
				t.Errorf("Namespace %s enforces Pod Security %q, want restricted", namespace, got)
			}
			spec := get[appsv1.Deployment](t, objs, "Deployment", namespace, managerName).Spec.Template.Spec
			if spec.HostNetwork || spec.HostPID || spec.HostIPC {
				t.Errorf("The manager shares a host namespace (hostNetwork/hostPID/hostIPC)")
			}
			for _, v := range spec.Volumes {
				if v.HostPath != nil {
					t.Errorf("Volume %s is a hostPath, which the restricted standard forbids", v.Name)
				}
			}
			pod := spec.SecurityContext
			if pod == nil {
				pod = &corev1.PodSecurityContext{}
			}
			containers := slices.Concat(spec.InitContainers, spec.Containers)
			if len(containers) == 0 {
				t.Fatal("The manager Deployment has no containers")
			}
			for _, c := range containers {
				sc := c.SecurityContext
				if sc == nil {
					t.Errorf("Container %s has no securityContext", c.Name)
					continue
				}
				runAsNonRoot := pod.RunAsNonRoot
				if sc.RunAsNonRoot != nil {
					runAsNonRoot = sc.RunAsNonRoot
				}
				if runAsNonRoot == nil || !*runAsNonRoot {
					t.Errorf("Container %s: runAsNonRoot is not true (pod or container)", c.Name)
				}
				if (sc.RunAsUser != nil && *sc.RunAsUser == 0) || (pod.RunAsUser != nil && *pod.RunAsUser == 0) {
					t.Errorf("Container %s runs as UID 0", c.Name)
				}
				seccomp := pod.SeccompProfile
				if sc.SeccompProfile != nil {
					seccomp = sc.SeccompProfile
				}
				if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
					t.Errorf("Container %s: seccompProfile is %v, want RuntimeDefault", c.Name, seccomp)
				}
				if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
					t.Errorf("Container %s: allowPrivilegeEscalation is not false", c.Name)
				}
				if sc.Privileged != nil && *sc.Privileged {
					t.Errorf("Container %s is privileged", c.Name)
				}
				if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
					t.Errorf("Container %s does not drop ALL capabilities", c.Name)
				} else if len(sc.Capabilities.Add) > 0 {
					t.Errorf("Container %s adds capabilities %v", c.Name, sc.Capabilities.Add)
				}
				if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
					t.Errorf("Container %s: readOnlyRootFilesystem is not true", c.Name)
				}
				for _, p := range c.Ports {
					if p.HostPort != 0 {
						t.Errorf("Container %s uses hostPort %d", c.Name, p.HostPort)
					}
				}
			}
		})
	}
}

func TestDefaultDeploysTheManagerAsDocumented(t *testing.T) {
	objs := render(t, "default")
	d := get[appsv1.Deployment](t, objs, "Deployment", namespace, managerName)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("replicas = %v, want 1", d.Spec.Replicas)
	}
	spec := d.Spec.Template.Spec
	if spec.ServiceAccountName != managerSA {
		t.Errorf("serviceAccountName = %q, want %q", spec.ServiceAccountName, managerSA)
	}
	get[corev1.ServiceAccount](t, objs, "ServiceAccount", namespace, managerSA)
	if spec.TerminationGracePeriodSeconds == nil || *spec.TerminationGracePeriodSeconds != 30 {
		t.Errorf("terminationGracePeriodSeconds = %v, want 30", spec.TerminationGracePeriodSeconds)
	}
	c := container(t, d, "manager")
	for _, arg := range []string{"--leader-elect", "--enable-webhooks=false"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("The manager's args %q lack %s", c.Args, arg)
		}
	}
	probePort := flagPort(t, c, "--health-probe-bind-address")
	for name, probe := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("The manager has no HTTP probe on %s", name)
			continue
		}
		if probe.HTTPGet.Path != name || probe.HTTPGet.Port.IntValue() != probePort {
			t.Errorf("Probe %s goes to %s on port %s, want %s on %d (--health-probe-bind-address)",
				name, probe.HTTPGet.Path, probe.HTTPGet.Port.String(), name, probePort)
		}
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("The manager requests no %s", r)
		}
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		t.Error("The manager has no memory limit")
	}
	svc := get[corev1.Service](t, objs, "Service", namespace, metricsService)
	metricsPort := flagPort(t, c, "--metrics-bind-address")
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "https" || svc.Spec.Ports[0].Port != 8443 ||
		targetPort(t, c, svc.Spec.Ports[0]) != metricsPort {
		t.Errorf("The metrics Service ports %+v do not expose https 8443 -> the manager's %d", svc.Spec.Ports, metricsPort)
	}
	if kinds := kindsOf(objs); slices.Contains(kinds, "ValidatingWebhookConfiguration") {
		t.Errorf("config/default renders a ValidatingWebhookConfiguration, but the manager runs with --enable-webhooks=false")
	}
}

func TestDefaultUsesTheDevImage(t *testing.T) {
	d := get[appsv1.Deployment](t, render(t, "default"), "Deployment", namespace, managerName)
	for _, c := range slices.Concat(d.Spec.Template.Spec.InitContainers, d.Spec.Template.Spec.Containers) {
		// `make deploy IMG=...` replaces exactly "image: homeostat:dev".
		if c.Image != image {
			t.Errorf("Container %s runs image %q, want %q", c.Name, c.Image, image)
		}
	}
}

func TestDefaultInstallsIntoHomeostatSystem(t *testing.T) {
	clusterScoped := []string{"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
		"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}
	for _, dir := range []string{"default", "default-with-webhook"} {
		t.Run(dir, func(t *testing.T) {
			objs := render(t, dir)
			var namespaces []string
			for _, o := range objs {
				switch {
				case o.GetKind() == "Namespace":
					namespaces = append(namespaces, o.GetName())
				case slices.Contains(clusterScoped, o.GetKind()):
					if o.GetNamespace() != "" {
						t.Errorf("Cluster-scoped %s %s has namespace %q", o.GetKind(), o.GetName(), o.GetNamespace())
					}
				case o.GetNamespace() != namespace:
					t.Errorf("%s %s is in namespace %q, want %s", o.GetKind(), o.GetName(), o.GetNamespace(), namespace)
				}
			}
			if !slices.Equal(namespaces, []string{namespace}) {
				t.Errorf("Rendered Namespaces %q, want just %s", namespaces, namespace)
			}
			for _, o := range objs {
				if o.GetKind() != "RoleBinding" && o.GetKind() != "ClusterRoleBinding" {
					continue
				}
				var b rbacv1.RoleBinding // a ClusterRoleBinding has the same fields
				convert(t, o, &b)
				refNS := "" // a ClusterRole
				if b.RoleRef.Kind == "Role" {
					refNS = o.GetNamespace()
				}
				if find(objs, b.RoleRef.Kind, refNS, b.RoleRef.Name) == nil {
					t.Errorf("%s %s refers to %s %s, which is not rendered", o.GetKind(), o.GetName(), b.RoleRef.Kind, b.RoleRef.Name)
				}
				for _, s := range b.Subjects {
					if s.Kind == rbacv1.ServiceAccountKind && (s.Namespace != namespace || s.Name != managerSA) {
						t.Errorf("%s %s binds ServiceAccount %s/%s, want %s/%s", o.GetKind(), o.GetName(), s.Namespace, s.Name, namespace, managerSA)
					}
				}
			}
		})
	}
}

func TestNoRoleGrantsWildcardsOrSecretListOrWatch(t *testing.T) {
	for _, dir := range []string{"default", "default-with-webhook"} {
		t.Run(dir, func(t *testing.T) {
			objs := render(t, dir)
			if slices.Contains(stubbed, "rbac/role.yaml") {
				t.Log("Checked the hand-written roles only: manager-role is a stand-in until `make manifests` writes it")
			}
			roles := 0
			for _, o := range objs {
				if o.GetKind() != "Role" && o.GetKind() != "ClusterRole" {
					continue
				}
				roles++
				var r rbacv1.ClusterRole // a Role has the same rules
				convert(t, o, &r)
				if r.AggregationRule != nil {
					t.Errorf("%s %s aggregates other roles, whose rules this test cannot see", o.GetKind(), o.GetName())
				}
				for i, rule := range r.Rules {
					where := fmt.Sprintf("%s %s rule %d", o.GetKind(), o.GetName(), i)
					for field, values := range map[string][]string{"verbs": rule.Verbs, "apiGroups": rule.APIGroups,
						"resources": rule.Resources, "resourceNames": rule.ResourceNames, "nonResourceURLs": rule.NonResourceURLs} {
						for _, v := range values {
							if strings.Contains(v, "*") {
								t.Errorf("%s has the wildcard %q in %s", where, v, field)
							}
						}
					}
					if slices.Contains(rule.APIGroups, "") && slices.Contains(rule.Resources, "secrets") {
						for _, verb := range []string{"list", "watch"} {
							if slices.Contains(rule.Verbs, verb) {
								t.Errorf("%s grants %s on Secrets", where, verb)
							}
						}
					}
				}
			}
			if roles < 5 {
				t.Errorf("Rendered %d roles; the RBAC folder is missing from %s", roles, dir)
			}
		})
	}
}

func TestLeaderElectionRoleNamesTheManagersLease(t *testing.T) {
	objs := render(t, "default")
	src, err := os.ReadFile(filepath.Join("..", "main.go"))
	if err != nil {
		t.Fatalf("Reading main.go for its leaseName: %v", err)
	}
	m := regexp.MustCompile(`const leaseName = "([^"]+)"`).FindSubmatch(src)
	if m == nil {
		t.Fatal("main.go sets no literal leaseName; update this test and config/rbac/leader_election_role.yaml together")
	}
	id := string(m[1])
	role := get[rbacv1.Role](t, objs, "Role", namespace, "homeostat-leader-election-role")
	var create, getUpdate, watch bool
	for _, r := range role.Rules {
		if !slices.Contains(r.APIGroups, "coordination.k8s.io") || !slices.Contains(r.Resources, "leases") {
			continue
		}
		create = create || slices.Contains(r.Verbs, "create")
		getUpdate = getUpdate || (slices.Contains(r.ResourceNames, id) &&
			slices.Contains(r.Verbs, "get") && slices.Contains(r.Verbs, "update"))
		watch = watch || (slices.Contains(r.ResourceNames, id) && slices.Contains(r.Verbs, "watch"))
	}
	if !create || !getUpdate || !watch {
		t.Errorf("The leader election Role must let the manager create leases, and get, update and watch the Lease %q "+
			"(main.go's leaseName); its rules are %+v", id, role.Rules)
	}
}

func TestWebhookOverlayWiresTheCertificateToTheManager(t *testing.T) {
	objs := render(t, "default-with-webhook")
	d := get[appsv1.Deployment](t, objs, "Deployment", namespace, managerName)
	c := container(t, d, "manager")
	if !slices.Contains(c.Args, "--enable-webhooks=true") || slices.Contains(c.Args, "--enable-webhooks=false") {
		t.Errorf("The manager's args %q do not turn the webhook on", c.Args)
	}
	webhookPort := flagPort(t, c, "--webhook-port")
	certDir := flagValue(t, c, "--webhook-cert-dir")

	svc := get[corev1.Service](t, objs, "Service", namespace, "homeostat-webhook-service")
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 443 || targetPort(t, c, svc.Spec.Ports[0]) != webhookPort {
		t.Errorf("The webhook Service ports %+v do not send 443 to the manager's --webhook-port %d", svc.Spec.Ports, webhookPort)
	}

	cert := get[unstructured.Unstructured](t, objs, "Certificate", namespace, "homeostat-serving-cert")
	secretName, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
	dnsNames, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
	wantDNS := []string{svc.Name + "." + namespace + ".svc", svc.Name + "." + namespace + ".svc.cluster.local"}
	if !slices.Equal(dnsNames, wantDNS) {
		t.Errorf("The Certificate's dnsNames are %q, want %q", dnsNames, wantDNS)
	}
	issuer, _, _ := unstructured.NestedString(cert.Object, "spec", "issuerRef", "name")
	get[unstructured.Unstructured](t, objs, "Issuer", namespace, issuer)

	mounted := false
	for _, m := range c.VolumeMounts {
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == secretName && m.MountPath == certDir {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("The manager does not mount the Certificate's Secret %q at --webhook-cert-dir %q", secretName, certDir)
	}

	vwc := get[admissionregistrationv1.ValidatingWebhookConfiguration](t, objs, "ValidatingWebhookConfiguration", "",
		"homeostat-validating-webhook-configuration")
	if got, want := vwc.Annotations["cert-manager.io/inject-ca-from"], namespace+"/"+cert.GetName(); got != want {
		t.Errorf("cert-manager.io/inject-ca-from = %q, want %q", got, want)
	}
	if len(vwc.Webhooks) == 0 {
		t.Fatal("The ValidatingWebhookConfiguration has no webhooks")
	}
	for _, w := range vwc.Webhooks {
		s := w.ClientConfig.Service
		if s == nil || s.Name != svc.Name || s.Namespace != namespace {
			t.Errorf("Webhook %s calls %+v, want the Service %s/%s", w.Name, s, namespace, svc.Name)
		}
	}
}

func TestUncommentingTheDefaultWebhookBlocksEqualsTheOverlay(t *testing.T) {
	want := byKey(render(t, "default-with-webhook"))
	got := byKey(renderUncommented(t, "[WEBHOOK]", "[CERTMANAGER]"))
	keys := slices.Concat(slices.Collect(maps.Keys(want)), slices.Collect(maps.Keys(got)))
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		if !reflect.DeepEqual(got[k], want[k]) {
			g, _ := yaml.Marshal(got[k])
			w, _ := yaml.Marshal(want[k])
			t.Errorf("%s differs between config/default with [WEBHOOK] and [CERTMANAGER] uncommented and "+
				"config/default-with-webhook:\n--- uncommented:\n%s--- overlay:\n%s", k, g, w)
		}
	}
}

func TestPrometheusMonitorScrapesTheMetricsService(t *testing.T) {
	render(t, "prometheus")
	objs := renderUncommented(t, "[PROMETHEUS]")
	svc := get[corev1.Service](t, objs, "Service", namespace, metricsService)
	mon := get[unstructured.Unstructured](t, objs, "ServiceMonitor", namespace, "homeostat-controller-manager-metrics-monitor")
	selector, _, _ := unstructured.NestedStringMap(mon.Object, "spec", "selector", "matchLabels")
	if len(selector) == 0 {
		t.Error("The ServiceMonitor selects no labels")
	}
	for k, v := range selector {
		if svc.Labels[k] != v {
			t.Errorf("The ServiceMonitor selects %s=%s, which the metrics Service does not carry", k, v)
		}
	}
	endpoints, _, _ := unstructured.NestedSlice(mon.Object, "spec", "endpoints")
	if len(endpoints) != 1 {
		t.Fatalf("The ServiceMonitor has %d endpoints, want 1", len(endpoints))
	}
	ep := endpoints[0].(map[string]any)
	if ep["port"] != svc.Spec.Ports[0].Name || ep["scheme"] != "https" || ep["bearerTokenFile"] == nil {
		t.Errorf("The ServiceMonitor endpoint %v does not scrape port %q over https with a bearer token", ep, svc.Spec.Ports[0].Name)
	}
}

func TestCRDKustomizationListsEveryGeneratedCRD(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("crd", "bases", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("No CRDs in config/crd/bases (%v)", err)
	}
	var want []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var crd struct {
			Metadata struct{ Name string } `json:"metadata"`
		}
		if err := yaml.Unmarshal(b, &crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		want = append(want, crd.Metadata.Name)
	}
	sort.Strings(want)
	for _, dir := range []string{"crd", "default"} {
		var got []string
		for _, o := range render(t, dir) {
			if o.GetKind() == "CustomResourceDefinition" {
				got = append(got, o.GetName())
			}
		}
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("config/%s renders the CRDs %q, want every one in crd/bases: %q", dir, got, want)
		}
	}
}

func get[T any](t *testing.T, objs []*unstructured.Unstructured, kind, ns, name string) *T {
	t.Helper()
	o := find(objs, kind, ns, name)
	if o == nil {
		t.Fatalf("No %s %s/%s rendered", kind, ns, name)
	}
	var out T
	if u, ok := any(&out).(*unstructured.Unstructured); ok {
		*u = *o
		return &out
	}
	convert(t, o, &out)
	return &out
}

func find(objs []*unstructured.Unstructured, kind, ns, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetNamespace() == ns && o.GetName() == name {
			return o
		}
	}
	return nil
}

func convert(t *testing.T, o *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, into, true); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
}

func container(t *testing.T, d *appsv1.Deployment, name string) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("Deployment %s has no container %s", d.Name, name)
	return corev1.Container{}
}

// flagValue returns the value of a --flag=value argument of c.
func flagValue(t *testing.T, c corev1.Container, flag string) string {
	t.Helper()
	var value string
	found := false
	for _, a := range c.Args { // the last one wins, as with Go's flag package
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			value, found = v, true
		}
	}
	if !found {
		t.Fatalf("Container %s has no %s=... argument in %q", c.Name, flag, c.Args)
	}
	return value
}

// flagPort returns the port of an address or port flag such as --metrics-bind-address=:8443.
func flagPort(t *testing.T, c corev1.Container, flag string) int {
	t.Helper()
	v := flagValue(t, c, flag)
	var port int
	if _, err := fmt.Sscan(v[strings.LastIndex(v, ":")+1:], &port); err != nil {
		t.Fatalf("%s=%s has no port: %v", flag, v, err)
	}
	return port
}

// targetPort resolves a Service port's targetPort, by number or by c's port names.
func targetPort(t *testing.T, c corev1.Container, p corev1.ServicePort) int {
	t.Helper()
	if p.TargetPort.IntValue() != 0 {
		return p.TargetPort.IntValue()
	}
	for _, cp := range c.Ports {
		if cp.Name == p.TargetPort.String() {
			return int(cp.ContainerPort)
		}
	}
	t.Errorf("Service port %s targets %s, which container %s does not name", p.Name, p.TargetPort.String(), c.Name)
	return -1
}

func kindsOf(objs []*unstructured.Unstructured) []string {
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetKind())
	}
	return kinds
}

func byKey(objs []*unstructured.Unstructured) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, o := range objs {
		out[o.GetAPIVersion()+" "+o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName()] = o.Object
	}
	return out
}

// config/lockdown is config/default with the tenancy flags added to the manager's args,
// and nothing else changed; its tenant/ example grants the apps' ServiceAccount only
// namespaced rights, and neither Secrets nor scaling.
func TestLockdownAddsTheTenancyFlagsToTheDefaultAndNothingElse(t *testing.T) {
	def, lock := render(t, "default"), render(t, "lockdown")
	defD := get[appsv1.Deployment](t, def, "Deployment", namespace, managerName)
	lockD := get[appsv1.Deployment](t, lock, "Deployment", namespace, managerName)
	defArgs, lockArgs := container(t, defD, "manager").Args, container(t, lockD, "manager").Args
	want := []string{"--default-service-account=homeostat-tenant", "--egress-max-response-bytes=262144",
		"--egress-max-timeout=10s", "--storm-min-namespaces=2", "--object-sensor-cluster-kinds=",
		"--node-actions-namespaces=", "--max-nodes-per-action=1", "--max-unavailable-nodes=10%"}
	if got := lockArgs; !slices.Equal(got, slices.Concat(defArgs, want)) {
		t.Errorf("config/lockdown's manager args are %q, want config/default's %q followed by %q", got, defArgs, want)
	}
	if slices.ContainsFunc(lockArgs, func(a string) bool { return strings.HasPrefix(a, "--egress-allow-cidrs") }) {
		t.Errorf("config/lockdown allows egress to the built-in deny list: %q", lockArgs)
	}
	// Apart from those args, the same objects.
	lockD.Spec.Template.Spec.Containers[0].Args = defArgs
	wantObjs, gotObjs := byKey(def), byKey(lock)
	u := &unstructured.Unstructured{}
	var err error
	if u.Object, err = runtime.DefaultUnstructuredConverter.ToUnstructured(lockD); err != nil {
		t.Fatal(err)
	}
	lockKey := "apps/v1 Deployment " + namespace + "/" + managerName
	gotObjs[lockKey] = u.Object
	defU := &unstructured.Unstructured{}
	if defU.Object, err = runtime.DefaultUnstructuredConverter.ToUnstructured(defD); err != nil {
		t.Fatal(err)
	}
	wantObjs[lockKey] = defU.Object
	if !reflect.DeepEqual(gotObjs, wantObjs) {
		for k := range wantObjs {
			if !reflect.DeepEqual(gotObjs[k], wantObjs[k]) {
				t.Errorf("config/lockdown changes %s beyond the manager's args", k)
			}
		}
		for k := range gotObjs {
			if _, ok := wantObjs[k]; !ok {
				t.Errorf("config/lockdown adds %s", k)
			}
		}
	}

	tenant := render(t, "lockdown/tenant")
	get[corev1.ServiceAccount](t, tenant, "ServiceAccount", "shop", "homeostat-tenant")
	role := get[rbacv1.Role](t, tenant, "Role", "shop", "homeostat-tenant")
	for _, r := range role.Rules {
		for _, res := range r.Resources {
			if res == "*" || res == "secrets" || strings.HasSuffix(res, "/scale") || slices.Contains(r.Verbs, "*") {
				t.Errorf("The tenant example's Role grants %v on %s; it should grant neither Secrets, scaling nor wildcards", r.Verbs, res)
			}
		}
	}
	rb := get[rbacv1.RoleBinding](t, tenant, "RoleBinding", "shop", "homeostat-tenant")
	if rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != "homeostat-tenant" || len(rb.Subjects) != 1 ||
		rb.Subjects[0] != (rbacv1.Subject{Kind: "ServiceAccount", Name: "homeostat-tenant", Namespace: "shop"}) {
		t.Errorf("The tenant example's RoleBinding binds %+v to %+v, want the Role homeostat-tenant to the ServiceAccount shop/homeostat-tenant", rb.RoleRef, rb.Subjects)
	}
}

// The gauges carry the app's own namespace label; a scrape that overrides it hides every
// app from the alerts, the dashboards and kubectl homeostat simulate.
func TestTheServiceMonitorKeepsTheGaugesNamespaceLabel(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("prometheus", "monitor.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var sm struct {
		Spec struct {
			Endpoints []struct {
				HonorLabels bool `json:"honorLabels"`
			} `json:"endpoints"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &sm); err != nil {
		t.Fatal(err)
	}
	if len(sm.Spec.Endpoints) == 0 {
		t.Fatal("the ServiceMonitor has no endpoints")
	}
	for i, e := range sm.Spec.Endpoints {
		if !e.HonorLabels {
			t.Errorf("endpoint %d does not set honorLabels: true", i)
		}
	}
}
