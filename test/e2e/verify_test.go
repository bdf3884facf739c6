package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// An action is a hypothesis: it counts as a fix only when the symptoms that started it
// stay clear for the verification window, and a fix that does not hold continues the
// same episode, which escalates at the step's timeout.
var _ = Describe("Outcome verification", Label("kwok"), func() {
	ctx := context.Background()

	It("keeps the episode open when a restart does not hold, escalates to rollback in the same episode, and records the restart Ineffective and the rollback Verified", func() {
		ns := newNamespace("verify")
		createDeployment(ns, "web", "registry.local/shop/web:good", 2)
		waitRunning(ns, "web", ":good", 2)
		app := healApp(ns, "shop", "web", v1alpha1.ModeActive,
			step(restartPods("web"), 15*time.Second),
			step(rollback("web"), 30*time.Second),
			step(notify("web keeps crashing after restart and rollback"), time.Minute))
		// No clearFor: an evicted pod's replacement has not crashed yet, so the symptom is
		// false for a moment after every restart. Only the verification window may keep
		// the episode open through that moment.
		app.Spec.Symptoms[0].ClearFor = nil
		app.Spec.Policies[0].Remediate.GiveUp = &v1alpha1.GiveUp{Episodes: 3, Within: metav1.Duration{Duration: time.Hour}}
		Expect(k8s.Create(ctx, app)).To(Succeed())
		waitReady(ns, "shop")
		trail := watchPolicy(ns, "shop", "heal-web")

		By("rolling out a release whose containers crash, each pod after a few seconds of starting")
		startSlowly(ns, 3*time.Second)
		Eventually(func() error {
			d := &appsv1.Deployment{}
			if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, d); err != nil {
				return err
			}
			d.Spec.Template.Spec.Containers[0].Image = "registry.local/shop/web:bad"
			d.Spec.Template.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: slowStartGate}}
			return k8s.Update(ctx, d)
		}).Should(Succeed())

		By("restartPods evicts the crash-looping pods")
		Eventually(func(g Gomega) {
			rs := records(getApp(ns, "shop"), "restartPods")
			g.Expect(rs).NotTo(BeEmpty())
			g.Expect(rs[0].Result).To(Equal(v1alpha1.ResultSucceeded), rs[0].Message)
		}).WithTimeout(60 * time.Second).Should(Succeed())

		By("the replacements crash too: at the step's timeout the same episode escalates to rollback")
		Eventually(func(g Gomega) {
			if s, ok := trail.gaveUpBeforeRollback(); ok {
				StopTrying(fmt.Sprintf("policy heal-web gave up before any rollback ran (%s); states seen: %s", s, trail)).Now()
			}
			rb := records(getApp(ns, "shop"), "rollback")
			g.Expect(rb).NotTo(BeEmpty())
			g.Expect(rb[0].Result).To(Equal(v1alpha1.ResultSucceeded), rb[0].Message)
		}).WithTimeout(90 * time.Second).Should(Succeed())
		d := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, d)).To(Succeed())
		Expect(d.Spec.Template.Spec.Containers[0].Image).To(HaveSuffix(":good"))
		waitRunning(ns, "web", ":good", 2)

		By("the rollback holds for its verification window: the episode closes Healed")
		Eventually(func(g Gomega) {
			a := getApp(ns, "shop")
			g.Expect(a.Status.Phase).To(Equal(v1alpha1.PhaseHealthy))
			p := policyStatus(a, "heal-web")
			g.Expect(p.Reason).To(Equal("Healed"), p.Message)
			g.Expect(p.EpisodeStart).To(BeNil(), "no episode is open")
			rp, rb := records(a, "restartPods"), records(a, "rollback")
			g.Expect(rp).To(HaveLen(1), "one restart, in the one episode")
			g.Expect(rp[0].Outcome).To(Equal(v1alpha1.OutcomeIneffective), "the restart did not hold")
			g.Expect(rb).To(HaveLen(1))
			g.Expect(rb[0].Result).To(Equal(v1alpha1.ResultSucceeded), rb[0].Message)
			g.Expect(rb[0].Outcome).To(Equal(v1alpha1.OutcomeVerified), "the rollback held")
		}).WithTimeout(90 * time.Second).Should(Succeed())

		a := getApp(ns, "shop")
		Expect(policyStatus(a, "heal-web").RecentEpisodes).To(HaveLen(1), "the restart and the rollback were one episode")
		Expect(records(a, "notify")).To(BeEmpty(), "the ladder stopped once healed")
		Expect(trail.states()).NotTo(ContainElement(v1alpha1.PolicyGaveUp), "states seen: %s", trail)
		logf("policy heal-web went through: %s", trail)

		By("each outcome left an Event and a metric")
		Eventually(func() []string { return reasonsOf(eventsFor(ns, "shop", "")) }).
			Should(ContainElements("ActionIneffective", "ActionVerified"))
		m, err := mgr.metrics()
		Expect(err).NotTo(HaveOccurred())
		Expect(m).To(MatchRegexp(`homeostat_action_outcomes_total\{[^}]*action="restartPods"[^}]*outcome="Ineffective"[^}]*\} [1-9]`))
		Expect(m).To(MatchRegexp(`homeostat_action_outcomes_total\{[^}]*action="rollback"[^}]*outcome="Verified"[^}]*\} [1-9]`))
	})
})

