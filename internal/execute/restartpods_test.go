package execute

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func testPod(name string, mutate ...func(*corev1.Pod)) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: podStatus(running)}
	for _, m := range mutate {
		m(&p)
	}
	return p
}

func withState(s podState) func(*corev1.Pod) { return func(p *corev1.Pod) { p.Status = podStatus(s) } }

func terminating(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)} }

func lastOOMKilled(p *corev1.Pod) {
	p.Status.ContainerStatuses[0].LastTerminationState = corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137}}
}

func TestSelectPods(t *testing.T) {
	many := make([]corev1.Pod, 70)
	for i := range many {
		many[i] = testPod(fmt.Sprintf("web-%02d", 69-i))
	}
	want64 := make([]string, 64)
	for i := range want64 {
		want64[i] = fmt.Sprintf("web-%02d", i)
	}

	tests := []struct {
		name string
		pods []corev1.Pod
		sel  v1alpha1.PodSelection
		want []string
	}{
		{"healthy pods are not unhealthy", []corev1.Pod{testPod("a"), testPod("b")}, v1alpha1.PodsUnhealthy, nil},
		{"not ready, crash-looping, OOM-killed and pending pods are unhealthy, sorted by name",
			[]corev1.Pod{
				testPod("e-pending", withState(pending)),
				testPod("a-ok"),
				testPod("d-oom", lastOOMKilled),
				testPod("c-crash", withState(crashLooping)),
				testPod("b-unready", withState(notReady)),
			},
			v1alpha1.PodsUnhealthy, []string{"b-unready", "c-crash", "d-oom", "e-pending"}},
		{"terminating pods are never taken", []corev1.Pod{
			testPod("a", withState(notReady), terminating), testPod("b", terminating), testPod("c", withState(notReady)),
		}, v1alpha1.PodsUnhealthy, []string{"c"}},
		{"All takes every pod that is not terminating", []corev1.Pod{
			testPod("b"), testPod("a", withState(crashLooping)), testPod("c", terminating),
		}, v1alpha1.PodsAll, []string{"a", "b"}},
		{"a pod without a Ready condition is unhealthy",
			[]corev1.Pod{testPod("a", func(p *corev1.Pod) { p.Status.Conditions = nil })},
			v1alpha1.PodsUnhealthy, []string{"a"}},
		{"at most 64 pods, the first by name", many, v1alpha1.PodsAll, want64},
		{"no pods, no selection", nil, v1alpha1.PodsAll, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := selectPods(tt.pods, tt.sel)
			if !slices.Equal(got, tt.want) {
				t.Errorf("selectPods() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBudgetRefusal(t *testing.T) {
	tooMany := func(retry int, causes ...string) error {
		err := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", retry)
		for _, c := range causes {
			err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes,
				metav1.StatusCause{Type: policyv1.DisruptionBudgetCause, Message: c})
		}
		return err
	}
	negative := apierrors.NewForbidden(schema.GroupResource{Group: "policy", Resource: "poddisruptionbudget"}, "pdb",
		fmt.Errorf("pdb disruptions allowed is negative"))
	negative.ErrStatus.Details.Causes = append(negative.ErrStatus.Details.Causes, metav1.StatusCause{
		Type: policyv1.DisruptionBudgetCause, Message: "The disruption budget pdb does not allow evicting pods currently: pdb disruptions allowed is negative"})

	tests := []struct {
		name       string
		err        error
		wantOK     bool
		wantBudget string
		wantText   string
	}{
		{"a budget with no disruptions left", tooMany(0, "The disruption budget web-pdb needs 3 healthy pods and has 3 currently"),
			true, "web-pdb", "Cannot evict pod as it would violate the pod's disruption budget. The disruption budget web-pdb needs 3 healthy pods and has 3 currently"},
		{"a budget still being processed", tooMany(10, "The disruption budget web-pdb is still being processed by the server."),
			true, "web-pdb", "Cannot evict pod as it would violate the pod's disruption budget. The disruption budget web-pdb is still being processed by the server."},
		{"a budget with negative disruptions allowed", negative, true, "pdb", ""},
		{"a 429 without a budget cause is throttling, not a refusal", apierrors.NewTooManyRequests("slow down", 1), false, "", ""},
		{"a plain error", fmt.Errorf("boom"), false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			budget, text, ok := budgetRefusal(tt.err)
			if ok != tt.wantOK || budget != tt.wantBudget || (tt.wantText != "" && text != tt.wantText) {
				t.Errorf("budgetRefusal() = (%q, %q, %v), want (%q, %q, %v)", budget, text, ok, tt.wantBudget, tt.wantText, tt.wantOK)
			}
		})
	}
}

func TestRestartPodsPrepareSaysWhyNothingQualifies(t *testing.T) {
	e := &Effectors{}
	d := &fakeDeployment{replicas: 2}
	req := Request{
		Action: v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "web"}},
		Target: d.component(testPod("web-a"), testPod("web-b", terminating, withState(notReady))),
	}
	_, err := e.Prepare(req)
	if err == nil || err.Error() != "no pod of Deployment/web is unhealthy, so there is nothing to restart" {
		t.Fatalf("Prepare() error = %v", err)
	}
	req.Action.RestartPods.Pods = v1alpha1.PodsAll
	p, err := e.Prepare(req)
	if err != nil {
		t.Fatalf("Prepare() error = %v", err)
	}
	if p.Kind != KindRestartPods || p.Target != "Deployment/web" || !slices.Equal(p.Objects, []string{"web-a"}) ||
		!p.Disruptive || p.Pods != 1 {
		t.Errorf("Prepare() = %+v", p)
	}
}

