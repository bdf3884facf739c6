package e2e

import (
	"context"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/controllers"
)

// The failover scenario runs twice side by side, in two namespaces with the same objects:
// a Deployment web (weight 100, 3 replicas), a Deployment web-standby (weight 50, scaled
// to 0) and a Service web that selects web's pods; one app elects with selection
// Failover, the other with Best.
//
// Recovery: the policy scaled web to 0 after traffic left it, and it never scales a
// candidate up to find out whether it recovered. Recovery is what a person (or GitOps)
// does: roll out a fixed release and scale web back up. Then Failover stays on the
// standby, and Best moves back to web and scales the standby down again.
var _ = Describe("failover", Label("kwok"), func() {
	ctx := context.Background()

	It("moves the Service to a standby it scales up, within 2 s of the standby being ready; Failover stays and Best moves back on recovery", func() {
		type scenario struct {
			sel   v1alpha1.FailoverSelection
			ns    string
			watch *failoverWatch
		}
		scenarios := []*scenario{{sel: v1alpha1.SelectionFailover}, {sel: v1alpha1.SelectionBest}}
		for _, sc := range scenarios {
			sc.ns = newNamespace("failover-" + strings.ToLower(string(sc.sel)))
			web := deployment(sc.ns, "web", "registry.local/shop/web:good", 3)
			// Recreate: a bad release takes every pod of web down at once.
			web.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
			Expect(k8s.Create(ctx, web)).To(Succeed())
			createDeployment(sc.ns, "web-standby", "registry.local/shop/web:good", 0)
			Expect(k8s.Create(ctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Namespace: sc.ns, Name: "web"},
				Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
					Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
			})).To(Succeed())
			waitRunning(sc.ns, "web", ":good", 3)

			Expect(k8s.Create(ctx, &v1alpha1.AutonomicApp{
				ObjectMeta: metav1.ObjectMeta{Namespace: sc.ns, Name: "shop"},
				Spec: v1alpha1.AutonomicAppSpec{
					Components: []v1alpha1.Component{workload("web", "web"), workload("web-standby", "web-standby")},
					Healing: v1alpha1.Healing{Policies: []v1alpha1.Policy{{Name: "web-failover", Failover: &v1alpha1.FailoverPolicy{
						Service:    "web",
						Candidates: []v1alpha1.FailoverCandidate{{Component: "web", Weight: 100}, {Component: "web-standby", Weight: 50}},
						Selection:  sc.sel,
					}}}},
				},
			})).To(Succeed())
			Eventually(func(g Gomega) {
				p := policyStatus(getApp(sc.ns, "shop"), "web-failover")
				g.Expect(p.Primary).To(Equal("web"))
				g.Expect(p.Reason).To(Equal("PrimaryHealthy"), p.Message)
			}).WithTimeout(30 * time.Second).Should(Succeed())
			Expect(getApp(sc.ns, "shop").Status.History).To(BeEmpty(), "a healthy primary that the Service selects needs no change")
			sc.watch = watchFailover(sc.ns)
			DeferCleanup(sc.watch.stop)
		}

		By("every pod of web goes NotReady: a release whose containers crash")
		for _, sc := range scenarios {
			sc.watch.arm()
			setImage(sc.ns, "web", "registry.local/shop/web:bad")
		}

		By("the standby is scaled up, becomes ready, and only then takes the traffic")
		for _, sc := range scenarios {
			Eventually(func(g Gomega) {
				g.Expect(serviceSelector(sc.ns)).To(HaveKeyWithValue("app", "web-standby"))
			}).WithTimeout(60*time.Second).Should(Succeed(), "selection %s", sc.sel)
			w := sc.watch.snapshot()
			Expect(w.standbyReady).NotTo(BeZero())
			Expect(w.movedToStandby).NotTo(BeZero())
			moveLag := w.movedToStandby.Sub(w.standbyReady)
			logf("[%s] web had no ready pod at +0s; standby scaled up at +%s, all 3 standby pods ready at +%s, "+
				"Service selects the standby at +%s: %s after the standby was ready",
				sc.sel, w.standbyScaledUp.Sub(w.webDown), w.standbyReady.Sub(w.webDown), w.movedToStandby.Sub(w.webDown), moveLag)
			Expect(moveLag).To(BeNumerically(">=", 0), "traffic moved before the standby was ready")
			Expect(moveLag).To(BeNumerically("<", 2*time.Second), "the Service moved more than 2 s after the standby was ready")
			Expect(w.standbyScaledUp.Before(w.standbyReady)).To(BeTrue())
		}

		By("the old primary is scaled down after the move, and status names the primary and why")
		for _, sc := range scenarios {
			Eventually(func(g Gomega) {
				a := getApp(sc.ns, "shop")
				p := policyStatus(a, "web-failover")
				g.Expect(specReplicas(sc.ns, "web")).To(BeEquivalentTo(0), "policy %s %s: %s", p.State, p.Reason, p.Message)
				g.Expect(p.Primary).To(Equal("web-standby"))
				g.Expect(p.State).To(Equal(v1alpha1.PolicyIdle))
				g.Expect(p.Reason).To(Equal("PrimaryHealthy"))
				g.Expect(p.Message).To(ContainSubstring("web-standby is the primary and healthy (3 of 3 ready)"))
				g.Expect(p.Message).To(ContainSubstring("web is unhealthy (0 of 3 ready"))
			}).WithTimeout(30 * time.Second).Should(Succeed())
			w := sc.watch.snapshot()
			Expect(w.webScaledDown.After(w.movedToStandby)).To(BeTrue(), "web was scaled down before traffic left it")
			logf("[%s] old primary web scaled to 0 at +%s", sc.sel, w.webScaledDown.Sub(w.webDown))

			a := getApp(sc.ns, "shop")
			logf("[%s] status: %s", sc.sel, policyStatus(a, "web-failover").Message)
			var targets []string
			for _, r := range records(a, "failover") {
				Expect(r.Result).To(Equal(v1alpha1.ResultSucceeded), "%s: %s", r.Target, r.Message)
				Expect(r.Policy).To(Equal("web-failover"))
				targets = append(targets, r.Target)
			}
			Expect(targets).To(Equal([]string{
				"Deployment/web-standby from 0 to 3 replicas (standby for Service/web)",
				"Service/web -> web-standby",
				"Deployment/web from 3 to 0 replicas (old primary for Service/web)",
			}))
			svc := &corev1.Service{}
			Expect(k8s.Get(ctx, types.NamespacedName{Namespace: sc.ns, Name: "web"}, svc)).To(Succeed())
			Expect(svc.Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, records(a, "failover")[1].ID))
		}

		By("recovery: a person rolls out a fixed release of web and scales it back up")
		for _, sc := range scenarios {
			Eventually(func() error {
				d := &appsv1.Deployment{}
				if err := k8s.Get(ctx, types.NamespacedName{Namespace: sc.ns, Name: "web"}, d); err != nil {
					return err
				}
				d.Spec.Template.Spec.Containers[0].Image = "registry.local/shop/web:good"
				d.Spec.Replicas = ptr.To[int32](3)
				return k8s.Update(ctx, d)
			}).Should(Succeed())
		}
		for _, sc := range scenarios {
			waitRunning(sc.ns, "web", ":good", 3)
		}
		best, failover := scenarios[1], scenarios[0]

		By("Best moves back to web, then scales the standby down")
		Eventually(func(g Gomega) {
			g.Expect(serviceSelector(best.ns)).To(HaveKeyWithValue("app", "web"))
			g.Expect(specReplicas(best.ns, "web-standby")).To(BeEquivalentTo(0))
			p := policyStatus(getApp(best.ns, "shop"), "web-failover")
			g.Expect(p.Primary).To(Equal("web"))
			g.Expect(p.Reason).To(Equal("PrimaryHealthy"))
			g.Expect(p.Message).To(ContainSubstring("selection Best prefers it to the primary web-standby"))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		w := best.watch.snapshot()
		logf("[Best] all 3 pods of the fixed web ready at +%s, Service back on web at +%s: %s after",
			w.webReadyAgain.Sub(w.webDown), w.movedBack.Sub(w.webDown), w.movedBack.Sub(w.webReadyAgain))
		Expect(w.movedBack.Sub(w.webReadyAgain)).To(BeNumerically("<", 2*time.Second))

		By("Failover stays on the healthy standby")
		Consistently(func(g Gomega) {
			g.Expect(serviceSelector(failover.ns)).To(HaveKeyWithValue("app", "web-standby"))
			p := policyStatus(getApp(failover.ns, "shop"), "web-failover")
			g.Expect(p.Primary).To(Equal("web-standby"))
		}).WithTimeout(5 * time.Second).Should(Succeed())
		p := policyStatus(getApp(failover.ns, "shop"), "web-failover")
		Expect(p.Message).To(ContainSubstring("Selection Failover keeps it although web (weight 100) is healthy too."))
		Expect(specReplicas(failover.ns, "web-standby")).To(BeEquivalentTo(3))
		Expect(specReplicas(failover.ns, "web")).To(BeEquivalentTo(3), "the recovered web is left running as a standby")
		Expect(records(getApp(failover.ns, "shop"), "failover")).To(HaveLen(3), "no change after recovery")
		logf("[Failover] status after recovery: %s", p.Message)
	})

	It("runs a failover policy from a ladder: the primary counts as failed while the episode is open", func() {
		ns := newNamespace("failover-ladder")
		createDeployment(ns, "web", "registry.local/shop/web:good", 3)
		createDeployment(ns, "web-standby", "registry.local/shop/web:good", 2)
		Expect(k8s.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		})).To(Succeed())
		waitRunning(ns, "web", ":good", 3)
		waitRunning(ns, "web-standby", ":good", 2)
		// A symptom the pods' readiness does not see: web runs fewer replicas than it
		// should. The ladder's answer is to fail over; selection Best would otherwise keep
		// (and bring back) the healthy web of higher weight.
		Expect(k8s.Create(ctx, &v1alpha1.AutonomicApp{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
			Spec: v1alpha1.AutonomicAppSpec{
				Components: []v1alpha1.Component{workload("web", "web"), workload("web-standby", "web-standby")},
				Healing: v1alpha1.Healing{
					Symptoms: []v1alpha1.Symptom{{Name: "Shrunk", Expression: "components.web.desiredReplicas < 3"}},
					Policies: []v1alpha1.Policy{
						// The demotion lasts as long as the episode, which stays open for
						// verifyFor after the symptom clears: a short window here.
						{Name: "heal-web", Remediate: &v1alpha1.RemediatePolicy{When: []string{"Shrunk"}, VerifyFor: &metav1.Duration{Duration: 3 * time.Second}, Steps: []v1alpha1.RemediationStep{
							step(v1alpha1.Action{Failover: &v1alpha1.FailoverAction{Policy: "web-failover"}}, time.Minute)}}},
						{Name: "web-failover", Failover: &v1alpha1.FailoverPolicy{
							Service:      "web",
							Candidates:   []v1alpha1.FailoverCandidate{{Component: "web", Weight: 100}, {Component: "web-standby", Weight: 50}},
							Selection:    v1alpha1.SelectionBest,
							ScaleStandby: ptr.To(false),
						}},
					},
				},
			},
		})).To(Succeed())
		Eventually(func() string { return policyStatus(getApp(ns, "shop"), "web-failover").Primary }).
			WithTimeout(30 * time.Second).Should(Equal("web"))

		By("the symptom becomes active: the ladder's failover step moves traffic off the healthy web")
		scaleDeployment(ns, "web", 2)
		Eventually(func(g Gomega) {
			g.Expect(serviceSelector(ns)).To(HaveKeyWithValue("app", "web-standby"))
			a := getApp(ns, "shop")
			g.Expect(policyStatus(a, "web-failover").Primary).To(Equal("web-standby"))
			rs := records(a, "failover")
			g.Expect(rs).To(HaveLen(2))
			g.Expect(rs[0].Policy).To(Equal("heal-web"))
			g.Expect(rs[0].Step).To(Equal(int32(1)))
			g.Expect(rs[0].Target).To(Equal("Service/web away from web"))
			g.Expect(rs[0].Result).To(Equal(v1alpha1.ResultSucceeded), rs[0].Message)
			g.Expect(rs[1].Policy).To(Equal("web-failover"))
			g.Expect(rs[1].Target).To(Equal("Service/web -> web-standby"))
			g.Expect(rs[1].Reason).To(ContainSubstring("heal-web treats the primary web as failed while its episode is open"))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Consistently(func() map[string]string { return serviceSelector(ns) }).WithTimeout(3*time.Second).
			Should(HaveKeyWithValue("app", "web-standby"), "Best moved back to web while the episode was open")
		Expect(specReplicas(ns, "web")).To(BeEquivalentTo(2), "scaleStandby false: the old primary keeps its replicas")

		By("the symptom clears and stays clear for verifyFor: the episode closes, and Best moves back to web")
		scaleDeployment(ns, "web", 3)
		Eventually(func(g Gomega) {
			g.Expect(serviceSelector(ns)).To(HaveKeyWithValue("app", "web"))
			a := getApp(ns, "shop")
			g.Expect(policyStatus(a, "heal-web").Reason).To(Equal("Healed"))
			g.Expect(policyStatus(a, "web-failover").Primary).To(Equal("web"))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Expect(specReplicas(ns, "web-standby")).To(BeEquivalentTo(2))
	})

	It("records in DryRun the change it would make, once, and changes nothing", func() {
		ns := newNamespace("failover-dryrun")
		web := deployment(ns, "web", "registry.local/shop/web:good", 2)
		web.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
		Expect(k8s.Create(ctx, web)).To(Succeed())
		createDeployment(ns, "web-standby", "registry.local/shop/web:good", 0)
		Expect(k8s.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		})).To(Succeed())
		waitRunning(ns, "web", ":good", 2)
		Expect(k8s.Create(ctx, &v1alpha1.AutonomicApp{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
			Spec: v1alpha1.AutonomicAppSpec{
				Mode:       v1alpha1.ModeDryRun,
				Components: []v1alpha1.Component{workload("web", "web"), workload("web-standby", "web-standby")},
				Healing: v1alpha1.Healing{Policies: []v1alpha1.Policy{{Name: "web-failover", Failover: &v1alpha1.FailoverPolicy{
					Service:    "web",
					Candidates: []v1alpha1.FailoverCandidate{{Component: "web", Weight: 100}, {Component: "web-standby", Weight: 50}},
				}}}},
			},
		})).To(Succeed())
		Eventually(func() string { return policyStatus(getApp(ns, "shop"), "web-failover").Primary }).
			WithTimeout(30 * time.Second).Should(Equal("web"))

		setImage(ns, "web", "registry.local/shop/web:bad")
		Eventually(func(g Gomega) {
			a := getApp(ns, "shop")
			rs := records(a, "failover")
			g.Expect(rs).To(HaveLen(1))
			g.Expect(rs[0].Result).To(Equal(v1alpha1.ResultSkipped))
			g.Expect(rs[0].DryRun).To(BeTrue())
			g.Expect(rs[0].Target).To(Equal("Deployment/web-standby from 0 to 2 replicas (standby for Service/web)"))
			p := policyStatus(a, "web-failover")
			g.Expect(p.Message).To(HavePrefix("DryRun, nothing is changed: web is unhealthy"))
			g.Expect(p.Primary).To(Equal("web"))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(records(getApp(ns, "shop"), "failover")).To(HaveLen(1), "the same decision is recorded once")
			g.Expect(specReplicas(ns, "web-standby")).To(BeEquivalentTo(0))
			g.Expect(serviceSelector(ns)).To(HaveKeyWithValue("app", "web"))
		}).WithTimeout(5 * time.Second).Should(Succeed())
	})

	It("moves traffic once when the manager dies between a failover's intent and its effect", func() {
		ns := newNamespace("failover-crash")
		web := deployment(ns, "web", "registry.local/shop/web:good", 2)
		web.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
		Expect(k8s.Create(ctx, web)).To(Succeed())
		// A warm standby: the failover's first change is the traffic move itself.
		createDeployment(ns, "web-standby", "registry.local/shop/web:good", 2)
		Expect(k8s.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		})).To(Succeed())
		waitRunning(ns, "web", ":good", 2)
		waitRunning(ns, "web-standby", ":good", 2)
		Expect(k8s.Create(ctx, &v1alpha1.AutonomicApp{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
			Spec: v1alpha1.AutonomicAppSpec{
				Components: []v1alpha1.Component{workload("web", "web"), workload("web-standby", "web-standby")},
				Healing: v1alpha1.Healing{Policies: []v1alpha1.Policy{{Name: "web-failover", Failover: &v1alpha1.FailoverPolicy{
					Service:      "web",
					Candidates:   []v1alpha1.FailoverCandidate{{Component: "web", Weight: 100}, {Component: "web-standby", Weight: 50}},
					ScaleStandby: ptr.To(false),
				}}}},
			},
		})).To(Succeed())
		Eventually(func() string { return policyStatus(getApp(ns, "shop"), "web-failover").Primary }).
			WithTimeout(30 * time.Second).Should(Equal("web"))

		By("restarting the manager with a hook that exits right after a failover intent is recorded")
		mgr.stop()
		Expect(mgr.start([]string{controllers.CrashAfterIntentEnv + "=failover"})).To(Succeed())
		DeferCleanup(func() {
			// Whatever happened, the next spec gets a manager without the hook.
			mgr.stop()
			Expect(mgr.start(nil)).To(Succeed())
		})
		setImage(ns, "web", "registry.local/shop/web:bad")
		code, err := mgr.wait(60 * time.Second)
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(3), "the manager exits through the test hook")
		rs := records(getApp(ns, "shop"), "failover")
		Expect(rs).To(HaveLen(1))
		intent := rs[0]
		Expect(intent.Result).To(Equal(v1alpha1.ResultPending), "the intent is in the ledger before the effect")
		Expect(intent.Target).To(Equal("Service/web -> web-standby"))
		Expect(serviceSelector(ns)).To(HaveKeyWithValue("app", "web"), "nothing was changed before the crash")

		By("starting the manager again: the move happens, once")
		started := time.Now()
		Expect(mgr.start(nil)).To(Succeed())
		var moved v1alpha1.ActionRecord
		Eventually(func(g Gomega) {
			g.Expect(serviceSelector(ns)).To(HaveKeyWithValue("app", "web-standby"))
			var done []v1alpha1.ActionRecord
			for _, r := range records(getApp(ns, "shop"), "failover") {
				g.Expect(r.Result).NotTo(Equal(v1alpha1.ResultPending), "%s is still pending", r.ID)
				if r.Result == v1alpha1.ResultSucceeded {
					done = append(done, r)
				}
			}
			g.Expect(done).To(HaveLen(1), "exactly one move took effect")
			moved = done[0]
		}).WithTimeout(60 * time.Second).Should(Succeed())
		svc := &corev1.Service{}
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, svc)).To(Succeed())
		Expect(svc.Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, moved.ID))
		if moved.ID == intent.ID {
			logf("the recorded intent %s was carried on after the restart, %s after the manager started", intent.ID, time.Since(started))
		} else {
			logf("the recorded intent %s was closed as %s; the move was made anew as %s, %s after the manager started",
				intent.ID, records(getApp(ns, "shop"), "failover")[0].Result, moved.ID, time.Since(started))
		}
		Expect(policyStatus(getApp(ns, "shop"), "web-failover").Primary).To(Equal("web-standby"))
	})
})

