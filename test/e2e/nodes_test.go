package e2e

import (
	"context"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// Node remediation on kwok: each spec adds two nodes of its own (a pool labelled with the
// spec's namespace, so the shared nodes stay out of it), spreads a Deployment over them,
// and makes one NotReady the way a kubelet whose container runtime died looks: nothing
// keeps the node's status up to date any more, and its Ready condition says False.
var _ = Describe("Node remediation", Label("kwok"), func() {
	ctx := context.Background()

	It("drains a node that went NotReady: cordons and stamps it, evicts its pods, and they come back on the healthy node", func() {
		ns := newNamespace("nodes")
		pool := addPool(ns, 2)
		sick, healthy := pool[0], pool[1]
		createSpreadDeployment(ns, "web", 2)
		waitRunning(ns, "web", ":good", 2)
		Expect(webNodes(ns)).To(ConsistOf(sick, healthy), "one pod of web on each node of the pool")

		Expect(k8s.Create(ctx, nodeApp(ns, drainNode("web", nil)))).To(Succeed())
		waitReady(ns, "shop")

		By("the kubelet of " + sick + " stops: the node turns NotReady and its pod not ready")
		stopKubelet(sick)

		By("the node is cordoned and drained, with the action id stamped on it")
		var rec v1alpha1.ActionRecord
		Eventually(func(g Gomega) {
			rs := records(getApp(ns, "shop"), "drainNode")
			g.Expect(rs).NotTo(BeEmpty())
			rec = rs[0]
			g.Expect(rec.Result).To(Equal(v1alpha1.ResultSucceeded), rec.Message)
		}).WithTimeout(90 * time.Second).Should(Succeed())
		Expect(rec.Objects).To(Equal([]string{sick}))
		Expect(rec.Target).To(Equal("Node/" + sick))
		Expect(rec.Message).To(HavePrefix("Drained Node/" + sick + ": evicted 1 pod (" + ns + "/web-"))
		n := getNodeObj(sick)
		Expect(n.Spec.Unschedulable).To(BeTrue())
		Expect(n.Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, rec.ID))
		Expect(getNodeObj(healthy).Spec.Unschedulable).To(BeFalse(), "only the sick node is cordoned")

		By("the evicted pod is replaced on the healthy node, and the app heals")
		Eventually(func(g Gomega) {
			for _, p := range pods(ns, "web") {
				if p.DeletionTimestamp == nil {
					g.Expect(p.Spec.NodeName).To(Equal(healthy), "pod %s", p.Name)
				}
			}
			g.Expect(runningReady(ns, "web", ":good")).To(Equal(2))
		}).WithTimeout(60 * time.Second).Should(Succeed())
		Eventually(func(g Gomega) {
			a := getApp(ns, "shop")
			g.Expect(policyStatus(a, "heal-nodes").Reason).To(Equal("Healed"))
			g.Expect(a.Status.Phase).To(Equal(v1alpha1.PhaseHealthy))
		}).WithTimeout(60 * time.Second).Should(Succeed())
		Expect(records(getApp(ns, "shop"), "notify")).To(BeEmpty(), "the ladder never reached notify")

		By("the kubelet of " + sick + " comes back: the node stays cordoned for the window, then Homeostat uncordons it")
		readyAt := startKubelet(sick)
		Consistently(func() bool { return getNodeObj(sick).Spec.Unschedulable }).WithTimeout(e2eUncordonAfter / 3).Should(BeTrue())
		Eventually(func(g Gomega) {
			n := getNodeObj(sick)
			g.Expect(n.Spec.Unschedulable).To(BeFalse())
			g.Expect(n.Annotations).NotTo(HaveKey(v1alpha1.ActionIDAnnotation))
			g.Expect(n.Annotations).NotTo(HaveKey("autonomic.homeostat.dev/app"))
			g.Expect(n.Annotations).NotTo(HaveKey("autonomic.homeostat.dev/cordoned-at"))
		}).WithTimeout(e2eUncordonAfter + 30*time.Second).Should(Succeed())
		// The Ready condition's time is kept to the second.
		Expect(time.Since(readyAt)).To(BeNumerically(">=", e2eUncordonAfter-time.Second), "uncordoned only after the window")
		Eventually(func(g Gomega) {
			g.Expect(uncordonEvents(metav1.NamespaceDefault, sick)).To(ContainElement(ContainSubstring("cordoned by action " + rec.ID)))
			g.Expect(uncordonEvents(ns, "shop")).To(ContainElement(ContainSubstring("Node " + sick)))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Expect(getNodeObj(healthy).Spec.Unschedulable).To(BeFalse())
	})

	It("refuses a drain from a namespace the admin does not list, says why and leaves the node alone; a ClusterHealingPolicy may drain it", func() {
		ns := newNamespace("nodes-refused")
		pool := addPool(ns, 2)
		sick := pool[0]
		createSpreadDeployment(ns, "web", 2)
		waitRunning(ns, "web", ":good", 2)

		By("the manager runs with node actions only from ClusterHealingPolicies and from namespace infra")
		restartManagerWith("--node-actions-namespaces=infra")
		Expect(k8s.Create(ctx, nodeApp(ns, drainNode("web", nil)))).To(Succeed())
		waitReady(ns, "shop")

		By("the kubelet of " + sick + " stops")
		stopKubelet(sick)

		By("the app's own drain is refused, and status says why and whom to ask")
		Eventually(func(g Gomega) {
			st := policyStatus(getApp(ns, "shop"), "heal-nodes")
			g.Expect(st.State).To(Equal(v1alpha1.PolicyHeld), st.Message)
			g.Expect(st.Reason).To(Equal("NodeActionsNotAllowed"))
			g.Expect(st.Message).To(ContainSubstring("namespace " + ns + " is not listed"))
			g.Expect(st.Message).To(ContainSubstring("--node-actions-namespaces"))
			g.Expect(st.Message).To(ContainSubstring("ask the cluster admin"))
		}).WithTimeout(90 * time.Second).Should(Succeed())
		Consistently(func(g Gomega) {
			n := getNodeObj(sick)
			g.Expect(n.Spec.Unschedulable).To(BeFalse(), "the node is not cordoned")
			g.Expect(n.Annotations).NotTo(HaveKey(v1alpha1.ActionIDAnnotation))
			g.Expect(records(getApp(ns, "shop"), "")).To(BeEmpty(), "nothing is recorded")
			for _, p := range pods(ns, "web") {
				g.Expect(p.DeletionTimestamp).To(BeNil(), "pod %s is not evicted", p.Name)
			}
		}).WithTimeout(5 * time.Second).Should(Succeed())

		By("a ClusterHealingPolicy, which the admin writes, drains the node for the same app")
		chp := &v1alpha1.ClusterHealingPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: ns},
			Spec: v1alpha1.ClusterHealingPolicySpec{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: ns}},
				HealingPolicySpec: v1alpha1.HealingPolicySpec{Healing: v1alpha1.Healing{
					Policies: []v1alpha1.Policy{{Name: "admin-drain", Remediate: &v1alpha1.RemediatePolicy{
						When:      []string{"ReplicasLost"},
						VerifyFor: &metav1.Duration{Duration: 5 * time.Second},
						Steps:     []v1alpha1.RemediationStep{step(drainNode("web", nil), 2*time.Minute)},
					}}},
				}},
			},
		}
		Expect(k8s.Create(ctx, chp)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(context.Background(), chp))).To(Succeed()) })
		Eventually(func(g Gomega) {
			a := getApp(ns, "shop")
			g.Expect(policyStatus(a, "admin-drain").Source).To(Equal("ClusterHealingPolicy " + ns))
			rs := records(a, "drainNode")
			g.Expect(rs).NotTo(BeEmpty())
			g.Expect(rs[0].Policy).To(Equal("admin-drain"))
			g.Expect(rs[0].Result).To(Equal(v1alpha1.ResultSucceeded), rs[0].Message)
			g.Expect(rs[0].Objects).To(Equal([]string{sick}))
		}).WithTimeout(90 * time.Second).Should(Succeed())
		Expect(getNodeObj(sick).Spec.Unschedulable).To(BeTrue())
	})

	It("holds the drain while too large a share of the nodes is NotReady or cordoned, says why in status, and drains once the share falls", func() {
		ns := newNamespace("nodes-held")
		pool := addPool(ns, 2)
		sick, other := pool[0], pool[1]
		createSpreadDeployment(ns, "web", 2)
		waitRunning(ns, "web", ":good", 2)

		// One node of the whole cluster may be NotReady or cordoned: the sick one alone
		// would be drained, whatever the size of the cluster.
		maxOne := intstr.FromInt32(1)
		Expect(k8s.Create(ctx, nodeApp(ns, drainNode("web", &maxOne)))).To(Succeed())
		waitReady(ns, "shop")

		By("another node is already cordoned, for maintenance")
		setUnschedulable(other, true)
		By("the kubelet of " + sick + " stops")
		stopKubelet(sick)

		By("the drain is held, and status says why")
		Eventually(func(g Gomega) {
			st := policyStatus(getApp(ns, "shop"), "heal-nodes")
			g.Expect(st.State).To(Equal(v1alpha1.PolicyHeld), st.Message)
			g.Expect(st.Reason).To(Equal("TooManyUnavailableNodes"))
			g.Expect(st.Message).To(ContainSubstring("above maxUnavailableNodes 1 (1 node)"))
			g.Expect(st.Message).To(ContainSubstring("cordoned " + other))
		}).WithTimeout(90 * time.Second).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(getNodeObj(sick).Spec.Unschedulable).To(BeFalse(), "the sick node is not cordoned")
			g.Expect(records(getApp(ns, "shop"), "drainNode")).To(BeEmpty())
			for _, p := range pods(ns, "web") {
				g.Expect(p.DeletionTimestamp).To(BeNil(), "pod %s is not evicted", p.Name)
			}
		}).WithTimeout(5 * time.Second).Should(Succeed())

		By("the maintenance ends: with one node unavailable the drain goes ahead")
		setUnschedulable(other, false)
		Eventually(func(g Gomega) {
			rs := records(getApp(ns, "shop"), "drainNode")
			g.Expect(rs).NotTo(BeEmpty())
			g.Expect(rs[0].Result).To(Equal(v1alpha1.ResultSucceeded), rs[0].Message)
			g.Expect(rs[0].Objects).To(Equal([]string{sick}))
			g.Expect(getNodeObj(sick).Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, rs[0].ID))
		}).WithTimeout(60 * time.Second).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(runningReady(ns, "web", ":good")).To(Equal(2))
			g.Expect(webNodes(ns)).To(HaveEach(other))
		}).WithTimeout(60 * time.Second).Should(Succeed())
	})
})

