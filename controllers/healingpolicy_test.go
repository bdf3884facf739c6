package controllers

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// The suite's manager runs the app reconciler, which merges shared policies into the
// apps, and the SharedPolicyReconcilers; these specs also call the latter's Reconcile
// directly, with the uncached client, so the status they read is computed from what the
// API server holds at that moment.

// notifyPolicy is a remediation policy that would only notify, on the app's symptom
// Never, which never holds: it is merged and reported, and never acts.
func notifyPolicy(name, message string) v1alpha1.Policy {
	return v1alpha1.Policy{Name: name, Remediate: &v1alpha1.RemediatePolicy{When: []string{"Never"},
		Steps: []v1alpha1.RemediationStep{{Action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: message}}}}}}
}

// sharedClash is one namespace, opted in to a ClusterHealingPolicy by a label, with an
// app that a HealingPolicy of that namespace and the ClusterHealingPolicy both select;
// both define the policy "heal". Besides it:
//   - a second opted-in namespace with a selected app: the cluster policy selects it, the
//     namespaced one cannot;
//   - a namespace not opted in, with an app labelled as selected: neither selects it;
//   - an app without the label next to the selected one: neither selects it.
type sharedClash struct {
	ns, nsOptedIn, nsOptedOut string
	hp                        types.NamespacedName
	chp                       string
}

func (c sharedClash) hpSource() string  { return "HealingPolicy " + c.hp.String() }
func (c sharedClash) chpSource() string { return "ClusterHealingPolicy " + c.chp }

func setLabels(ns string, labels map[string]string) {
	o := &corev1.Namespace{}
	Expect(k8sClient.Get(testCtx, types.NamespacedName{Name: ns}, o)).To(Succeed())
	o.Labels = labels
	Expect(k8sClient.Update(testCtx, o)).To(Succeed())
}

// newSharedClash creates the namespaces and apps, then the ClusterHealingPolicy (at
// chpPriority, the HealingPolicy's being 0), waits until the app runs its entries, then
// creates the HealingPolicy and waits until the app runs its entries too. Each policy
// has an entry of its own besides "heal", so the app's status shows both were merged in
// the same reconcile. With appOwnsHeal, the app defines "heal" itself.
func newSharedClash(chpPriority int32, appOwnsHeal bool) sharedClash {
	c := sharedClash{ns: newNS(), nsOptedIn: newNS(), nsOptedOut: newNS()}
	// Labels unique to this spec, so the cluster policy selects nothing of other specs.
	optIn := map[string]string{"test.homeostat.dev/shared-" + c.ns: "enabled"}
	selected := map[string]string{"test.homeostat.dev/healing": c.ns}
	setLabels(c.ns, optIn)
	setLabels(c.nsOptedIn, optIn)

	app := func(ns, name string, labels map[string]string) *v1alpha1.AutonomicApp {
		a := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}, Spec: v1alpha1.AutonomicAppSpec{
			Components: []v1alpha1.Component{{Name: "web", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}}},
			Healing:    v1alpha1.Healing{Symptoms: []v1alpha1.Symptom{{Name: "Never", Expression: "components.web.desiredReplicas < 0"}}},
		}}
		return a
	}
	shop := app(c.ns, "shop", selected)
	if appOwnsHeal {
		shop.Spec.Policies = []v1alpha1.Policy{notifyPolicy("heal", "the app's own ladder")}
	}
	for _, a := range []*v1alpha1.AutonomicApp{shop, app(c.ns, "unlabelled", nil), app(c.nsOptedIn, "shop", selected), app(c.nsOptedOut, "shop", selected)} {
		Expect(k8sClient.Create(testCtx, a)).To(Succeed())
	}

	chp := &v1alpha1.ClusterHealingPolicy{ObjectMeta: metav1.ObjectMeta{GenerateName: "baseline-"}, Spec: v1alpha1.ClusterHealingPolicySpec{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: optIn},
		HealingPolicySpec: v1alpha1.HealingPolicySpec{AppSelector: metav1.LabelSelector{MatchLabels: selected}, Priority: chpPriority,
			Healing: v1alpha1.Healing{Policies: []v1alpha1.Policy{notifyPolicy("heal", "the cluster's ladder"), notifyPolicy("cluster-only", "cluster")}}},
	}}
	Expect(k8sClient.Create(testCtx, chp)).To(Succeed())
	DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(testCtx, chp))).To(Succeed()) })
	c.chp = chp.Name
	expectPolicySources(c.ns, map[string]string{"cluster-only": c.chpSource()})

	hp := &v1alpha1.HealingPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: c.ns, Name: "team"}, Spec: v1alpha1.HealingPolicySpec{
		AppSelector: metav1.LabelSelector{MatchLabels: selected},
		Healing:     v1alpha1.Healing{Policies: []v1alpha1.Policy{notifyPolicy("heal", "the team's ladder"), notifyPolicy("team-only", "team")}},
	}}
	Expect(k8sClient.Create(testCtx, hp)).To(Succeed())
	c.hp = client.ObjectKeyFromObject(hp)
	expectPolicySources(c.ns, map[string]string{"team-only": c.hpSource(), "cluster-only": c.chpSource()})
	return c
}

