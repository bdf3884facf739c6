package admission

import (
	"context"
	"fmt"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/controllers"
)

// The CRD schema cannot type-check a symptom's CEL against the app's components and
// sensors, nor a policy's symptoms and components: the validating webhook and the
// reconciler do, with the HealingPolicies and ClusterHealingPolicies that select the app
// merged in. These specs run that check (controllers.AppValidator, the webhook's
// validator, which runs the reconciler's merge and validation) on every sample app, with
// every sample policy and namespace in a fake cache, as after `kubectl apply -k
// config/samples`. They need no API server.

var samplesScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(corev1.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}()

// typed converts a sample object to its Go type, refusing fields the type does not have.
func typed(u *unstructured.Unstructured, into client.Object) error {
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, into, true); err != nil {
		return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

// samplePolicies returns the sample Namespaces, HealingPolicies and
// ClusterHealingPolicies (as typed objects, each passed through mutate when given), and
// the sample AutonomicApps.
func samplePolicies(mutate func(client.Object)) (cached []client.Object, apps []*v1alpha1.AutonomicApp) {
	GinkgoHelper()
	files, err := yamlFiles(samplesDir)
	Expect(err).NotTo(HaveOccurred())
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		objs, err := loadDocuments(f)
		Expect(err).NotTo(HaveOccurred())
		for _, u := range objs {
			var o client.Object
			switch u.GetKind() {
			case "Namespace":
				o = &corev1.Namespace{}
			case "HealingPolicy":
				o = &v1alpha1.HealingPolicy{}
			case "ClusterHealingPolicy":
				o = &v1alpha1.ClusterHealingPolicy{}
			case "AutonomicApp":
				app := &v1alpha1.AutonomicApp{}
				Expect(typed(u, app)).To(Succeed())
				apps = append(apps, app)
				continue
			default:
				continue
			}
			Expect(typed(u, o)).To(Succeed())
			if mutate != nil {
				mutate(o)
			}
			cached = append(cached, o)
		}
	}
	return cached, apps
}

// validateSample runs the webhook's and the reconciler's validation on the sample app
// named ns/name, with the sample policies (mutated, when mutate is given) in the cache.
func validateSample(ns, name string, mutate func(client.Object), mutateApp func(*v1alpha1.AutonomicApp)) error {
	GinkgoHelper()
	cached, apps := samplePolicies(mutate)
	v := &controllers.AppValidator{Reader: fake.NewClientBuilder().WithScheme(samplesScheme).WithObjects(cached...).Build()}
	for _, app := range apps {
		if app.Namespace == ns && app.Name == name {
			if mutateApp != nil {
				mutateApp(app)
			}
			_, err := v.ValidateCreate(context.Background(), app)
			return err
		}
	}
	Fail(fmt.Sprintf("no sample AutonomicApp %s/%s", ns, name))
	return nil
}

var _ = Describe("Sample apps", func() {
	DescribeTable("pass the CEL type-check and cross-reference validation the reconciler runs, with the sample policies merged in",
		func(path string) {
			objs, err := loadDocuments(path)
			Expect(err).NotTo(HaveOccurred())
			for _, u := range objs {
				if u.GetKind() != "AutonomicApp" {
					continue
				}
				Expect(validateSample(u.GetNamespace(), u.GetName(), nil, nil)).To(Succeed(), "%s: AutonomicApp %s", path, u.GetName())
			}
		},
		sampleEntries(),
	)

	// The check above must not pass vacuously: the same validation refuses a sample that
	// a small edit breaks, in the app itself or in a policy that selects it.
	addSymptom := func(expr string) func(*[]v1alpha1.Symptom) {
		return func(s *[]v1alpha1.Symptom) { *s = append(*s, v1alpha1.Symptom{Name: "Broken", Expression: expr}) }
	}
	DescribeTable("would refuse a sample edited to be wrong",
		func(app string, mutate func(client.Object), mutateApp func(*v1alpha1.AutonomicApp), want string) {
			err := validateSample("homeostat-demo", app, mutate, mutateApp)
			Expect(err).To(HaveOccurred())
			GinkgoWriter.Println(err)
			Expect(err.Error()).To(ContainSubstring(want))
		},
		Entry("an app's symptom naming an unknown sensor", "shop", nil,
			func(a *v1alpha1.AutonomicApp) { addSymptom("sensors.latency_p99 > 0.3")(&a.Spec.Symptoms) }, `unknown sensor "latency_p99"`),
		Entry("an app's symptom naming an unknown component", "shop", nil,
			func(a *v1alpha1.AutonomicApp) { addSymptom("components.api.crashLoopingPods > 0")(&a.Spec.Symptoms) }, `unknown component "api"`),
		Entry("an app's symptom that is not a bool", "shop", nil,
			func(a *v1alpha1.AutonomicApp) { addSymptom("components.web.restarts")(&a.Spec.Symptoms) }, `symptom "Broken": expression must return a bool`),
		Entry("a HealingPolicy's symptom naming an unknown sensor, in the app it selects", "worker",
			func(o client.Object) {
				if p, ok := o.(*v1alpha1.HealingPolicy); ok {
					addSymptom("sensors.queue_depth > 10")(&p.Spec.Symptoms)
				}
			}, nil, `unknown sensor "queue_depth"`),
		Entry("a ClusterHealingPolicy's symptom naming an unknown sensor, in the app it selects", "worker",
			func(o client.Object) {
				if p, ok := o.(*v1alpha1.ClusterHealingPolicy); ok {
					p.Spec.Symptoms = append(p.Spec.Symptoms, v1alpha1.Symptom{Name: "ClusterBroken", Expression: "sensors.error_rate > 0.1"})
				}
			}, nil, `unknown sensor "error_rate"`),
	)
})