// kwokManagedAnnotation is the annotation kwok selects the nodes it manages by (see
// internal/devcluster). Without it kwok no longer sees the node's changes, so it never
// sets the node Ready again.
const kwokManagedAnnotation = "kwok.x-k8s.io/node"

// poolLabel keeps a spec's Deployment on the spec's own nodes.
const poolLabel = "e2e.homeostat.dev/pool"

// addPool adds n kwok nodes labelled for the spec and removes them after it. The names
// are sorted.
func addPool(pool string, n int) []string {
	ctx := context.Background()
	var before corev1.NodeList
	Expect(k8s.List(ctx, &before)).To(Succeed())
	Expect(cluster.AddNodes(ctx, n)).To(Succeed())
	var after corev1.NodeList
	Expect(k8s.List(ctx, &after)).To(Succeed())
	var added []string
	for _, node := range after.Items {
		if !slices.ContainsFunc(before.Items, func(b corev1.Node) bool { return b.Name == node.Name }) {
			added = append(added, node.Name)
		}
	}
	Expect(added).To(HaveLen(n))
	slices.Sort(added)
	for _, name := range added {
		DeferCleanup(retireNode, name)
		patchNode(name, `{"metadata":{"labels":{"`+poolLabel+`":"`+pool+`"}}}`)
	}
	return added
}

