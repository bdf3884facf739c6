package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/devcluster"
	"github.com/homeostat-dev/homeostat/test/bench/harness"
)

// The shared-policy benchmark's parameters.
const (
	// sharedSection is its report section.
	sharedSection = "shared-policy"
	// sharedApps apps, spread over sharedNamespaces namespaces, are selected by the policy;
	// sharedUnselected more in the same namespaces are not, and must never see an edit.
	sharedApps       = 50
	sharedUnselected = 6
	sharedNamespaces = 3
	// sharedEdits is how many edits are measured.
	sharedEdits = 10
	// sharedLabel selects the namespaces and the apps.
	sharedLabel      = "bench.homeostat.dev/shared"
	sharedPolicyName = "bench-shared"
	// sharedEditTimeout bounds the wait for every selected app to reflect one edit.
	sharedEditTimeout = 30 * time.Second
)

// TestBenchSharedPolicyPropagation measures how long an edit of a ClusterHealingPolicy
// takes to reach the apps it selects, for the claim that an edit reaches every selected
// app within a second.
//
// On a local control plane of its own, with the manager built from main.go running as a
// process (as the other benchmarks run it): 56 Deployments of 3 pods in 3 namespaces,
// each with an AutonomicApp that declares one component and no healing of its own. One
// ClusterHealingPolicy selects the 3 namespaces and 50 of the apps by label; it holds a
// CrashLooping symptom, a restartPods ladder, and a second symptom whose name changes at
// every edit (Edit1, Edit2, ...). The other 6 apps carry another value of the label.
//
// Each of the 10 edits replaces the second symptom by a merge patch of the policy's
// spec.symptoms. An app reflects the edit when its status.symptoms holds the new name:
// the manager has merged the edited policy into the app and written the app's status.
// The test's own informer on the apps stamps the first event that shows it, for every
// app; the times run from the patch's response. Beside them, a bare informer of the test
// on ClusterHealingPolicies stamps the edit itself: the floor of any watcher. Between
// edits the test waits 2-3 s, and it reads the manager's API writes and reconciles per
// edit from its metrics.
func TestBenchSharedPolicyPropagation(t *testing.T) {
	Require(t)
	began := time.Now()
	ctx := t.Context()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "manager")
	if err := harness.BuildManager(ctx, root, bin); err != nil {
		t.Fatal(err)
	}
	total := sharedApps + sharedUnselected
	pods := total * harness.PodsPerApp
	cluster := devcluster.StartForTest(t, devcluster.Options{Nodes: devcluster.NodesFor(pods)})
	if err := cluster.InstallCRDs(ctx, filepath.Join(root, "config", "crd", "bases")); err != nil {
		t.Fatal(err)
	}
	cfg := cluster.RESTConfig()
	c, err := client.New(cfg, client.Options{Scheme: scaleScheme})
	if err != nil {
		t.Fatal(err)
	}
	w, err := harness.StartWatcher(ctx, cfg, scaleScheme)
	if err != nil {
		t.Fatal(err)
	}
	seen := newSharedSeen()
	selected, unselected := make([]string, 0, sharedApps), make([]string, 0, sharedUnselected)
	for i := range total {
		ns, name := sharedNamespace(i), harness.Fleet{}.Name(i)
		w.HookApp(ns, name, seen.app)
		if i < sharedApps {
			selected = append(selected, ns+"/"+name)
		} else {
			unselected = append(unselected, ns+"/"+name)
		}
	}
	if err := sharedWatchPolicies(ctx, cfg, seen); err != nil {
		t.Fatal(err)
	}

	m, err := harness.StartManager(cluster, bin, harness.ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	if err := m.WaitMetrics(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}

	// The apps, healthy and reconciled, before the policy exists.
	for n := range sharedNamespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: sharedNamespace(n),
			Labels: map[string]string{sharedLabel: "yes"}}}
		if err := c.Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := harness.ForEach(ctx, total, 8, nil, func(ctx context.Context, i int) error {
		d := harness.Fleet{}.Deployment(i)
		d.Namespace = sharedNamespace(i)
		return harness.IgnoreExists(c.Create(ctx, d))
	}); err != nil {
		t.Fatalf("Creating Deployments: %v", err)
	}
	if err := harness.WaitFor(ctx, fmt.Sprintf("%d ready pods", pods), 5*time.Minute, 2*time.Minute, w.ReadyPods,
		func() bool { return w.ReadyPods() >= pods }); err != nil {
		t.Fatalf("%v\n%s", err, cluster.LogTails(20))
	}
	if _, err := harness.ForEach(ctx, total, 8, nil, func(ctx context.Context, i int) error {
		return harness.IgnoreExists(c.Create(ctx, sharedApp(i)))
	}); err != nil {
		t.Fatalf("Creating apps: %v", err)
	}
	if err := harness.WaitFor(ctx, fmt.Sprintf("%d apps reconciled", total), 3*time.Minute, time.Minute, w.ReconciledApps,
		func() bool { return w.ReconciledApps() >= total }); err != nil {
		t.Fatalf("%v\nmanager log:\n%s", err, harness.Tail(m.LogPath, 30))
	}
	t.Logf("%d apps with %d ready pods reconciled after %s", total, pods, time.Since(began).Round(time.Second))

	// The policy, and every selected app with its symptoms.
	chp := sharedPolicy(0)
	if err := c.Create(ctx, chp); err != nil {
		t.Fatal(err)
	}
	if err := harness.WaitFor(ctx, "every selected app to merge the new policy", time.Minute, 0, nil, func() bool {
		return len(seen.appsWith(selected, sharedSymptomName(0))) == len(selected)
	}); err != nil {
		t.Fatalf("%v (%d of %d)\nmanager log:\n%s", err, len(seen.appsWith(selected, sharedSymptomName(0))), len(selected),
			harness.Tail(m.LogPath, 30))
	}
	var matched int32
	if err := harness.WaitFor(ctx, "the policy to count its apps", 30*time.Second, 0, nil, func() bool {
		p := &v1alpha1.ClusterHealingPolicy{}
		if err := c.Get(ctx, types.NamespacedName{Name: sharedPolicyName}, p); err == nil {
			matched = p.Status.MatchedApps
		}
		return matched == sharedApps
	}); err != nil {
		t.Fatalf("%v: status.matchedApps is %d, want %d", err, matched, sharedApps)
	}
	sharedSleep(ctx, 3*time.Second)

	// The edits.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var firsts, lasts, each, floor, writes, reconciles []float64
	for e := 1; e <= sharedEdits; e++ {
		name := sharedSymptomName(e)
		before, err := m.Metrics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		patch, err := json.Marshal(map[string]any{"spec": map[string]any{"symptoms": sharedSymptoms(e)}})
		if err != nil {
			t.Fatal(err)
		}
		sent := time.Now()
		if err := c.Patch(ctx, chp, client.RawPatch(types.MergePatchType, patch)); err != nil {
			t.Fatalf("Edit %d: %v", e, err)
		}
		accepted := time.Now()
		gen := chp.Generation
		if err := harness.WaitFor(ctx, fmt.Sprintf("edit %d to reach every selected app", e), sharedEditTimeout, 0, nil, func() bool {
			_, ok := seen.policyAt(gen)
			return ok && len(seen.appsWith(selected, name)) == len(selected)
		}); err != nil {
			t.Fatalf("%v: %d of %d apps reflect it\nmanager log:\n%s", err, len(seen.appsWith(selected, name)), len(selected),
				harness.Tail(m.LogPath, 30))
		}
		all, first, last := sharedLatencies(accepted, seen.appsWith(selected, name))
		policySeen, _ := seen.policyAt(gen)
		each = append(each, all...)
		firsts, lasts = append(firsts, first), append(lasts, last)
		floor = append(floor, sharedMillis(accepted, policySeen))
		t.Logf("Edit %2d (generation %d, round trip %.1f ms): the bare informer saw it after %.1f ms, the first app after %.0f ms, the last of %d after %.0f ms",
			e, gen, sharedMillis(sent, accepted), floor[len(floor)-1], first, len(selected), last)

		// Quiet between edits: every app's status written, the manager idle again.
		sharedSleep(ctx, 2*time.Second+time.Duration(rng.Int64N(int64(time.Second))))
		after, err := m.Metrics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		d := harness.CountsOf(after).Sub(harness.CountsOf(before))
		writes, reconciles = append(writes, d.Writes), append(reconciles, d.Reconciles)
	}
	for _, key := range unselected {
		if got := seen.symptomsOf(key); slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "Edit") }) {
			t.Errorf("App %s is not selected by the policy, yet its status held symptoms %v", key, got)
		}
	}

	floorFig := func() *Figure {
		return &Figure{Name: "a bare informer sees the ClusterHealingPolicy edit", Unit: "ms", Samples: floor}
	}
	n := len(selected)
	Note(sharedSection, fmt.Sprintf("TestBenchSharedPolicyPropagation: one local control plane; %d Deployments of %d pods in %d "+
		"namespaces, each with an AutonomicApp that declares one component and no healing of its own; one ClusterHealingPolicy "+
		"selects the namespaces and %d of the apps by label (the other %d must never see it). Each of %d edits renames one of the "+
		"policy's two symptoms by a merge patch; an app reflects the edit when its status.symptoms holds the new name, as an "+
		"informer of the test on the apps sees it. Times run from the patch's response; the baseline is a bare informer of the "+
		"test on ClusterHealingPolicies seeing the edit itself. The manager runs as its own process, built from main.go, with "+
		"its default flags; 2-3 s pass between edits.", total, harness.PodsPerApp, sharedNamespaces, n, sharedUnselected, sharedEdits))
	Record(sharedSection,
		Figure{Name: fmt.Sprintf("ClusterHealingPolicy edit -> last of %d selected apps reflects it", n), Unit: "ms", Samples: lasts,
			Baseline: floorFig(), Note: "target: under 1 s (an edit reaches every selected app within a second)"},
		Figure{Name: fmt.Sprintf("ClusterHealingPolicy edit -> first of %d selected apps reflects it", n), Unit: "ms", Samples: firsts,
			Baseline: floorFig()},
		Figure{Name: fmt.Sprintf("ClusterHealingPolicy edit -> an app reflects it (each of %d apps, each edit)", n), Unit: "ms",
			Samples: each, Baseline: floorFig()},
		Figure{Name: "manager API writes per edit", Unit: "requests", Samples: writes,
			Note: fmt.Sprintf("from its metrics, over the edit and the quiet after it; %d selected apps", n)},
		Figure{Name: "manager reconciles of apps per edit", Unit: "reconciles", Samples: reconciles,
			Note: fmt.Sprintf("%d selected apps", n)},
	)
	t.Logf("Edit -> last app: median %.0f ms, p99 %.0f ms; first app: median %.0f ms; bare informer: median %.1f ms; the run took %s",
		Summarize(lasts).Median, Summarize(lasts).P99, Summarize(firsts).Median, Summarize(floor).Median, time.Since(began).Round(time.Second))
}

