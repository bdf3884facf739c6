package controllers

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

func scalableDeployment(ns, name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.local/app:good"}}},
			},
		},
	}
}

func autoscaledApp(ns string) *v1alpha1.AutonomicApp {
	return &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
		Spec: v1alpha1.AutonomicAppSpec{
			Components: []v1alpha1.Component{{Name: "web", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}}},
			Healing: v1alpha1.Healing{
				Sensors: []v1alpha1.Sensor{{Name: "load", HTTP: &v1alpha1.HTTPSensor{URL: "http://127.0.0.1:1/load"}}},
				Policies: []v1alpha1.Policy{{Name: "scale-web", Autoscale: &v1alpha1.AutoscalePolicy{
					Component: "web", MaxReplicas: 10,
					Metrics: []v1alpha1.AutoscaleMetric{{Sensor: "load", Band: &v1alpha1.Band{Lower: "1", Upper: "2"}}},
				}}},
			},
		},
	}
}

func expectConflict(ns, owner string) {
	Eventually(func(g Gomega) {
		a := &v1alpha1.AutonomicApp{}
		g.Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: ns, Name: "shop"}, a)).To(Succeed())
		g.Expect(a.Status.Policies).To(HaveLen(1))
		p := a.Status.Policies[0]
		g.Expect(p.State).To(Equal(v1alpha1.PolicyConflict))
		g.Expect(p.Reason).To(Equal(plan.ReasonConflict))
		g.Expect(p.Message).To(ContainSubstring(owner))
	}).WithTimeout(15 * time.Second).Should(Succeed())
}

var _ = Describe("an autoscale policy beside another autoscaler", func() {
	It("does not fight an HPA on the same workload and names it", func() {
		ns := newNS()
		Expect(k8sClient.Create(testCtx, scalableDeployment(ns, "web"))).To(Succeed())
		hpa := &autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-hpa"},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
				MaxReplicas:    5,
			},
		}
		Expect(k8sClient.Create(testCtx, hpa)).To(Succeed())
		Expect(k8sClient.Create(testCtx, autoscaledApp(ns))).To(Succeed())
		expectConflict(ns, "HorizontalPodAutoscaler web-hpa")
	})

	It("does not fight a KEDA ScaledObject on the same workload and names it", func() {
		installKEDA()
		ns := newNS()
		Expect(k8sClient.Create(testCtx, scalableDeployment(ns, "web"))).To(Succeed())
		Expect(k8sClient.Create(testCtx, scaledObject(ns, "web-keda", "web"))).To(Succeed())
		Expect(k8sClient.Create(testCtx, autoscaledApp(ns))).To(Succeed())
		expectConflict(ns, "KEDA ScaledObject web-keda")
	})

	// Nothing else brings the app back: its one sensor fails the same way at every poll.
	It("sees a ScaledObject created for an autoscaled workload at once, and its removal, through a watch", func() {
		installKEDA()
		ns := newNS()
		Expect(k8sClient.Create(testCtx, scalableDeployment(ns, "web"))).To(Succeed())
		Expect(k8sClient.Create(testCtx, autoscaledApp(ns))).To(Succeed())
		policy := func(g Gomega) v1alpha1.PolicyStatus {
			a := &v1alpha1.AutonomicApp{}
			g.Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: ns, Name: "shop"}, a)).To(Succeed())
			g.Expect(a.Status.Policies).To(HaveLen(1))
			return a.Status.Policies[0]
		}
		Eventually(func(g Gomega) {
			g.Expect(policy(g).State).NotTo(BeEmpty())
		}).WithTimeout(15 * time.Second).Should(Succeed())
		Expect(policy(Default).State).NotTo(Equal(v1alpha1.PolicyConflict))

		so := scaledObject(ns, "web-keda", "web")
		Expect(k8sClient.Create(testCtx, so)).To(Succeed())
		expectConflict(ns, "KEDA ScaledObject web-keda")

		Expect(k8sClient.Delete(testCtx, so)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(policy(g).State).NotTo(Equal(v1alpha1.PolicyConflict))
		}).WithTimeout(15 * time.Second).Should(Succeed())
	})
})

// installKEDA installs a minimal CRD of KEDA's ScaledObject kind, as KEDA's chart would.
func installKEDA() {
	GinkgoHelper()
	By("installing KEDA's ScaledObject kind")
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "scaledobjects.keda.sh"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "keda.sh",
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "scaledobjects", Singular: "scaledobject", Kind: "ScaledObject", ListKind: "ScaledObjectList"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1alpha1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true)}}}},
		},
	}
	_, err := envtest.InstallCRDs(testEnv.Config, envtest.CRDInstallOptions{CRDs: []*apiextensionsv1.CustomResourceDefinition{crd}})
	Expect(err).NotTo(HaveOccurred())
}

// scaledObject is a KEDA ScaledObject that scales the Deployment target.
func scaledObject(ns, name, target string) *unstructured.Unstructured {
	so := &unstructured.Unstructured{}
	so.SetAPIVersion("keda.sh/v1alpha1")
	so.SetKind("ScaledObject")
	so.SetNamespace(ns)
	so.SetName(name)
	Expect(unstructured.SetNestedField(so.Object, target, "spec", "scaleTargetRef", "name")).To(Succeed())
	return so
}
