package execute

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/text"
)

func TestObserveCannotTellWithoutARecordOrAnEffectToRead(t *testing.T) {
	rec := &v1alpha1.ActionRecord{ID: "act-1", Objects: []string{"web-a"}}
	restart := v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "web"}}
	tests := []struct {
		name string
		req  Request
	}{
		{"a request without a ledger record", Request{Action: restart, Target: (&fakeDeployment{replicas: 1}).component()}},
		{"a record without an id", Request{Action: restart, Target: (&fakeDeployment{replicas: 1}).component(),
			Record: &v1alpha1.ActionRecord{Objects: []string{"web-a"}}}},
		{"an action that sets none of its members", Request{Record: rec}},
		{"failover, which has no observer", Request{Action: v1alpha1.Action{Failover: &v1alpha1.FailoverAction{Policy: "p"}}, Record: rec}},
		{"notify, whose Event is not read back", Request{Action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "m"}}, Record: rec}},
		{"webhook, whose HTTP call leaves no trace", Request{Action: v1alpha1.Action{Webhook: &v1alpha1.WebhookAction{}}, Record: rec}},
	}
	// No client: none of these may read anything.
	e := &Effectors{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if out, ok := e.Observe(context.Background(), tt.req); ok || out != (Outcome{}) {
				t.Errorf("Observe() = %+v, %v; want no outcome, false", out, ok)
			}
		})
	}
	t.Run("an action no effector carries out", func(t *testing.T) {
		withoutEffector(t, KindRestartPods)
		req := Request{Action: restart, Target: (&fakeDeployment{replicas: 1}).component(), Record: rec}
		if _, ok := e.Observe(context.Background(), req); ok {
			t.Error("Observe() = true")
		}
	})
}

// stubObserver is an effector whose observe reports a fixed answer.
type stubObserver struct {
	effector
	out  Outcome
	done bool
}

func (s stubObserver) observe(context.Context, *Effectors, Request) (Outcome, bool) {
	return s.out, s.done
}

func TestObserveReportsOnlyAFinalOutcome(t *testing.T) {
	long := strings.Repeat("x", 2*maxMessage)
	tests := []struct {
		name   string
		stub   stubObserver
		wantOK bool
	}{
		{"Succeeded is an outcome", stubObserver{out: Outcome{Result: v1alpha1.ResultSucceeded, Message: "done"}, done: true}, true},
		{"Failed is an outcome", stubObserver{out: Outcome{Result: v1alpha1.ResultFailed, Message: "failed"}, done: true}, true},
		{"Pending is progress, not an outcome", stubObserver{out: Outcome{Result: v1alpha1.ResultPending, Message: "running"}, done: true}, false},
		{"an effect not complete is no outcome", stubObserver{out: Outcome{Result: v1alpha1.ResultSucceeded}}, false},
		{"a long message is cut to the ledger's length", stubObserver{out: Outcome{Result: v1alpha1.ResultSucceeded, Message: long}, done: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := registry[KindNotify]
			registry[KindNotify] = tt.stub
			t.Cleanup(func() { registry[KindNotify] = f })
			req := Request{Action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "m"}}, Record: &v1alpha1.ActionRecord{ID: "a"}}
			out, ok := (&Effectors{}).Observe(context.Background(), req)
			if ok != tt.wantOK {
				t.Fatalf("Observe() ok = %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				if out != (Outcome{}) {
					t.Errorf("Observe() = %+v with ok false, want no outcome", out)
				}
				return
			}
			if out.Result != tt.stub.out.Result || out.Message != text.Truncate(tt.stub.out.Message, maxMessage) {
				t.Errorf("Observe() = %+v, want %+v with the message truncated", out, tt.stub.out)
			}
		})
	}
}

func TestEveryEffectorButFailoverObserves(t *testing.T) {
	for kind, f := range registry {
		if _, ok := f.(observer); ok == (kind == KindFailover) {
			t.Errorf("effector %s implements observer: %v", kind, ok)
		}
	}
}