func scaleDeployment(ns, name string, n int32) {
	Eventually(func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, d); err != nil {
			return err
		}
		d.Spec.Replicas = ptr.To(n)
		return k8s.Update(context.Background(), d)
	}).Should(Succeed())
}

func serviceSelector(ns string) map[string]string {
	svc := &corev1.Service{}
	Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "web"}, svc)).To(Succeed())
	return svc.Spec.Selector
}

func specReplicas(ns, name string) int32 {
	d := &appsv1.Deployment{}
	Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, d)).To(Succeed())
	return ptr.Deref(d.Spec.Replicas, 1)
}

// failoverWatch timestamps, from the test's own informers, when web lost its last ready
// pod, when the standby was scaled up and had every pod ready, when the Service's selector
// changed, and when web was scaled down, fixed and ready again: one clock and one path
// for all of them.
type failoverWatch struct {
	mu      sync.Mutex
	armed   bool
	ready   map[string]map[string]bool // app label -> pod -> ready
	times   failoverTimes
	stopped chan struct{}
	once    sync.Once
}

type failoverTimes struct {
	webDown, standbyScaledUp, standbyReady, movedToStandby, webScaledDown, webReadyAgain, movedBack time.Time
}

func watchFailover(ns string) *failoverWatch {
	w := &failoverWatch{ready: map[string]map[string]bool{"web": {}, "web-standby": {}}, stopped: make(chan struct{})}
	f := informers.NewSharedInformerFactoryWithOptions(clientset, 0, informers.WithNamespace(ns))
	on := func(fn func(obj any)) cache.ResourceEventHandlerFuncs {
		return cache.ResourceEventHandlerFuncs{AddFunc: fn, UpdateFunc: func(_, o any) { fn(o) }, DeleteFunc: fn}
	}
	_, _ = f.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.pod(o, false) },
		UpdateFunc: func(_, o any) { w.pod(o, false) },
		DeleteFunc: func(o any) { w.pod(o, true) },
	})
	_, _ = f.Core().V1().Services().Informer().AddEventHandler(on(w.service))
	_, _ = f.Apps().V1().Deployments().Informer().AddEventHandler(on(w.deployment))
	f.Start(w.stopped)
	f.WaitForCacheSync(w.stopped)
	return w
}