// sharedNamespace is the namespace of app i.
func sharedNamespace(i int) string { return fmt.Sprintf("bench-shared-%d", i%sharedNamespaces) }

// sharedApp is app i: one component, its Deployment, and no healing of its own. The
// first sharedApps apps carry the label the policy selects.
func sharedApp(i int) *v1alpha1.AutonomicApp {
	name, selected := harness.Fleet{}.Name(i), "yes"
	if i >= sharedApps {
		selected = "no"
	}
	return &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: sharedNamespace(i), Name: name, Labels: map[string]string{sharedLabel: selected}},
		Spec: v1alpha1.AutonomicAppSpec{Components: []v1alpha1.Component{{Name: "web",
			WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name}}}},
	}
}

// sharedSymptomName is the name of the symptom that edit e introduces.
func sharedSymptomName(e int) string { return fmt.Sprintf("Edit%d", e) }

// sharedSymptoms are the policy's symptoms after edit e: CrashLooping, which its ladder
// acts on, and Edit<e>, which no pod of the benchmark makes true.
func sharedSymptoms(e int) []v1alpha1.Symptom {
	return []v1alpha1.Symptom{
		{Name: "CrashLooping", Expression: "components.exists(c, components[c].crashLoopingPods > 0)"},
		{Name: sharedSymptomName(e), Expression: "components.exists(c, components[c].readyRatio < 0.5)",
			For: &metav1.Duration{Duration: time.Duration(e+1) * 10 * time.Second}},
	}
}

