package plan

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// testNodes returns n Ready, schedulable nodes named n0..n(n-1), changed by mutate.
func testNodes(n int, mutate ...func([]NodeState)) []NodeState {
	out := make([]NodeState, n)
	for i := range out {
		out[i] = NodeState{Name: "n" + string(rune('0'+i)), Ready: true}
	}
	for _, m := range mutate {
		m(out)
	}
	return out
}

func nodesNotReady(i ...int) func([]NodeState) {
	return func(ns []NodeState) {
		for _, j := range i {
			ns[j].Ready = false
		}
	}
}

func nodesCordoned(id string, i ...int) func([]NodeState) {
	return func(ns []NodeState) {
		for _, j := range i {
			ns[j].Unschedulable, ns[j].ActionID = true, id
		}
	}
}

// nodesHeldBy marks nodes cordoned by an app's node action, as the effector stamps them.
func nodesHeldBy(app, id string, i ...int) func([]NodeState) {
	return func(ns []NodeState) {
		for _, j := range i {
			ns[j].Unschedulable, ns[j].ActionID, ns[j].App = true, id, app
		}
	}
}

// nodesPending marks nodes the node gate let an app's action take that the cache does
// not show cordoned yet.
func nodesPending(app string, i ...int) func([]NodeState) {
	return func(ns []NodeState) {
		for _, j := range i {
			ns[j].Pending, ns[j].App = true, app
		}
	}
}

