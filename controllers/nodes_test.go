package controllers

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// gateNode is a node as the cache holds it.
func gateNode(name string, ready, cordoned bool, app string) corev1.Node {
	status := corev1.ConditionTrue
	if !ready {
		status = corev1.ConditionFalse
	}
	n := corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NodeSpec{Unschedulable: cordoned},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}}},
	}
	if app != "" {
		n.Annotations = map[string]string{v1alpha1.ActionIDAnnotation: "heal-1", plan.NodeAppAnnotation: app}
	}
	return n
}

// fakeNodeCache is a Node cache whose content a test sets: it shows a cordon only when
// the test says the watch event has arrived.
type fakeNodeCache struct {
	mu    sync.Mutex
	nodes []corev1.Node
}

func (c *fakeNodeCache) set(nodes ...corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes = nodes
}

func (c *fakeNodeCache) list() ([]corev1.Node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]corev1.Node, len(c.nodes))
	for i := range c.nodes {
		c.nodes[i].DeepCopyInto(&out[i])
	}
	return out, nil
}

func nodeCount(n int32) *intstr.IntOrString { v := intstr.FromInt32(n); return &v }

// TestNodeGateLetsExactlyOneOfConcurrentChecksThroughWhenOneMoreNodeFits runs many
// reconcile workers at once, each for another app with another sick node, against a
// cluster whose guard allows exactly one more unavailable node, with a cache that never
// shows the cordons (the watch events are late). Each check alone would pass; through
// the gate exactly one does.
func TestNodeGateLetsExactlyOneOfConcurrentChecksThroughWhenOneMoreNodeFits(t *testing.T) {
	const nodes, workers, rounds = 64, 63, 20
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cache := &fakeNodeCache{}
	all := []corev1.Node{gateNode("n00", false, true, "")} // one node already down and cordoned
	for i := 1; i < nodes; i++ {
		all = append(all, gateNode(fmt.Sprintf("n%02d", i), true, false, ""))
	}
	cache.set(all...)
	input := func(i int) plan.NodeGuardInput {
		return plan.NodeGuardInput{
			Candidates:          []string{fmt.Sprintf("n%02d", i+1)},
			App:                 plan.AppKey("shop", fmt.Sprintf("app-%d", i)),
			MaxNodes:            1,
			MaxUnavailableNodes: nodeCount(2), // n00 and one more
		}
	}
	// Without the gate, each check on the cache passes: the race is real.
	snapshot, _ := cache.list()
	for i := range workers {
		in := input(i)
		in.Nodes = plan.NodeStates(snapshot)
		if v := plan.NodeGuard(in); v.Held {
			t.Fatalf("app-%d alone is held (%s): the test would prove nothing", i, v.Message)
		}
	}

	for round := range rounds {
		gate := newNodeGate(time.Minute)
		var allowed atomic.Int32
		var held sync.Map
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				v, err := gate.check(t0, cache.list, input(i), true)
				if err != nil {
					t.Errorf("check: %v", err)
					return
				}
				if !v.Held {
					allowed.Add(1)
					return
				}
				held.Store(i, v)
			}()
		}
		close(start)
		wg.Wait()
		if got := allowed.Load(); got != 1 {
			t.Fatalf("round %d: %d of %d concurrent checks were let through, want exactly 1", round, got, workers)
		}
		held.Range(func(_, v any) bool {
			verdict := v.(plan.Verdict)
			if verdict.Reason != plan.ReasonTooManyUnavailableNodes || !strings.Contains(verdict.Message, "Being cordoned now: ") {
				t.Errorf("round %d: held verdict = %+v, want TooManyUnavailableNodes naming the node being cordoned", round, verdict)
			}
			if !verdict.Until.Equal(t0.Add(time.Minute)) {
				t.Errorf("round %d: until = %s, want the claim's expiry %s", round, verdict.Until, t0.Add(time.Minute))
			}
			return true
		})
	}
}

