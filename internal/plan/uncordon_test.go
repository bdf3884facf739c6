package plan

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func TestDecideUncordon(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	const window = 5 * time.Minute
	// ours is a node a drainNode action of shop/web cordoned at t0, and that has been
	// Ready again since t0+1m.
	ours := func(mutate ...func(*NodeCordon)) NodeCordon {
		n := NodeCordon{Name: "n1", Unschedulable: true, ActionID: "heal-web-1", App: "shop/web", CordonedAt: t0,
			FieldsTracked: true, UnschedulableOwners: []string{v1alpha1.FieldManager}, Ready: true, ReadySince: t0.Add(time.Minute)}
		for _, m := range mutate {
			m(&n)
		}
		return n
	}
	cases := []struct {
		name      string
		in        UncordonInput
		now       time.Time
		uncordon  bool
		unstamp   bool
		reason    string
		recheckAt time.Time
		message   string
	}{
		{name: "Ready for the window since it turned Ready, with the suspect pods gone: uncordoned",
			in: UncordonInput{Node: ours(), Window: window}, now: t0.Add(6 * time.Minute),
			uncordon: true, reason: ReasonNodeRecovered,
			message: "Node n1, cordoned by action heal-web-1 of shop/web at 2025-01-01T12:00:00Z, has been Ready since 2025-01-01T12:01:00Z, for 5m0s or more"},
		{name: "Ready for less than the window: waits, and is due again at the window's end",
			in: UncordonInput{Node: ours(), Window: window}, now: t0.Add(4 * time.Minute),
			reason: ReasonNodeReadyTooShort, recheckAt: t0.Add(6 * time.Minute),
			message: "until it has been Ready for 5m0s since 2025-01-01T12:01:00Z, at 2025-01-01T12:06:00Z"},
		{name: "a node Ready all along counts the window from the cordon, not from before it",
			in:  UncordonInput{Node: ours(func(n *NodeCordon) { n.ReadySince = t0.Add(-time.Hour) }), Window: window},
			now: t0.Add(2 * time.Minute), reason: ReasonNodeReadyTooShort, recheckAt: t0.Add(5 * time.Minute)},
		{name: "a node Ready all along is uncordoned once the window from the cordon has passed",
			in:  UncordonInput{Node: ours(func(n *NodeCordon) { n.ReadySince = t0.Add(-time.Hour) }), Window: window},
			now: t0.Add(5 * time.Minute), uncordon: true, reason: ReasonNodeRecovered},
		{name: "a Ready condition without a transition time counts from the cordon",
			in:  UncordonInput{Node: ours(func(n *NodeCordon) { n.ReadySince = time.Time{} }), Window: window},
			now: t0.Add(5 * time.Minute), uncordon: true, reason: ReasonNodeRecovered},
		{name: "NotReady: waits for the node to change, whatever the time",
			in:  UncordonInput{Node: ours(func(n *NodeCordon) { n.Ready = false }), Window: window},
			now: t0.Add(time.Hour), reason: ReasonNodeNotReady, message: "while it is NotReady"},
		{name: "suspect pods still unhealthy on the node: waits for them",
			in:  UncordonInput{Node: ours(), Window: window, UnhealthyPods: []string{"shop/web-b", "shop/web-a"}},
			now: t0.Add(time.Hour), reason: ReasonSuspectPodsUnhealthy,
			message: "while pods of shop/web are still unhealthy on it: shop/web-a, shop/web-b."},
		{name: "the action that cordoned it is still at work (a drain evicting): waits",
			in:  UncordonInput{Node: ours(), Window: window, ActionPending: true},
			now: t0.Add(time.Hour), reason: ReasonNodeActionInProgress, message: "while action heal-web-1 of shop/web is still at work"},

		// Never: someone else's cordon.
		{name: "someone else cordoned it before the action stamped it: never",
			in:  UncordonInput{Node: ours(func(n *NodeCordon) { n.UnschedulableOwners = []string{"kubectl-cordon"} }), Window: window},
			now: t0.Add(time.Hour), reason: ReasonCordonedBySomeoneElse, message: "was cordoned by kubectl-cordon, not by Homeostat alone"},
		{name: "someone else cordoned it again after Homeostat did: never",
			in: UncordonInput{Node: ours(func(n *NodeCordon) {
				n.UnschedulableOwners = []string{v1alpha1.FieldManager, "kubectl-cordon"}
			}), Window: window},
			now: t0.Add(time.Hour), reason: ReasonCordonedBySomeoneElse, message: "was cordoned by homeostat, kubectl-cordon"},
		{name: "managed fields tracked, nobody owns the cordon: never",
			in:  UncordonInput{Node: ours(func(n *NodeCordon) { n.UnschedulableOwners = nil }), Window: window},
			now: t0.Add(time.Hour), reason: ReasonCordonedBySomeoneElse, message: "no known field manager"},
		{name: "someone else cordoned it before the action, which stamped the id and the app but not the cordon's time: never",
			in:  UncordonInput{Node: ours(func(n *NodeCordon) { n.CordonedAt, n.FieldsTracked, n.UnschedulableOwners = time.Time{}, false, nil }), Window: window},
			now: t0.Add(time.Hour), reason: ReasonNotCordonedByHomeostat, message: "does not carry " + CordonedAtAnnotation},
		{name: "a cordon without any of Homeostat's stamps: never",
			in: UncordonInput{Node: ours(func(n *NodeCordon) { n.ActionID, n.App, n.CordonedAt = "", "", time.Time{} }),
				Window: window},
			now: t0.Add(time.Hour), reason: ReasonNotCordonedByHomeostat},
		{name: "the cordon's time without the id or the app: left to a person",
			in:  UncordonInput{Node: ours(func(n *NodeCordon) { n.App = "" }), Window: window},
			now: t0.Add(time.Hour), reason: ReasonNotCordonedByHomeostat, message: "does not carry both"},
		{name: "where managed fields are not tracked, Homeostat's stamps are the record: uncordoned",
			in:  UncordonInput{Node: ours(func(n *NodeCordon) { n.FieldsTracked, n.UnschedulableOwners = false, nil }), Window: window},
			now: t0.Add(6 * time.Minute), uncordon: true, reason: ReasonNodeRecovered},
		{name: "someone uncordoned it: the stamps go, so a later cordon of theirs is never taken for Homeostat's",
			in:  UncordonInput{Node: ours(func(n *NodeCordon) { n.Unschedulable, n.UnschedulableOwners = false, nil }), Window: window},
			now: t0.Add(time.Minute), unstamp: true, reason: ReasonCordonLiftedBySomeoneElse,
			message: "Node n1, cordoned by action heal-web-1 of shop/web, was uncordoned by someone else"},
		{name: "a window of 0 disables the node controller's decisions",
			in:  UncordonInput{Node: ours()},
			now: t0.Add(time.Hour), reason: ReasonUncordonDisabled},

		// Order.
		{name: "someone else's cordon is checked before readiness and pods",
			in: UncordonInput{Node: ours(func(n *NodeCordon) { n.UnschedulableOwners, n.Ready = []string{"ops"}, false }),
				Window: window, UnhealthyPods: []string{"shop/web-a"}},
			now: t0, reason: ReasonCordonedBySomeoneElse},
		{name: "the window is waited out before the pods are looked at, so the verdict is due again at its end",
			in:  UncordonInput{Node: ours(), Window: window, UnhealthyPods: []string{"shop/web-a"}},
			now: t0.Add(2 * time.Minute), reason: ReasonNodeReadyTooShort, recheckAt: t0.Add(6 * time.Minute)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := DecideUncordon(tc.in, tc.now)
			if v.Uncordon != tc.uncordon || v.Unstamp != tc.unstamp || v.Reason != tc.reason || !v.RecheckAt.Equal(tc.recheckAt) {
				t.Fatalf("verdict = %+v, want uncordon=%v unstamp=%v reason=%q recheckAt=%s", v, tc.uncordon, tc.unstamp, tc.reason, tc.recheckAt)
			}
			if v.Message == "" || !strings.Contains(v.Message, tc.message) {
				t.Errorf("message = %q, want it to contain %q", v.Message, tc.message)
			}
		})
	}
}