func TestNodeGuard(t *testing.T) {
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	count := func(n int32) *intstr.IntOrString { v := intstr.FromInt32(n); return &v }
	ours := []string{"heal-web-1", "heal-web-2"}
	cases := []struct {
		name    string
		in      NodeGuardInput
		held    bool
		reason  string
		message string
	}{
		{name: "no nodes known holds: missing data never acts",
			in:   NodeGuardInput{Candidates: []string{"n0"}},
			held: true, reason: ReasonNodesUnknown, message: "nodes are not known yet"},

		// maxNodes.
		{name: "one NotReady node in a healthy cluster goes through with the defaults",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3)), Candidates: []string{"n3"}}},
		{name: "a node the app already holds counts against maxNodes (default 1)",
			in:   NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3, 4), nodesCordoned("heal-web-1", 4)), Candidates: []string{"n3"}, AppActionIDs: ours, MaxUnavailableNodes: pct("50%")},
			held: true, reason: ReasonNodesInFlight,
			message: "The app already holds n4 cordoned or drained; acting on n3 would hold 2 nodes cordoned or drained at once, above maxNodes 1."},
		{name: "a candidate the app already holds counts once, so a drain may follow a cordon of the same node",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3), nodesCordoned("heal-web-2", 3)), Candidates: []string{"n3"}, AppActionIDs: ours}},
		{name: "maxNodes 2 lets a second node through",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3, 4), nodesCordoned("heal-web-1", 4)), Candidates: []string{"n3"},
				AppActionIDs: ours, MaxNodes: 2, MaxUnavailableNodes: pct("20%")}},
		{name: "more candidates than maxNodes hold even with none in flight",
			in:   NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3, 4)), Candidates: []string{"n3", "n4"}, MaxNodes: 1, MaxUnavailableNodes: pct("50%")},
			held: true, reason: ReasonNodesInFlight, message: "Acting on n3, n4 would hold 2 nodes"},
		{name: "a node of another app's action is not in this app's flight",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3), nodesCordoned("other-app-1", 4)), Candidates: []string{"n3"},
				AppActionIDs: ours, MaxUnavailableNodes: count(2)}},
		{name: "a node the app cordoned that someone uncordoned is no longer in flight",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3), func(ns []NodeState) { ns[4].ActionID = "heal-web-1" }),
				Candidates: []string{"n3"}, AppActionIDs: ours}},

		// maxNodes counted from the nodes, not the bounded history.
		{name: "a node stamped with the app counts against maxNodes after its record aged out of the history",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3), nodesHeldBy("shop/web", "heal-web-0", 4)), Candidates: []string{"n3"},
				App: "shop/web", AppActionIDs: ours, MaxUnavailableNodes: pct("50%")},
			held: true, reason: ReasonNodesInFlight,
			message: "The app already holds n4 cordoned or drained; acting on n3 would hold 2 nodes cordoned or drained at once, above maxNodes 1."},
		{name: "a node stamped with another app is not in this app's flight, even with an id of this app",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3), nodesHeldBy("shop/db", "heal-web-1", 4)), Candidates: []string{"n3"},
				App: "shop/web", AppActionIDs: ours, MaxUnavailableNodes: count(2)}},
		{name: "a node stamped with the app that someone uncordoned is no longer in flight",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3), nodesHeldBy("shop/web", "heal-web-0", 4), func(ns []NodeState) { ns[4].Unschedulable = false }),
				Candidates: []string{"n3"}, App: "shop/web"}},
		{name: "a node the gate let this app take a moment ago counts against maxNodes before the cache shows it",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3, 4), nodesPending("shop/web", 4)), Candidates: []string{"n3"},
				App: "shop/web", MaxUnavailableNodes: pct("50%")},
			held: true, reason: ReasonNodesInFlight, message: "The app already holds n4 cordoned or drained; a"},
		{name: "a pending node of the app that is the candidate again counts once",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3), nodesPending("shop/web", 3)), Candidates: []string{"n3"}, App: "shop/web"}},

		// maxUnavailableNodes.
		{name: "the default 10% rounds up to one node, so one sick node of two is drained",
			in: NodeGuardInput{Nodes: testNodes(2, nodesNotReady(1)), Candidates: []string{"n1"}}},
		{name: "a second NotReady node holds: the problem is wider than a node",
			in:   NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3, 7)), Candidates: []string{"n3"}},
			held: true, reason: ReasonTooManyUnavailableNodes,
			message: "2 of 10 nodes would be NotReady or cordoned (20%), above maxUnavailableNodes 10% (1 node): NotReady n3, n7, cordoned none, to act on n3."},
		{name: "a node cordoned by someone else counts as unavailable",
			in: NodeGuardInput{Nodes: testNodes(3, nodesNotReady(1), func(ns []NodeState) { ns[2].Unschedulable = true }),
				Candidates: []string{"n1"}, MaxUnavailableNodes: count(1)},
			held: true, reason: ReasonTooManyUnavailableNodes, message: "2 of 3 nodes would be NotReady or cordoned (67%), above maxUnavailableNodes 1 (1 node)"},
		{name: "cordoning a Ready candidate adds it to the unavailable nodes",
			in:   NodeGuardInput{Nodes: testNodes(10, nodesNotReady(2)), Candidates: []string{"n3"}},
			held: true, reason: ReasonTooManyUnavailableNodes, message: "NotReady n2, cordoned none, to act on n3"},
		{name: "a Ready candidate alone fits the limit",
			in: NodeGuardInput{Nodes: testNodes(10), Candidates: []string{"n3"}}},
		{name: "a count of 0 never acts",
			in:   NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3)), Candidates: []string{"n3"}, MaxUnavailableNodes: count(0)},
			held: true, reason: ReasonTooManyUnavailableNodes, message: "above maxUnavailableNodes 0 (0 nodes)"},
		{name: "0% never acts",
			in:   NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3)), Candidates: []string{"n3"}, MaxUnavailableNodes: pct("0%")},
			held: true, reason: ReasonTooManyUnavailableNodes},
		{name: "a percentage rounds up: 25% of 10 allows 3",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(1, 2, 3)), Candidates: []string{"n1"}, MaxUnavailableNodes: pct("25%"), MaxNodes: 3}},
		{name: "a node another app's action was just let through on counts as cordoned before the cache shows it",
			in:   NodeGuardInput{Nodes: testNodes(10, nodesPending("shop/db", 5)), Candidates: []string{"n3"}, App: "shop/web"},
			held: true, reason: ReasonTooManyUnavailableNodes,
			message: "2 of 10 nodes would be NotReady or cordoned (20%), above maxUnavailableNodes 10% (1 node): NotReady none, cordoned n5, to act on n3. Being cordoned now: n5 by shop/db."},
		{name: "two apps each with one sick node in a cluster of ten: the second waits for the first",
			in:   NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3, 7), nodesPending("shop/db", 7)), Candidates: []string{"n3"}, App: "shop/web"},
			held: true, reason: ReasonTooManyUnavailableNodes, message: "NotReady n3, n7, cordoned none, to act on n3. Being cordoned now: n7 by shop/db."},
		{name: "a node held by another app counts as unavailable",
			in: NodeGuardInput{Nodes: testNodes(10, nodesHeldBy("shop/db", "heal-db-1", 5)), Candidates: []string{"n3"}, App: "shop/web",
				MaxUnavailableNodes: count(1)},
			held: true, reason: ReasonTooManyUnavailableNodes, message: "cordoned n5, to act on n3."},
		{name: "a NotReady and cordoned node counts once",
			in: NodeGuardInput{Nodes: testNodes(3, nodesNotReady(1), func(ns []NodeState) { ns[1].Unschedulable = true }),
				Candidates: []string{"n1"}, MaxUnavailableNodes: count(1)}},
		{name: "a candidate gone from the cluster takes nothing away",
			in: NodeGuardInput{Nodes: testNodes(10), Candidates: []string{"gone"}, MaxUnavailableNodes: count(0)}},
		{name: "an invalid percentage holds and says so",
			in:   NodeGuardInput{Nodes: testNodes(3), Candidates: []string{"n1"}, MaxUnavailableNodes: pct("ten")},
			held: true, reason: ReasonTooManyUnavailableNodes, message: `maxUnavailableNodes "ten" is invalid`},
		{name: "long lists of nodes are cut in messages",
			in:   NodeGuardInput{Nodes: testNodes(10, nodesNotReady(0, 1, 2, 3, 4, 5, 6)), Candidates: []string{"n0"}, MaxUnavailableNodes: pct("50%")},
			held: true, reason: ReasonTooManyUnavailableNodes, message: "NotReady n0, n1, n2, n3, n4 and 2 more"},

		// The admin's node policy: where node actions may come from.
		{name: "without the admin's flags every namespace may act on nodes, as before",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3)), Candidates: []string{"n3"}, Namespace: "shop"}},
		{name: "the app's own policy in a namespace the admin does not list is refused, and says whom to ask",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3)), Candidates: []string{"n3"}, Namespace: "shop",
				Admin: NodeAdmin{RestrictNamespaces: true, Namespaces: []string{"infra"}}},
			held: true, reason: ReasonNodeActionsNotAllowed,
			message: "cordonNode and drainNode run only from ClusterHealingPolicies or from the namespaces the cluster admin lists in " +
				"--node-actions-namespaces, and namespace shop is not listed, so no node is cordoned or drained for this policy. " +
				"Nodes are shared: ask the cluster admin to list the namespace, or to run the action from a ClusterHealingPolicy."},
		{name: "an empty list refuses every namespace's own policies",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3)), Candidates: []string{"n3"}, Namespace: "infra",
				Admin: NodeAdmin{RestrictNamespaces: true}},
			held: true, reason: ReasonNodeActionsNotAllowed},
		{name: "a namespace the admin lists may act on nodes",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3)), Candidates: []string{"n3"}, Namespace: "infra",
				Admin: NodeAdmin{RestrictNamespaces: true, Namespaces: []string{"shop", "infra"}}}},
		{name: "a ClusterHealingPolicy may act on nodes from any namespace",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3)), Candidates: []string{"n3"}, Namespace: "shop",
				FromClusterPolicy: true, Admin: NodeAdmin{RestrictNamespaces: true}}},
		{name: "the refusal comes first: no node is looked at",
			in:   NodeGuardInput{Candidates: []string{"n3"}, Namespace: "shop", Admin: NodeAdmin{RestrictNamespaces: true}},
			held: true, reason: ReasonNodeActionsNotAllowed},

		// The admin's ceilings: an app's fields can only lower them.
		{name: "the admin's --max-nodes-per-action lowers the app's maxNodes, and the message says so",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3, 4)), Candidates: []string{"n3", "n4"}, MaxNodes: 3,
				MaxUnavailableNodes: pct("50%"), Admin: NodeAdmin{MaxNodes: 1}},
			held: true, reason: ReasonNodesInFlight,
			message: "Acting on n3, n4 would hold 2 nodes cordoned or drained at once, above maxNodes 1 " +
				"(the cluster admin's --max-nodes-per-action 1 lowers the app's maxNodes 3)."},
		{name: "an app's maxNodes below the admin's ceiling stands",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3, 4)), Candidates: []string{"n3", "n4"}, MaxNodes: 1,
				MaxUnavailableNodes: pct("50%"), Admin: NodeAdmin{MaxNodes: 5}},
			held: true, reason: ReasonNodesInFlight, message: "above maxNodes 1."},
		{name: "a ceiling above the app's maxNodes lets through what the app allows",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3, 4)), Candidates: []string{"n3", "n4"}, MaxNodes: 2,
				MaxUnavailableNodes: pct("50%"), Admin: NodeAdmin{MaxNodes: 5}}},
		{name: "the admin's --max-unavailable-nodes lowers the app's maxUnavailableNodes, and the message says so",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3, 7)), Candidates: []string{"n3"}, MaxUnavailableNodes: pct("50%"),
				Admin: NodeAdmin{MaxUnavailableNodes: pct("10%")}},
			held: true, reason: ReasonTooManyUnavailableNodes,
			message: "2 of 10 nodes would be NotReady or cordoned (20%), above the cluster admin's --max-unavailable-nodes 10%, " +
				"which lowers the app's maxUnavailableNodes 50% (1 node): NotReady n3, n7"},
		{name: "a count ceiling lowers a percentage the app asks for",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3, 7)), Candidates: []string{"n3"}, MaxUnavailableNodes: pct("50%"),
				Admin: NodeAdmin{MaxUnavailableNodes: count(1)}},
			held: true, reason: ReasonTooManyUnavailableNodes, message: "--max-unavailable-nodes 1, which lowers"},
		{name: "an app's maxUnavailableNodes below the admin's ceiling stands",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3, 7)), Candidates: []string{"n3"}, MaxUnavailableNodes: count(1),
				Admin: NodeAdmin{MaxUnavailableNodes: pct("50%")}},
			held: true, reason: ReasonTooManyUnavailableNodes, message: "above maxUnavailableNodes 1 (1 node)"},
		{name: "a ceiling above the app's maxUnavailableNodes lets through what the app allows",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(3, 7)), Candidates: []string{"n3"}, MaxUnavailableNodes: pct("20%"),
				Admin: NodeAdmin{MaxUnavailableNodes: pct("50%")}}},

		// Order.
		{name: "maxNodes is checked before the unavailable share",
			in: NodeGuardInput{Nodes: testNodes(10, nodesNotReady(1, 2, 3), nodesCordoned("heal-web-1", 2)), Candidates: []string{"n1"},
				AppActionIDs: ours},
			held: true, reason: ReasonNodesInFlight},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := NodeGuard(tc.in)
			if v.Held != tc.held || v.Reason != tc.reason {
				t.Fatalf("verdict = %+v, want held=%v reason=%q", v, tc.held, tc.reason)
			}
			if !strings.Contains(v.Message, tc.message) {
				t.Errorf("message = %q, want it to contain %q", v.Message, tc.message)
			}
			if v.Held && v.Message == "" {
				t.Error("a held action must say why")
			}
			if !v.Until.IsZero() {
				t.Errorf("until = %s, want zero: only a change of the nodes lets a node action through", v.Until)
			}
		})
	}
}

