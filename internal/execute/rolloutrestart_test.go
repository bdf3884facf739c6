package execute

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

var _ = Describe("rolloutRestart", func() {
	var f *fixture
	BeforeEach(func() { f = newFixture() })
	action := v1alpha1.Action{RolloutRestart: &v1alpha1.ComponentAction{Component: "web"}}

	It("stamps restartedAt from the record and the action id on a Deployment, and changes nothing when run again", func() {
		d := f.deployment("web", 4)
		req := f.prepare("act-rr1", action, f.gather(kindDeployment, "web"))
		Expect(req.Record.Target).To(Equal("Deployment/web"))
		req.Record.Time = metav1.NewTime(time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC))

		out := f.eff.Execute(ctx, req)
		Expect(out).To(Equal(Outcome{Result: v1alpha1.ResultSucceeded,
			Message: "Started a rolling restart of Deployment/web (restartedAt 2030-05-06T07:08:09Z)"}))
		got := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(d), got)).To(Succeed())
		Expect(got.Spec.Template.Annotations).To(Equal(map[string]string{
			RestartedAtAnnotation:       "2030-05-06T07:08:09Z",
			v1alpha1.ActionIDAnnotation: "act-rr1",
		}))
		Expect(got.Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, "act-rr1"))
		Expect(got.Generation).To(Equal(d.Generation + 1))

		again := f.eff.Execute(ctx, req)
		Expect(again.Result).To(Equal(v1alpha1.ResultSucceeded))
		Expect(again.Message).To(Equal("Deployment/web was already restarted by this action (restartedAt 2030-05-06T07:08:09Z)"))
		after := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(d), after)).To(Succeed())
		Expect(after.ResourceVersion).To(Equal(got.ResourceVersion))
		Expect(after.Generation).To(Equal(got.Generation))
		Expect(after.Spec.Template).To(Equal(got.Spec.Template))
	})

	It("writes the same bytes for the same record, which the API server treats as a no-op", func() {
		d := f.deployment("web", 1)
		req := f.prepare("act-rr2", action, f.gather(kindDeployment, "web"))
		Expect(f.eff.Execute(ctx, req).Result).To(Equal(v1alpha1.ResultSucceeded))
		first := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(d), first)).To(Succeed())

		// Even past the early return, the patch itself is deterministic: send it again.
		ann := first.Spec.Template.Annotations
		Expect(f.eff.patch(ctx, first.DeepCopy(), types.MergePatchType, mustJSON(map[string]any{
			"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{"annotations": ann}}},
		}))).To(Succeed())
		second := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(d), second)).To(Succeed())
		Expect(second.ResourceVersion).To(Equal(first.ResourceVersion))
	})

	It("restarts a StatefulSet", func() {
		f.statefulSet("db", 2)
		req := f.prepare("act-rr3", v1alpha1.Action{RolloutRestart: &v1alpha1.ComponentAction{Component: "db"}},
			f.gather(kindStatefulSet, "db"))
		Expect(f.eff.Execute(ctx, req).Result).To(Equal(v1alpha1.ResultSucceeded))
		got := &appsv1.StatefulSet{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "db"}, got)).To(Succeed())
		Expect(got.Spec.Template.Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, "act-rr3"))
		Expect(got.Spec.Template.Annotations).To(HaveKey(RestartedAtAnnotation))
	})

	It("refuses a ReplicaSet with a clear message", func() {
		d := f.deployment("web", 1)
		f.replicaSet(d, 1, 1)
		target := f.gather(kindReplicaSet, "web-h1")
		const msg = "ReplicaSet/web-h1 cannot be restarted by a rollout: only Deployments and StatefulSets roll out; use restartPods"

		_, err := f.eff.Prepare(Request{App: f.app, Action: action, Target: target})
		Expect(err).To(MatchError(msg))
		out := f.eff.Execute(ctx, Request{App: f.app, Action: action, Target: target,
			Record: &v1alpha1.ActionRecord{ID: "act-rr4", Target: "ReplicaSet/web-h1"}})
		Expect(out).To(Equal(Outcome{Result: v1alpha1.ResultFailed, Message: msg}))
	})

	It("refuses a paused Deployment", func() {
		d := f.deployment("web", 1)
		d.Spec.Paused = true
		Expect(k8s.Update(ctx, d)).To(Succeed())
		_, err := f.eff.Prepare(Request{App: f.app, Action: action, Target: f.gather(kindDeployment, "web")})
		Expect(err).To(MatchError("Deployment/web is paused, so a rollout would not start; resume it first"))
	})
})
