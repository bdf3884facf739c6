package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

func TestParseNodeAdmin(t *testing.T) {
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	cases := []struct {
		name, namespaces, maxUnavailable string
		maxNodes                         int
		want                             plan.NodeAdmin
		err                              string
	}{
		{name: "the defaults admit every namespace, with today's defaults as ceilings",
			namespaces: "*", maxNodes: 1, maxUnavailable: "10%",
			want: plan.NodeAdmin{MaxNodes: 1, MaxUnavailableNodes: pct("10%")}},
		{name: "a list admits those namespaces only, once each",
			namespaces: " shop, infra ,shop", maxNodes: 3, maxUnavailable: "2",
			want: plan.NodeAdmin{RestrictNamespaces: true, Namespaces: []string{"shop", "infra"}, MaxNodes: 3, MaxUnavailableNodes: nodeCount(2)}},
		{name: "empty admits no namespace: node actions run only from ClusterHealingPolicies",
			namespaces: "", maxNodes: 1, maxUnavailable: "0",
			want: plan.NodeAdmin{RestrictNamespaces: true, MaxNodes: 1, MaxUnavailableNodes: nodeCount(0)}},
		{name: "* stands alone", namespaces: "*,shop", maxNodes: 1, maxUnavailable: "10%", err: `"*" stands alone`},
		{name: "a namespace must be a name", namespaces: "Shop", maxNodes: 1, maxUnavailable: "10%", err: `"Shop" is not a namespace name`},
		{name: "maxNodes ceiling of 0", namespaces: "*", maxNodes: 0, maxUnavailable: "10%", err: "--max-nodes-per-action must be from 1 to 100"},
		{name: "a percentage above 100%", namespaces: "*", maxNodes: 1, maxUnavailable: "101%", err: "--max-unavailable-nodes must be"},
		{name: "a negative count", namespaces: "*", maxNodes: 1, maxUnavailable: "-1", err: "--max-unavailable-nodes must be"},
		{name: "not a number", namespaces: "*", maxNodes: 1, maxUnavailable: "ten", err: "--max-unavailable-nodes must be"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseNodeAdmin(tc.namespaces, tc.maxNodes, tc.maxUnavailable)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseNodeAdmin() error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.RestrictNamespaces != tc.want.RestrictNamespaces || !slices.Equal(got.Namespaces, tc.want.Namespaces) ||
				got.MaxNodes != tc.want.MaxNodes || got.MaxUnavailableNodes.String() != tc.want.MaxUnavailableNodes.String() {
				t.Errorf("ParseNodeAdmin() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// sickWebOn is unreadyWeb's objects (with the given ladder) plus a ReplicaSet of web and
// one pod of it, never ready, on each of the given nodes, which are NotReady, and six
// Ready nodes.
func sickWebOn(nodes []string, steps ...v1alpha1.RemediationStep) []client.Object {
	objs := unreadyWeb("web:bad", steps...)
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", UID: "rs-uid",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "web-uid", Controller: ptr.To(true)}}}}
	objs = append(objs, rs)
	for _, n := range nodes {
		objs = append(objs,
			&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}, Status: corev1.NodeStatus{
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse}}}},
			&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1-" + n,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", UID: "rs-uid", Controller: ptr.To(true)}}},
				Spec: corev1.PodSpec{NodeName: n, Containers: []corev1.Container{{Name: "app", Image: "web:bad"}}}})
	}
	for i := range 6 { // healthy nodes, so the sick ones stay within maxUnavailableNodes 50%
		objs = append(objs, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-ok-%d", nodes[0], i)},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}})
	}
	return objs
}

func cordonStep(maxNodes int32) v1alpha1.RemediationStep {
	return v1alpha1.RemediationStep{Action: v1alpha1.Action{CordonNode: &v1alpha1.NodeAction{Component: "web", MaxNodes: maxNodes,
		MaxUnavailableNodes: ptr.To(intstr.FromString("50%"))}}, Timeout: &metav1.Duration{Duration: time.Hour}}
}

func cordoned(t *testing.T, c client.Client, name string) bool {
	t.Helper()
	n := &corev1.Node{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: name}, n); err != nil {
		t.Fatal(err)
	}
	return n.Spec.Unschedulable
}