func TestNodeStates(t *testing.T) {
	node := func(name string, ready corev1.ConditionStatus, unschedulable bool, id string, app ...string) corev1.Node {
		n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{Unschedulable: unschedulable}}
		if ready != "" {
			n.Status.Conditions = []corev1.NodeCondition{
				{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
				{Type: corev1.NodeReady, Status: ready},
			}
		}
		if id != "" {
			n.Annotations = map[string]string{v1alpha1.ActionIDAnnotation: id}
		}
		if len(app) > 0 {
			n.Annotations[NodeAppAnnotation] = app[0]
		}
		return n
	}
	got := NodeStates([]corev1.Node{
		node("ready", corev1.ConditionTrue, false, ""),
		node("down", corev1.ConditionFalse, false, ""),
		node("silent", corev1.ConditionUnknown, true, "heal-web-1"),
		node("new", "", false, ""),
		node("held", corev1.ConditionTrue, true, "heal-db-1", "shop/db"),
	})
	want := []NodeState{
		{Name: "ready", Ready: true},
		{Name: "down"},
		{Name: "silent", Unschedulable: true, ActionID: "heal-web-1"},
		{Name: "new"},
		{Name: "held", Ready: true, Unschedulable: true, ActionID: "heal-db-1", App: "shop/db"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("NodeStates() = %+v, want %+v", got, want)
	}
}

func TestNodeActionIDs(t *testing.T) {
	history := []v1alpha1.ActionRecord{
		{ID: "a", Action: "drainNode"}, {ID: "b", Action: "restartPods"}, {ID: "c", Action: "cordonNode"},
	}
	if got := NodeActionIDs(history); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("NodeActionIDs() = %v, want [a c]", got)
	}
}