// expectPolicySources waits until the app shop of ns reports, in one status, each
// policy named in want with that source ("" for the app's own).
func expectPolicySources(ns string, want map[string]string) {
	GinkgoHelper()
	Eventually(func(g Gomega) map[string]string {
		a := &v1alpha1.AutonomicApp{}
		g.Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: ns, Name: "shop"}, a)).To(Succeed())
		got := map[string]string{}
		for _, p := range a.Status.Policies {
			if _, ok := want[p.Name]; ok {
				got[p.Name] = p.Source
			}
		}
		return got
	}).WithTimeout(15 * time.Second).Should(Equal(want))
}

// reconcileShared runs both shared-policy reconcilers once and returns the statuses
// they wrote.
func reconcileShared(c sharedClash) (hp, chp v1alpha1.HealingPolicyStatus) {
	GinkgoHelper()
	_, err := (&SharedPolicyReconciler{Client: k8sClient}).Reconcile(testCtx, reconcile.Request{NamespacedName: c.hp})
	Expect(err).NotTo(HaveOccurred())
	_, err = (&SharedPolicyReconciler{Client: k8sClient, Cluster: true}).Reconcile(testCtx, reconcile.Request{NamespacedName: types.NamespacedName{Name: c.chp}})
	Expect(err).NotTo(HaveOccurred())
	h := &v1alpha1.HealingPolicy{}
	Expect(k8sClient.Get(testCtx, c.hp, h)).To(Succeed())
	ch := &v1alpha1.ClusterHealingPolicy{}
	Expect(k8sClient.Get(testCtx, types.NamespacedName{Name: c.chp}, ch)).To(Succeed())
	for _, st := range []struct {
		status     v1alpha1.HealingPolicyStatus
		generation int64
	}{{h.Status, h.Generation}, {ch.Status, ch.Generation}} {
		Expect(st.status.ObservedGeneration).To(Equal(st.generation))
		ready := meta.FindStatusCondition(st.status.Conditions, v1alpha1.ConditionReady)
		Expect(ready).NotTo(BeNil())
		Expect(ready.Message).To(MatchRegexp(`^Selects %d apps?\.`, st.status.MatchedApps))
		if len(st.status.Conflicts) > 0 {
			Expect(ready.Message).To(ContainSubstring("see status.conflicts"))
		}
	}
	return h.Status, ch.Status
}

var _ = Describe("a HealingPolicy and a ClusterHealingPolicy that clash on an entry name", func() {
	It("runs the namespaced policy's entry when the priorities are equal, and reports the cluster one's conflict", func() {
		c := newSharedClash(0, false)
		expectPolicySources(c.ns, map[string]string{"heal": c.hpSource(), "team-only": c.hpSource(), "cluster-only": c.chpSource()})
		By("the other opted-in namespace has no HealingPolicy: the cluster policy's entry runs there")
		expectPolicySources(c.nsOptedIn, map[string]string{"heal": c.chpSource(), "cluster-only": c.chpSource()})

		hp, chp := reconcileShared(c)
		Expect(hp.MatchedApps).To(Equal(int32(1)), "the HealingPolicy selects the labelled app of its namespace only")
		Expect(chp.MatchedApps).To(Equal(int32(2)), "the ClusterHealingPolicy selects the labelled apps of the opted-in namespaces only")
		Expect(hp.Conflicts).To(BeEmpty())
		Expect(chp.Conflicts).To(Equal([]string{c.ns + "/shop: policy heal taken from " + c.hpSource()}))
	})

	It("runs the cluster policy's entry when its priority is higher, and reports the namespaced one's conflict", func() {
		c := newSharedClash(10, false)
		expectPolicySources(c.ns, map[string]string{"heal": c.chpSource(), "team-only": c.hpSource(), "cluster-only": c.chpSource()})

		hp, chp := reconcileShared(c)
		Expect(hp.MatchedApps).To(Equal(int32(1)))
		Expect(chp.MatchedApps).To(Equal(int32(2)))
		Expect(hp.Conflicts).To(Equal([]string{c.ns + "/shop: policy heal taken from " + c.chpSource()}))
		Expect(chp.Conflicts).To(BeEmpty())
	})

	It("runs the app's own entry over both, and reports the conflict on both", func() {
		c := newSharedClash(10, true)
		expectPolicySources(c.ns, map[string]string{"heal": "", "team-only": c.hpSource(), "cluster-only": c.chpSource()})
		a := &v1alpha1.AutonomicApp{}
		Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: c.ns, Name: "shop"}, a)).To(Succeed())
		Expect(a.Status.Policies).To(HaveLen(3), "one heal, not one per source")

		hp, chp := reconcileShared(c)
		Expect(hp.MatchedApps).To(Equal(int32(1)))
		Expect(chp.MatchedApps).To(Equal(int32(2)))
		Expect(hp.Conflicts).To(Equal([]string{c.ns + "/shop: policy heal taken from the app"}))
		Expect(chp.Conflicts).To(Equal([]string{c.ns + "/shop: policy heal taken from the app"}),
			"the other opted-in app has no heal of its own: the cluster policy's entry runs there, without a conflict")
	})
})

