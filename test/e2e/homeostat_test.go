package e2e

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/controllers"
)

// One ordered container: the idle-writes spec must run while no other app is busy, and
// the crash spec restarts the shared manager.
var _ = Describe("Homeostat", Label("kwok"), Ordered, ContinueOnFailure, func() {
	ctx := context.Background()

	It("runs Deployments on kwok nodes and reconciles an app naming one to Ready", func() {
		ns := newNamespace("smoke")
		createDeployment(ns, "web", "registry.local/shop/web:good", 3)
		By("the Deployment gets 3 Running pods on kwok nodes")
		waitRunning(ns, "web", ":good", 3)
		for _, p := range pods(ns, "web") {
			Expect(p.Spec.NodeName).To(HavePrefix("kwok-"), "pod %s is scheduled onto a kwok node", p.Name)
		}
		app := healApp(ns, "shop", "web", v1alpha1.ModeActive, step(restartPods("web"), time.Minute))
		Expect(k8s.Create(ctx, app)).To(Succeed())
		a := waitReady(ns, "shop")
		Expect(a.Status.Phase).To(Equal(v1alpha1.PhaseHealthy))
		Expect(condition(a, v1alpha1.ConditionHealthy).Status).To(Equal(metav1.ConditionTrue))
		Expect(a.Status.Components).To(HaveLen(1))
		Expect(a.Status.Components[0].ReadyReplicas).To(Equal(int32(3)))

		By("a healthy, idle app causes zero API writes over a minute")
		// Other specs may have run first (ginkgo shuffles top-level containers): wait until
		// theirs are gone, so only this idle app is left to watch.
		Eventually(func(g Gomega) {
			var apps v1alpha1.AutonomicAppList
			g.Expect(k8s.List(ctx, &apps)).To(Succeed())
			g.Expect(apps.Items).To(HaveLen(1))
			var nss corev1.NamespaceList
			g.Expect(k8s.List(ctx, &nss)).To(Succeed())
			for _, n := range nss.Items {
				g.Expect(n.Status.Phase).NotTo(Equal(corev1.NamespaceTerminating), "namespace %s is still terminating", n.Name)
			}
		}).WithTimeout(3 * time.Minute).Should(Succeed())
		time.Sleep(2 * time.Second)
		before := writeCount()
		rv := getApp(ns, "shop").ResourceVersion
		time.Sleep(time.Minute)
		after := writeCount()
		Expect(getApp(ns, "shop").ResourceVersion).To(Equal(rv), "the app's status was rewritten while nothing changed")
		Expect(after-before).To(BeZero(), "the manager wrote to the API server while every app was idle")
		logf("API writes by the manager over 60s of idle: %d", after-before)
	})

	It("restarts crash-looping pods within a second, then rolls back when that does not heal", func() {
		ns := newNamespace("heal")
		createDeployment(ns, "web", "registry.local/shop/web:good", 3)
		waitRunning(ns, "web", ":good", 3)
		app := healApp(ns, "shop", "web", v1alpha1.ModeActive,
			step(restartPods("web"), 15*time.Second),
			step(rollback("web"), 30*time.Second),
			step(notify("web keeps crashing after restart and rollback"), time.Minute))
		Expect(k8s.Create(ctx, app)).To(Succeed())
		waitReady(ns, "shop")

		watch := watchPods(ns)
		defer watch.stop()
		By("rolling out a release whose containers crash")
		setImage(ns, "web", "registry.local/shop/web:bad")

		By("the crash-looping pods are evicted")
		Eventually(func() int { return len(watch.restartLatencies()) }).WithTimeout(30 * time.Second).Should(BeNumerically(">=", 1))
		lat := watch.restartLatencies()
		for pod, d := range lat {
			logf("detect-to-restart for pod %s: %s (from its CrashLoopBackOff status to its eviction)", pod, d)
		}
		fastest := time.Hour
		for _, d := range lat {
			fastest = min(fastest, d)
		}
		logf("fastest crash-loop-to-eviction: %s", fastest)
		Expect(fastest).To(BeNumerically("<", 5*time.Second), "asserted loosely; the target is under one second")

		Eventually(func(g Gomega) {
			rs := records(getApp(ns, "shop"), "restartPods")
			g.Expect(rs).NotTo(BeEmpty())
			g.Expect(rs[0].Result).To(Equal(v1alpha1.ResultSucceeded), rs[0].Message)
			g.Expect(rs[0].Objects).NotTo(BeEmpty())
		}).WithTimeout(10 * time.Second).Should(Succeed())

		By("still crashing after the step's timeout: rollback, and the pods come back healthy")
		Eventually(func(g Gomega) {
			a := getApp(ns, "shop")
			rb := records(a, "rollback")
			g.Expect(rb).NotTo(BeEmpty())
			g.Expect(rb[0].Result).To(Equal(v1alpha1.ResultSucceeded), rb[0].Message)
		}).WithTimeout(60 * time.Second).Should(Succeed())
		d := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, d)).To(Succeed())
		Expect(d.Spec.Template.Spec.Containers[0].Image).To(HaveSuffix(":good"))
		waitRunning(ns, "web", ":good", 3)
		Eventually(func(g Gomega) {
			a := getApp(ns, "shop")
			g.Expect(a.Status.Phase).To(Equal(v1alpha1.PhaseHealthy))
			g.Expect(policyStatus(a, "heal-web").Reason).To(Equal("Healed"))
			g.Expect(policyStatus(a, "heal-web").Message).To(ContainSubstring("cleared at step 2 of 3"))
		}).WithTimeout(60 * time.Second).Should(Succeed())
		Expect(records(getApp(ns, "shop"), "notify")).To(BeEmpty(), "the ladder stopped once healed")

		By("every action left an Event and a metric")
		Expect(eventsFor(ns, "shop", "")).NotTo(BeEmpty())
		m, err := mgr.metrics()
		Expect(err).NotTo(HaveOccurred())
		Expect(m).To(MatchRegexp(`homeostat_actions_total\{action="restartPods",policy="heal-web",result="Succeeded"\} [1-9]`))
		Expect(m).To(MatchRegexp(`homeostat_actions_total\{action="rollback",policy="heal-web",result="Succeeded"\} [1-9]`))
		Expect(m).To(MatchRegexp(`homeostat_detect_to_act_seconds_count [1-9]`))
		Expect(m).To(ContainSubstring(`homeostat_decisions_total{decision="Act"}`))
		Expect(m).To(ContainSubstring(`homeostat_symptom_active{app="shop",namespace="` + ns + `",symptom="CrashLooping"} 0`))
	})

	It("ends a ladder that runs out in NeedsAttention with an Event, and giveUp stops further episodes", func() {
		ns := newNamespace("giveup")
		createDeployment(ns, "web", "registry.local/shop/web:bad", 2)
		app := healApp(ns, "shop", "web", v1alpha1.ModeActive,
			step(restartPods("web"), 4*time.Second),
			step(notify("web keeps crashing"), 4*time.Second))
		app.Spec.Policies[0].Remediate.GiveUp = &v1alpha1.GiveUp{Episodes: 1, Within: metav1.Duration{Duration: time.Hour}}
		Expect(k8s.Create(ctx, app)).To(Succeed())

		Eventually(func(g Gomega) {
			a := getApp(ns, "shop")
			g.Expect(policyStatus(a, "heal-web").Reason).To(Equal("LadderExhausted"))
			c := condition(a, v1alpha1.ConditionNeedsAttention)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(a.Status.Phase).To(Equal(v1alpha1.PhaseNeedsAttention))
		}).WithTimeout(60 * time.Second).Should(Succeed())
		Eventually(func() int { return len(eventsFor(ns, "shop", "LadderExhausted")) }).Should(BeNumerically(">=", 1))
		Eventually(func() int { return len(eventsFor(ns, "shop", "NeedsAttention")) }).Should(BeNumerically(">=", 1))

		By("the app is fixed: the episode closes")
		setImage(ns, "web", "registry.local/shop/web:good")
		Eventually(func(g Gomega) {
			a := getApp(ns, "shop")
			g.Expect(a.Status.Phase).To(Equal(v1alpha1.PhaseHealthy))
			g.Expect(condition(a, v1alpha1.ConditionNeedsAttention).Status).To(Equal(metav1.ConditionFalse))
		}).WithTimeout(60 * time.Second).Should(Succeed())
		n := len(getApp(ns, "shop").Status.History)

		By("it breaks again: giveUp allows no new episode")
		setImage(ns, "web", "registry.local/shop/web:bad")
		Eventually(func(g Gomega) {
			a := getApp(ns, "shop")
			p := policyStatus(a, "heal-web")
			g.Expect(p.State).To(Equal(v1alpha1.PolicyGaveUp))
			g.Expect(p.Reason).To(Equal("GaveUp"))
			g.Expect(p.Message).To(ContainSubstring("a person is needed"))
			g.Expect(condition(a, v1alpha1.ConditionNeedsAttention).Status).To(Equal(metav1.ConditionTrue))
		}).WithTimeout(60 * time.Second).Should(Succeed())
		Eventually(func() int { return len(eventsFor(ns, "shop", "GaveUp")) }).Should(BeNumerically(">=", 1))
		Consistently(func() int { return len(getApp(ns, "shop").Status.History) }).WithTimeout(6 * time.Second).Should(Equal(n))
	})

	It("records the same decisions in DryRun and changes nothing", func() {
		ns := newNamespace("dryrun")
		createDeployment(ns, "web", "registry.local/shop/web:good", 2)
		waitRunning(ns, "web", ":good", 2)
		app := healApp(ns, "shop", "web", v1alpha1.ModeDryRun,
			step(restartPods("web"), 3*time.Second),
			step(rollback("web"), 3*time.Second),
			step(notify("web keeps crashing"), time.Minute))
		Expect(k8s.Create(ctx, app)).To(Succeed())
		waitReady(ns, "shop")
		// The test's own informer sees every pod deletion, so an eviction of a crashing pod
		// (replaced at once by a fresh one) cannot hide.
		watch := watchPods(ns)
		defer watch.stop()
		setImage(ns, "web", "registry.local/shop/web:bad")
		d := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, d)).To(Succeed())
		gen := d.Generation

		Eventually(func(g Gomega) {
			a := getApp(ns, "shop")
			g.Expect(records(a, "restartPods")).NotTo(BeEmpty())
			g.Expect(records(a, "rollback")).NotTo(BeEmpty())
			for _, r := range records(a, "") {
				g.Expect(r.DryRun).To(BeTrue())
				g.Expect(r.Result).To(Equal(v1alpha1.ResultSkipped))
			}
			g.Expect(condition(a, v1alpha1.ConditionSuspended).Reason).To(Equal(v1alpha1.ReasonDryRun))
		}).WithTimeout(60 * time.Second).Should(Succeed())
		Expect(records(getApp(ns, "shop"), "restartPods")[0].Objects).NotTo(BeEmpty(), "the dry run names the pods it would evict")
		By("the decisions are the ladder's, in order: restartPods at step 1, then rollback at step 2")
		rp, rb := records(getApp(ns, "shop"), "restartPods"), records(getApp(ns, "shop"), "rollback")
		Expect(rp[len(rp)-1].Step).To(Equal(int32(1)))
		Expect(rb[len(rb)-1].Step).To(Equal(int32(2)))
		Expect(rb[len(rb)-1].Time.Time).NotTo(BeTemporally("<", rp[len(rp)-1].Time.Time))

		By("nothing was changed: no pod evicted, no rollback")
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, d)).To(Succeed())
		Expect(d.Generation).To(Equal(gen))
		Expect(d.Spec.Template.Spec.Containers[0].Image).To(HaveSuffix(":bad"))
		for _, p := range pods(ns, "web") {
			if strings.HasSuffix(p.Spec.Containers[0].Image, ":bad") {
				Expect(p.DeletionTimestamp).To(BeNil(), "pod %s was evicted in DryRun", p.Name)
				Expect(p.Annotations).NotTo(HaveKey(v1alpha1.ActionIDAnnotation))
			}
		}
		Expect(watch.restartLatencies()).To(BeEmpty(), "a crash-looping pod was deleted in DryRun")
		watch.mu.Lock()
		crashed := len(watch.crashedAt)
		watch.mu.Unlock()
		Expect(crashed).To(BeNumerically(">=", 1), "the test saw the crash loop it relies on")
	})

	It("holds actions back with cooldown and maxActions, with the reason in status", func() {
		ns := newNamespace("guards")
		createDeployment(ns, "web", "registry.local/shop/web:bad", 2)
		cool := healApp(ns, "cool", "web", v1alpha1.ModeActive, step(restartPods("web"), 2*time.Second), step(restartPods("web"), 2*time.Second))
		cool.Spec.Guards = &v1alpha1.Guards{Cooldown: dur(time.Hour)}
		Expect(k8s.Create(ctx, cool)).To(Succeed())
		Eventually(func(g Gomega) {
			a := getApp(ns, "cool")
			p := policyStatus(a, "heal-web")
			g.Expect(p.State).To(Equal(v1alpha1.PolicyHeld))
			g.Expect(p.Reason).To(Equal("Cooldown"))
			g.Expect(p.Step).To(Equal(int32(2)))
			g.Expect(p.Message).To(ContainSubstring("guards.cooldown is 1h0m0s"))
		}).WithTimeout(60 * time.Second).Should(Succeed())
		Expect(records(getApp(ns, "cool"), "restartPods")).To(HaveLen(1))

		ns2 := newNamespace("ratelimit")
		createDeployment(ns2, "web", "registry.local/shop/web:bad", 2)
		rl := healApp(ns2, "limited", "web", v1alpha1.ModeActive, step(restartPods("web"), 2*time.Second), step(restartPods("web"), 2*time.Second))
		rl.Spec.Guards = &v1alpha1.Guards{MaxActions: &v1alpha1.RateLimit{Count: 1, Per: metav1.Duration{Duration: time.Hour}}}
		Expect(k8s.Create(ctx, rl)).To(Succeed())
		Eventually(func(g Gomega) {
			a := getApp(ns2, "limited")
			p := policyStatus(a, "heal-web")
			g.Expect(p.State).To(Equal(v1alpha1.PolicyHeld))
			g.Expect(p.Reason).To(Equal("RateLimited"))
			g.Expect(p.Message).To(ContainSubstring("guards.maxActions allows 1"))
		}).WithTimeout(60 * time.Second).Should(Succeed())
		Expect(records(getApp(ns2, "limited"), "restartPods")).To(HaveLen(1))
	})

	It("blocks a restart with maxUnhealthyPods when most pods are unhealthy", func() {
		ns := newNamespace("unhealthy")
		createDeployment(ns, "web", "registry.local/shop/web:bad", 3)
		app := healApp(ns, "shop", "web", v1alpha1.ModeActive, step(restartPods("web"), 5*time.Second))
		half := intstr.FromString("50%")
		app.Spec.Guards = &v1alpha1.Guards{MaxUnhealthyPods: &half}
		Expect(k8s.Create(ctx, app)).To(Succeed())
		Eventually(func(g Gomega) {
			p := policyStatus(getApp(ns, "shop"), "heal-web")
			g.Expect(p.State).To(Equal(v1alpha1.PolicyHeld))
			g.Expect(p.Reason).To(Equal("TooManyUnhealthy"))
			g.Expect(p.Message).To(ContainSubstring("3 of 3 pods are unhealthy"))
		}).WithTimeout(60 * time.Second).Should(Succeed())
		Consistently(func() []v1alpha1.ActionRecord { return getApp(ns, "shop").Status.History }).WithTimeout(5 * time.Second).Should(BeEmpty())
		for _, p := range pods(ns, "web") {
			Expect(p.DeletionTimestamp).To(BeNil())
		}
	})

	It("acts exactly once when the manager dies between intent and effect, and resumes the ladder at the same step", func() {
		ns := newNamespace("crash")
		createDeployment(ns, "web", "registry.local/shop/web:good", 2)
		waitRunning(ns, "web", ":good", 2)
		app := healApp(ns, "shop", "web", v1alpha1.ModeActive,
			step(rolloutRestart("web"), 20*time.Second),
			step(notify("web keeps crashing"), time.Minute))
		Expect(k8s.Create(ctx, app)).To(Succeed())
		waitReady(ns, "shop")

		By("restarting the manager with a hook that exits right after an intent is recorded")
		mgr.stop()
		Expect(mgr.start([]string{controllers.CrashAfterIntentEnv + "=rolloutRestart"})).To(Succeed())
		setImage(ns, "web", "registry.local/shop/web:bad")
		d := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, d)).To(Succeed())
		gen := d.Generation
		code, err := mgr.wait(60 * time.Second)
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(3), "the manager exits through the test hook")

		a := getApp(ns, "shop")
		pending := records(a, "rolloutRestart")
		Expect(pending).To(HaveLen(1))
		Expect(pending[0].Result).To(Equal(v1alpha1.ResultPending), "the intent is in the ledger before the effect")
		Expect(policyStatus(a, "heal-web").Step).To(Equal(int32(1)))
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, d)).To(Succeed())
		Expect(d.Generation).To(Equal(gen), "nothing was changed before the crash")
		Expect(d.Spec.Template.Annotations).NotTo(HaveKey("kubectl.kubernetes.io/restartedAt"))

		By("starting the manager again")
		Expect(mgr.start(nil)).To(Succeed())
		Eventually(func(g Gomega) {
			rs := records(getApp(ns, "shop"), "rolloutRestart")
			g.Expect(rs).To(HaveLen(1))
			g.Expect(rs[0].Result).To(Equal(v1alpha1.ResultSucceeded), rs[0].Message)
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, d)).To(Succeed())
		Expect(d.Spec.Template.Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, pending[0].ID))
		Expect(d.Generation).To(Equal(gen+1), "the restart changed the template exactly once")

		By("the ladder resumed at step 1 and escalates from there, never repeating it")
		Eventually(func(g Gomega) {
			a := getApp(ns, "shop")
			g.Expect(records(a, "notify")).To(HaveLen(1))
		}).WithTimeout(60 * time.Second).Should(Succeed())
		a = getApp(ns, "shop")
		Expect(records(a, "rolloutRestart")).To(HaveLen(1))
		Expect(records(a, "notify")[0].Step).To(Equal(int32(2)))
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, d)).To(Succeed())
		Expect(d.Generation).To(Equal(gen + 1))
	})
})