// TestNodeGateClaimLifecycle follows one claim: it counts for other apps until the cache
// shows the cordon, then the node itself counts, until it is uncordoned; a claim whose
// action never ran ends at its TTL; a node that is gone ends it; DryRun claims nothing.
func TestNodeGateClaimLifecycle(t *testing.T) {
	const ttl = time.Minute
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ten := func(mutate func([]corev1.Node)) []corev1.Node {
		ns := make([]corev1.Node, 10)
		for i := range ns {
			ns[i] = gateNode(fmt.Sprintf("n%d", i), true, false, "")
		}
		if mutate != nil {
			mutate(ns)
		}
		return ns
	}
	ask := func(app, node string) plan.NodeGuardInput {
		// The default maxUnavailableNodes: 10% of 10 nodes is one node.
		return plan.NodeGuardInput{Candidates: []string{node}, App: plan.AppKey("shop", app)}
	}
	type step struct {
		name   string
		at     time.Duration
		nodes  func([]corev1.Node) // the cache at this step; nil: ten Ready nodes
		in     plan.NodeGuardInput
		dryRun bool
		reason string // "" when let through
		until  time.Duration
		msg    string
	}
	cordonedBy := func(app string, i int) func([]corev1.Node) {
		return func(ns []corev1.Node) { ns[i] = gateNode(ns[i].Name, true, true, plan.AppKey("shop", app)) }
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{name: "a claim counts until the cache shows the cordon, then the node counts until it is uncordoned", steps: []step{
			{name: "web takes n1", in: ask("web", "n1")},
			{name: "db is held by web's claim", at: time.Second, in: ask("db", "n2"),
				reason: plan.ReasonTooManyUnavailableNodes, until: ttl, msg: "Being cordoned now: n1 by shop/web."},
			{name: "the cordon arrives: the node counts, no claim is left", at: 2 * time.Second, nodes: cordonedBy("web", 1), in: ask("db", "n2"),
				reason: plan.ReasonTooManyUnavailableNodes, msg: "cordoned n1, to act on n2."},
			{name: "n1 is uncordoned: db goes through", at: 3 * time.Second, in: ask("db", "n2")},
		}},
		{name: "a claim whose action never ran ends at its TTL", steps: []step{
			{name: "web takes n1", in: ask("web", "n1")},
			{name: "db is held just before the TTL", at: ttl - time.Nanosecond, in: ask("db", "n2"),
				reason: plan.ReasonTooManyUnavailableNodes, until: ttl},
			{name: "db goes through at the TTL", at: ttl, in: ask("db", "n2")},
		}},
		{name: "a claim on a node that is gone ends", steps: []step{
			{name: "web takes n1", in: ask("web", "n1")},
			{name: "n1 is removed: db goes through", at: time.Second, in: ask("db", "n2"),
				nodes: func(ns []corev1.Node) { ns[1] = gateNode("n10", true, false, "") }},
		}},
		{name: "a DryRun app claims nothing", steps: []step{
			{name: "web in DryRun would take n1", in: ask("web", "n1"), dryRun: true},
			{name: "db goes through", at: time.Second, in: ask("db", "n2")},
		}},
		{name: "the app's own claim counts against its maxNodes, and the same node again counts once", steps: []step{
			{name: "web takes n1", in: ask("web", "n1")},
			{name: "web on n2 is held by maxNodes", at: time.Second, in: plan.NodeGuardInput{Candidates: []string{"n2"}, App: "shop/web",
				MaxUnavailableNodes: nodeCount(5)}, reason: plan.ReasonNodesInFlight, until: ttl,
				msg: "The app already holds n1 cordoned or drained"},
			{name: "web drains n1 after its cordon", at: 2 * time.Second, in: ask("web", "n1")},
		}},
		{name: "a node stamped with the app counts against its maxNodes with no history at all", steps: []step{
			{name: "web on n2 is held by n1", nodes: cordonedBy("web", 1), in: plan.NodeGuardInput{Candidates: []string{"n2"}, App: "shop/web",
				MaxUnavailableNodes: nodeCount(5)}, reason: plan.ReasonNodesInFlight, msg: "The app already holds n1 cordoned or drained"},
			{name: "db is not held by web's node", nodes: cordonedBy("web", 1), in: plan.NodeGuardInput{Candidates: []string{"n2"}, App: "shop/db",
				MaxUnavailableNodes: nodeCount(5)}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gate := newNodeGate(ttl)
			cache := &fakeNodeCache{}
			for _, s := range tc.steps {
				cache.set(ten(s.nodes)...)
				v, err := gate.check(t0.Add(s.at), cache.list, s.in, !s.dryRun)
				if err != nil {
					t.Fatalf("%s: check: %v", s.name, err)
				}
				if v.Reason != s.reason || v.Held != (s.reason != "") {
					t.Fatalf("%s: verdict = %+v, want reason %q", s.name, v, s.reason)
				}
				var until time.Time
				if s.until > 0 {
					until = t0.Add(s.until)
				}
				if !v.Until.Equal(until) {
					t.Errorf("%s: until = %s, want %s", s.name, v.Until, until)
				}
				if !strings.Contains(v.Message, s.msg) {
					t.Errorf("%s: message = %q, want it to contain %q", s.name, v.Message, s.msg)
				}
			}
		})
	}
}

func TestNodeGateReturnsTheListError(t *testing.T) {
	gate := newNodeGate(time.Minute)
	_, err := gate.check(time.Now(), func() ([]corev1.Node, error) { return nil, fmt.Errorf("cache gone") },
		plan.NodeGuardInput{Candidates: []string{"n1"}}, true)
	if err == nil || err.Error() != "cache gone" {
		t.Fatalf("err = %v, want the list's error", err)
	}
	if len(gate.claims) != 0 {
		t.Errorf("claims = %v, want none after a failed check", gate.claims)
	}
}
