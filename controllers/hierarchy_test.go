package controllers

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/analyze"
)

func appOf(ns, name string, children ...string) *v1alpha1.AutonomicApp {
	a := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, c := range children {
		a.Spec.Components = append(a.Spec.Components, v1alpha1.Component{Name: c, AppRef: &v1alpha1.AppReference{Name: c}})
	}
	return a
}

func readyCondition(ns, name string) func(g Gomega) *metav1.Condition {
	return func(g Gomega) *metav1.Condition {
		a := &v1alpha1.AutonomicApp{}
		g.Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: ns, Name: name}, a)).To(Succeed())
		c := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		return c
	}
}

var _ = Describe("the app hierarchy", func() {
	It("rejects a cycle through appRef components with a condition that shows it", func() {
		ns := newNS()
		Expect(k8sClient.Create(testCtx, appOf(ns, "parent", "child"))).To(Succeed())
		Expect(k8sClient.Create(testCtx, appOf(ns, "child", "parent"))).To(Succeed())
		Eventually(func(g Gomega) {
			c := readyCondition(ns, "parent")(g)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(analyze.ReasonHierarchyCycle))
			g.Expect(c.Message).To(ContainSubstring("parent -> child -> parent"))
		}).WithTimeout(10 * time.Second).Should(Succeed())
	})

	It("rejects nesting deeper than the limit", func() {
		ns := newNS()
		names := []string{"l0", "l1", "l2", "l3", "l4", "l5"}
		for i, n := range names {
			if i+1 < len(names) {
				Expect(k8sClient.Create(testCtx, appOf(ns, n, names[i+1]))).To(Succeed())
			} else {
				a := appOf(ns, n)
				a.Spec.Components = []v1alpha1.Component{{Name: "w", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "w"}}}
				Expect(k8sClient.Create(testCtx, a)).To(Succeed())
			}
		}
		Eventually(func(g Gomega) {
			c := readyCondition(ns, "l0")(g)
			g.Expect(c.Reason).To(Equal(analyze.ReasonHierarchyTooDeep))
			g.Expect(c.Message).To(ContainSubstring("more than the limit of 5"))
		}).WithTimeout(10 * time.Second).Should(Succeed())
	})

	It("rolls a child's health and phase up into the parent, and re-evaluates the parent when the child changes", func() {
		ns := newNS()
		child := appOf(ns, "payments")
		child.Spec.Components = []v1alpha1.Component{{Name: "api", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "api"}}}
		Expect(k8sClient.Create(testCtx, child)).To(Succeed())
		parent := appOf(ns, "shop", "payments")
		parent.Spec.Symptoms = []v1alpha1.Symptom{{Name: "PaymentsDown", Expression: "!components.payments.healthy"}}
		Expect(k8sClient.Create(testCtx, parent)).To(Succeed())
		Eventually(func(g Gomega) {
			a := &v1alpha1.AutonomicApp{}
			g.Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: ns, Name: "shop"}, a)).To(Succeed())
			g.Expect(a.Status.Components).To(HaveLen(1))
			g.Expect(a.Status.Components[0].Found).To(BeTrue())
			g.Expect(a.Status.Components[0].Healthy).To(BeFalse(), "the child's Deployment does not exist, so the child is unhealthy")
			g.Expect(a.Status.Components[0].Phase).To(Equal(v1alpha1.PhaseDegraded))
			g.Expect(a.Status.Symptoms).To(ContainElement(HaveField("Active", BeTrue())))
		}).WithTimeout(10 * time.Second).Should(Succeed())
	})
})