var _ = Describe("Observe", func() {
	var (
		f *fixture
		// watching is a client of the test's API server that an interceptor can wrap.
		watching client.WithWatch
	)
	BeforeEach(func() {
		f = newFixture()
		if watching == nil {
			var err error
			watching, err = client.NewWithWatch(testEnv.Config, client.Options{Scheme: scheme})
			Expect(err).NotTo(HaveOccurred())
		}
	})

	// observe runs Observe through a client that refuses every write, and checks that it
	// tried none and emitted no Event: Observe only reads.
	observe := func(req Request) (Outcome, bool) {
		GinkgoHelper()
		var writes []string
		deny := func(what string, obj client.Object) error {
			writes = append(writes, what+" "+obj.GetName())
			return errors.New("Observe may not write")
		}
		c := interceptor.NewClient(watching, interceptor.Funcs{
			Create: func(_ context.Context, _ client.WithWatch, o client.Object, _ ...client.CreateOption) error {
				return deny("create", o)
			},
			Update: func(_ context.Context, _ client.WithWatch, o client.Object, _ ...client.UpdateOption) error {
				return deny("update", o)
			},
			Patch: func(_ context.Context, _ client.WithWatch, o client.Object, _ client.Patch, _ ...client.PatchOption) error {
				return deny("patch", o)
			},
			Apply: func(context.Context, client.WithWatch, runtime.ApplyConfiguration, ...client.ApplyOption) error {
				return deny("apply", &metav1.PartialObjectMetadata{})
			},
			Delete: func(_ context.Context, _ client.WithWatch, o client.Object, _ ...client.DeleteOption) error {
				return deny("delete", o)
			},
			DeleteAllOf: func(_ context.Context, _ client.WithWatch, o client.Object, _ ...client.DeleteAllOfOption) error {
				return deny("deleteAllOf", o)
			},
			SubResourceCreate: func(_ context.Context, _ client.Client, sub string, o, _ client.Object, _ ...client.SubResourceCreateOption) error {
				return deny("create "+sub, o)
			},
			SubResourceUpdate: func(_ context.Context, _ client.Client, sub string, o client.Object, _ ...client.SubResourceUpdateOption) error {
				return deny("update "+sub, o)
			},
			SubResourcePatch: func(_ context.Context, _ client.Client, sub string, o client.Object, _ client.Patch, _ ...client.SubResourcePatchOption) error {
				return deny("patch "+sub, o)
			},
			SubResourceApply: func(_ context.Context, _ client.Client, sub string, _ runtime.ApplyConfiguration, _ ...client.SubResourceApplyOption) error {
				return deny("apply "+sub, &metav1.PartialObjectMetadata{})
			},
		})
		f.drainEvents()
		out, ok := (&Effectors{Client: c, Recorder: f.recorder, Clock: f.clock}).Observe(ctx, req)
		Expect(writes).To(BeEmpty(), "Observe tried to write")
		Expect(f.drainEvents()).To(BeEmpty(), "Observe emitted an Event")
		return out, ok
	}

	restartUnhealthy := v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "web", Pods: v1alpha1.PodsUnhealthy}}
	restartAll := v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "web", Pods: v1alpha1.PodsAll}}
	restartDB := v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "db", Pods: v1alpha1.PodsUnhealthy}}
	rolloutRestart := v1alpha1.Action{RolloutRestart: &v1alpha1.ComponentAction{Component: "web"}}
	rollback := v1alpha1.Action{Rollback: &v1alpha1.ComponentAction{Component: "web"}}
	rollbackDB := v1alpha1.Action{Rollback: &v1alpha1.ComponentAction{Component: "db"}}
	scaleTo5 := v1alpha1.Action{Scale: &v1alpha1.ScaleAction{Component: "web", Replicas: ptr.To[int32](5)}}
	cordon := v1alpha1.Action{CordonNode: &v1alpha1.NodeAction{Component: "web"}}
	drain := v1alpha1.Action{DrainNode: &v1alpha1.NodeAction{Component: "web"}}
	notify := v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "web keeps crashing"}}

	// threePods is Deployment web with a running, a not ready and a crash-looping pod.
	threePods := func(f *fixture) {
		d := f.deployment("web", 3)
		rs := f.replicaSet(d, 1, 3)
		f.pod("web-a", rs, gvkReplicaSet, running)
		f.pod("web-b", rs, gvkReplicaSet, notReady)
		f.pod("web-c", rs, gvkReplicaSet, crashLooping)
	}
	// twoRevisions is Deployment web at revision 2 (web:v2), with revision 1 (web:v1) to
	// roll back to.
	twoRevisions := func(f *fixture) {
		d := f.deployment("web", 2)
		f.replicaSet(d, 1, 0)
		d.Spec.Template.Spec.Containers[0].Image = "web:v2"
		Expect(k8s.Update(ctx, d)).To(Succeed())
		f.replicaSet(d, 2, 2)
	}
	// atClock records the intent at the fake clock's time, so that a drain's timeout is
	// counted from it.
	atClock := func(req Request) Request {
		req.Record.Time = metav1.NewTime(f.clock.Now())
		return req
	}
	getJob := func(req Request) *batchv1.Job {
		j := &batchv1.Job{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: req.Record.Objects[0]}, j)).To(Succeed())
		return j
	}

	DescribeTable("says nothing is done before Execute, then reports the outcome Execute reports once its effect is complete",
		// arrange builds the target and returns the recorded intent; complete does what the
		// cluster does after Execute, when the effect needs it.
		func(arrange func(f *fixture) Request, complete func(f *fixture, req Request), want v1alpha1.ActionResult) {
			req := arrange(f)
			_, ok := observe(req)
			Expect(ok).To(BeFalse(), "nothing is done before Execute")

			first := f.eff.Execute(ctx, req)
			if complete == nil {
				Expect(first.Result).To(Equal(want), first.Message)
			} else {
				complete(f, req)
			}
			got, ok := observe(req)
			Expect(ok).To(BeTrue(), "the effect is complete")
			Expect(got.Result).To(Equal(want), got.Message)
			Expect(got).To(Equal(f.eff.Execute(ctx, req)),
				"Observe reports what Execute, carrying the intent on, reports and records")
		},
		Entry("restartPods: every recorded pod is evicted", func(f *fixture) Request {
			threePods(f)
			return f.prepare("obs-restart", restartUnhealthy, f.gather(kindDeployment, "web"))
		}, nil, v1alpha1.ResultSucceeded),
		Entry("rolloutRestart: the Deployment's pod template carries the action id", func(f *fixture) Request {
			f.deployment("web", 2)
			return f.prepare("obs-rr", rolloutRestart, f.gather(kindDeployment, "web"))
		}, nil, v1alpha1.ResultSucceeded),
		Entry("rolloutRestart: the StatefulSet's pod template carries the action id", func(f *fixture) Request {
			f.statefulSet("db", 2)
			return f.prepare("obs-rr-db", v1alpha1.Action{RolloutRestart: &v1alpha1.ComponentAction{Component: "db"}},
				f.gather(kindStatefulSet, "db"))
		}, nil, v1alpha1.ResultSucceeded),
		Entry("rollback: the Deployment carries the previous revision and the action id", func(f *fixture) Request {
			twoRevisions(f)
			return f.prepare("obs-rb", rollback, f.gather(kindDeployment, "web"))
		}, nil, v1alpha1.ResultSucceeded),
		Entry("scale: the workload has the recorded replicas and the action id", func(f *fixture) Request {
			f.deployment("web", 2)
			return f.prepare("obs-scale", scaleTo5, f.gather(kindDeployment, "web"))
		}, nil, v1alpha1.ResultSucceeded),
		Entry("cordonNode: every recorded node is unschedulable and stamped", func(f *fixture) Request {
			healthy, sick := f.node("a", true), f.node("b", true)
			rs := f.replicaSet(f.deployment("web", 2), 1, 2)
			podOn(f.ns, healthy, "web-a", running, controlledBy(rs, gvkReplicaSet))
			podOn(f.ns, sick, "web-b", notReady, controlledBy(rs, gvkReplicaSet))
			return f.prepare("obs-cordon", cordon, f.gather(kindDeployment, "web"))
		}, nil, v1alpha1.ResultSucceeded),
		Entry("drainNode: the node is cordoned and holds nothing left to evict", func(f *fixture) Request {
			sick := f.node("a", false)
			rs := f.replicaSet(f.deployment("web", 1), 1, 1)
			podOn(f.ns, sick, "web-a", notReady, controlledBy(rs, gvkReplicaSet))
			podOn(f.ns, sick, "agent-x", running, controlledByRef("apps/v1", "DaemonSet", "agent", "agent-uid"))
			podOn(f.ns, sick, "bare", running)
			return atClock(f.prepare("obs-drain", drain, f.gather(kindDeployment, "web")))
		}, nil, v1alpha1.ResultSucceeded),
		Entry("runJob: the Job completed", func(f *fixture) Request {
			return f.runJobIntent("obs-job-ok", runJobAction(0))
		}, func(f *fixture, req Request) { finishJob(getJob(req), true) }, v1alpha1.ResultSucceeded),
		Entry("runJob: the Job failed, with its reason", func(f *fixture) Request {
			return f.runJobIntent("obs-job-failed", runJobAction(0))
		}, func(f *fixture, req Request) { finishJob(getJob(req), false) }, v1alpha1.ResultFailed),
	)

	It("says a scale whose count was applied is done although its id was never stamped", func() {
		f.deployment("web", 2)
		req := f.prepare("obs-scale-unstamped", scaleTo5, f.gather(kindDeployment, "web"))
		// A manager that died between its two writes: the replicas, the effect, are there.
		_, err := f.eff.applyScale(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "web"}}, 5)
		Expect(err).NotTo(HaveOccurred())
		out, ok := observe(req)
		Expect(ok).To(BeTrue())
		Expect(out.Result).To(Equal(v1alpha1.ResultSucceeded))
	})

	DescribeTable("says not done while the effect is absent, partial or in progress",
		// arrange builds a target, records an intent and leaves its effect incomplete.
		func(arrange func(f *fixture) Request) {
			req := arrange(f)
			out, ok := observe(req)
			Expect(ok).To(BeFalse(), "Observe reported %+v", out)
			Expect(out).To(Equal(Outcome{}))
		},
		Entry("restartPods: a PodDisruptionBudget kept a recorded pod running", func(f *fixture) Request {
			rs := f.replicaSet(f.deployment("web", 2), 1, 2)
			f.pod("web-a", rs, gvkReplicaSet, running, "guarded", "yes")
			f.pod("web-b", rs, gvkReplicaSet, running)
			f.budget("guard", intstr.FromInt32(1), 1, map[string]string{"guarded": "yes"})
			req := f.prepare("obs-restart-pdb", restartAll, f.gather(kindDeployment, "web"))
			Expect(f.eff.Execute(ctx, req).Result).To(Equal(v1alpha1.ResultFailed))
			Expect(podGone(f.ns, "web-b")).To(BeTrue())
			return req
		}),
		Entry("restartPods: a recorded pod from before the intent runs on under another owner", func(f *fixture) Request {
			s := f.statefulSet("db", 1)
			f.pod("db-0", s, gvkStatefulSet, notReady)
			f.pod("stray", f.statefulSet("other", 1), gvkStatefulSet, notReady)
			req := f.prepare("obs-restart-stray", restartDB, f.gather(kindStatefulSet, "db"))
			req.Record.Objects = append(req.Record.Objects, "stray")
			// Execute leaves a pod that is no longer the component's, and calls that done;
			// but nothing restarted it.
			Expect(f.eff.Execute(ctx, req).Result).To(Equal(v1alpha1.ResultSucceeded))
			return req
		}),
		Entry("rolloutRestart: the Deployment is gone", func(f *fixture) Request {
			f.deployment("web", 1)
			req := f.prepare("obs-rr-gone", rolloutRestart, f.gather(kindDeployment, "web"))
			Expect(f.eff.Execute(ctx, req).Result).To(Equal(v1alpha1.ResultSucceeded))
			Expect(k8s.Delete(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "web"}})).To(Succeed())
			return req
		}),
		Entry("rollback: the Deployment carries another action's rollback", func(f *fixture) Request {
			twoRevisions(f)
			req := f.prepare("obs-rb-other", rollback, f.gather(kindDeployment, "web"))
			other := *req.Record
			other.ID = "someone-else"
			Expect(f.eff.Execute(ctx, Request{App: f.app, Action: rollback, Target: req.Target, Record: &other}).Result).
				To(Equal(v1alpha1.ResultSucceeded))
			return req
		}),
		Entry("scale: the replica count was changed after the action", func(f *fixture) Request {
			f.deployment("web", 2)
			req := f.prepare("obs-scale-changed", scaleTo5, f.gather(kindDeployment, "web"))
			Expect(f.eff.Execute(ctx, req).Result).To(Equal(v1alpha1.ResultSucceeded))
			d := &appsv1.Deployment{}
			Expect(k8s.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "web"}, d)).To(Succeed())
			d.Spec.Replicas = ptr.To[int32](3)
			Expect(k8s.Update(ctx, d)).To(Succeed())
			return req
		}),
		Entry("cordonNode: a recorded node was uncordoned since", func(f *fixture) Request {
			sick := f.node("b", true)
			rs := f.replicaSet(f.deployment("web", 1), 1, 1)
			podOn(f.ns, sick, "web-b", notReady, controlledBy(rs, gvkReplicaSet))
			req := f.prepare("obs-cordon-undone", cordon, f.gather(kindDeployment, "web"))
			Expect(f.eff.Execute(ctx, req).Result).To(Equal(v1alpha1.ResultSucceeded))
			Expect(k8s.Patch(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: sick}},
				client.RawPatch(types.MergePatchType, []byte(`{"spec":{"unschedulable":false}}`)))).To(Succeed())
			return req
		}),
		Entry("cordonNode: a recorded node is gone", func(f *fixture) Request {
			gone := f.ns + "-gone"
			req := Request{App: f.app, Action: cordon, Record: &v1alpha1.ActionRecord{ID: "obs-cordon-gone",
				Time: metav1.NewTime(time.Now()), Target: "Node/" + gone, Objects: []string{gone}, Result: v1alpha1.ResultPending}}
			Expect(f.eff.Execute(ctx, req).Result).To(Equal(v1alpha1.ResultSucceeded))
			return req
		}),
		Entry("drainNode: the node still holds a pod a PodDisruptionBudget refused to evict", func(f *fixture) Request {
			sick, healthy := f.node("a", false), f.node("b", true)
			rs := f.replicaSet(f.deployment("web", 3), 1, 3)
			podOn(f.ns, sick, "web-a", notReady, controlledBy(rs, gvkReplicaSet))
			podOn(f.ns, sick, "web-b", running, controlledBy(rs, gvkReplicaSet))
			podOn(f.ns, healthy, "web-c", running, controlledBy(rs, gvkReplicaSet))
			f.budget("web-pdb", intstr.FromInt32(2), 2, appLabels)
			req := atClock(f.prepare("obs-drain-pdb", drain, f.gather(kindDeployment, "web")))
			Expect(f.eff.Execute(ctx, req).Result).To(Equal(v1alpha1.ResultPending))
			Expect(getNode(sick).Spec.Unschedulable).To(BeTrue())
			return req
		}),
		Entry("runJob: the Job still runs", func(f *fixture) Request {
			req := f.runJobIntent("obs-job-running", runJobAction(0))
			Expect(f.eff.Execute(ctx, req).Result).To(Equal(v1alpha1.ResultPending))
			Expect(getJob(req).Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, "obs-job-running"))
			return req
		}),
		Entry("runJob: the Job of that name, though complete, belongs to another action", func(f *fixture) Request {
			req := f.runJobIntent("obs-job-other", runJobAction(0))
			other := &batchv1.Job{
				ObjectMeta: metav1.ObjectMeta{Name: req.Record.Objects[0], Namespace: f.ns,
					Annotations: map[string]string{v1alpha1.ActionIDAnnotation: "someone-else"}},
				Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "x", Image: "x"}}}}},
			}
			Expect(k8s.Create(ctx, other)).To(Succeed())
			finishJob(other, true)
			return req
		}),
		Entry("notify: even after it asked for attention, as its Event is not read back", func(f *fixture) Request {
			req := f.prepare("obs-notify", notify, nil)
			Expect(f.eff.Execute(ctx, req).Result).To(Equal(v1alpha1.ResultSucceeded))
			return req
		}),
	)

	It("rollback of a StatefulSet: done only once the controller has taken the revision and no pod is stuck on the old one", func() {
		defer func(d time.Duration) { StatefulRollbackObserveTimeout = d }(StatefulRollbackObserveTimeout)
		StatefulRollbackObserveTimeout = 300 * time.Millisecond
		s, _ := f.brokenRelease()
		req := f.prepare("obs-sts", rollbackDB, f.gather(kindStatefulSet, "db"))
		_, ok := observe(req)
		Expect(ok).To(BeFalse(), "nothing is done before Execute")

		By("the template is rolled back, but the controller has not taken the revision")
		Expect(f.eff.Execute(ctx, req).Result).To(Equal(v1alpha1.ResultSucceeded))
		Expect(podGone(f.ns, "db-2")).To(BeFalse())
		_, ok = observe(req)
		Expect(ok).To(BeFalse(), "the controller has not taken the revision")

		By("the controller takes the revision; db-2 is still stuck on the old one")
		controllerTakes(s, "db:v1", "db-r1")
		_, ok = observe(req)
		Expect(ok).To(BeFalse(), "db-2 still holds the rollout")

		By("carried on, the intent deletes the stuck pod")
		Expect(f.eff.Execute(ctx, req).Result).To(Equal(v1alpha1.ResultSucceeded))
		Expect(podGone(f.ns, "db-2")).To(BeTrue())
		got, ok := observe(req)
		Expect(ok).To(BeTrue())
		Expect(got).To(Equal(Outcome{Result: v1alpha1.ResultSucceeded, Message: "StatefulSet/db was already rolled back by this action"}))
		Expect(got).To(Equal(f.eff.Execute(ctx, req)))
	})

	It("restartPods: a pod recreated under a recorded name after the intent counts as replaced", func() {
		s := f.statefulSet("db", 1)
		f.pod("db-0", s, gvkStatefulSet, notReady)
		req := f.prepare("obs-restart-replaced", restartDB, f.gather(kindStatefulSet, "db"))
		_, ok := observe(req)
		Expect(ok).To(BeFalse(), "the recorded pod is still there")

		// Someone else deletes db-0 and the StatefulSet recreates it, after the intent.
		Expect(k8s.Delete(ctx, getPod(f.ns, "db-0"), client.GracePeriodSeconds(0))).To(Succeed())
		Eventually(func() error {
			return k8s.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "db-0"}, &corev1.Pod{})
		}).Should(Satisfy(apierrors.IsNotFound))
		time.Sleep(1100 * time.Millisecond) // creation timestamps have one-second resolution
		f.pod("db-0", s, gvkStatefulSet, notReady)

		got, ok := observe(req)
		Expect(ok).To(BeTrue())
		Expect(got).To(Equal(Outcome{Result: v1alpha1.ResultSucceeded,
			Message: "Evicted 0 of 1 pods of StatefulSet/db; 1 already gone, terminating or replaced (db-0)"}))
		Expect(got).To(Equal(f.eff.Execute(ctx, req)), "Execute, carrying the intent on, leaves the replacement alone")
		Expect(getPod(f.ns, "db-0").DeletionTimestamp).To(BeNil())
	})
})