func TestEffectiveMaxNodes(t *testing.T) {
	cases := []struct {
		own, ceiling, want int32
		lowered            bool
	}{
		{0, 0, DefaultMaxNodes, false},
		{3, 0, 3, false},
		{3, 1, 1, true},
		{1, 5, 1, false},
		{0, 1, 1, false},
		{2, 2, 2, false},
	}
	for _, tc := range cases {
		got, lowered := EffectiveMaxNodes(tc.own, tc.ceiling)
		if got != tc.want || lowered != tc.lowered {
			t.Errorf("EffectiveMaxNodes(%d, %d) = %d, %v; want %d, %v", tc.own, tc.ceiling, got, lowered, tc.want, tc.lowered)
		}
	}
}

func TestFromClusterPolicy(t *testing.T) {
	cluster := SharedPolicy{Kind: "ClusterHealingPolicy", Name: "nodes"}
	namespaced := SharedPolicy{Kind: "HealingPolicy", Namespace: "shop", Name: "ClusterHealingPolicy x"}
	if !FromClusterPolicy(cluster.Source()) {
		t.Errorf("FromClusterPolicy(%q) = false", cluster.Source())
	}
	for _, src := range []string{namespaced.Source(), ""} {
		if FromClusterPolicy(src) {
			t.Errorf("FromClusterPolicy(%q) = true", src)
		}
	}
}