// A long action that a restarted manager resumes is held by the guards like a new one:
// pausing an app stops what it had in flight, even when the manager that started it died.
var _ = Describe("Pausing an app", Label("kwok"), func() {
	ctx := context.Background()

	It("cancels a drain in flight when the app is paused, even across a manager crash, and evicts nothing more", func() {
		ns := newNamespace("pause-drain")
		pool := addPool(ns, 2)
		sick, healthy := pool[0], pool[1]
		createSpreadDeployment(ns, "web", 2)
		waitRunning(ns, "web", ":good", 2)
		Expect(webNodes(ns)).To(ConsistOf(sick, healthy), "one pod of web on each node of the pool")

		By("a PodDisruptionBudget that lets no pod of web go")
		pdb := &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
			Spec: policyv1.PodDisruptionBudgetSpec{
				MaxUnavailable: ptr.To(intstr.FromInt32(0)),
				Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			},
		}
		Expect(k8s.Create(ctx, pdb)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(pdb), pdb)).To(Succeed())
			g.Expect(pdb.Status.ObservedGeneration).To(Equal(pdb.Generation))
			g.Expect(pdb.Status.ExpectedPods).To(Equal(int32(2)))
		}).WithTimeout(30 * time.Second).Should(Succeed())

		Expect(k8s.Create(ctx, nodeApp(ns, drainNode("web", nil)))).To(Succeed())
		waitReady(ns, "shop")
		watch := watchPods(ns)
		defer watch.stop()

		By("the kubelet of " + sick + " stops: the drain cordons it and waits on the budget")
		stopKubelet(sick)
		var rec v1alpha1.ActionRecord
		Eventually(func(g Gomega) {
			rs := records(getApp(ns, "shop"), "drainNode")
			g.Expect(rs).To(HaveLen(1))
			rec = rs[0]
			g.Expect(rec.Result).To(Equal(v1alpha1.ResultPending), rec.Message)
			g.Expect(rec.Message).To(ContainSubstring("1 pod left to evict"))
			g.Expect(rec.Message).To(ContainSubstring("PodDisruptionBudget"))
		}).WithTimeout(90 * time.Second).Should(Succeed())
		Expect(rec.Objects).To(Equal([]string{sick}))
		Expect(getNodeObj(sick).Spec.Unschedulable).To(BeTrue())
		onSick := podsOn(ns, sick)
		Expect(onSick).To(HaveLen(1))

		By("the manager is killed with the drain in flight")
		DeferCleanup(func() {
			if !mgr.running() {
				Expect(mgr.start(nil)).To(Succeed())
			}
		})
		mgr.kill()
		Expect(records(getApp(ns, "shop"), "drainNode")[0].Result).To(Equal(v1alpha1.ResultPending),
			"the ledger holds the drain's intent for the next manager to resume")

		By("the app is paused, and the budget lifted: from now on only the pause holds the drain")
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"true"}}}`, v1alpha1.PausedAnnotation)
		Expect(k8s.Patch(ctx, &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}},
			client.RawPatch(types.MergePatchType, []byte(patch)))).To(Succeed())
		Expect(k8s.Delete(ctx, pdb)).To(Succeed())

		By("the manager starts again and cancels the drain it finds in the ledger")
		Expect(mgr.start(nil)).To(Succeed())
		Eventually(func(g Gomega) {
			r := recordByID(getApp(ns, "shop"), rec.ID)
			g.Expect(r).NotTo(BeNil(), "record %s is in the history", rec.ID)
			if r.Result == v1alpha1.ResultSucceeded || r.Result == v1alpha1.ResultFailed {
				StopTrying(fmt.Sprintf("the drain went on while the app was paused: result %s: %s", r.Result, r.Message)).Now()
			}
			g.Expect(r.Result).To(Equal(v1alpha1.ResultCancelled), r.Message)
			g.Expect(r.Message).To(ContainSubstring("paused"))
		}).WithTimeout(60 * time.Second).Should(Succeed())

		By("nothing more happens to the node's pods, and the app stays Paused")
		Consistently(func(g Gomega) {
			a := getApp(ns, "shop")
			g.Expect(a.Status.Phase).To(Equal(v1alpha1.PhasePaused))
			rs := records(a, "drainNode")
			g.Expect(rs).To(HaveLen(1), "no drain after the cancelled one")
			g.Expect(rs[0].Result).To(Equal(v1alpha1.ResultCancelled))
			g.Expect(podsOn(ns, sick)).To(Equal(onSick), "the pod on %s stays", sick)
			g.Expect(watch.deleted()).To(BeEmpty(), "no pod of %s was evicted or deleted", ns)
		}).WithTimeout(20 * time.Second).WithPolling(time.Second).Should(Succeed())
	})
})

// slowStartGate holds a pod of a release unscheduled until startSlowly lets it go.
const slowStartGate = "e2e.homeostat.dev/slow-start"

// startSlowly lets each pod of ns that carries slowStartGate be scheduled a delay after
// the test first sees it, until the spec ends. On a kubelet a pod takes seconds (image
// pull, container start, the first crash) before it is in CrashLoopBackOff; kwok's crash
// stage puts it there at once, so without this a restart's replacements would crash
// before anything could see them gone, and the symptom would never clear for a moment.
func startSlowly(ns string, delay time.Duration) {
	stop := make(chan struct{})
	DeferCleanup(func() { close(stop) })
	f := informers.NewSharedInformerFactoryWithOptions(clientset, 0, informers.WithNamespace(ns))
	inf := f.Core().V1().Pods().Informer()
	ungate := func(name string) {
		_, err := clientset.CoreV1().Pods(ns).Patch(context.Background(), name, types.MergePatchType,
			[]byte(`{"spec":{"schedulingGates":null}}`), metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			logf("could not let pod %s/%s start: %v", ns, name, err)
		}
	}
	_, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok || !slices.ContainsFunc(p.Spec.SchedulingGates, func(g corev1.PodSchedulingGate) bool { return g.Name == slowStartGate }) {
			return
		}
		time.AfterFunc(delay, func() { ungate(p.Name) })
	}})
	Expect(err).NotTo(HaveOccurred())
	f.Start(stop)
	f.WaitForCacheSync(stop)
}

// podsOn returns the names of a namespace's pods on a node that are not terminating.
func podsOn(ns, node string) []string {
	var list corev1.PodList
	Expect(k8s.List(context.Background(), &list, client.InNamespace(ns))).To(Succeed())
	var out []string
	for _, p := range list.Items {
		if p.Spec.NodeName == node && p.DeletionTimestamp == nil {
			out = append(out, p.Name)
		}
	}
	slices.Sort(out)
	return out
}

func recordByID(a *v1alpha1.AutonomicApp, id string) *v1alpha1.ActionRecord {
	for i := range a.Status.History {
		if a.Status.History[i].ID == id {
			return &a.Status.History[i]
		}
	}
	return nil
}

func reasonsOf(events []eventsv1.Event) []string {
	out := make([]string, 0, len(events))
	for _, e := range events {
		out = append(out, e.Reason)
	}
	return out
}

// deleted returns the pods the watch saw being deleted, sorted.
func (w *podWatch) deleted() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.deletedAt))
	for name := range w.deletedAt {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// policyTrail is every state of one policy of an app that the test's own informer saw,
// in order, each with the number of rollback records the app had by then. A poll could
// miss a state that lasts a moment; the informer sees every version of the app.
type policyTrail struct {
	mu   sync.Mutex
	seen []policySighting
}

type policySighting struct {
	State     v1alpha1.PolicyState
	Step      int32
	Reason    string
	Rollbacks int
}

func (s policySighting) String() string {
	return fmt.Sprintf("%s/%s step %d, %d rollbacks", s.State, s.Reason, s.Step, s.Rollbacks)
}

// watchPolicy starts an informer on the apps of ns, records the states of the policy
// of app, and stops with the spec.
func watchPolicy(ns, app, policy string) *policyTrail {
	t := &policyTrail{}
	c, err := cache.New(restConfig, cache.Options{Scheme: scheme, DefaultNamespaces: map[string]cache.Config{ns: {}}})
	Expect(err).NotTo(HaveOccurred())
	inf, err := c.GetInformer(context.Background(), &v1alpha1.AutonomicApp{})
	Expect(err).NotTo(HaveOccurred())
	observe := func(obj any) {
		a, ok := obj.(*v1alpha1.AutonomicApp)
		if !ok || a.Name != app {
			return
		}
		p := policyStatus(a, policy)
		s := policySighting{State: p.State, Step: p.Step, Reason: p.Reason, Rollbacks: len(records(a, "rollback"))}
		t.mu.Lock()
		defer t.mu.Unlock()
		if n := len(t.seen); n == 0 || t.seen[n-1] != s {
			t.seen = append(t.seen, s)
		}
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, o any) { observe(o) },
	})
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	DeferCleanup(cancel)
	go func() { _ = c.Start(ctx) }()
	Expect(c.WaitForCacheSync(ctx)).To(BeTrue())
	return t
}

// gaveUpBeforeRollback returns the first sighting of GaveUp while no rollback had been
// recorded.
func (t *policyTrail) gaveUpBeforeRollback() (policySighting, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.seen {
		if s.State == v1alpha1.PolicyGaveUp && s.Rollbacks == 0 {
			return s, true
		}
	}
	return policySighting{}, false
}

func (t *policyTrail) states() []v1alpha1.PolicyState {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]v1alpha1.PolicyState, 0, len(t.seen))
	for _, s := range t.seen {
		out = append(out, s.State)
	}
	return out
}

func (t *policyTrail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	parts := make([]string, 0, len(t.seen))
	for _, s := range t.seen {
		parts = append(parts, s.String())
	}
	return strings.Join(parts, " -> ")
}