// retireNode removes a node a spec added, and its pods. kwok is handed the node back
// first, so that it sees the deletion and lets go of the node's lease.
func retireNode(name string) {
	ctx := context.Background()
	patchNode(name, `{"metadata":{"annotations":{"`+kwokManagedAnnotation+`":"fake"}}}`)
	var list corev1.PodList
	Expect(k8s.List(ctx, &list, client.MatchingFields{"spec.nodeName": name})).To(Succeed())
	for i := range list.Items {
		Expect(client.IgnoreNotFound(k8s.Delete(ctx, &list.Items[i], client.GracePeriodSeconds(0)))).To(Succeed())
	}
	Expect(client.IgnoreNotFound(k8s.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}))).To(Succeed())
	Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Name: name}, &corev1.Node{}))
	}).WithTimeout(30 * time.Second).Should(BeTrue())
}

func patchNode(name, mergePatch string) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	Expect(k8s.Patch(context.Background(), node, client.RawPatch(types.MergePatchType, []byte(mergePatch)))).To(Succeed())
}

func setUnschedulable(name string, on bool) {
	if on {
		patchNode(name, `{"spec":{"unschedulable":true}}`)
		return
	}
	patchNode(name, `{"spec":{"unschedulable":null}}`)
}

// restartManagerWith restarts the manager with extra flags for the rest of the spec, and
// with its usual flags after it.
func restartManagerWith(args ...string) {
	mgr.stop()
	mgr.extraArgs = args
	Expect(mgr.start(nil)).To(Succeed())
	DeferCleanup(func() {
		mgr.stop()
		mgr.extraArgs = nil
		Expect(mgr.start(nil)).To(Succeed())
	})
}

