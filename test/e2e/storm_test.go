package e2e

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

var _ = Describe("the storm breaker", Label("kwok"), func() {
	ctx := context.Background()

	It("stops disruptive actions cluster-wide while 60% of the apps are broken, and resumes when the share falls", func() {
		By("waiting until no app of another spec is left, so the share is this spec's")
		Eventually(func(g Gomega) {
			var apps v1alpha1.AutonomicAppList
			g.Expect(k8s.List(ctx, &apps)).To(Succeed())
			g.Expect(apps.Items).To(BeEmpty())
			var nss corev1.NamespaceList
			g.Expect(k8s.List(ctx, &nss)).To(Succeed())
			for _, n := range nss.Items {
				g.Expect(n.Status.Phase).NotTo(Equal(corev1.NamespaceTerminating))
			}
		}).WithTimeout(3 * time.Minute).Should(Succeed())

		ns := newNamespace("storm")
		const apps = 5
		for i := range apps {
			name := fmt.Sprintf("web%d", i)
			createDeployment(ns, name, "registry.local/shop/web:good", 2)
			app := healApp(ns, fmt.Sprintf("app%d", i), name, v1alpha1.ModeActive, step(restartPods("web"), 10*time.Second))
			// for: a crash loop must last 3 s before it is acted on, time enough to see a
			// storm forming across apps.
			app.Spec.Symptoms[0].For = dur(3 * time.Second)
			Expect(k8s.Create(ctx, app)).To(Succeed())
		}
		for i := range apps {
			waitRunning(ns, fmt.Sprintf("web%d", i), ":good", 2)
			waitReady(ns, fmt.Sprintf("app%d", i))
		}

		By("breaking 3 of the 5 apps at once")
		for i := range 3 {
			setImage(ns, fmt.Sprintf("web%d", i), "registry.local/shop/web:bad")
		}
		Eventually(func(g Gomega) {
			for i := range apps {
				c := condition(getApp(ns, fmt.Sprintf("app%d", i)), v1alpha1.ConditionSuspended)
				g.Expect(c).NotTo(BeNil())
				g.Expect(c.Reason).To(Equal(v1alpha1.ReasonStormDetected), "app%d: %s", i, c.Message)
				g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			}
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Eventually(func(g Gomega) {
			for i := range 3 {
				p := policyStatus(getApp(ns, fmt.Sprintf("app%d", i)), "heal-web")
				g.Expect(p.State).To(Equal(v1alpha1.PolicyHeld))
				g.Expect(p.Reason).To(Equal(v1alpha1.ReasonStormDetected))
			}
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Consistently(func(g Gomega) {
			for i := range apps {
				g.Expect(getApp(ns, fmt.Sprintf("app%d", i)).Status.History).To(BeEmpty(), "app%d acted during a storm", i)
			}
		}).WithTimeout(8 * time.Second).Should(Succeed())
		m, err := mgr.metrics()
		Expect(err).NotTo(HaveOccurred())
		Expect(m).To(ContainSubstring("homeostat_storm_active 1"))

		By("fixing two of them: the share falls to 20% and the last broken app is healed again")
		for i := range 2 {
			setImage(ns, fmt.Sprintf("web%d", i), "registry.local/shop/web:good")
		}
		Eventually(func(g Gomega) {
			rs := records(getApp(ns, "app2"), "restartPods")
			g.Expect(rs).NotTo(BeEmpty())
			g.Expect(rs[0].Result).To(Equal(v1alpha1.ResultSucceeded))
			c := condition(getApp(ns, "app2"), v1alpha1.ConditionSuspended)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		}).WithTimeout(60 * time.Second).Should(Succeed())
	})
})