var _ = Describe("restartPods", func() {
	var (
		f      *fixture
		action = func(sel v1alpha1.PodSelection) v1alpha1.Action {
			return v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "web", Pods: sel}}
		}
	)
	BeforeEach(func() { f = newFixture() })

	It("evicts only the unhealthy pods, stamps them with the action id, and acts once when run twice", func() {
		d := f.deployment("web", 3)
		rs := f.replicaSet(d, 1, 3)
		f.pod("web-a", rs, gvkReplicaSet, running)
		f.pod("web-b", rs, gvkReplicaSet, notReady)
		f.pod("web-c", rs, gvkReplicaSet, crashLooping)

		req := f.prepare("act-1", action(v1alpha1.PodsUnhealthy), f.gather(kindDeployment, "web"))
		Expect(req.Record.Objects).To(Equal([]string{"web-b", "web-c"}))

		out := f.eff.Execute(ctx, req)
		Expect(out.Result).To(Equal(v1alpha1.ResultSucceeded), out.Message)
		Expect(out.Message).To(Equal("Evicted 2 of 2 pods of Deployment/web (web-b, web-c)"))
		for _, name := range []string{"web-b", "web-c"} {
			p := getPod(f.ns, name)
			Expect(p.DeletionTimestamp).NotTo(BeNil(), "pod %s is terminating", name)
			Expect(p.Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, "act-1"))
			Expect(p.Status.Conditions).To(ContainElement(HaveField("Type", corev1.DisruptionTarget)))
		}
		healthy := getPod(f.ns, "web-a")
		Expect(healthy.DeletionTimestamp).To(BeNil())
		Expect(healthy.Annotations).NotTo(HaveKey(v1alpha1.ActionIDAnnotation))
		Expect(f.drainEvents()).To(ConsistOf(
			"Normal ActionSucceeded Evicted 2 of 2 pods of Deployment/web (web-b, web-c) (restartPods on Deployment/web, action act-1)"))

		before := f.resourceVersions()
		again := f.eff.Execute(ctx, req)
		Expect(again.Result).To(Equal(v1alpha1.ResultSucceeded), again.Message)
		Expect(again.Message).To(Equal("Evicted 0 of 2 pods of Deployment/web; 2 already gone, terminating or replaced (web-b, web-c)"))
		Expect(f.resourceVersions()).To(Equal(before), "the second run wrote nothing")
	})

	It("fails with the budget's message when a PodDisruptionBudget refuses, and leaves the pods", func() {
		d := f.deployment("web", 2)
		rs := f.replicaSet(d, 1, 2)
		f.pod("web-a", rs, gvkReplicaSet, running)
		f.pod("web-b", rs, gvkReplicaSet, running)
		f.budget("web-pdb", intstr.FromInt32(2), 2, appLabels)

		req := f.prepare("act-2", action(v1alpha1.PodsAll), f.gather(kindDeployment, "web"))
		out := f.eff.Execute(ctx, req)

		Expect(out.Result).To(Equal(v1alpha1.ResultFailed))
		Expect(out.Message).To(Equal("Eviction of pod web-a was refused by PodDisruptionBudget web-pdb: " +
			"Cannot evict pod as it would violate the pod's disruption budget. " +
			"The disruption budget web-pdb needs 2 healthy pods and has 2 currently; " +
			"Eviction of pod web-b was refused by PodDisruptionBudget web-pdb: " +
			"Cannot evict pod as it would violate the pod's disruption budget. " +
			"The disruption budget web-pdb needs 2 healthy pods and has 2 currently. " +
			"Evicted 0 of 2 pods of Deployment/web"))
		for _, name := range []string{"web-a", "web-b"} {
			Expect(getPod(f.ns, name).DeletionTimestamp).To(BeNil(), "pod %s is still there", name)
		}
		events := f.drainEvents()
		Expect(events).To(HaveLen(1))
		Expect(events[0]).To(HavePrefix("Warning ActionFailed Eviction of pod web-a was refused by PodDisruptionBudget web-pdb"))
		Expect(events[0]).To(HaveSuffix("(restartPods on Deployment/web, action act-2)"))
	})

	It("still evicts the other pods when a budget refuses one", func() {
		d := f.deployment("web", 3)
		rs := f.replicaSet(d, 1, 3)
		f.pod("web-a", rs, gvkReplicaSet, running, "guarded", "yes")
		f.pod("web-b", rs, gvkReplicaSet, running)
		f.pod("web-c", rs, gvkReplicaSet, running)
		f.budget("guard", intstr.FromInt32(1), 1, map[string]string{"guarded": "yes"})

		req := f.prepare("act-3", action(v1alpha1.PodsAll), f.gather(kindDeployment, "web"))
		out := f.eff.Execute(ctx, req)

		Expect(out.Result).To(Equal(v1alpha1.ResultFailed))
		Expect(out.Message).To(HavePrefix("Eviction of pod web-a was refused by PodDisruptionBudget guard: "))
		Expect(out.Message).To(HaveSuffix("Evicted 2 of 3 pods of Deployment/web (web-b, web-c)"))
		Expect(getPod(f.ns, "web-a").DeletionTimestamp).To(BeNil())
		Expect(getPod(f.ns, "web-b").DeletionTimestamp).NotTo(BeNil())
		Expect(getPod(f.ns, "web-c").DeletionTimestamp).NotTo(BeNil())
	})

	It("counts pods that are gone, owned by someone else or replaced after the intent as not to be evicted", func() {
		s := f.statefulSet("db", 2)
		f.pod("db-0", s, gvkStatefulSet, notReady)
		f.pod("db-1", s, gvkStatefulSet, notReady)
		other := f.statefulSet("other", 1)
		f.pod("stray", other, gvkStatefulSet, notReady)

		req := f.prepare("act-4", action(v1alpha1.PodsUnhealthy), f.gather(kindStatefulSet, "db"))
		Expect(req.Record.Objects).To(Equal([]string{"db-0", "db-1"}))
		// A record may name pods that have gone, or whose names another owner took since.
		req.Record.Objects = append(req.Record.Objects, "db-gone", "stray")

		// db-0 goes away and the StatefulSet recreates it under the same name, after the
		// intent was recorded.
		Expect(k8s.Delete(ctx, getPod(f.ns, "db-0"), client.GracePeriodSeconds(0))).To(Succeed())
		Eventually(func() error {
			return k8s.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "db-0"}, &corev1.Pod{})
		}).Should(Satisfy(apierrors.IsNotFound))
		time.Sleep(1100 * time.Millisecond) // creation timestamps have one-second resolution
		f.pod("db-0", s, gvkStatefulSet, notReady)

		out := f.eff.Execute(ctx, req)
		Expect(out.Result).To(Equal(v1alpha1.ResultSucceeded), out.Message)
		Expect(out.Message).To(Equal("Evicted 1 of 4 pods of StatefulSet/db (db-1); " +
			"2 already gone, terminating or replaced (db-0, db-gone); 1 no longer belong to StatefulSet/db (stray)"))
		Expect(getPod(f.ns, "db-0").DeletionTimestamp).To(BeNil(), "the replacement is left alone")
		Expect(getPod(f.ns, "db-1").DeletionTimestamp).NotTo(BeNil())
		Expect(getPod(f.ns, "stray").DeletionTimestamp).To(BeNil())
	})
})