// sharedPolicy is the ClusterHealingPolicy as edit e leaves it.
func sharedPolicy(e int) *v1alpha1.ClusterHealingPolicy {
	sel := map[string]string{sharedLabel: "yes"}
	return &v1alpha1.ClusterHealingPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: sharedPolicyName},
		Spec: v1alpha1.ClusterHealingPolicySpec{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: sel},
			HealingPolicySpec: v1alpha1.HealingPolicySpec{
				AppSelector: metav1.LabelSelector{MatchLabels: sel},
				Healing: v1alpha1.Healing{
					Symptoms: sharedSymptoms(e),
					Policies: []v1alpha1.Policy{{Name: "heal-crashloops", Remediate: &v1alpha1.RemediatePolicy{
						When: []string{"CrashLooping"},
						Steps: []v1alpha1.RemediationStep{{
							Action:  v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "*", Pods: v1alpha1.PodsUnhealthy}},
							Timeout: &metav1.Duration{Duration: time.Minute},
						}},
					}}},
				},
			},
		},
	}
}

// sharedSeen stamps, as the test's informers deliver them, the first event in which each
// app's status holds each symptom name, and the first event of each generation of the
// policy.
type sharedSeen struct {
	mu     sync.Mutex
	apps   map[string]map[string]time.Time // namespace/name -> symptom -> first seen
	policy map[int64]time.Time             // generation -> first seen
}

func newSharedSeen() *sharedSeen {
	return &sharedSeen{apps: map[string]map[string]time.Time{}, policy: map[int64]time.Time{}}
}