var writeMetric = regexp.MustCompile(`(?m)^rest_client_requests_total\{[^}]*method="(POST|PUT|PATCH|DELETE)"[^}]*\} (\d+)`)

// writeCount sums the manager's client-go write requests from its metrics.
func writeCount() int {
	m, err := mgr.metrics()
	Expect(err).NotTo(HaveOccurred())
	total := 0
	for _, match := range writeMetric.FindAllStringSubmatch(m, -1) {
		n, _ := strconv.Atoi(match[2])
		total += n
	}
	return total
}

// podWatch records, per pod, when the test first saw it crash-looping and when it saw
// it being deleted, from its own informer: the same clock and path for both.
type podWatch struct {
	mu        sync.Mutex
	crashedAt map[string]time.Time
	deletedAt map[string]time.Time
	stopCh    chan struct{}
}

func watchPods(ns string) *podWatch {
	w := &podWatch{crashedAt: map[string]time.Time{}, deletedAt: map[string]time.Time{}, stopCh: make(chan struct{})}
	f := informers.NewSharedInformerFactoryWithOptions(clientset, 0, informers.WithNamespace(ns))
	inf := f.Core().V1().Pods().Informer()
	observe := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		now := time.Now()
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff" {
				if _, seen := w.crashedAt[p.Name]; !seen {
					w.crashedAt[p.Name] = now
				}
			}
		}
		if p.DeletionTimestamp != nil {
			if _, seen := w.deletedAt[p.Name]; !seen {
				w.deletedAt[p.Name] = now
			}
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, o any) { observe(o) },
		DeleteFunc: func(o any) {
			if p, ok := o.(*corev1.Pod); ok {
				w.mu.Lock()
				if _, seen := w.deletedAt[p.Name]; !seen {
					w.deletedAt[p.Name] = time.Now()
				}
				w.mu.Unlock()
			}
		},
	})
	f.Start(w.stopCh)
	f.WaitForCacheSync(w.stopCh)
	return w
}

func (w *podWatch) stop() { close(w.stopCh) }

// restartLatencies returns, for each crash-looping pod that was then deleted, the time
// from the crash to the deletion.
func (w *podWatch) restartLatencies() map[string]time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]time.Duration{}
	for name, c := range w.crashedAt {
		if d, ok := w.deletedAt[name]; ok {
			out[name] = d.Sub(c)
		}
	}
	return out
}