func TestNodeCordonOfReadsTheStampsTheOwnersAndReadiness(t *testing.T) {
	ready := time.Date(2025, 1, 1, 12, 1, 0, 0, time.UTC)
	fields := func(raw string) *metav1.FieldsV1 { return &metav1.FieldsV1{Raw: []byte(raw)} }
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1",
			Annotations: map[string]string{v1alpha1.ActionIDAnnotation: "heal-web-1", NodeAppAnnotation: "shop/web",
				CordonedAtAnnotation: "2025-01-01T12:00:00Z"},
			ManagedFields: []metav1.ManagedFieldsEntry{
				{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate, FieldsV1: fields(`{"f:metadata":{"f:labels":{}}}`)},
				{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate, Subresource: "status",
					FieldsV1: fields(`{"f:status":{"f:conditions":{}}}`)},
				{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate,
					FieldsV1: fields(`{"f:spec":{"f:taints":{}}}`)},
				{Manager: "homeostat", Operation: metav1.ManagedFieldsOperationUpdate,
					FieldsV1: fields(`{"f:metadata":{"f:annotations":{"f:autonomic.homeostat.dev/app":{}}},"f:spec":{"f:unschedulable":{}}}`)},
				{Manager: "broken", Operation: metav1.ManagedFieldsOperationUpdate, FieldsV1: fields(`not json`)},
			}},
		Spec: corev1.NodeSpec{Unschedulable: true},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(ready)}}},
	}
	got := NodeCordonOf(n)
	want := NodeCordon{Name: "n1", Unschedulable: true, ActionID: "heal-web-1", App: "shop/web",
		CordonedAt: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC), FieldsTracked: true, UnschedulableOwners: []string{"homeostat"},
		Ready: true, ReadySince: ready}
	if got.Name != want.Name || got.Unschedulable != want.Unschedulable || got.ActionID != want.ActionID || !got.FieldsTracked ||
		got.App != want.App || !got.CordonedAt.Equal(want.CordonedAt) || !slices.Equal(got.UnschedulableOwners, want.UnschedulableOwners) ||
		got.Ready != want.Ready || !got.ReadySince.Equal(want.ReadySince) {
		t.Errorf("NodeCordonOf() = %+v, want %+v", got, want)
	}
	if !HomeostatCordon(n) {
		t.Error("HomeostatCordon() = false for a node with the three stamps, cordoned")
	}

	n.Annotations[CordonedAtAnnotation] = "yesterday"
	if got := NodeCordonOf(n); !got.CordonedAt.IsZero() {
		t.Errorf("an unreadable cordon time = %s, want zero", got.CordonedAt)
	}
	n.Spec.Unschedulable = false
	if HomeostatCordon(n) || !CordonStamped(n) {
		t.Error("an uncordoned node with the cordon's time: want HomeostatCordon() false, CordonStamped() true")
	}
	delete(n.Annotations, CordonedAtAnnotation)
	n.ManagedFields = nil
	if HomeostatCordon(n) || CordonStamped(n) {
		t.Error("HomeostatCordon() or CordonStamped() is true for a node without the cordon's time")
	}
	if got := NodeCordonOf(n); got.FieldsTracked || got.UnschedulableOwners != nil {
		t.Errorf("a node without managed fields reads %+v; want them untracked", got)
	}
}
