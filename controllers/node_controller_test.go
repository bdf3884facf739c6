package controllers

import (
	"cmp"
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/execute"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// The node controller runs in a manager of its own, against the suite's API server, with
// the production cache transform (managed fields trimmed) and a window of a few seconds.
var _ = Describe("the node controller", Ordered, func() {
	const window = 3 * time.Second
	var (
		nr  *NodeReconciler
		ns  string
		app *v1alpha1.AutonomicApp
		// eff cordons as a ladder step would, through the cordonNode effector.
		eff = &execute.Effectors{}
	)

	BeforeAll(func() {
		eff.Client = k8sClient
		mgr, err := ctrl.NewManager(testEnv.Config, ctrl.Options{
			Scheme:     k8sClient.Scheme(),
			Metrics:    metricsserver.Options{BindAddress: "0"},
			Cache:      cache.Options{DefaultTransform: monitor.Trim},
			Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		})
		Expect(err).NotTo(HaveOccurred())
		ctx, stop := context.WithCancel(testCtx)
		DeferCleanup(stop)
		Expect(monitor.SetupIndexes(ctx, mgr.GetFieldIndexer())).To(Succeed())
		nr = &NodeReconciler{
			Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("homeostat"),
			Clock: clock.RealClock{}, Effectors: &execute.Effectors{Client: mgr.GetClient()}, UncordonAfter: window,
			Metrics: newMetrics(prometheus.NewRegistry()),
		}
		Expect(nr.SetupWithManager(mgr)).To(Succeed())
		go func() {
			defer GinkgoRecover()
			Expect(mgr.Start(ctx)).To(Succeed())
		}()

		ns = newNS()
		app = appOn(ns, "shop", workloadRef("StatefulSet", "db"))
		Expect(k8sClient.Create(testCtx, app)).To(Succeed())
	})

	// readyNode creates a node whose Ready condition has been True (or False) since
	// since. Its name is generated: this API server tracks the managed fields of such a
	// node, and of a node created by name (as a kubelet registers one) it tracks none, so
	// namedNode makes the other kind.
	newNode := func(meta metav1.ObjectMeta, ready bool, since time.Time) string {
		n := &corev1.Node{ObjectMeta: meta}
		Expect(k8sClient.Create(testCtx, n)).To(Succeed())
		DeferCleanup(func() { _ = k8sClient.Delete(context.Background(), n) })
		setReady(n.Name, ready, since)
		return n.Name
	}
	readyNode := func(prefix string, ready bool, since time.Time) string {
		return newNode(metav1.ObjectMeta{GenerateName: prefix + "-"}, ready, since)
	}
	namedNode := func(name string, ready bool, since time.Time) string {
		return newNode(metav1.ObjectMeta{Name: ns + "-" + name}, ready, since)
	}
	getNode := func(name string) *corev1.Node {
		n := &corev1.Node{}
		Expect(k8sClient.Get(testCtx, client.ObjectKey{Name: name}, n)).To(Succeed())
		return n
	}
	patchAs := func(manager, node, patch string) {
		Expect(k8sClient.Patch(testCtx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}},
			client.RawPatch(types.MergePatchType, []byte(patch)), client.FieldOwner(manager))).To(Succeed())
	}
	cordonByAction := func(node, id string) {
		out := eff.Execute(testCtx, execute.Request{App: app, Action: v1alpha1.Action{CordonNode: &v1alpha1.NodeAction{Component: "c-db"}},
			Record: &v1alpha1.ActionRecord{ID: id, Time: metav1.NewTime(time.Now()), Target: "Node/" + node, Objects: []string{node},
				Result: v1alpha1.ResultPending}})
		Expect(out.Result).To(Equal(v1alpha1.ResultSucceeded), out.Message)
	}
	isCordoned := func(node string) func() bool {
		return func() bool {
			n := &corev1.Node{}
			Expect(k8sClient.Get(testCtx, client.ObjectKey{Name: node}, n)).To(Succeed())
			return n.Spec.Unschedulable
		}
	}

	It("uncordons a node the effector cordoned once it has been Ready for the window, with an Event on the node and the app", func() {
		node := readyNode("uncordon", true, time.Now().Add(-time.Hour))
		cordonByAction(node, "heal-1")

		By("the window runs from the cordon: the node stays cordoned at first")
		Consistently(isCordoned(node)).WithTimeout(time.Second).Should(BeTrue())
		By("at the window's end, with nothing else changing, the cordon and its stamps are lifted")
		Eventually(isCordoned(node)).WithTimeout(window + 5*time.Second).Should(BeFalse())
		n := getNode(node)
		Expect(n.ManagedFields).NotTo(BeEmpty(), "homeostat alone owned the cordon")
		Expect(n.Annotations).NotTo(HaveKey(v1alpha1.ActionIDAnnotation))
		Expect(n.Annotations).NotTo(HaveKey(plan.NodeAppAnnotation))
		Expect(n.Annotations).NotTo(HaveKey(plan.CordonedAtAnnotation))

		Eventually(func(g Gomega) {
			g.Expect(uncordonEvents("", node)).To(ContainElement(ContainSubstring("cordoned by action heal-1 of " + ns + "/shop")))
			g.Expect(uncordonEvents(ns, "shop")).To(ContainElement(ContainSubstring("Node " + node + ", cordoned by action heal-1")))
		}).WithTimeout(10 * time.Second).Should(Succeed())
		Expect(testutil.ToFloat64(nr.Metrics.NodesUncordoned)).To(Equal(1.0))
	})

	It("leaves alone a node a person cordoned before the action stamped it", func() {
		node := readyNode("person", true, time.Now().Add(-time.Hour))
		patchAs("kubectl-cordon", node, `{"spec":{"unschedulable":true}}`)
		cordonByAction(node, "heal-2")
		Expect(getNode(node).Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, "heal-2"), "the node counts against the app's maxNodes")

		Consistently(isCordoned(node)).WithTimeout(window + 3*time.Second).Should(BeTrue())
		Expect(uncordonEvents("", node)).To(BeEmpty())
	})

	It("removes its stamps from a node a person uncordoned, and leaves the person's next cordon alone", func() {
		node := namedNode("relisted", true, time.Now().Add(-time.Hour))
		cordonByAction(node, "heal-5")
		patchAs("kubectl-cordon", node, `{"spec":{"unschedulable":null}}`)
		Eventually(func() map[string]string { return getNode(node).Annotations }).WithTimeout(5 * time.Second).
			ShouldNot(HaveKey(plan.CordonedAtAnnotation))
		Expect(getNode(node).Annotations).NotTo(HaveKey(v1alpha1.ActionIDAnnotation))

		patchAs("kubectl-cordon", node, `{"spec":{"unschedulable":true}}`)
		Consistently(isCordoned(node)).WithTimeout(window + 3*time.Second).Should(BeTrue())
		Expect(uncordonEvents("", node)).To(BeEmpty())
	})

	It("waits while a pod of the app is unhealthy on the node, and uncordons it once the pod is gone", func() {
		node := readyNode("pods", true, time.Now().Add(-time.Hour))
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-0",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "db-uid", Controller: ptr.To(true)}}},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "db", Image: "registry.local/db:1"}}}}
		Expect(k8sClient.Create(testCtx, pod)).To(Succeed()) // Pending for good: no kubelet
		cordonByAction(node, "heal-3")

		Consistently(isCordoned(node)).WithTimeout(window + 3*time.Second).Should(BeTrue())
		By("the pod goes: its deletion alone wakes the controller")
		Expect(k8sClient.Delete(testCtx, pod, client.GracePeriodSeconds(0))).To(Succeed())
		Eventually(isCordoned(node)).WithTimeout(5 * time.Second).Should(BeFalse())
	})

	It("waits while the node is NotReady, and counts the window from when it turned Ready (a node whose managed fields are not tracked)", func() {
		// Created by name, the node has no managed fields here: the stamps alone say whose
		// cordon it is.
		node := namedNode("notready", false, time.Now().Add(-time.Hour))
		cordonByAction(node, "heal-4")
		Consistently(isCordoned(node)).WithTimeout(window + 2*time.Second).Should(BeTrue())

		By("the node turns Ready")
		setReady(node, true, time.Now())
		Consistently(isCordoned(node)).WithTimeout(window / 2).Should(BeTrue())
		Eventually(isCordoned(node)).WithTimeout(window + 5*time.Second).Should(BeFalse())
	})
})

// setReady sets a node's Ready condition, last turned at since.
func setReady(name string, ready bool, since time.Time) {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	Eventually(func() error {
		n := &corev1.Node{}
		if err := k8sClient.Get(testCtx, client.ObjectKey{Name: name}, n); err != nil {
			return err
		}
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status, Reason: "Test",
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.NewTime(since)}}
		return k8sClient.Status().Update(testCtx, n)
	}).Should(Succeed())
}

// uncordonEvents returns the notes of the NodeUncordoned Events about an object: a node
// (namespace "", whose Events are in default) or an app.
func uncordonEvents(namespace, name string) []string {
	var list eventsv1.EventList
	Expect(k8sClient.List(testCtx, &list, client.InNamespace(cmp.Or(namespace, metav1.NamespaceDefault)))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Reason == ReasonNodeUncordoned {
			out = append(out, e.Note)
		}
	}
	return out
}