// TestNodeActionsBelongToTheAdmin runs the app reconciler with the admin's node flags
// set: the app's own node action in a namespace the admin does not list is refused with a
// reason and nothing recorded or done; the same action from a ClusterHealingPolicy runs;
// and the admin's ceiling lowers the app's maxNodes both for Prepare and the guard.
func TestNodeActionsBelongToTheAdmin(t *testing.T) {
	ctx := context.Background()
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "shop", Name: "shop"}}
	clk := clocktesting.NewFakeClock(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	restricted := plan.NodeAdmin{RestrictNamespaces: true, Namespaces: []string{"infra"}, MaxNodes: 1}

	t.Run("the app's own cordonNode in a namespace not listed is refused, and says whom to ask", func(t *testing.T) {
		c, r := newFakeReconciler(t, clk, sickWebOn([]string{"adm-refused"}, cordonStep(1))...)
		r.NodeAdmin = restricted
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
		a := appGetter(t, c, req.NamespacedName)()
		p := policyNamed(a, "heal")
		if p.State != v1alpha1.PolicyHeld || p.Reason != plan.ReasonNodeActionsNotAllowed ||
			!strings.Contains(p.Message, "namespace shop is not listed") || !strings.Contains(p.Message, "--node-actions-namespaces") {
			t.Fatalf("policy %+v; want Held for NodeActionsNotAllowed, naming the namespace and the flag", p)
		}
		if len(a.Status.History) != 0 {
			t.Errorf("a refused node action recorded %+v; want nothing", a.Status.History)
		}
		if cordoned(t, c, "adm-refused") {
			t.Error("the node was cordoned")
		}
	})

	t.Run("the same cordonNode from a ClusterHealingPolicy runs", func(t *testing.T) {
		objs := sickWebOn([]string{"adm-cluster"})
		app := objs[2].(*v1alpha1.AutonomicApp)
		app.Spec.Policies = nil
		objs = append(objs, &v1alpha1.ClusterHealingPolicy{ObjectMeta: metav1.ObjectMeta{Name: "nodes"},
			Spec: v1alpha1.ClusterHealingPolicySpec{HealingPolicySpec: v1alpha1.HealingPolicySpec{Healing: v1alpha1.Healing{
				Policies: []v1alpha1.Policy{{Name: "heal-nodes", Remediate: &v1alpha1.RemediatePolicy{When: []string{"Unready"},
					Steps: []v1alpha1.RemediationStep{cordonStep(1)}}}}}}}})
		c, r := newFakeReconciler(t, clk, objs...)
		r.NodeAdmin = restricted
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
		a := appGetter(t, c, req.NamespacedName)()
		rec := recordOf(t, a, "cordonNode")
		if rec.Result != v1alpha1.ResultSucceeded || !slices.Equal(rec.Objects, []string{"adm-cluster"}) {
			t.Fatalf("cordonNode record %+v; want it to succeed on adm-cluster", rec)
		}
		if p := policyNamed(a, "heal-nodes"); p.Source != "ClusterHealingPolicy nodes" {
			t.Errorf("policy source %q", p.Source)
		}
		if !cordoned(t, c, "adm-cluster") {
			t.Error("the node was not cordoned")
		}
	})

	t.Run("the admin's ceiling lowers the app's maxNodes: one node of three is cordoned", func(t *testing.T) {
		nodes := []string{"adm-ceil-a", "adm-ceil-b", "adm-ceil-c"}
		c, r := newFakeReconciler(t, clk, sickWebOn(nodes, cordonStep(3))...)
		r.NodeAdmin = plan.NodeAdmin{MaxNodes: 1}
		r.Effectors.MaxNodesPerAction = 1
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
		rec := recordOf(t, appGetter(t, c, req.NamespacedName)(), "cordonNode")
		if rec.Result != v1alpha1.ResultSucceeded || len(rec.Objects) != 1 {
			t.Fatalf("cordonNode record %+v; want one node cordoned", rec)
		}
		var n int
		for _, name := range nodes {
			if cordoned(t, c, name) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d nodes cordoned, want 1", n)
		}
	})
}
