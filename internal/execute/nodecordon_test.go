package execute

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

var _ = Describe("cordonNode", func() {
	var f *fixture
	BeforeEach(func() { f = newFixture() })
	action := v1alpha1.Action{CordonNode: &v1alpha1.NodeAction{Component: "web"}}

	It("cordons the node of the unhealthy pods, stamps the action id, leaves the pods, and writes nothing when run again", func() {
		healthy, sick := f.node("a", true), f.node("b", true)
		d := f.deployment("web", 3)
		rs := f.replicaSet(d, 1, 3)
		podOn(f.ns, healthy, "web-a", running, controlledBy(rs, gvkReplicaSet))
		podOn(f.ns, sick, "web-b", notReady, controlledBy(rs, gvkReplicaSet))
		podOn(f.ns, sick, "web-c", crashLooping, controlledBy(rs, gvkReplicaSet))

		req := f.prepare("act-c1", action, f.gather(kindDeployment, "web"))
		Expect(req.Record.Objects).To(Equal([]string{sick}))
		Expect(req.Record.Target).To(Equal("Node/" + sick))

		out := f.eff.Execute(ctx, req)
		Expect(out).To(Equal(Outcome{Result: v1alpha1.ResultSucceeded, Message: "Cordoned 1 of 1 nodes (" + sick + ")"}))
		n := getNode(sick)
		Expect(n.Spec.Unschedulable).To(BeTrue())
		Expect(n.Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, "act-c1"))
		Expect(getNode(healthy).Spec.Unschedulable).To(BeFalse())
		Expect(getNode(healthy).Annotations).NotTo(HaveKey(v1alpha1.ActionIDAnnotation))
		Expect(getPod(f.ns, "web-b").DeletionTimestamp).To(BeNil(), "a cordon evicts nothing")
		Expect(f.drainEvents()).To(ConsistOf("Normal ActionSucceeded Cordoned 1 of 1 nodes (" + sick + ") " +
			"(cordonNode on Node/" + sick + ", action act-c1)"))

		again := f.eff.Execute(ctx, req)
		Expect(again).To(Equal(Outcome{Result: v1alpha1.ResultSucceeded,
			Message: "Cordoned 0 of 1 nodes; 1 already cordoned by this action (" + sick + ")"}))
		Expect(nodeResourceVersion(sick)).To(Equal(n.ResourceVersion), "the second run wrote nothing")
	})

	It("takes over a node someone else cordoned and reports nodes that are gone", func() {
		cordoned := f.node("c", true, func(n *corev1.Node) {
			n.Spec.Unschedulable = true
			n.Annotations = map[string]string{v1alpha1.ActionIDAnnotation: "someone-else"}
		})
		gone := f.ns + "-gone"
		req := Request{App: f.app, Action: action, Record: &v1alpha1.ActionRecord{
			ID: "act-c2", Time: metav1.NewTime(time.Now()), Target: "Nodes " + cordoned + ", " + gone,
			Objects: []string{cordoned, gone}, Result: v1alpha1.ResultPending}}

		out := f.eff.Execute(ctx, req)
		Expect(out).To(Equal(Outcome{Result: v1alpha1.ResultSucceeded,
			Message: "Cordoned 1 of 2 nodes (" + cordoned + "); 1 gone from the cluster (" + gone + ")"}))
		n := getNode(cordoned)
		Expect(n.Spec.Unschedulable).To(BeTrue())
		Expect(n.Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, "act-c2"))
	})

	It("says why when the component has no unhealthy pod on a node", func() {
		d := f.deployment("web", 1)
		rs := f.replicaSet(d, 1, 1)
		podOn(f.ns, f.node("d", true), "web-a", running, controlledBy(rs, gvkReplicaSet))
		_, err := f.eff.Prepare(Request{App: f.app, Action: action, Target: f.gather(kindDeployment, "web")})
		Expect(err).To(MatchError("no unhealthy pod of Deployment/web is bound to a node, so there is no node to cordon"))
	})
})
