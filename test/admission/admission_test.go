// Package admission proves that the real API server, with the CRDs of config/crd/bases
// installed, rejects bad AutonomicApps, HealingPolicies and ClusterHealingPolicies with
// a message that names the field, and accepts every sample in config/samples.
//
// Each file in testdata/invalid is one case: a manifest that must be refused, whose
// leading `# expect: <substring>` lines give what the server's error must contain. The
// table is built from the directory listing, so adding a file adds a test. Cases that
// should be refused but are not, because of a bug in the API markers, wait in
// testdata/pending with the fix described in their header.
//
// webhook_down_test.go installs the validating webhook configuration of config/webhook
// with no server behind it, as while the manager is down, and proves that only creates
// and spec changes are refused: a person can still pause an app.
//
// The API-server specs need kube-apiserver and etcd in KUBEBUILDER_ASSETS:
//
//	KUBEBUILDER_ASSETS=$(bash hack/tools.sh envtest-dir) go test ./test/admission/...
//
// Without it they are skipped and only the static checks (case count, schema
// descriptions, sample layout) run.
package admission

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

const (
	crdDir       = "../../config/crd/bases"
	samplesDir   = "../../config/samples"
	invalidDir   = "testdata/invalid"
	pendingDir   = "testdata/pending"
	expectTag    = "# expect:"
	minInvalid   = 25
	assetsEnvVar = "KUBEBUILDER_ASSETS"
)

var (
	testEnv   *envtest.Environment
	k8sClient client.Client
	// skipReason is set when there is no API server to test against.
	skipReason string
)

func TestAdmission(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Admission")
}

var _ = BeforeSuite(func() {
	if os.Getenv(assetsEnvVar) == "" {
		skipReason = assetsEnvVar + " is empty, so there is no kube-apiserver to test admission against; " +
			"run KUBEBUILDER_ASSETS=$(bash hack/tools.sh envtest-dir) go test ./test/admission/..."
		fmt.Fprintln(GinkgoWriter, "Skipping the API-server specs: "+skipReason)
		return
	}
	By("starting kube-apiserver and etcd with the CRDs of " + crdDir)
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{crdDir},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := testEnv.Start()
	Expect(err).NotTo(HaveOccurred(), "the control plane must start and every CRD must install (a CEL rule that does not compile fails here)")
	k8sClient, err = client.New(cfg, client.Options{})
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// needAPIServer skips the current spec when no API server was started.
func needAPIServer() {
	if skipReason != "" {
		Skip(skipReason)
	}
}

var _ = Describe("Invalid manifests", func() {
	It("has at least 25 cases", func() {
		files, err := yamlFiles(invalidDir)
		Expect(err).NotTo(HaveOccurred())
		Expect(len(files)).To(BeNumerically(">=", minInvalid),
			"testdata/invalid holds %d cases; keep at least %d", len(files), minInvalid)
	})

	DescribeTable("are rejected by the API server with a message that names the field",
		func(ctx SpecContext, path string) {
			c, err := loadCase(path)
			Expect(err).NotTo(HaveOccurred())
			needAPIServer()

			err = create(ctx, c.object)
			if err == nil {
				Fail(fmt.Sprintf("%s was accepted; want it rejected with an error containing %q", path, c.expect))
			}
			GinkgoWriter.Printf("%s: %v\n", filepath.Base(path), err)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want an Invalid (422) error, got %v", err)
			for _, want := range c.expect {
				Expect(err.Error()).To(ContainSubstring(want), "the error of %s", path)
			}
		},
		tableEntries(invalidDir),
	)
})

var _ = Describe("Pending invalid manifests", func() {
	// A pending case should be rejected but is not, because of a bug in the API markers
	// (see its header). It is reported, not failed, so the suite stays green until the
	// API is fixed; once the server rejects it, move the file to testdata/invalid.
	DescribeTable("are still accepted until the API is fixed",
		func(ctx SpecContext, path string) {
			c, err := loadCase(path)
			Expect(err).NotTo(HaveOccurred())
			needAPIServer()

			err = create(ctx, c.object)
			if err == nil {
				Skip(fmt.Sprintf("%s is still accepted: the API bug in its header is not fixed yet", path))
			}
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want an Invalid (422) error, got %v", err)
			for _, want := range c.expect {
				Expect(err.Error()).To(ContainSubstring(want), "%s is now rejected, but not with the expected message", path)
			}
			Fail(fmt.Sprintf("%s is now rejected as expected (%v): move it to %s", path, err, invalidDir))
		},
		tableEntries(pendingDir),
	)
})

var _ = Describe("Samples", func() {
	It("lists every sample file in kustomization.yaml, and only those", func() {
		files, err := yamlFiles(samplesDir)
		Expect(err).NotTo(HaveOccurred())
		var onDisk []string
		for _, f := range files {
			if base := filepath.Base(f); base != "kustomization.yaml" {
				onDisk = append(onDisk, base)
			}
		}
		raw, err := os.ReadFile(filepath.Join(samplesDir, "kustomization.yaml"))
		Expect(err).NotTo(HaveOccurred())
		var k struct {
			Resources []string `json:"resources"`
		}
		Expect(yaml.Unmarshal(raw, &k)).To(Succeed())
		Expect(k.Resources).To(ConsistOf(onDisk))
	})

	DescribeTable("are self-contained: each workload, child app and Service an app names is in the same file",
		func(path string) {
			objs, err := loadDocuments(path)
			Expect(err).NotTo(HaveOccurred())
			have := map[string]bool{}
			for _, o := range objs {
				have[o.GetKind()+"/"+o.GetName()] = true
			}
			for _, o := range objs {
				if o.GetKind() != "AutonomicApp" {
					continue
				}
				for _, want := range referencedObjects(o) {
					Expect(have).To(HaveKey(want), "%s: AutonomicApp %s names %s", path, o.GetName(), want)
				}
			}
		},
		sampleEntries(),
	)

	DescribeTable("request cpu and memory for every container, so resource sensors and kwok scheduling work",
		func(path string) {
			objs, err := loadDocuments(path)
			Expect(err).NotTo(HaveOccurred())
			for _, o := range objs {
				if o.GetKind() != "Deployment" {
					continue
				}
				containers, _, err := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
				Expect(err).NotTo(HaveOccurred())
				Expect(containers).NotTo(BeEmpty(), "%s: Deployment %s", path, o.GetName())
				for _, c := range containers {
					m, _ := c.(map[string]any)
					requests, _, _ := unstructured.NestedMap(m, "resources", "requests")
					Expect(requests).To(And(HaveKey("cpu"), HaveKey("memory")),
						"%s: Deployment %s container %v", path, o.GetName(), m["name"])
				}
			}
		},
		sampleEntries(),
	)

	DescribeTable("are accepted by the API server",
		func(ctx SpecContext, path string) {
			objs, err := loadDocuments(path)
			Expect(err).NotTo(HaveOccurred())
			Expect(objs).NotTo(BeEmpty())
			needAPIServer()

			// Namespaces first, as kubectl apply -k orders them.
			slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
				return boolRank(a.GetKind() != "Namespace") - boolRank(b.GetKind() != "Namespace")
			})
			for _, obj := range objs {
				if obj.GetKind() == "Namespace" {
					err := k8sClient.Create(ctx, obj)
					if !apierrors.IsAlreadyExists(err) {
						Expect(err).NotTo(HaveOccurred(), "%s: Namespace %s", path, obj.GetName())
					}
					continue
				}
				if ns := obj.GetNamespace(); ns != "" {
					ensureNamespace(ctx, ns)
				}
				Expect(k8sClient.Create(ctx, obj)).To(Succeed(), "%s: %s %s", path, obj.GetKind(), obj.GetName())
			}
		},
		sampleEntries(),
	)
})

