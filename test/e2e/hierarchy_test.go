package e2e

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// A parent app whose components are two child apps, one per region: eu and us, each an
// app of one Deployment (frontend-eu, frontend-us). The parent's failover policy points
// the Service frontend at the pods of a child's first workload component, and takes a
// child as healthy when the child app is. The children act on nothing themselves, so
// what the parent sees of them is their own health, rolled up.
var _ = Describe("hierarchy", Label("kwok"), func() {
	const good, bad = "registry.local/shop/frontend:good", "registry.local/shop/frontend:bad"
	ctx := context.Background()

	It("rolls the children's health and phase up into the parent, and fails the parent's Service over from a broken child to the healthy one", func() {
		ns := newNamespace("hierarchy")
		// deployment(): maxUnavailable 0 and maxSurge 100%, so a bad release adds two
		// crash-looping pods next to the two ready ones of the old release.
		createDeployment(ns, "frontend-eu", good, 2)
		createDeployment(ns, "frontend-us", good, 2)
		Expect(k8s.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "frontend"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "frontend-eu"},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		})).To(Succeed())
		waitRunning(ns, "frontend-eu", ":good", 2)
		waitRunning(ns, "frontend-us", ":good", 2)

		By("two child apps, eu and us, and a parent over them that fails the Service over between them")
		for _, region := range []string{"eu", "us"} {
			Expect(k8s.Create(ctx, &v1alpha1.AutonomicApp{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: region},
				Spec:       v1alpha1.AutonomicAppSpec{Components: []v1alpha1.Component{workload("frontend", "frontend-"+region)}},
			})).To(Succeed())
		}
		// The children report their health before the parent exists: a child not yet
		// reconciled has no Healthy condition and counts as unhealthy, so a parent that
		// saw us reconciled before eu would move the Service to us at once.
		for _, region := range []string{"eu", "us"} {
			Eventually(func(g Gomega) {
				c := condition(getApp(ns, region), v1alpha1.ConditionHealthy)
				g.Expect(c).NotTo(BeNil())
				g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
			}).WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).Should(Succeed(), "child %s healthy", region)
		}
		Expect(k8s.Create(ctx, &v1alpha1.AutonomicApp{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "global"},
			Spec: v1alpha1.AutonomicAppSpec{
				Components: []v1alpha1.Component{
					{Name: "eu", AppRef: &v1alpha1.AppReference{Name: "eu"}},
					{Name: "us", AppRef: &v1alpha1.AppReference{Name: "us"}},
				},
				Healing: v1alpha1.Healing{
					Symptoms: []v1alpha1.Symptom{{Name: "EUDown", Expression: "!components.eu.healthy"}},
					Policies: []v1alpha1.Policy{{Name: "frontend-failover", Failover: &v1alpha1.FailoverPolicy{
						Service:      "frontend",
						Candidates:   []v1alpha1.FailoverCandidate{{Component: "eu", Weight: 100}, {Component: "us", Weight: 50}},
						Selection:    v1alpha1.SelectionFailover,
						ScaleStandby: ptr.To(false),
					}}},
				},
			},
		})).To(Succeed())

		By("the parent shows both children healthy, is Healthy itself, and keeps the Service on eu")
		Eventually(func(g Gomega) {
			a := getApp(ns, "global")
			for _, region := range []string{"eu", "us"} {
				g.Expect(a.Status.Components).To(ContainElement(And(
					HaveField("Name", region), HaveField("Kind", "AutonomicApp"), HaveField("Found", true),
					HaveField("Healthy", true), HaveField("Phase", v1alpha1.PhaseHealthy))), "component %s", region)
			}
			c := condition(a, v1alpha1.ConditionHealthy)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
			g.Expect(a.Status.Phase).To(Equal(v1alpha1.PhaseHealthy))
			g.Expect(a.Status.Symptoms).To(ContainElement(And(HaveField("Name", "EUDown"), HaveField("Active", false))))
			p := policyStatus(a, "frontend-failover")
			g.Expect(p.Primary).To(Equal("eu"))
			g.Expect(p.Reason).To(Equal(plan.ReasonPrimaryHealthy), p.Message)
		}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
		Expect(selectorOf(ns, "frontend")).To(Equal(map[string]string{"app": "frontend-eu"}))
		a := getApp(ns, "global")
		Expect(records(a, "failover")).To(BeEmpty(), "a healthy primary that the Service selects needs no change")
		logf("parent: %s", condition(a, v1alpha1.ConditionHealthy).Message)
		logf("policy: %s", policyStatus(a, "frontend-failover").Message)

		By("a bad release of frontend-eu: its new pods crash-loop, so the child eu becomes unhealthy")
		setImage(ns, "frontend-eu", bad)
		Eventually(func(g Gomega) {
			eu := getApp(ns, "eu")
			c := condition(eu, v1alpha1.ConditionHealthy)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse), c.Message)
			g.Expect(eu.Status.Phase).To(Equal(v1alpha1.PhaseDegraded))
		}).WithTimeout(60 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
		logf("child eu: %s", condition(getApp(ns, "eu"), v1alpha1.ConditionHealthy).Message)

		By("the parent sees it: components.eu is unhealthy with the child's phase, and EUDown is active")
		Eventually(func(g Gomega) {
			a := getApp(ns, "global")
			g.Expect(a.Status.Components).To(ContainElement(And(
				HaveField("Name", "eu"), HaveField("Healthy", false), HaveField("Phase", v1alpha1.PhaseDegraded))))
			g.Expect(a.Status.Components).To(ContainElement(And(
				HaveField("Name", "us"), HaveField("Healthy", true), HaveField("Phase", v1alpha1.PhaseHealthy))))
			g.Expect(a.Status.Symptoms).To(ContainElement(And(HaveField("Name", "EUDown"), HaveField("Active", true))))
			g.Expect(a.Status.Phase).To(Equal(v1alpha1.PhaseDegraded))
		}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())

		By("the parent's failover moves the Service to the pods of us, and leaves eu's replicas alone (scaleStandby false)")
		Eventually(func(g Gomega) {
			g.Expect(selectorOf(ns, "frontend")).To(Equal(map[string]string{"app": "frontend-us"}))
			p := policyStatus(getApp(ns, "global"), "frontend-failover")
			g.Expect(p.Primary).To(Equal("us"))
			g.Expect(p.State).To(Equal(v1alpha1.PolicyIdle), p.Message)
			g.Expect(p.Reason).To(Equal(plan.ReasonPrimaryHealthy), p.Message)
		}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
		a = getApp(ns, "global")
		logf("policy: %s", policyStatus(a, "frontend-failover").Message)
		var targets []string
		for _, r := range records(a, "failover") {
			Expect(r.Result).To(Equal(v1alpha1.ResultSucceeded), "%s: %s", r.Target, r.Message)
			targets = append(targets, r.Target)
		}
		Expect(targets).To(Equal([]string{"Service/frontend -> us"}), "one change: the traffic move")
		Expect(specReplicas(ns, "frontend-eu")).To(BeEquivalentTo(2))
		Expect(specReplicas(ns, "frontend-us")).To(BeEquivalentTo(2))
	})
})

// selectorOf is the named Service's spec.selector.
func selectorOf(ns, name string) map[string]string {
	svc := &corev1.Service{}
	Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, svc)).To(Succeed())
	return svc.Spec.Selector
}
