package admission

import (
	"net"
	"net/url"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// The validating webhook for AutonomicApps has failurePolicy Fail: while the manager,
// which serves it, is down, every request the API server sends to it is refused. These
// specs install the webhook configuration the repository generates
// (config/webhook/manifests.yaml, installed the way the controllers suite installs it:
// its Service replaced by a URL on 127.0.0.1) with no server behind it, and prove that
// the API server only sends it creates and spec changes. A person can still pause an app
// with `kubectl annotate`, or label it, when the operator is the problem.

const (
	webhookManifests = "../../config/webhook/manifests.yaml"
	webhookName      = "vautonomicapp.homeostat.dev"
	// refusedByWebhook is the start of the API server's error when it cannot reach a
	// webhook whose failurePolicy is Fail.
	refusedByWebhook = `failed calling webhook "` + webhookName + `"`
)

var _ = Describe("The validating webhook while the manager is down", Ordered, Serial, func() {
	var (
		ns   string
		apps []string // the sample apps, created in ns before the webhook was installed
	)

	// get reads an app of ns.
	get := func(ctx SpecContext, name string) *unstructured.Unstructured {
		GinkgoHelper()
		app := newApp()
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, app)).To(Succeed())
		return app
	}
	// patch sends a patch to an app of ns, as kubectl annotate and kubectl label do.
	patch := func(ctx SpecContext, name string, pt types.PatchType, body string, opts ...client.PatchOption) error {
		app := newApp()
		app.SetNamespace(ns)
		app.SetName(name)
		return k8sClient.Patch(ctx, app, client.RawPatch(pt, []byte(body)), opts...)
	}
	// expectRefusedByWebhook checks that err is the API server's failure-policy error.
	expectRefusedByWebhook := func(err error) {
		GinkgoHelper()
		Expect(err).To(HaveOccurred(), "the API server must call the webhook, find nothing listening and refuse")
		Expect(err.Error()).To(ContainSubstring(refusedByWebhook))
		Expect(apierrors.IsInternalError(err)).To(BeTrue(), "want the failure policy's Internal error, got %v", err)
	}

	BeforeAll(func(ctx SpecContext) {
		needAPIServer()

		By("creating every sample app in a namespace of its own, before the webhook is installed")
		nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "webhook-down-"}}
		Expect(k8sClient.Create(ctx, nsObj)).To(Succeed())
		ns = nsObj.Name
		files, err := yamlFiles(samplesDir)
		Expect(err).NotTo(HaveOccurred())
		for _, f := range files {
			if filepath.Base(f) == "kustomization.yaml" {
				continue
			}
			objs, err := loadDocuments(f)
			Expect(err).NotTo(HaveOccurred())
			for _, o := range objs {
				if o.GetKind() != "AutonomicApp" {
					continue
				}
				o.SetNamespace(ns)
				Expect(k8sClient.Create(ctx, o)).To(Succeed(), "%s: AutonomicApp %s", f, o.GetName())
				apps = append(apps, o.GetName())
			}
		}
		Expect(apps).To(ContainElement("shop"))

		By("installing the webhook configuration of " + webhookManifests + ", pointed at 127.0.0.1 where nothing listens")
		opts := &envtest.WebhookInstallOptions{Paths: []string{webhookManifests}, LocalServingHost: "127.0.0.1"}
		Expect(opts.Install(testEnv.Config)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) {
			By("removing the webhook configuration, so the other specs create apps without it")
			for _, vwc := range opts.ValidatingWebhooks {
				Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, vwc))).To(Succeed())
			}
			Eventually(func() error { return dryRunCreate(ctx, ns, "after") }).Should(Succeed())
			Expect(opts.Cleanup()).To(Succeed())
		})
		Expect(opts.ValidatingWebhooks).To(HaveLen(1))
		Expect(opts.ValidatingWebhooks[0].Webhooks).To(HaveLen(1))
		hook := opts.ValidatingWebhooks[0].Webhooks[0]
		Expect(hook.Name).To(Equal(webhookName))
		Expect(hook.FailurePolicy).To(HaveValue(Equal(admissionregistrationv1.Fail)))
		Expect(hook.ClientConfig.URL).NotTo(BeNil())
		u, err := url.Parse(*hook.ClientConfig.URL)
		Expect(err).NotTo(HaveOccurred())
		Expect(u.Hostname()).To(Equal("127.0.0.1"))
		_, err = net.DialTimeout("tcp", u.Host, time.Second)
		Expect(err).To(HaveOccurred(), "nothing may listen on %s: the manager is down", u.Host)

		By("waiting until the API server calls the webhook, on a dry-run spec change")
		Eventually(func() error {
			return patch(ctx, "shop", types.MergePatchType, `{"spec":{"mode":"DryRun"}}`, client.DryRunAll)
		}).Should(MatchError(ContainSubstring(refusedByWebhook)))
	})

	It("refuses to create an app", func(ctx SpecContext) {
		expectRefusedByWebhook(dryRunCreate(ctx, ns, "new"))
	})

	DescribeTable("refuses a change to the spec, however deep inside it",
		func(ctx SpecContext, pt types.PatchType, body string) {
			before := get(ctx, "shop")
			expectRefusedByWebhook(patch(ctx, "shop", pt, body))
			Expect(get(ctx, "shop").Object["spec"]).To(Equal(before.Object["spec"]))
		},
		Entry("a field of spec", types.MergePatchType, `{"spec":{"mode":"DryRun"}}`),
		Entry("a field of a map in a list", types.JSONPatchType,
			`[{"op":"replace","path":"/spec/components/0/workloadRef/name","value":"web-v2"}]`),
		Entry("a list that grows", types.JSONPatchType,
			`[{"op":"add","path":"/spec/symptoms/-","value":{"name":"Pending","expression":"components.web.pendingPods > 0"}}]`),
		Entry("a list that shrinks", types.JSONPatchType, `[{"op":"remove","path":"/spec/symptoms/0"}]`),
		Entry("a duration", types.JSONPatchType, `[{"op":"replace","path":"/spec/symptoms/0/for","value":"45s"}]`),
		Entry("a spec change sent with the pause annotation", types.MergePatchType,
			`{"metadata":{"annotations":{"`+v1alpha1.PausedAnnotation+`":"true"}},"spec":{"mode":"Paused"}}`),
	)

	// Every sample app, so that CEL's deep equality holds for every shape of spec the
	// samples have: lists of maps, numbers, quantities, durations, optional fields.
	DescribeTable("lets a person change only the metadata, as kubectl annotate and kubectl label do",
		func(ctx SpecContext, pt types.PatchType, body string, check func(*unstructured.Unstructured)) {
			for _, name := range apps {
				before := get(ctx, name)
				Expect(patch(ctx, name, pt, body)).To(Succeed(), "AutonomicApp %s", name)
				after := get(ctx, name)
				check(after)
				Expect(after.Object["spec"]).To(Equal(before.Object["spec"]), "AutonomicApp %s", name)
				Expect(after.GetGeneration()).To(Equal(before.GetGeneration()), "AutonomicApp %s", name)
			}
		},
		Entry("pause (kubectl annotate)", types.MergePatchType,
			`{"metadata":{"annotations":{"`+v1alpha1.PausedAnnotation+`":"true"}}}`,
			func(a *unstructured.Unstructured) { Expect(a.GetAnnotations()).To(HaveKey(v1alpha1.PausedAnnotation)) }),
		Entry("change a label (kubectl label --overwrite)", types.MergePatchType,
			`{"metadata":{"labels":{"team":"payments"}}}`,
			func(a *unstructured.Unstructured) { Expect(a.GetLabels()).To(HaveKeyWithValue("team", "payments")) }),
		Entry("add a finalizer", types.MergePatchType,
			`{"metadata":{"finalizers":["example.com/hold"]}}`,
			func(a *unstructured.Unstructured) { Expect(a.GetFinalizers()).To(ConsistOf("example.com/hold")) }),
		Entry("remove the finalizer", types.MergePatchType,
			`{"metadata":{"finalizers":null}}`,
			func(a *unstructured.Unstructured) { Expect(a.GetFinalizers()).To(BeEmpty()) }),
	)

	It("lets a client that writes the whole object (an update, not a patch) unpause an app", func(ctx SpecContext) {
		for _, name := range apps {
			app := get(ctx, name)
			Expect(app.GetAnnotations()).To(HaveKey(v1alpha1.PausedAnnotation))
			annotations := app.GetAnnotations()
			delete(annotations, v1alpha1.PausedAnnotation)
			app.SetAnnotations(annotations)
			Expect(k8sClient.Update(ctx, app)).To(Succeed(), "AutonomicApp %s", name)
			Expect(get(ctx, name).GetAnnotations()).NotTo(HaveKey(v1alpha1.PausedAnnotation))
		}
	})
})

// newApp is an empty AutonomicApp for the untyped client.
func newApp() *unstructured.Unstructured {
	app := &unstructured.Unstructured{}
	app.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("AutonomicApp"))
	return app
}

// dryRunCreate asks the API server to create a minimal valid app in ns, without keeping it.
func dryRunCreate(ctx SpecContext, ns, name string) error {
	app := newApp()
	app.SetNamespace(ns)
	app.SetName(name)
	spec := map[string]any{"components": []any{map[string]any{
		"name":        "web",
		"workloadRef": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
	}}}
	Expect(unstructured.SetNestedField(app.Object, spec, "spec")).To(Succeed())
	return k8sClient.Create(ctx, app, client.DryRunAll)
}