var _ = Describe("CRD schemas", func() {
	DescribeTable("describe every property, so kubectl explain is useful",
		func(path string) {
			crd := loadCRD(path)
			for _, v := range crd.Spec.Versions {
				Expect(v.Schema).NotTo(BeNil())
				Expect(v.Schema.OpenAPIV3Schema).NotTo(BeNil())
				var missing []string
				walkProperties(*v.Schema.OpenAPIV3Schema, "", func(path string, p apiextensionsv1.JSONSchemaProps) {
					// The root metadata is ObjectMeta: the API server publishes its own
					// documented schema for it, whatever the CRD says.
					if path == ".metadata" {
						return
					}
					if strings.TrimSpace(p.Description) == "" {
						missing = append(missing, path)
					}
				})
				Expect(missing).To(BeEmpty(), "%s %s: properties without a description", crd.Name, v.Name)
			}
		},
		crdEntries(),
	)

	It("describes spec.policies.remediate.steps.action.restartPods", func() {
		crd := loadCRD(filepath.Join(crdDir, "autonomic.homeostat.dev_autonomicapps.yaml"))
		schema := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
		p, ok := explain(*schema, "spec.policies.remediate.steps.action.restartPods")
		Expect(ok).To(BeTrue(), "the schema must have spec.policies.remediate.steps.action.restartPods")
		Expect(strings.TrimSpace(p.Description)).NotTo(BeEmpty())
	})
})

// testCase is one file of testdata/invalid or testdata/pending.
type testCase struct {
	object *unstructured.Unstructured
	expect []string
}

// loadCase reads a case: one YAML document whose leading comment holds at least one
// `# expect: <substring>` line.
func loadCase(path string) (testCase, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return testCase{}, err
	}
	var c testCase
	for line := range strings.Lines(string(raw)) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "#") {
			break
		}
		if want, ok := strings.CutPrefix(line, expectTag); ok {
			if want = strings.TrimSpace(want); want != "" {
				c.expect = append(c.expect, want)
			}
		}
	}
	if len(c.expect) == 0 {
		return testCase{}, fmt.Errorf("%s: no leading %q line", path, expectTag+" <substring>")
	}
	objs, err := loadDocuments(path)
	if err != nil {
		return testCase{}, err
	}
	if len(objs) != 1 {
		return testCase{}, fmt.Errorf("%s: want exactly one document, found %d", path, len(objs))
	}
	c.object = objs[0]
	return c, nil
}