// app is the apps' hook (harness.AppHook).
func (s *sharedSeen) app(a *v1alpha1.AutonomicApp, at time.Time) {
	key := a.Namespace + "/" + a.Name
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.apps[key]
	if m == nil {
		m = map[string]time.Time{}
		s.apps[key] = m
	}
	for _, sym := range a.Status.Symptoms {
		if _, ok := m[sym.Name]; !ok {
			m[sym.Name] = at
		}
	}
}

func (s *sharedSeen) policySeen(p *v1alpha1.ClusterHealingPolicy, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.policy[p.Generation]; !ok {
		s.policy[p.Generation] = at
	}
}

// appsWith returns when each of keys first held symptom, for those that have.
func (s *sharedSeen) appsWith(keys []string, symptom string) map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]time.Time{}
	for _, k := range keys {
		if at, ok := s.apps[k][symptom]; ok {
			out[k] = at
		}
	}
	return out
}

// symptomsOf returns every symptom name the app's status ever held.
func (s *sharedSeen) symptomsOf(key string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name := range s.apps[key] {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// policyAt returns when the bare informer first saw the policy's generation gen (or a
// later one: the informer may skip none, but a relist could).
func (s *sharedSeen) policyAt(gen int64) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first time.Time
	for g, at := range s.policy {
		if g >= gen && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first, !first.IsZero()
}

// sharedWatchPolicies starts the bare informer on ClusterHealingPolicies: a cache of the
// test's own, with nothing else in it.
func sharedWatchPolicies(ctx context.Context, cfg *rest.Config, seen *sharedSeen) error {
	cache, err := crcache.New(cfg, crcache.Options{Scheme: scaleScheme})
	if err != nil {
		return err
	}
	inf, err := cache.GetInformer(ctx, &v1alpha1.ClusterHealingPolicy{})
	if err != nil {
		return err
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { seen.policySeen(o.(*v1alpha1.ClusterHealingPolicy), time.Now()) },
		UpdateFunc: func(_, o any) { seen.policySeen(o.(*v1alpha1.ClusterHealingPolicy), time.Now()) },
	}); err != nil {
		return err
	}
	go func() { _ = cache.Start(ctx) }()
	if !cache.WaitForCacheSync(ctx) {
		return fmt.Errorf("the informer on ClusterHealingPolicies did not sync: %w", ctx.Err())
	}
	return nil
}

// sharedLatencies returns the milliseconds from accepted to each app's time, in the
// apps' order by name, and the first and the last of them.
func sharedLatencies(accepted time.Time, seen map[string]time.Time) (each []float64, first, last float64) {
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		ms := sharedMillis(accepted, seen[k])
		each = append(each, ms)
		if i == 0 || ms < first {
			first = ms
		}
		if i == 0 || ms > last {
			last = ms
		}
	}
	return each, first, last
}

// sharedMillis is b - a in milliseconds, to the microsecond.
func sharedMillis(a, b time.Time) float64 { return float64(b.Sub(a).Microseconds()) / 1000 }

func sharedSleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func TestSharedLatenciesTakeTheFirstAndTheLastApp(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	each, first, last := sharedLatencies(t0, map[string]time.Time{
		"b/app-1": t0.Add(250 * time.Millisecond),
		"a/app-0": t0.Add(1500 * time.Microsecond),
		"c/app-2": t0.Add(900 * time.Millisecond),
	})
	if want := []float64{1.5, 250, 900}; !slices.Equal(each, want) || first != 1.5 || last != 900 {
		t.Fatalf("got each %v, first %v, last %v; want %v, 1.5, 900", each, first, last, want)
	}
	s := newSharedSeen()
	app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "app-0"}}
	app.Status.Symptoms = []v1alpha1.SymptomStatus{{Name: "Edit1"}}
	s.app(app, t0)
	s.app(app, t0.Add(time.Second)) // a later event keeps the first stamp
	if got := s.appsWith([]string{"a/app-0", "b/app-1"}, "Edit1"); len(got) != 1 || !got["a/app-0"].Equal(t0) {
		t.Fatalf("appsWith = %v, want only a/app-0 at %v", got, t0)
	}
	s.policySeen(&v1alpha1.ClusterHealingPolicy{ObjectMeta: metav1.ObjectMeta{Generation: 3}}, t0.Add(time.Millisecond))
	if at, ok := s.policyAt(2); !ok || !at.Equal(t0.Add(time.Millisecond)) {
		t.Fatalf("policyAt(2) = %v %v, want the stamp of generation 3", at, ok)
	}
	if _, ok := s.policyAt(4); ok {
		t.Fatal("policyAt(4) found a generation never seen")
	}
}