// warnings collects the warnings the API server returns, as kubectl prints them.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.msgs)
}

var _ = Describe("a ClusterHealingPolicy that enforces entries and guards", func() {
	It("replaces the app's own entries of the same name and a HealingPolicy's, tightens its guards, and says so", func() {
		ns := newNS()
		optIn := map[string]string{"test.homeostat.dev/enforced-" + ns: "enabled"}
		setLabels(ns, optIn)

		By("an enforced ClusterHealingPolicy: the symptom Never, the policy heal and a cooldown of at least 1m")
		chp := &v1alpha1.ClusterHealingPolicy{ObjectMeta: metav1.ObjectMeta{GenerateName: "guardrails-"}, Spec: v1alpha1.ClusterHealingPolicySpec{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: optIn},
			Enforced: &v1alpha1.Enforcement{Symptoms: []string{"Never"}, Policies: []string{"heal"},
				Guards: []v1alpha1.EnforcedGuard{v1alpha1.GuardCooldown}},
			HealingPolicySpec: v1alpha1.HealingPolicySpec{
				Healing: v1alpha1.Healing{
					Symptoms: []v1alpha1.Symptom{{Name: "Never", Expression: "components.exists(c, components[c].desiredReplicas < -1)"}},
					Policies: []v1alpha1.Policy{notifyPolicy("heal", "the platform's ladder")},
					Guards:   &v1alpha1.Guards{Cooldown: &metav1.Duration{Duration: time.Minute}},
				}},
		}}
		Expect(k8sClient.Create(testCtx, chp)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(testCtx, chp))).To(Succeed()) })
		source := "ClusterHealingPolicy " + chp.Name + " (enforced)"

		By("a HealingPolicy of the namespace that defines heal too, at the highest priority")
		hp := &v1alpha1.HealingPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "team"}, Spec: v1alpha1.HealingPolicySpec{
			Priority: 1000, Healing: v1alpha1.Healing{Policies: []v1alpha1.Policy{notifyPolicy("heal", "the team's ladder")}},
		}}
		Expect(k8sClient.Create(testCtx, hp)).To(Succeed())

		By("an app that defines the symptom, the policy and a shorter cooldown itself: admitted, with a warning for each")
		seen := &warnings{}
		cfg := rest.CopyConfig(testEnv.Config)
		cfg.WarningHandlerWithContext = seen
		warned, err := client.New(cfg, client.Options{Scheme: k8sClient.Scheme()})
		Expect(err).NotTo(HaveOccurred())
		app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}, Spec: v1alpha1.AutonomicAppSpec{
			Components: []v1alpha1.Component{{Name: "web", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}}},
			Healing: v1alpha1.Healing{
				Symptoms: []v1alpha1.Symptom{{Name: "Never", Expression: "components.web.desiredReplicas < 0"}},
				Policies: []v1alpha1.Policy{notifyPolicy("heal", "the app's own ladder"), notifyPolicy("own", "the app's other ladder")},
				Guards:   &v1alpha1.Guards{Cooldown: &metav1.Duration{Duration: 5 * time.Second}},
			},
		}}
		Expect(warned.Create(testCtx, app)).To(Succeed())
		by := " by the enforced ClusterHealingPolicy " + chp.Name
		overrides := []string{
			"symptom Never from the app is replaced" + by,
			"policy heal from the app is replaced" + by,
			"guards.cooldown 5s from the app is tightened to 1m0s" + by,
		}
		Expect(seen.all()).To(ConsistOf(overrides))

		By("the app runs the enforced entries, and its status says where each came from and what was replaced")
		key := types.NamespacedName{Namespace: ns, Name: "shop"}
		expectEnforced := func() {
			GinkgoHelper()
			Eventually(func(g Gomega) {
				a := &v1alpha1.AutonomicApp{}
				g.Expect(k8sClient.Get(testCtx, key, a)).To(Succeed())
				sources := map[string]string{}
				for _, p := range a.Status.Policies {
					sources["policy/"+p.Name] = p.Source
				}
				for _, s := range a.Status.Symptoms {
					sources["symptom/"+s.Name] = s.Source
				}
				g.Expect(sources).To(Equal(map[string]string{"policy/heal": source, "policy/own": "", "symptom/Never": source}))
				c := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionOverridden)
				g.Expect(c).NotTo(BeNil())
				g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
				g.Expect(c.Reason).To(Equal(v1alpha1.ReasonEnforcedByClusterPolicy))
				g.Expect(c.Message).To(Equal("The cluster admin's enforced shared policy applies instead of what this app asks for: " +
					strings.Join([]string{overrides[0], overrides[1], "policy heal from HealingPolicy " + ns + "/team is replaced" + by, overrides[2]}, "; ") + "."))
			}).WithTimeout(15 * time.Second).Should(Succeed())
		}
		expectEnforced()

		By("an edit of the app's own heal changes nothing: the enforced one still runs")
		Eventually(func() error {
			a := &v1alpha1.AutonomicApp{}
			if err := k8sClient.Get(testCtx, key, a); err != nil {
				return err
			}
			a.Spec.Policies[0] = notifyPolicy("heal", "the app's ladder, edited")
			return k8sClient.Update(testCtx, a)
		}).Should(Succeed())
		expectEnforced()

		By("the shared policies' status name what was replaced, and the HealingPolicy's lost entry")
		_, err = (&SharedPolicyReconciler{Client: k8sClient, Cluster: true}).Reconcile(testCtx, reconcile.Request{NamespacedName: types.NamespacedName{Name: chp.Name}})
		Expect(err).NotTo(HaveOccurred())
		_, err = (&SharedPolicyReconciler{Client: k8sClient}).Reconcile(testCtx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(hp)})
		Expect(err).NotTo(HaveOccurred())
		Expect(k8sClient.Get(testCtx, types.NamespacedName{Name: chp.Name}, chp)).To(Succeed())
		Expect(chp.Status.Overrides).To(Equal([]string{
			ns + "/shop: guards.cooldown 5s from the app is tightened to 1m0s",
			ns + "/shop: policy heal from HealingPolicy " + ns + "/team is replaced",
			ns + "/shop: policy heal from the app is replaced",
			ns + "/shop: symptom Never from the app is replaced",
		}))
		Expect(meta.FindStatusCondition(chp.Status.Conditions, v1alpha1.ConditionReady).Message).To(ContainSubstring("see status.overrides"))
		Expect(k8sClient.Get(testCtx, client.ObjectKeyFromObject(hp), hp)).To(Succeed())
		Expect(hp.Status.Conflicts).To(Equal([]string{ns + "/shop: policy heal taken from " + source}))

		By("without the enforcement the app's own entries run again, and Overridden is gone")
		Eventually(func() error {
			if err := k8sClient.Get(testCtx, types.NamespacedName{Name: chp.Name}, chp); err != nil {
				return err
			}
			chp.Spec.Enforced = nil
			return k8sClient.Update(testCtx, chp)
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			a := &v1alpha1.AutonomicApp{}
			g.Expect(k8sClient.Get(testCtx, key, a)).To(Succeed())
			g.Expect(meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionOverridden)).To(BeNil())
			for _, s := range a.Status.Symptoms {
				g.Expect(s.Source).To(BeEmpty(), "symptom %s", s.Name)
			}
			for _, p := range a.Status.Policies {
				g.Expect(p.Source).To(BeEmpty(), "policy %s", p.Name)
			}
		}).WithTimeout(15 * time.Second).Should(Succeed())
	})
})
