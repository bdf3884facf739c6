package e2e

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

var _ = Describe("the storm breaker", Label("kwok"), func() {
	ctx := context.Background()

	// waitAlone waits until no app of another spec is left, so the counts are this spec's.
	waitAlone := func() {
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
	}

	It("stops disruptive actions cluster-wide while 3 of 5 namespaces are broken, and resumes when the share falls", func() {
		By("waiting until no app of another spec is left, so the share is this spec's")
		waitAlone()

		// One app in each of five namespaces: the breaker counts namespaces.
		const apps = 5
		nss := make([]string, apps)
		for i := range apps {
			nss[i] = newNamespace(fmt.Sprintf("storm%d", i))
			createDeployment(nss[i], "web", "registry.local/shop/web:good", 2)
			app := healApp(nss[i], "app", "web", v1alpha1.ModeActive, step(restartPods("web"), 10*time.Second))
			// for: a crash loop must last 3 s before it is acted on, time enough to see a
			// storm forming across apps.
			app.Spec.Symptoms[0].For = dur(3 * time.Second)
			Expect(k8s.Create(ctx, app)).To(Succeed())
		}
		for _, ns := range nss {
			waitRunning(ns, "web", ":good", 2)
			waitReady(ns, "app")
		}

		By("breaking the apps of 3 of the 5 namespaces at once")
		for _, ns := range nss[:3] {
			setImage(ns, "web", "registry.local/shop/web:bad")
		}
		Eventually(func(g Gomega) {
			for _, ns := range nss {
				c := condition(getApp(ns, "app"), v1alpha1.ConditionSuspended)
				g.Expect(c).NotTo(BeNil())
				g.Expect(c.Reason).To(Equal(v1alpha1.ReasonStormDetected), "%s: %s", ns, c.Message)
				g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
				g.Expect(c.Message).To(HavePrefix("3 of 5 namespaces have more than --storm-threshold of their apps unhealthy"))
			}
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Eventually(func(g Gomega) {
			for _, ns := range nss[:3] {
				p := policyStatus(getApp(ns, "app"), "heal-web")
				g.Expect(p.State).To(Equal(v1alpha1.PolicyHeld))
				g.Expect(p.Reason).To(Equal(v1alpha1.ReasonStormDetected))
			}
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Consistently(func(g Gomega) {
			for _, ns := range nss {
				g.Expect(getApp(ns, "app").Status.History).To(BeEmpty(), "the app of %s acted during a storm", ns)
			}
		}).WithTimeout(8 * time.Second).Should(Succeed())
		m, err := mgr.metrics()
		Expect(err).NotTo(HaveOccurred())
		Expect(m).To(ContainSubstring("homeostat_storm_active 1"))

		By("fixing two of them: 1 of 5 namespaces is broken, and its app is healed again")
		for _, ns := range nss[:2] {
			setImage(ns, "web", "registry.local/shop/web:good")
		}
		Eventually(func(g Gomega) {
			a := getApp(nss[2], "app")
			rs := records(a, "restartPods")
			g.Expect(rs).NotTo(BeEmpty())
			g.Expect(rs[0].Result).To(Equal(v1alpha1.ResultSucceeded))
			c := condition(a, v1alpha1.ConditionSuspended)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		}).WithTimeout(60 * time.Second).Should(Succeed())
	})

	It("is not engaged by one namespace of apps that cannot be judged, nor held by it", func() {
		By("waiting until no app of another spec is left, so the counts are this spec's")
		waitAlone()

		By("six apps on workloads that do not exist, in one namespace")
		ghosts := newNamespace("ghosts")
		for i := range 6 {
			app := healApp(ghosts, fmt.Sprintf("ghost%d", i), fmt.Sprintf("missing%d", i), v1alpha1.ModeActive,
				step(restartPods("web"), 10*time.Second))
			Expect(k8s.Create(ctx, app)).To(Succeed())
		}
		Eventually(func(g Gomega) {
			for i := range 6 {
				c := condition(getApp(ghosts, fmt.Sprintf("ghost%d", i)), v1alpha1.ConditionReady)
				g.Expect(c).NotTo(BeNil())
				g.Expect(c.Reason).To(Equal(v1alpha1.ReasonComponentNotFound))
			}
		}).WithTimeout(30 * time.Second).Should(Succeed())

		By("a real app in another namespace breaks, and is healed")
		ns := newNamespace("tenant")
		createDeployment(ns, "web", "registry.local/shop/web:good", 2)
		Expect(k8s.Create(ctx, healApp(ns, "app", "web", v1alpha1.ModeActive, step(restartPods("web"), 10*time.Second)))).To(Succeed())
		waitRunning(ns, "web", ":good", 2)
		waitReady(ns, "app")
		setImage(ns, "web", "registry.local/shop/web:bad")
		Eventually(func(g Gomega) {
			a := getApp(ns, "app")
			rs := records(a, "restartPods")
			g.Expect(rs).NotTo(BeEmpty())
			g.Expect(rs[0].Result).To(Equal(v1alpha1.ResultSucceeded))
		}).WithTimeout(60 * time.Second).Should(Succeed())
		for _, n := range []string{ns, ghosts} {
			var apps v1alpha1.AutonomicAppList
			Expect(k8s.List(ctx, &apps, client.InNamespace(n))).To(Succeed())
			for _, a := range apps.Items {
				c := condition(&a, v1alpha1.ConditionSuspended)
				Expect(c == nil || c.Reason != v1alpha1.ReasonStormDetected).To(BeTrue(), "%s/%s: %v", n, a.Name, c)
			}
		}
		m, err := mgr.metrics()
		Expect(err).NotTo(HaveOccurred())
		Expect(m).To(ContainSubstring("homeostat_storm_active 0"))
	})
})