// budget creates a PodDisruptionBudget and sets the status the disruption controller
// would, so the eviction subresource judges by it.
func (f *fixture) budget(name string, minAvailable intstr.IntOrString, healthy int32, selector map[string]string) {
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: &minAvailable,
			Selector:     &metav1.LabelSelector{MatchLabels: selector},
		},
	}
	Expect(k8s.Create(ctx, pdb)).To(Succeed())
	desired, _ := intstr.GetScaledValueFromIntOrPercent(&minAvailable, int(healthy), true)
	pdb.Status = policyv1.PodDisruptionBudgetStatus{
		ObservedGeneration: pdb.Generation,
		DisruptionsAllowed: max(0, healthy-int32(desired)),
		CurrentHealthy:     healthy,
		DesiredHealthy:     int32(desired),
		ExpectedPods:       healthy,
	}
	Expect(k8s.Status().Update(ctx, pdb)).To(Succeed())
}

func TestRestartPodsStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := (&Effectors{}).Execute(ctx, Request{
		Action: v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "web"}},
		Target: (&fakeDeployment{replicas: 2}).component(),
		Record: &v1alpha1.ActionRecord{ID: "c1", Objects: []string{"web-a", "web-b"}},
	})
	want := Outcome{Result: v1alpha1.ResultFailed,
		Message: "Stopped before evicting web-a, web-b: context canceled. Evicted 0 of 2 pods of Deployment/web"}
	if out != want {
		t.Errorf("Execute() = %+v, want %+v", out, want)
	}
}
