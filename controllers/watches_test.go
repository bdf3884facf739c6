package controllers

import (
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// These specs prove that what changes an app's merged view, or its right to scale,
// reaches the app by a watch: nothing else would bring an idle app back.

func idleApp(ns string) *v1alpha1.AutonomicApp {
	return &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
		Spec: v1alpha1.AutonomicAppSpec{
			Components: []v1alpha1.Component{{Name: "web", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}}},
		},
	}
}

func sharedSymptomPolicy(name string, appLabels, nsLabels map[string]string) *v1alpha1.ClusterHealingPolicy {
	p := &v1alpha1.ClusterHealingPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.ClusterHealingPolicySpec{HealingPolicySpec: v1alpha1.HealingPolicySpec{
			AppSelector: metav1.LabelSelector{MatchLabels: appLabels},
			Healing:     v1alpha1.Healing{Symptoms: []v1alpha1.Symptom{{Name: "SharedWatch", Expression: "app.healthyComponents < app.totalComponents"}}},
		}},
	}
	if nsLabels != nil {
		p.Spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: nsLabels}
	}
	return p
}

func symptomNames(ns string) func(g Gomega) []string {
	return func(g Gomega) []string {
		a := &v1alpha1.AutonomicApp{}
		g.Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: ns, Name: "shop"}, a)).To(Succeed())
		g.Expect(a.Status.ObservedGeneration).To(Equal(a.Generation))
		var out []string
		for _, s := range a.Status.Symptoms {
			out = append(out, s.Name)
		}
		slices.Sort(out)
		return out
	}
}

var _ = Describe("watches that bring an idle app back", func() {
	It("merges a ClusterHealingPolicy into an app as soon as the app is labelled into its selector", func() {
		ns := newNS()
		team := "team-" + rand.String(6)
		Expect(k8sClient.Create(testCtx, scalableDeployment(ns, "web"))).To(Succeed())
		Expect(k8sClient.Create(testCtx, idleApp(ns))).To(Succeed())
		pol := sharedSymptomPolicy("watch-app-"+team, map[string]string{"team": team}, nil)
		Expect(k8sClient.Create(testCtx, pol)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(testCtx, pol))).To(Succeed()) })
		Eventually(symptomNames(ns)).WithTimeout(5 * time.Second).Should(BeEmpty())
		Consistently(symptomNames(ns)).WithTimeout(2 * time.Second).Should(BeEmpty())

		a := &v1alpha1.AutonomicApp{}
		Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: ns, Name: "shop"}, a)).To(Succeed())
		patch := client.MergeFrom(a.DeepCopy())
		a.Labels = map[string]string{"team": team}
		Expect(k8sClient.Patch(testCtx, a, patch)).To(Succeed())
		Eventually(symptomNames(ns)).WithTimeout(5 * time.Second).Should(Equal([]string{"SharedWatch"}))

		By("and drops it when the label goes")
		Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: ns, Name: "shop"}, a)).To(Succeed())
		patch = client.MergeFrom(a.DeepCopy())
		a.Labels = nil
		Expect(k8sClient.Patch(testCtx, a, patch)).To(Succeed())
		Eventually(symptomNames(ns)).WithTimeout(5 * time.Second).Should(BeEmpty())
	})

	It("merges a ClusterHealingPolicy into the apps of a namespace as soon as the namespace is labelled into its namespaceSelector", func() {
		ns := newNS()
		env := "env-" + rand.String(6)
		Expect(k8sClient.Create(testCtx, scalableDeployment(ns, "web"))).To(Succeed())
		Expect(k8sClient.Create(testCtx, idleApp(ns))).To(Succeed())
		pol := sharedSymptomPolicy("watch-ns-"+env, nil, map[string]string{"env": env})
		Expect(k8sClient.Create(testCtx, pol)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(testCtx, pol))).To(Succeed()) })
		Eventually(symptomNames(ns)).WithTimeout(5 * time.Second).Should(BeEmpty())
		Consistently(symptomNames(ns)).WithTimeout(2 * time.Second).Should(BeEmpty())

		n := &corev1.Namespace{}
		Expect(k8sClient.Get(testCtx, types.NamespacedName{Name: ns}, n)).To(Succeed())
		patch := client.MergeFrom(n.DeepCopy())
		n.Labels["env"] = env
		Expect(k8sClient.Patch(testCtx, n, patch)).To(Succeed())
		Eventually(symptomNames(ns)).WithTimeout(5 * time.Second).Should(Equal([]string{"SharedWatch"}))
		Eventually(func(g Gomega) int32 {
			p := &v1alpha1.ClusterHealingPolicy{}
			g.Expect(k8sClient.Get(testCtx, client.ObjectKeyFromObject(pol), p)).To(Succeed())
			return p.Status.MatchedApps
		}).WithTimeout(5 * time.Second).Should(Equal(int32(1)))
	})

	It("reports Conflict as soon as an HPA is created for an autoscaled workload, and clears it when the HPA goes", func() {
		ns := newNS()
		Expect(k8sClient.Create(testCtx, scalableDeployment(ns, "web"))).To(Succeed())
		Expect(k8sClient.Create(testCtx, autoscaledApp(ns))).To(Succeed())
		notConflict := func(g Gomega) {
			a := &v1alpha1.AutonomicApp{}
			g.Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: ns, Name: "shop"}, a)).To(Succeed())
			g.Expect(a.Status.Policies).To(HaveLen(1))
			g.Expect(a.Status.Policies[0].State).NotTo(Equal(v1alpha1.PolicyConflict))
		}
		Eventually(notConflict).WithTimeout(10 * time.Second).Should(Succeed())

		hpa := &autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "late-hpa"},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
				MaxReplicas:    5,
			},
		}
		Expect(k8sClient.Create(testCtx, hpa)).To(Succeed())
		expectConflict(ns, "HorizontalPodAutoscaler late-hpa")

		Expect(k8sClient.Delete(testCtx, hpa)).To(Succeed())
		Eventually(notConflict).WithTimeout(10 * time.Second).Should(Succeed())
	})
})
