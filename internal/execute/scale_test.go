package execute

import (
	"encoding/json"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	acappsv1 "k8s.io/client-go/applyconfigurations/apps/v1"
	accorev1 "k8s.io/client-go/applyconfigurations/core/v1"
	acmetav1 "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func TestScalePrepare(t *testing.T) {
	e := &Effectors{}
	scaleBy := func(a v1alpha1.ScaleAction) Request {
		a.Component = "web"
		return Request{Action: v1alpha1.Action{Scale: &a}, Target: (&fakeDeployment{replicas: 4}).component()}
	}
	t.Run("scaling up is not disruptive", func(t *testing.T) {
		p, err := e.Prepare(scaleBy(v1alpha1.ScaleAction{Delta: ptr.To[int32](2)}))
		if err != nil || *p.Replicas != 6 || p.Disruptive || p.Pods != 0 || p.Target != "Deployment/web from 4 to 6 replicas" {
			t.Errorf("Prepare() = %+v, %v", p, err)
		}
	})
	t.Run("scaling down is disruptive by the pods it removes", func(t *testing.T) {
		p, err := e.Prepare(scaleBy(v1alpha1.ScaleAction{Replicas: ptr.To[int32](1)}))
		if err != nil || *p.Replicas != 1 || !p.Disruptive || p.Pods != 3 {
			t.Errorf("Prepare() = %+v, %v", p, err)
		}
	})
	t.Run("a scale that changes nothing says so", func(t *testing.T) {
		_, err := e.Prepare(scaleBy(v1alpha1.ScaleAction{Delta: ptr.To[int32](3), MaxReplicas: ptr.To[int32](4)}))
		if err == nil || err.Error() != "Deployment/web already has 4 replicas, its maxReplicas, so scaling would change nothing" {
			t.Errorf("Prepare() error = %v", err)
		}
	})
}

// managedFields is the decoded managedFields of an object, for assertions.
type managedField struct {
	Manager, Operation, Subresource string
	Fields                          map[string]any
}

func managedFieldsOf(obj client.Object) []managedField {
	var out []managedField
	for _, m := range obj.GetManagedFields() {
		mf := managedField{Manager: m.Manager, Operation: string(m.Operation), Subresource: m.Subresource}
		Expect(json.Unmarshal(m.FieldsV1.GetRawBytes(), &mf.Fields)).To(Succeed())
		out = append(out, mf)
	}
	return out
}

var _ = Describe("scale", func() {
	var f *fixture
	BeforeEach(func() { f = newFixture() })
	scaleTo := func(n int32) v1alpha1.Action {
		return v1alpha1.Action{Scale: &v1alpha1.ScaleAction{Component: "web", Replicas: ptr.To(n)}}
	}

	It("applies spec.replicas on /scale as homeostat, owning only spec.replicas, and is a no-op when run twice", func() {
		// A GitOps tool applies the Deployment, replicas included.
		Expect(k8s.Apply(ctx, acappsv1.Deployment("web", f.ns).WithSpec(acappsv1.DeploymentSpec().
			WithReplicas(2).
			WithSelector(acmetav1.LabelSelector().WithMatchLabels(appLabels)).
			WithTemplate(accorev1.PodTemplateSpec().WithLabels(appLabels).WithSpec(accorev1.PodSpec().
				WithContainers(accorev1.Container().WithName("web").WithImage("web:v1"))))),
			client.FieldOwner("gitops"))).To(Succeed())
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: f.ns}}

		req := f.prepare("act-s1", scaleTo(5), f.gather(kindDeployment, "web"))
		Expect(req.Record.Target).To(Equal("Deployment/web from 2 to 5 replicas"))
		out := f.eff.Execute(ctx, req)
		Expect(out).To(Equal(Outcome{Result: v1alpha1.ResultSucceeded, Message: "Scaled Deployment/web to 5 replicas"}))

		got := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(d), got)).To(Succeed())
		Expect(*got.Spec.Replicas).To(BeEquivalentTo(5))
		Expect(got.Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, "act-s1"))
		fields := managedFieldsOf(got)
		GinkgoWriter.Printf("managedFields after scale: %+v\n", fields)
		Expect(fields).To(ContainElement(managedField{
			Manager: "homeostat", Operation: "Apply", Subresource: "scale",
			Fields: map[string]any{"f:spec": map[string]any{"f:replicas": map[string]any{}}},
		}))
		Expect(fields).To(ContainElement(managedField{
			Manager: "homeostat", Operation: "Update",
			Fields: map[string]any{"f:metadata": map[string]any{"f:annotations": map[string]any{
				".": map[string]any{}, "f:" + v1alpha1.ActionIDAnnotation: map[string]any{}}}},
		}))
		for _, m := range fields {
			if m.Manager == "gitops" {
				Expect(m.Fields["f:spec"]).NotTo(HaveKey("f:replicas"), "forced apply took replicas from gitops")
				Expect(m.Fields["f:spec"]).To(HaveKey("f:template"))
			}
		}
		Expect(f.drainEvents()).To(ConsistOf(
			"Normal ActionSucceeded Scaled Deployment/web to 5 replicas (scale on Deployment/web from 2 to 5 replicas, action act-s1)"))

		again := f.eff.Execute(ctx, req)
		Expect(again.Result).To(Equal(v1alpha1.ResultSucceeded))
		after := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(d), after)).To(Succeed())
		Expect(after.ResourceVersion).To(Equal(got.ResourceVersion), "the second run wrote nothing")
	})

	It("scales a StatefulSet down through the same subresource", func() {
		f.statefulSet("db", 3)
		req := f.prepare("act-s2", v1alpha1.Action{Scale: &v1alpha1.ScaleAction{Component: "db", Delta: ptr.To[int32](-2)}},
			f.gather(kindStatefulSet, "db"))
		Expect(*req.Record.Replicas).To(BeEquivalentTo(1))
		out := f.eff.Execute(ctx, req)
		Expect(out.Result).To(Equal(v1alpha1.ResultSucceeded), out.Message)
		got := &appsv1.StatefulSet{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "db"}, got)).To(Succeed())
		Expect(*got.Spec.Replicas).To(BeEquivalentTo(1))
		Expect(managedFieldsOf(got)).To(ContainElement(HaveField("Subresource", "scale")))
	})

	It("fails when the workload is gone", func() {
		d := f.deployment("web", 1)
		req := f.prepare("act-s3", scaleTo(2), f.gather(kindDeployment, "web"))
		Expect(k8s.Delete(ctx, d)).To(Succeed())
		out := f.eff.Execute(ctx, req)
		Expect(out.Result).To(Equal(v1alpha1.ResultFailed))
		Expect(out.Message).To(HavePrefix("Could not scale Deployment/web to 2 replicas: "))
	})
})