// uncordonEvents returns the notes of the NodeUncordoned Events about an object of the
// namespace (a node's are in default).
func uncordonEvents(namespace, name string) []string {
	var list eventsv1.EventList
	Expect(k8s.List(context.Background(), &list, client.InNamespace(namespace))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Reason == "NodeUncordoned" {
			out = append(out, e.Note)
		}
	}
	return out
}

func getNodeObj(name string) *corev1.Node {
	n := &corev1.Node{}
	Expect(k8s.Get(context.Background(), client.ObjectKey{Name: name}, n)).To(Succeed())
	return n
}

// stopKubelet makes a node NotReady as a kubelet whose container runtime died would:
// kwok stops managing the node (so nothing sets it Ready again), and its Ready condition
// turns False. The node lifecycle controller then taints the node and marks its pods not
// ready, within its monitor period (5 s). kwok keeps renewing the node's lease, so the
// node never turns Unknown by the grace period; a Ready condition of False is what a
// kubelet that still runs but cannot run pods reports.
func stopKubelet(name string) {
	ctx := context.Background()
	patchNode(name, `{"metadata":{"annotations":{"`+kwokManagedAnnotation+`":null}}}`)
	Eventually(func() error {
		n := &corev1.Node{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: name}, n); err != nil {
			return err
		}
		now := metav1.Now()
		for i := range n.Status.Conditions {
			if c := &n.Status.Conditions[i]; c.Type == corev1.NodeReady {
				c.Status, c.Reason, c.Message = corev1.ConditionFalse, "KubeletNotReady", "container runtime is down"
				c.LastHeartbeatTime, c.LastTransitionTime = now, now
			}
		}
		return k8s.Status().Update(ctx, n)
	}).Should(Succeed())
	Eventually(func(g Gomega) {
		n := getNodeObj(name)
		g.Expect(n.Spec.Taints).To(ContainElement(HaveField("Key", corev1.TaintNodeNotReady)),
			"the node lifecycle controller has seen the node NotReady")
	}).WithTimeout(30 * time.Second).Should(Succeed())
	// The node lifecycle controller marks pods not ready only when a node's heartbeat goes
	// stale (Unknown); a kubelet that still reports, but whose runtime died, reports its
	// pods not ready itself. kwok no longer manages the node, so the test does it.
	var pods corev1.PodList
	Expect(k8s.List(ctx, &pods, client.MatchingFields{"spec.nodeName": name})).To(Succeed())
	for i := range pods.Items {
		p := &pods.Items[i]
		Eventually(func() error {
			cur := &corev1.Pod{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(p), cur); err != nil {
				return client.IgnoreNotFound(err)
			}
			now := metav1.Now()
			for j := range cur.Status.Conditions {
				if c := &cur.Status.Conditions[j]; c.Type == corev1.PodReady || c.Type == corev1.ContainersReady {
					c.Status, c.Reason, c.LastTransitionTime = corev1.ConditionFalse, "ContainersNotReady", now
				}
			}
			for j := range cur.Status.ContainerStatuses {
				cur.Status.ContainerStatuses[j].Ready = false
			}
			return k8s.Status().Update(ctx, cur)
		}).Should(Succeed())
	}
}

