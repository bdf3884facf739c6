package execute

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

var _ = Describe("drainNode", func() {
	var f *fixture
	BeforeEach(func() { f = newFixture() })
	drain := func(timeout time.Duration) v1alpha1.Action {
		a := v1alpha1.Action{DrainNode: &v1alpha1.NodeAction{Component: "web"}}
		if timeout > 0 {
			a.DrainNode.Timeout = &metav1.Duration{Duration: timeout}
		}
		return a
	}
	// prepareAt prepares a drain whose intent was recorded at the fake clock's time.
	prepareAt := func(id string, action v1alpha1.Action) Request {
		req := f.prepare(id, action, f.gather(kindDeployment, "web"))
		req.Record.Time = metav1.NewTime(f.clock.Now())
		return req
	}
	otherNamespace := func() string {
		// Named after the test's namespace, so that it sorts after it in messages.
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns + "-x"}}
		Expect(k8s.Create(ctx, ns)).To(Succeed())
		return ns.Name
	}

	It("cordons the node and evicts every pod on it but DaemonSet, static and finished ones, leaves unmanaged pods, and acts once", func() {
		sick, healthy := f.node("a", false), f.node("b", true)
		d := f.deployment("web", 2)
		rs := f.replicaSet(d, 1, 2)
		podOn(f.ns, sick, "web-a", notReady, controlledBy(rs, gvkReplicaSet))
		podOn(f.ns, healthy, "web-b", running, controlledBy(rs, gvkReplicaSet))
		// Other tenants' pods on the same node.
		other := otherNamespace()
		podOn(other, sick, "db-0", running, controlledByRef("apps/v1", "StatefulSet", "db", "db-uid"))
		podOn(other, sick, "agent-x", running, controlledByRef("apps/v1", "DaemonSet", "agent", "agent-uid"))
		podOn(other, sick, "etcd-static", running, controlledByRef("v1", "Node", sick, "node-uid"), func(p *corev1.Pod) {
			p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "hash"}
		})
		done := podOn(other, sick, "job-x", running, controlledByRef("batch/v1", "Job", "job", "job-uid"))
		done.Status.Phase = corev1.PodSucceeded
		Expect(k8s.Status().Update(ctx, done)).To(Succeed())
		podOn(other, sick, "bare", running)
		going := podOn(other, sick, "going", running, controlledByRef("apps/v1", "ReplicaSet", "r", "r-uid"))
		Expect(k8s.Delete(ctx, going)).To(Succeed())

		req := prepareAt("act-d1", drain(0))
		Expect(req.Record.Objects).To(Equal([]string{sick}))
		Expect(req.Record.Target).To(Equal("Node/" + sick))

		out := f.eff.Execute(ctx, req)
		Expect(out).To(Equal(Outcome{Result: v1alpha1.ResultSucceeded, Message: "Drained Node/" + sick + ": " +
			"evicted 2 pods (" + f.ns + "/web-a, " + other + "/db-0), " +
			"1 already terminating or gone (" + other + "/going), " +
			"left 1 pod that no controller would recreate (" + other + "/bare), " +
			"skipped 3 DaemonSet, static or finished pods"}))

		n := getNode(sick)
		Expect(n.Spec.Unschedulable).To(BeTrue())
		Expect(n.Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, "act-d1"))
		Expect(n.Annotations).To(HaveKeyWithValue(plan.NodeAppAnnotation, f.ns+"/shop"), "the node names the app that holds it")
		for _, p := range []struct{ ns, name string }{{f.ns, "web-a"}, {other, "db-0"}} {
			pod := getPod(p.ns, p.name)
			Expect(pod.DeletionTimestamp).NotTo(BeNil(), "pod %s/%s is evicted", p.ns, p.name)
			Expect(pod.Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, "act-d1"))
			Expect(pod.Status.Conditions).To(ContainElement(HaveField("Type", corev1.DisruptionTarget)))
		}
		for _, name := range []string{"agent-x", "etcd-static", "job-x", "bare"} {
			Expect(getPod(other, name).DeletionTimestamp).To(BeNil(), "pod %s stays", name)
		}
		Expect(getPod(f.ns, "web-b").DeletionTimestamp).To(BeNil(), "pods on other nodes stay")
		Expect(getNode(healthy).Spec.Unschedulable).To(BeFalse())
		Expect(f.drainEvents()).To(ConsistOf(HavePrefix("Normal ActionSucceeded Drained Node/" + sick)))

		before := map[string]string{}
		for _, ns := range []string{f.ns, other} {
			for k, v := range (&fixture{ns: ns}).resourceVersions() {
				before[ns+"/"+k] = v
			}
		}
		again := f.eff.Execute(ctx, req)
		Expect(again).To(Equal(Outcome{Result: v1alpha1.ResultSucceeded, Message: "Drained Node/" + sick + ": " +
			"3 already terminating or gone (" + f.ns + "/web-a, " + other + "/db-0, " + other + "/going), " +
			"left 1 pod that no controller would recreate (" + other + "/bare), " +
			"skipped 3 DaemonSet, static or finished pods"}))
		Expect(nodeResourceVersion(sick)).To(Equal(n.ResourceVersion), "the second run did not write the node")
		after := map[string]string{}
		for _, ns := range []string{f.ns, other} {
			for k, v := range (&fixture{ns: ns}).resourceVersions() {
				after[ns+"/"+k] = v
			}
		}
		Expect(after).To(Equal(before), "the second run wrote no pod")
	})

	It("stays Pending while a PodDisruptionBudget refuses, and fails naming what is left once the timeout has passed", func() {
		sick, healthy := f.node("a", false), f.node("b", true)
		d := f.deployment("web", 3)
		rs := f.replicaSet(d, 1, 3)
		podOn(f.ns, sick, "web-a", notReady, controlledBy(rs, gvkReplicaSet))
		podOn(f.ns, sick, "web-b", running, controlledBy(rs, gvkReplicaSet))
		podOn(f.ns, healthy, "web-c", running, controlledBy(rs, gvkReplicaSet))
		// Two healthy pods and two needed: the ready web-b may not go. The unready web-a
		// may (unhealthyPodEvictionPolicy IfHealthyBudget: the budget is met).
		f.budget("web-pdb", intstr.FromInt32(2), 2, appLabels)

		req := prepareAt("act-d2", drain(2*time.Minute))
		refusal := "Eviction of pod " + f.ns + "/web-b was refused by PodDisruptionBudget web-pdb: " +
			"Cannot evict pod as it would violate the pod's disruption budget. " +
			"The disruption budget web-pdb needs 2 healthy pods and has 2 currently"
		deadline := f.clock.Now().Add(2 * time.Minute).UTC().Format(time.RFC3339)

		out := f.eff.Execute(ctx, req)
		Expect(out).To(Equal(Outcome{Result: v1alpha1.ResultPending, Message: "Draining Node/" + sick + " until " + deadline +
			", 1 pod left to evict: " + refusal + ". Evicted 1 pod (" + f.ns + "/web-a)"}))
		Expect(getNode(sick).Spec.Unschedulable).To(BeTrue())
		Expect(getPod(f.ns, "web-a").DeletionTimestamp).NotTo(BeNil())
		Expect(getPod(f.ns, "web-b").DeletionTimestamp).To(BeNil())
		Expect(DrainRetryAt(req, f.clock.Now())).To(Equal(f.clock.Now().Add(DrainRetryInterval)))

		By("a minute later the budget still refuses: still Pending, and the same refusal is recorded, not looped on")
		f.clock.SetTime(f.clock.Now().Add(time.Minute))
		again := f.eff.Execute(ctx, req)
		Expect(again).To(Equal(Outcome{Result: v1alpha1.ResultPending, Message: "Draining Node/" + sick + " until " + deadline +
			", 1 pod left to evict: " + refusal + ". 1 already terminating or gone (" + f.ns + "/web-a)"}))

		By("once the timeout has passed, the drain fails and names what is left")
		f.clock.SetTime(f.clock.Now().Add(time.Minute))
		last := f.eff.Execute(ctx, req)
		Expect(last).To(Equal(Outcome{Result: v1alpha1.ResultFailed, Message: "The drain of Node/" + sick +
			" did not finish within 2m0s, 1 pod left to evict: " + refusal + ". 1 already terminating or gone (" + f.ns + "/web-a)"}))
		Expect(getPod(f.ns, "web-b").DeletionTimestamp).To(BeNil(), "the budget was respected to the end")
		events := f.drainEvents()
		Expect(events).To(HaveLen(3))
		Expect(events[2]).To(HavePrefix("Warning ActionFailed The drain of Node/" + sick + " did not finish within 2m0s"))
	})

	It("finishes on a later call once the budget allows the eviction", func() {
		sick, healthy := f.node("a", false), f.node("b", true)
		d := f.deployment("web", 2)
		rs := f.replicaSet(d, 1, 2)
		podOn(f.ns, sick, "web-a", running, controlledBy(rs, gvkReplicaSet), func(p *corev1.Pod) {
			p.Labels["guarded"] = "yes"
		})
		podOn(f.ns, sick, "web-b", notReady, controlledBy(rs, gvkReplicaSet))
		podOn(f.ns, healthy, "web-c", running, controlledBy(rs, gvkReplicaSet))
		f.budget("guard", intstr.FromInt32(1), 1, map[string]string{"guarded": "yes"})

		req := prepareAt("act-d3", drain(0))
		Expect(f.eff.Execute(ctx, req).Result).To(Equal(v1alpha1.ResultPending))
		Expect(getPod(f.ns, "web-a").DeletionTimestamp).To(BeNil())

		By("a replacement became ready elsewhere: the budget allows one disruption")
		pdb := &policyv1.PodDisruptionBudget{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "guard"}, pdb)).To(Succeed())
		pdb.Status.CurrentHealthy, pdb.Status.ExpectedPods, pdb.Status.DisruptionsAllowed = 2, 2, 1
		Expect(k8s.Status().Update(ctx, pdb)).To(Succeed())

		f.clock.SetTime(f.clock.Now().Add(DrainRetryInterval))
		out := f.eff.Execute(ctx, req)
		Expect(out).To(Equal(Outcome{Result: v1alpha1.ResultSucceeded, Message: "Drained Node/" + sick + ": " +
			"evicted 1 pod (" + f.ns + "/web-a), 1 already terminating or gone (" + f.ns + "/web-b)"}))
		Expect(getPod(f.ns, "web-a").DeletionTimestamp).NotTo(BeNil())
	})

	It("reports a node that is gone as drained", func() {
		gone := f.ns + "-gone"
		req := Request{App: f.app, Action: drain(0), Record: &v1alpha1.ActionRecord{
			ID: "act-d4", Time: metav1.NewTime(f.clock.Now()), Target: "Node/" + gone, Objects: []string{gone},
			Result: v1alpha1.ResultPending}}
		Expect(f.eff.Execute(ctx, req)).To(Equal(Outcome{Result: v1alpha1.ResultSucceeded,
			Message: "Drained Node/" + gone + ": the node no longer exists"}))
	})
})
