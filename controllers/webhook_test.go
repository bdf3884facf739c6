package controllers

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/analyze"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

func newNS() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}
	Expect(k8sClient.Create(testCtx, ns)).To(Succeed())
	return ns.Name
}

func appWithSymptom(ns, name, expr string) *v1alpha1.AutonomicApp {
	return &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.AutonomicAppSpec{
			Components: []v1alpha1.Component{{Name: "web", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}}},
			Healing: v1alpha1.Healing{
				Sensors:  []v1alpha1.Sensor{{Name: "latency_p95", HTTP: &v1alpha1.HTTPSensor{URL: "http://127.0.0.1:1/healthz"}}},
				Symptoms: []v1alpha1.Symptom{{Name: "Broken", Expression: expr}},
			},
		},
	}
}

var _ = Describe("the validating webhook", func() {
	DescribeTable("rejects symptoms that do not compile or name what the app does not declare, naming the symptom and the CEL error",
		func(expr string, want []string) {
			err := k8sClient.Create(testCtx, appWithSymptom(newNS(), "shop", expr))
			Expect(err).To(HaveOccurred())
			Expect(apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err)).To(BeTrue(), err.Error())
			Expect(err.Error()).To(ContainSubstring("spec.symptoms[0].expression"))
			Expect(err.Error()).To(ContainSubstring(`symptom "Broken"`))
			for _, w := range want {
				Expect(err.Error()).To(ContainSubstring(w))
			}
		},
		Entry("a syntax error", "components.web.restarts >", []string{"Syntax error"}),
		Entry("an unknown component", "components.api.restarts > 0", []string{`unknown component "api"`}),
		Entry("a typo in a component sensor", "components.web.crashloopingPods > 0", []string{`"crashloopingPods"`, `did you mean "crashLoopingPods"`}),
		Entry("an unknown sensor", "sensors.latency > 0.3", []string{`unknown sensor "latency"`, "latency_p95"}),
		Entry("a non-bool result", "components.web.restarts", []string{"bool"}),
	)

	It("accepts a valid app", func() {
		Expect(k8sClient.Create(testCtx, appWithSymptom(newNS(), "shop", "has(sensors.latency_p95) && sensors.latency_p95 > 0.3 || components.web.crashLoopingPods > 0"))).To(Succeed())
	})

	It("rejects a policy whose when names an unknown symptom", func() {
		app := appWithSymptom(newNS(), "shop", "components.web.crashLoopingPods > 0")
		app.Spec.Policies = []v1alpha1.Policy{{Name: "heal", Remediate: &v1alpha1.RemediatePolicy{
			When:  []string{"Crashing"},
			Steps: []v1alpha1.RemediationStep{{Action: v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "web"}}}},
		}}}
		err := k8sClient.Create(testCtx, app)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("spec.policies[0].remediate.when"))
		Expect(err.Error()).To(ContainSubstring("Crashing"))
	})
})

var _ = Describe("the reconciler without the webhook", func() {
	It("reports Ready=False with the webhook's text when an invalid app got in", func() {
		ns := newNS()
		bad := appWithSymptom(ns, "shop", "components.api.restarts > 0")
		view, merged := plan.MergedView(bad, nil)
		want := validationMessage(analyze.ValidateMerged(view, merged.PolicyFromShared))
		Expect(want).To(ContainSubstring(`unknown component "api"`))

		By("removing the webhook configuration, as on a cluster where it is not installed")
		var vwcs admissionregistrationv1.ValidatingWebhookConfigurationList
		Expect(k8sClient.List(testCtx, &vwcs)).To(Succeed())
		Expect(vwcs.Items).NotTo(BeEmpty())
		for i := range vwcs.Items {
			saved := vwcs.Items[i].DeepCopy()
			Expect(k8sClient.Delete(testCtx, &vwcs.Items[i])).To(Succeed())
			DeferCleanup(func() {
				saved.ResourceVersion, saved.UID = "", ""
				Expect(k8sClient.Create(testCtx, saved)).To(Succeed())
			})
		}
		Eventually(func() error { return k8sClient.Create(testCtx, bad.DeepCopy()) }).Should(Succeed())

		Eventually(func(g Gomega) {
			a := &v1alpha1.AutonomicApp{}
			g.Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: ns, Name: "shop"}, a)).To(Succeed())
			c := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(v1alpha1.ReasonInvalidSpec))
			g.Expect(c.Message).To(ContainSubstring(want))
			g.Expect(a.Status.ObservedGeneration).To(Equal(a.Generation))
		}).WithTimeout(10 * time.Second).Should(Succeed())
	})
})
