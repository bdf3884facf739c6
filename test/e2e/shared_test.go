package e2e

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

var _ = Describe("shared healing policies", Label("kwok"), func() {
	ctx := context.Background()

	It("heals crash loops in apps across three namespaces with one ClusterHealingPolicy, and reaches every app at once when edited", func() {
		label := fmt.Sprintf("shared-%d", time.Now().UnixNano())
		var nss []string
		for range 3 {
			ns := newNamespace("shared")
			n := &corev1.Namespace{}
			Expect(k8s.Get(ctx, types.NamespacedName{Name: ns}, n)).To(Succeed())
			n.Labels["homeostat.dev/heal"] = label
			Expect(k8s.Update(ctx, n)).To(Succeed())
			createDeployment(ns, "web", "registry.local/shop/web:good", 2)
			app := &v1alpha1.AutonomicApp{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop", Labels: map[string]string{"tier": "web"}},
				Spec:       v1alpha1.AutonomicAppSpec{Components: []v1alpha1.Component{workload("web", "web")}},
			}
			Expect(k8s.Create(ctx, app)).To(Succeed())
			nss = append(nss, ns)
		}
		// A fourth app in the first namespace has a symptom of its own with the same name.
		own := healApp(nss[0], "own", "web", v1alpha1.ModeDryRun, step(notify("own policy"), time.Minute))
		own.Labels = map[string]string{"tier": "web"}
		own.Spec.Policies[0].Name = "own-heal"
		Expect(k8s.Create(ctx, own)).To(Succeed())
		for _, ns := range nss {
			waitRunning(ns, "web", ":good", 2)
		}

		chp := &v1alpha1.ClusterHealingPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: label},
			Spec: v1alpha1.ClusterHealingPolicySpec{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"homeostat.dev/heal": label}},
				HealingPolicySpec: v1alpha1.HealingPolicySpec{
					AppSelector: metav1.LabelSelector{MatchLabels: map[string]string{"tier": "web"}},
					Healing: v1alpha1.Healing{
						Symptoms: []v1alpha1.Symptom{{Name: "CrashLooping", ClearFor: dur(15 * time.Second),
							Expression: "components.exists(c, components[c].crashLoopingPods > 0)"}},
						Policies: []v1alpha1.Policy{{Name: "heal-crashloops", Remediate: &v1alpha1.RemediatePolicy{
							When: []string{"CrashLooping"},
							Steps: []v1alpha1.RemediationStep{
								step(restartPods("*"), 8*time.Second),
								step(rollback("*"), 30*time.Second),
							},
						}}},
					},
				},
			},
		}
		Expect(k8s.Create(ctx, chp)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, chp) })

		By("the policy counts the apps it selects and reports the clash with the app's own symptom")
		Eventually(func(g Gomega) {
			p := &v1alpha1.ClusterHealingPolicy{}
			g.Expect(k8s.Get(ctx, types.NamespacedName{Name: label}, p)).To(Succeed())
			g.Expect(p.Status.MatchedApps).To(Equal(int32(4)))
			g.Expect(p.Status.Conflicts).To(ContainElement(nss[0] + "/own: symptom CrashLooping taken from the app"))
		}).WithTimeout(20 * time.Second).Should(Succeed())
		for _, ns := range nss {
			waitReady(ns, "shop")
			Eventually(func() string { return policyStatus(getApp(ns, "shop"), "heal-crashloops").Source }).
				WithTimeout(20 * time.Second).Should(Equal("ClusterHealingPolicy " + label))
		}

		By("breaking each app in turn: the shared ladder restarts, then rolls back, and each heals")
		// One at a time: three apps broken at once would be a storm (more than half of
		// the namespaces), and the storm breaker would rightly hold every restart.
		for _, ns := range nss {
			setImage(ns, "web", "registry.local/shop/web:bad")
			Eventually(func(g Gomega) {
				a := getApp(ns, "shop")
				rs := records(a, "restartPods")
				g.Expect(rs).NotTo(BeEmpty())
				g.Expect(rs[0].Component).To(Equal("web"))
				rb := records(a, "rollback")
				g.Expect(rb).NotTo(BeEmpty())
				g.Expect(rb[0].Result).To(Equal(v1alpha1.ResultSucceeded), rb[0].Message)
			}).WithTimeout(90 * time.Second).Should(Succeed())
			waitRunning(ns, "web", ":good", 2)
		}

		By("an edit of the policy reaches every selected app within a second")
		edited := time.Now()
		Eventually(func() error {
			p := &v1alpha1.ClusterHealingPolicy{}
			if err := k8s.Get(ctx, types.NamespacedName{Name: label}, p); err != nil {
				return err
			}
			p.Spec.Symptoms = append(p.Spec.Symptoms, v1alpha1.Symptom{Name: "TooFewReady", Expression: "components.all(c, components[c].readyRatio < 0.5)"})
			edited = time.Now()
			return k8s.Update(ctx, p)
		}).Should(Succeed())
		latest := time.Duration(0)
		for _, ns := range nss {
			Eventually(func() []string {
				var names []string
				for _, s := range getApp(ns, "shop").Status.Symptoms {
					names = append(names, s.Name)
				}
				return names
			}).WithTimeout(10 * time.Second).WithPolling(20 * time.Millisecond).Should(ContainElement("TooFewReady"))
			latest = max(latest, time.Since(edited))
		}
		logf("a ClusterHealingPolicy edit reached all %d apps within %s", len(nss), latest)
		Expect(latest).To(BeNumerically("<", 3*time.Second), "asserted loosely; the target is under one second")
	})
})
