package execute

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

func onNode(node string) func(*corev1.Pod) { return func(p *corev1.Pod) { p.Spec.NodeName = node } }

func TestNodeCandidates(t *testing.T) {
	tests := []struct {
		name     string
		pods     []corev1.Pod
		notReady map[string]bool
		limit    int
		want     []string
	}{
		{"healthy pods name no node", []corev1.Pod{testPod("a", onNode("n1")), testPod("b", onNode("n2"))}, nil, 1, []string{}},
		{"the node of an unhealthy pod", []corev1.Pod{
			testPod("a", onNode("n1")), testPod("b", onNode("n2"), withState(notReady)),
		}, nil, 1, []string{"n2"}},
		{"the node with the most unhealthy pods comes first, then by name", []corev1.Pod{
			testPod("a", onNode("n3"), withState(crashLooping)),
			testPod("b", onNode("n2"), withState(notReady)), testPod("c", onNode("n2"), lastOOMKilled),
			testPod("d", onNode("n1"), withState(notReady)),
		}, nil, 3, []string{"n2", "n1", "n3"}},
		{"at most limit nodes", []corev1.Pod{
			testPod("a", onNode("n3"), withState(notReady)), testPod("b", onNode("n1"), withState(notReady)),
		}, nil, 1, []string{"n1"}},
		{"a NotReady node comes first, even with its pods still ready", []corev1.Pod{
			testPod("a", onNode("n1"), withState(notReady)), testPod("b", onNode("n1"), withState(notReady)),
			testPod("c", onNode("n2")),
		}, map[string]bool{"n2": true}, 2, []string{"n2", "n1"}},
		{"a NotReady node without pods of the component is not this component's business", []corev1.Pod{
			testPod("a", onNode("n1"), withState(notReady)),
		}, map[string]bool{"n9": true}, 2, []string{"n1"}},
		{"terminating pods and pods bound to no node say nothing about a node", []corev1.Pod{
			testPod("a", onNode("n1"), withState(notReady), terminating),
			testPod("b", withState(pending)),
		}, nil, 2, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := nodeCandidates(tt.pods, tt.notReady, tt.limit)
			if !slices.Equal(got, tt.want) {
				t.Errorf("nodeCandidates() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNodeActionsPrepare(t *testing.T) {
	e := &Effectors{}
	d := &fakeDeployment{replicas: 4}
	pods := []corev1.Pod{
		testPod("web-a", onNode("n1")),
		testPod("web-b", onNode("n2"), withState(notReady)),
		testPod("web-c", onNode("n2")),
		testPod("web-d", onNode("n3"), withState(crashLooping)),
		testPod("web-e", onNode("n2"), terminating),
	}
	cordon := func(max int32) v1alpha1.Action {
		return v1alpha1.Action{CordonNode: &v1alpha1.NodeAction{Component: "web", MaxNodes: max}}
	}
	drain := func(max int32) v1alpha1.Action {
		return v1alpha1.Action{DrainNode: &v1alpha1.NodeAction{Component: "web", MaxNodes: max}}
	}
	tests := []struct {
		name    string
		action  v1alpha1.Action
		pods    []corev1.Pod
		want    Prepared
		wantErr string
	}{
		{"cordonNode takes one node by default and disrupts no pod", cordon(0), pods,
			Prepared{Kind: KindCordonNode, Target: "Node/n2", Objects: []string{"n2"}, Disruptive: true}, ""},
		{"drainNode disrupts the component's pods on its nodes", drain(1), pods,
			Prepared{Kind: KindDrainNode, Target: "Node/n2", Objects: []string{"n2"}, Disruptive: true, Pods: 2}, ""},
		{"maxNodes takes more nodes", drain(5), pods,
			Prepared{Kind: KindDrainNode, Target: "Nodes n2, n3", Objects: []string{"n2", "n3"}, Disruptive: true, Pods: 3}, ""},
		{"no unhealthy pod, no node", drain(1), pods[:1], Prepared{Kind: KindDrainNode}, "no unhealthy pod of Deployment/web is bound to a node, so there is no node to drain"},
		{"no unhealthy pod, no node to cordon", cordon(1), nil, Prepared{Kind: KindCordonNode}, "no unhealthy pod of Deployment/web is bound to a node, so there is no node to cordon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.Prepare(Request{Action: tt.action, Target: d.component(tt.pods...)})
			if tt.wantErr == "" {
				// The admin's ceiling does not touch what it does not lower.
				wide, err := (&Effectors{MaxNodesPerAction: 5}).Prepare(Request{Action: tt.action, Target: d.component(tt.pods...)})
				if err != nil || !slices.Equal(wide.Objects, tt.want.Objects) {
					t.Errorf("Prepare() under a ceiling of 5 = %+v, %v; want the objects %v", wide, err, tt.want.Objects)
				}
			}
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Prepare() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Prepare() error = %v", err)
			}
			if got.Kind != tt.want.Kind || got.Target != tt.want.Target || !slices.Equal(got.Objects, tt.want.Objects) ||
				got.Disruptive != tt.want.Disruptive || got.Pods != tt.want.Pods {
				t.Errorf("Prepare() = %+v, want %+v", got, tt.want)
			}
		})
	}

	t.Run("the admin's ceiling lowers maxNodes, and the action the app wrote is left as it was", func(t *testing.T) {
		a := drain(5)
		got, err := (&Effectors{MaxNodesPerAction: 1}).Prepare(Request{Action: a, Target: d.component(pods...)})
		if err != nil || !slices.Equal(got.Objects, []string{"n2"}) || got.Pods != 2 {
			t.Errorf("Prepare() under a ceiling of 1 = %+v, %v; want n2 alone", got, err)
		}
		if a.DrainNode.MaxNodes != 5 {
			t.Errorf("the app's maxNodes became %d, want 5 left alone", a.DrainNode.MaxNodes)
		}
	})

	t.Run("a component that is an app has no pods to follow", func(t *testing.T) {
		_, err := e.Prepare(Request{Action: drain(1), Target: &monitor.Component{Name: "web"}})
		if err == nil || !strings.Contains(err.Error(), "is an app, not a workload") {
			t.Errorf("Prepare() error = %v", err)
		}
	})
}

func TestCordonPatchStampsTheActionTheAppAndTheTime(t *testing.T) {
	app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	cases := []struct {
		name string
		app  *v1alpha1.AutonomicApp
		at   time.Time
		want string
	}{
		{"the app and the action's time are stamped beside the action id, so the node counts against the app's maxNodes " +
			"from the node itself, and the uncordon window never starts before the cordon", app, at,
			`{"metadata":{"annotations":{"` + v1alpha1.ActionIDAnnotation + `":"heal-1","` + plan.NodeAppAnnotation + `":"shop/web","` +
				plan.CordonedAtAnnotation + `":"2025-03-01T11:00:00Z"}},"spec":{"unschedulable":true}}`},
		{"without an app or a time only the id is stamped", nil, time.Time{},
			`{"metadata":{"annotations":{"` + v1alpha1.ActionIDAnnotation + `":"heal-1"}},"spec":{"unschedulable":true}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(cordonPatch(nodeStamp{id: "heal-1", app: nodeApp(tc.app), at: tc.at})); got != tc.want {
				t.Errorf("cordonPatch() = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestUncordonPatchLiftsTheCordonAndItsStampsOnTheNodeAsRead(t *testing.T) {
	want := `{"metadata":{"annotations":{"` + v1alpha1.ActionIDAnnotation + `":null,"` + plan.NodeAppAnnotation + `":null,"` +
		plan.CordonedAtAnnotation + `":null},"resourceVersion":"42"},"spec":{"unschedulable":null}}`
	if got := string(uncordonPatch("42")); got != want {
		t.Errorf("uncordonPatch() = %s, want %s", got, want)
	}
}

func TestNodesTarget(t *testing.T) {
	if got := nodesTarget([]string{"a"}); got != "Node/a" {
		t.Errorf("nodesTarget(a) = %q", got)
	}
	if got := nodesTarget([]string{"a", "b"}); got != "Nodes a, b" {
		t.Errorf("nodesTarget(a, b) = %q", got)
	}
	many := make([]string, 64)
	for i := range many {
		many[i] = strings.Repeat("x", 60) + fmt.Sprint(i)
	}
	if got := nodesTarget(many); len(got) != 512 || !strings.HasSuffix(got, "…") {
		t.Errorf("nodesTarget(64 long names) has %d bytes, want 512 ending in an ellipsis", len(got))
	}
}

func TestClassifyForDrain(t *testing.T) {
	owned := func(apiVersion, kind string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: "o", UID: "o-uid", Controller: ptr.To(true)}}
		}
	}
	phase := func(ph corev1.PodPhase) func(*corev1.Pod) { return func(p *corev1.Pod) { p.Status.Phase = ph } }
	mirror := func(p *corev1.Pod) {
		p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "hash"}
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: "n1", UID: "n1-uid", Controller: ptr.To(true)}}
	}
	notController := func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "o", UID: "o-uid"}}
	}
	tests := []struct {
		name string
		pod  corev1.Pod
		want drainClass
	}{
		{"a ReplicaSet's pod is evicted", testPod("a", owned("apps/v1", "ReplicaSet")), drainEvict},
		{"a StatefulSet's pod is evicted", testPod("a", owned("apps/v1", "StatefulSet")), drainEvict},
		{"a Job's running pod is evicted", testPod("a", owned("batch/v1", "Job")), drainEvict},
		{"a custom controller's pod is evicted", testPod("a", owned("example.com/v1", "Thing")), drainEvict},
		{"an unhealthy pod is evicted like any other", testPod("a", owned("apps/v1", "ReplicaSet"), withState(crashLooping)), drainEvict},
		{"a DaemonSet's pod stays", testPod("a", owned("apps/v1", "DaemonSet")), drainDaemonSet},
		{"a static pod's mirror stays", testPod("a", mirror), drainStatic},
		{"a terminating pod counts as moved", testPod("a", owned("apps/v1", "ReplicaSet"), terminating), drainTerminating},
		{"a terminating static pod is still static", testPod("a", mirror, terminating), drainStatic},
		{"a finished pod stays", testPod("a", owned("batch/v1", "Job"), phase(corev1.PodSucceeded)), drainFinished},
		{"a failed pod stays", testPod("a", owned("apps/v1", "ReplicaSet"), phase(corev1.PodFailed)), drainFinished},
		{"a pod without a controller stays: nothing would recreate it", testPod("a"), drainUnmanaged},
		{"an owner that is not the controller recreates nothing", testPod("a", notController), drainUnmanaged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classifyForDrain(&tt.pod); got != tt.want {
				t.Errorf("classifyForDrain() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestDrainDeadlineAndRetryAt(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	drain := func(timeout time.Duration) v1alpha1.Action {
		a := v1alpha1.Action{DrainNode: &v1alpha1.NodeAction{Component: "web"}}
		if timeout > 0 {
			a.DrainNode.Timeout = &metav1.Duration{Duration: timeout}
		}
		return a
	}
	rec := &v1alpha1.ActionRecord{ID: "d1", Time: metav1.NewTime(at)}
	tests := []struct {
		name         string
		req          Request
		now          time.Time
		wantDeadline time.Time
		wantRetry    time.Time
	}{
		{"the default timeout is 5m; retry in 5s", Request{Action: drain(0), Record: rec}, at.Add(time.Minute),
			at.Add(5 * time.Minute), at.Add(time.Minute + DrainRetryInterval)},
		{"the action's timeout", Request{Action: drain(90 * time.Second), Record: rec}, at,
			at.Add(90 * time.Second), at.Add(DrainRetryInterval)},
		{"the deadline comes before the next retry", Request{Action: drain(time.Minute), Record: rec}, at.Add(58 * time.Second),
			at.Add(time.Minute), at.Add(time.Minute)},
		{"other actions are never retried", Request{Action: v1alpha1.Action{CordonNode: &v1alpha1.NodeAction{}}, Record: rec}, at,
			time.Time{}, time.Time{}},
		{"a record without a time has no deadline", Request{Action: drain(0), Record: &v1alpha1.ActionRecord{ID: "d2"}}, at,
			time.Time{}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DrainDeadline(tt.req); !got.Equal(tt.wantDeadline) {
				t.Errorf("DrainDeadline() = %v, want %v", got, tt.wantDeadline)
			}
			if got := DrainRetryAt(tt.req, tt.now); !got.Equal(tt.wantRetry) {
				t.Errorf("DrainRetryAt() = %v, want %v", got, tt.wantRetry)
			}
		})
	}
}

func TestDrainOutcome(t *testing.T) {
	deadline := time.Date(2030, 1, 2, 3, 9, 5, 0, time.UTC)
	refused := "Eviction of pod shop/web-b was refused by PodDisruptionBudget web-pdb: no disruptions allowed"
	tests := []struct {
		name   string
		drains []nodeDrain
		target string
		past   bool
		want   Outcome
	}{
		{"everything evicted or on its way", []nodeDrain{{name: "n1",
			evicted: []string{"shop/web-a"}, moved: []string{"shop/web-c"}, left: []string{"shop/bare"}, skipped: 2}},
			"Node/n1", false, Outcome{Result: v1alpha1.ResultSucceeded, Message: "Drained Node/n1: evicted 1 pod (shop/web-a), " +
				"1 already terminating or gone (shop/web-c), left 1 pod that no controller would recreate (shop/bare), " +
				"skipped 2 DaemonSet, static or finished pods"}},
		{"an empty node", []nodeDrain{{name: "n1"}}, "Node/n1", false,
			Outcome{Result: v1alpha1.ResultSucceeded, Message: "Drained Node/n1: no pod to evict"}},
		{"a node that is gone", []nodeDrain{{name: "n1", gone: true}}, "Node/n1", true,
			Outcome{Result: v1alpha1.ResultSucceeded, Message: "Drained Node/n1: the node no longer exists"}},
		{"a refusal before the deadline is Pending", []nodeDrain{{name: "n1", evicted: []string{"shop/web-a"}, waiting: 1, problems: []string{refused}}},
			"Node/n1", false, Outcome{Result: v1alpha1.ResultPending, Message: "Draining Node/n1 until 2030-01-02T03:09:05Z, 1 pod left to evict: " +
				refused + ". Evicted 1 pod (shop/web-a)"}},
		{"a refusal after the deadline is Failed", []nodeDrain{{name: "n1", moved: []string{"shop/web-a"}, waiting: 1, problems: []string{refused}}},
			"Node/n1", true, Outcome{Result: v1alpha1.ResultFailed, Message: "The drain of Node/n1 did not finish within 5m0s, 1 pod left to evict: " +
				refused + ". 1 already terminating or gone (shop/web-a)"}},
		{"a node that could not be cordoned is not drained", []nodeDrain{
			{name: "n1", stuck: true, problems: []string{"Could not cordon Node/n1: forbidden"}},
			{name: "n2", evicted: []string{"shop/web-b"}},
		}, "Nodes n1, n2", false, Outcome{Result: v1alpha1.ResultPending, Message: "Draining Nodes n1, n2 until 2030-01-02T03:09:05Z, " +
			"Node/n1 not cordoned or listed: Could not cordon Node/n1: forbidden. Node/n1: nothing evicted yet; Node/n2: evicted 1 pod (shop/web-b)"}},
		{"several nodes, all drained", []nodeDrain{{name: "n1", evicted: []string{"a/x"}}, {name: "n2", gone: true}}, "Nodes n1, n2", false,
			Outcome{Result: v1alpha1.ResultSucceeded, Message: "Drained Nodes n1, n2: Node/n1: evicted 1 pod (a/x); Node/n2: the node no longer exists"}},
		{"long lists are cut", []nodeDrain{{name: "n1", evicted: []string{"a/1", "a/2", "a/3", "a/4", "a/5", "a/6", "a/7"},
			waiting: 4, problems: []string{"p1", "p2", "p3", "p4"}}}, "Node/n1", false,
			Outcome{Result: v1alpha1.ResultPending, Message: "Draining Node/n1 until 2030-01-02T03:09:05Z, 4 pods left to evict: " +
				"p1; p2; p3; and 1 more. Evicted 7 pods (a/1, a/2, a/3, a/4, a/5, and 2 more)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := drainOutcome(tt.drains, tt.target, DefaultDrainTimeout, deadline, tt.past)
			if got != tt.want {
				t.Errorf("drainOutcome() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestNodeActionsStopWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := &v1alpha1.ActionRecord{ID: "c1", Target: "Nodes n1, n2", Objects: []string{"n1", "n2"}}
	out := (&Effectors{}).Execute(ctx, Request{Action: v1alpha1.Action{CordonNode: &v1alpha1.NodeAction{Component: "web"}}, Record: rec})
	want := Outcome{Result: v1alpha1.ResultFailed, Message: "Stopped before cordoning n1, n2: context canceled. Cordoned 0 of 2 nodes"}
	if out != want {
		t.Errorf("cordonNode Execute() = %+v, want %+v", out, want)
	}
	// Without a clock no deadline passes: the drain stays Pending for the next call.
	out = (&Effectors{}).Execute(ctx, Request{Action: v1alpha1.Action{DrainNode: &v1alpha1.NodeAction{Component: "web"}}, Record: rec})
	if out.Result != v1alpha1.ResultPending || !strings.Contains(out.Message, "Stopped before draining Node/n1: context canceled") {
		t.Errorf("drainNode Execute() = %+v, want Pending, stopped before draining", out)
	}
}

// node creates a node named after the test's namespace, Ready or not, and removes it
// after the test.
func (f *fixture) node(suffix string, ready bool, mutate ...func(*corev1.Node)) string {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: f.ns + "-" + suffix}}
	for _, m := range mutate {
		m(n)
	}
	Expect(k8s.Create(ctx, n)).To(Succeed())
	DeferCleanup(func() { _ = k8s.Delete(context.Background(), n) })
	status := corev1.ConditionTrue
	if !ready {
		status = corev1.ConditionFalse
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status, Reason: "KubeletReady"}}
	Expect(k8s.Status().Update(ctx, n)).To(Succeed())
	return n.Name
}

func getNode(name string) *corev1.Node {
	n := &corev1.Node{}
	Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, n)).To(Succeed())
	return n
}

// podOn creates a pod in ns bound to node, in the given state, changed by mutate (its
// owner, its annotations) before it is created.
func podOn(ns, node, name string, state podState, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "web", Image: "web:v1"}}},
	}
	for _, m := range mutate {
		m(p)
	}
	Expect(k8s.Create(ctx, p)).To(Succeed())
	p.Status = podStatus(state)
	Expect(k8s.Status().Update(ctx, p)).To(Succeed())
	return p
}

// controlledBy makes owner the pod's controller; gvk is "apiVersion,Kind".
func controlledBy(owner client.Object, gvk string) func(*corev1.Pod) {
	apiVersion, kind, _ := strings.Cut(gvk, ",")
	return controlledByRef(apiVersion, kind, owner.GetName(), owner.GetUID())
}

func controlledByRef(apiVersion, kind, name string, uid types.UID) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid,
			Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
	}
}

// nodeResourceVersion is a node's resourceVersion, to prove a retry wrote nothing.
func nodeResourceVersion(name string) string { return getNode(name).ResourceVersion }