func (w *failoverWatch) stop() { w.once.Do(func() { close(w.stopped) }) }

// arm starts the clock: events before it are the steady state.
func (w *failoverWatch) arm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = true
}

func (w *failoverWatch) snapshot() failoverTimes {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.times
}

func stampOnce(t *time.Time, now time.Time) {
	if t.IsZero() {
		*t = now
	}
}

func (w *failoverWatch) pod(obj any, deleted bool) {
	now := time.Now()
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	app := p.Labels["app"]
	w.mu.Lock()
	defer w.mu.Unlock()
	pods, ok := w.ready[app]
	if !ok {
		return
	}
	ready := !deleted && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning
	if ready {
		ready = false
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
	}
	pods[p.Name] = ready
	if deleted {
		delete(pods, p.Name)
	}
	n := 0
	for _, r := range pods {
		if r {
			n++
		}
	}
	if !w.armed {
		return
	}
	switch {
	case app == "web" && n == 0:
		stampOnce(&w.times.webDown, now)
	case app == "web" && n >= 3 && !w.times.webScaledDown.IsZero():
		stampOnce(&w.times.webReadyAgain, now)
	case app == "web-standby" && n >= 3:
		stampOnce(&w.times.standbyReady, now)
	}
}

func (w *failoverWatch) service(obj any) {
	now := time.Now()
	s, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.armed {
		return
	}
	switch s.Spec.Selector["app"] {
	case "web-standby":
		stampOnce(&w.times.movedToStandby, now)
	case "web":
		if !w.times.movedToStandby.IsZero() {
			stampOnce(&w.times.movedBack, now)
		}
	}
}

func (w *failoverWatch) deployment(obj any) {
	now := time.Now()
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.armed {
		return
	}
	replicas := ptr.Deref(d.Spec.Replicas, 1)
	switch {
	case d.Name == "web-standby" && replicas > 0:
		stampOnce(&w.times.standbyScaledUp, now)
	case d.Name == "web" && replicas == 0:
		stampOnce(&w.times.webScaledDown, now)
	}
}
