package execute

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

var _ = Describe("UncordonNode", func() {
	var f *fixture
	BeforeEach(func() { f = newFixture() })
	action := v1alpha1.Action{CordonNode: &v1alpha1.NodeAction{Component: "web"}}
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

	// cordoned cordons a node through the cordonNode effector, as a ladder step would.
	cordoned := func(suffix, id string) string {
		name := f.node(suffix, true)
		req := Request{App: f.app, Action: action, Record: &v1alpha1.ActionRecord{
			ID: id, Time: metav1.NewTime(at), Target: "Node/" + name, Objects: []string{name}, Result: v1alpha1.ResultPending}}
		Expect(f.eff.Execute(ctx, req).Result).To(Equal(v1alpha1.ResultSucceeded))
		return name
	}

	It("stamps the cordon's time only on a cordon it makes, and Homeostat alone owns spec.unschedulable then", func() {
		name := cordoned("a", "act-u0")
		n := getNode(name)
		Expect(n.Annotations).To(HaveKeyWithValue(plan.CordonedAtAnnotation, "2030-01-02T03:04:05Z"))
		Expect(n.Annotations).To(HaveKeyWithValue(plan.NodeAppAnnotation, f.ns+"/shop"))

		By("a node someone else cordoned gets the id and the app, not the cordon's time")
		theirs := f.node("theirs", true, func(n *corev1.Node) { n.Spec.Unschedulable = true })
		req := Request{App: f.app, Action: action, Record: &v1alpha1.ActionRecord{
			ID: "act-u0b", Time: metav1.NewTime(at), Target: "Node/" + theirs, Objects: []string{theirs}, Result: v1alpha1.ResultPending}}
		Expect(f.eff.Execute(ctx, req).Result).To(Equal(v1alpha1.ResultSucceeded))
		n = getNode(theirs)
		Expect(n.Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, "act-u0b"))
		Expect(n.Annotations).NotTo(HaveKey(plan.CordonedAtAnnotation))

		By("where the API server tracks the node's managed fields, the cordon is homeostat's field")
		tracked := &corev1.Node{ObjectMeta: metav1.ObjectMeta{GenerateName: f.ns + "-tracked-"}}
		Expect(k8s.Create(ctx, tracked)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(context.Background(), tracked) })
		req.Record = &v1alpha1.ActionRecord{ID: "act-u0c", Time: metav1.NewTime(at), Objects: []string{tracked.Name}}
		Expect(f.eff.Execute(ctx, req).Result).To(Equal(v1alpha1.ResultSucceeded))
		n = getNode(tracked.Name)
		Expect(n.ManagedFields).NotTo(BeEmpty())
		Expect(plan.UnschedulableOwners(n)).To(Equal([]string{v1alpha1.FieldManager}))
	})

	It("lifts the cordon and its stamps, keeps other annotations, and writes nothing the second time", func() {
		name := cordoned("b", "act-u1")
		Expect(k8s.Patch(ctx, getNode(name), client.RawPatch(types.MergePatchType,
			[]byte(`{"metadata":{"annotations":{"team":"infra"}}}`)))).To(Succeed())

		done, err := f.eff.UncordonNode(ctx, getNode(name))
		Expect(err).NotTo(HaveOccurred())
		Expect(done).To(BeTrue())
		n := getNode(name)
		Expect(n.Spec.Unschedulable).To(BeFalse())
		Expect(n.Annotations).NotTo(HaveKey(v1alpha1.ActionIDAnnotation))
		Expect(n.Annotations).NotTo(HaveKey(plan.NodeAppAnnotation))
		Expect(n.Annotations).NotTo(HaveKey(plan.CordonedAtAnnotation))
		Expect(n.Annotations).To(HaveKeyWithValue("team", "infra"))

		done, err = f.eff.UncordonNode(ctx, n)
		Expect(err).NotTo(HaveOccurred())
		Expect(done).To(BeFalse())
		Expect(nodeResourceVersion(name)).To(Equal(n.ResourceVersion), "the second call wrote nothing")
	})

	It("fails with a conflict, changing nothing, when the node changed since it was read", func() {
		name := cordoned("c", "act-u2")
		read := getNode(name)
		By("a person cordons the node again after the read: off, then on")
		Expect(k8s.Patch(ctx, getNode(name), client.RawPatch(types.MergePatchType, []byte(`{"spec":{"unschedulable":null}}`)),
			client.FieldOwner("kubectl-cordon"))).To(Succeed())
		Expect(k8s.Patch(ctx, getNode(name), client.RawPatch(types.MergePatchType, []byte(`{"spec":{"unschedulable":true}}`)),
			client.FieldOwner("kubectl-cordon"))).To(Succeed())

		_, err := f.eff.UncordonNode(ctx, read)
		Expect(apierrors.IsConflict(err)).To(BeTrue(), "error %v", err)
		Expect(getNode(name).Spec.Unschedulable).To(BeTrue(), "the person's cordon stands")
	})

	It("is not an error on a node that is gone", func() {
		name := cordoned("d", "act-u3")
		read := getNode(name)
		Expect(k8s.Delete(ctx, read)).To(Succeed())
		done, err := f.eff.UncordonNode(ctx, read)
		Expect(err).NotTo(HaveOccurred())
		Expect(done).To(BeFalse())
	})
})