// startKubelet brings back a node stopKubelet stopped, as a kubelet that recovers would:
// its Ready condition turns True now, and kwok manages the node again. (kwok itself would
// date the transition at the node's creation.) It returns when the node turned Ready.
func startKubelet(name string) time.Time {
	ctx := context.Background()
	var at time.Time
	Eventually(func() error {
		n := &corev1.Node{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: name}, n); err != nil {
			return err
		}
		now := metav1.Now()
		at = now.Time
		for i := range n.Status.Conditions {
			if c := &n.Status.Conditions[i]; c.Type == corev1.NodeReady {
				c.Status, c.Reason, c.Message = corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"
				c.LastHeartbeatTime, c.LastTransitionTime = now, now
			}
		}
		return k8s.Status().Update(ctx, n)
	}).Should(Succeed())
	patchNode(name, `{"metadata":{"annotations":{"`+kwokManagedAnnotation+`":"fake"}}}`)
	return at
}

// createSpreadDeployment creates a Deployment on the spec's pool, one pod per node at
// most one apart. Nodes with taints the pods do not tolerate (NotReady, cordoned) are
// left out of the spread, so replacements of evicted pods land on the healthy nodes.
func createSpreadDeployment(pool, name string, replicas int32) {
	d := deployment(pool, name, "registry.local/shop/web:good", replicas)
	spec := &d.Spec.Template.Spec
	spec.NodeSelector = map[string]string{poolLabel: pool}
	spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
		MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.DoNotSchedule,
		LabelSelector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
		NodeTaintsPolicy: ptr.To(corev1.NodeInclusionPolicyHonor),
	}}
	Expect(k8s.Create(context.Background(), d)).To(Succeed())
}

// webNodes returns the nodes of the web pods that are not terminating.
func webNodes(ns string) []string {
	var out []string
	for _, p := range pods(ns, "web") {
		if p.DeletionTimestamp == nil {
			out = append(out, p.Spec.NodeName)
		}
	}
	return out
}

func drainNode(component string, maxUnavailable *intstr.IntOrString) v1alpha1.Action {
	return v1alpha1.Action{DrainNode: &v1alpha1.NodeAction{Component: component, MaxNodes: 1,
		MaxUnavailableNodes: maxUnavailable, Timeout: dur(2 * time.Minute)}}
}

// nodeApp is an app of the web Deployment whose ladder acts on lost replicas with the
// node action, then calls a person.
func nodeApp(ns string, action v1alpha1.Action) *v1alpha1.AutonomicApp {
	return &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
		Spec: v1alpha1.AutonomicAppSpec{
			Mode:       v1alpha1.ModeActive,
			Components: []v1alpha1.Component{workload("web", "web")},
			Healing: v1alpha1.Healing{
				Symptoms: []v1alpha1.Symptom{{Name: "ReplicasLost",
					Expression: "components.web.readyReplicas < components.web.desiredReplicas"}},
				Policies: []v1alpha1.Policy{{Name: "heal-nodes", Remediate: &v1alpha1.RemediatePolicy{
					When: []string{"ReplicasLost"},
					// The replacement pods settle within seconds: a short window keeps the
					// spec from waiting out the step's two minutes to call the drain a fix.
					VerifyFor: &metav1.Duration{Duration: 5 * time.Second},
					Steps: []v1alpha1.RemediationStep{
						step(action, 2*time.Minute),
						step(notify("web lost replicas and draining their node did not bring them back"), time.Minute),
					}}}},
			},
		},
	}
}