// loadDocuments decodes every non-empty YAML document of a file.
func loadDocuments(path string) ([]*unstructured.Unstructured, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var objs []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(bytes.TrimSpace(js)) == 0 || string(bytes.TrimSpace(js)) == "null" {
			continue
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		objs = append(objs, obj)
	}
}

// referencedObjects lists, as Kind/name, the objects an AutonomicApp names in its
// components and failover policies.
func referencedObjects(app *unstructured.Unstructured) []string {
	var refs []string
	components, _, _ := unstructured.NestedSlice(app.Object, "spec", "components")
	for _, c := range components {
		m, _ := c.(map[string]any)
		if kind, ok, _ := unstructured.NestedString(m, "workloadRef", "kind"); ok {
			name, _, _ := unstructured.NestedString(m, "workloadRef", "name")
			refs = append(refs, kind+"/"+name)
		}
		if name, ok, _ := unstructured.NestedString(m, "appRef", "name"); ok {
			refs = append(refs, "AutonomicApp/"+name)
		}
	}
	policies, _, _ := unstructured.NestedSlice(app.Object, "spec", "policies")
	for _, p := range policies {
		m, _ := p.(map[string]any)
		if svc, ok, _ := unstructured.NestedString(m, "failover", "service"); ok {
			refs = append(refs, "Service/"+svc)
		}
	}
	return refs
}

func loadCRD(path string) *apiextensionsv1.CustomResourceDefinition {
	raw, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	crd := &apiextensionsv1.CustomResourceDefinition{}
	Expect(yaml.UnmarshalStrict(raw, crd)).To(Succeed(), path)
	Expect(crd.Spec.Versions).NotTo(BeEmpty(), path)
	return crd
}

// walkProperties calls visit for every named property of a schema, depth first, with
// its path (list items add "[]", map values "{}").
func walkProperties(s apiextensionsv1.JSONSchemaProps, path string, visit func(string, apiextensionsv1.JSONSchemaProps)) {
	names := make([]string, 0, len(s.Properties))
	for name := range s.Properties {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := s.Properties[name]
		visit(path+"."+name, p)
		walkProperties(p, path+"."+name, visit)
	}
	if s.Items != nil && s.Items.Schema != nil {
		walkProperties(*s.Items.Schema, path+"[]", visit)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		walkProperties(*s.AdditionalProperties.Schema, path+"{}", visit)
	}
}

// explain finds a property by the dotted path kubectl explain takes, stepping through
// list items as kubectl explain does.
func explain(s apiextensionsv1.JSONSchemaProps, path string) (apiextensionsv1.JSONSchemaProps, bool) {
	for name := range strings.SplitSeq(path, ".") {
		for s.Items != nil && s.Items.Schema != nil {
			s = *s.Items.Schema
		}
		p, ok := s.Properties[name]
		if !ok {
			return apiextensionsv1.JSONSchemaProps{}, false
		}
		s = p
	}
	return s, true
}

// create creates a copy of a case's object for real, not as a dry run, exactly as a user
// would: in a namespace of its own when its kind is namespaced, so cases never see each
// other. An object the server accepts is deleted again. It returns the server's error.
func create(ctx context.Context, object *unstructured.Unstructured) error {
	obj := object.DeepCopy()
	namespaced, err := k8sClient.IsObjectNamespaced(obj)
	Expect(err).NotTo(HaveOccurred(), "the kind %s must be served", obj.GroupVersionKind())
	if namespaced {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "admission-"}}
		Expect(k8sClient.Create(ctx, ns)).To(Succeed())
		obj.SetNamespace(ns.Name)
	}
	err = k8sClient.Create(ctx, obj)
	if err == nil {
		Expect(k8sClient.Delete(ctx, obj)).To(Succeed())
	}
	return err
}

func ensureNamespace(ctx context.Context, name string) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := k8sClient.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		Expect(err).NotTo(HaveOccurred(), "creating namespace %s", name)
	}
}

func yamlFiles(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	return files, nil
}

// tableEntries is one Entry per YAML file of dir, named after the file, except the
// files named in skip.
func tableEntries(dir string, skip ...string) []TableEntry {
	files, err := yamlFiles(dir)
	if err != nil {
		panic(err)
	}
	entries := make([]TableEntry, 0, len(files))
	for _, f := range files {
		if base := filepath.Base(f); !slices.Contains(skip, base) {
			entries = append(entries, Entry(strings.TrimSuffix(base, ".yaml"), f))
		}
	}
	return entries
}

func sampleEntries() []TableEntry { return tableEntries(samplesDir, "kustomization.yaml") }

func crdEntries() []TableEntry { return tableEntries(crdDir) }

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}
