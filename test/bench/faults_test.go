package bench

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/devcluster"
	"github.com/homeostat-dev/homeostat/internal/execute"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// The fault-tolerance scenarios of the report (section "faults"). Each starts its own
// local control plane and runs the manager built from main.go as a child process, so a
// scenario can kill it, run two of it, or take the API server away from under it. They
// run only with HOMEOSTAT_BENCH=1.

// TestBenchFaultsSIGKILL kills the manager with SIGKILL at 200 random moments while six
// apps escalate, restarting it each time, and then counts duplicate and lost actions
// from what the targets carry.
//
// Each app has four Deployments, one per role, so that every effect is countable on a
// target that nothing else touches:
//
//   - probe (image :bad, crash-looping under devcluster.CrashLoopStage) drives the
//     symptom: the test scales it between 1 replica (broken, 12 s) and 0 (healthy, 4 s),
//     each app at its own phase, so episodes open, escalate and heal all the time;
//   - web is only ever restarted by rolloutRestart: each action id is one pod template,
//     so one ReplicaSet, with the id and a restartedAt fixed by the ledger record;
//   - worker is only ever scaled, to an absolute count fixed at intent time (3, then 2):
//     each id is stamped on the Deployment after its replicas are set;
//   - api (crash-looping) is only ever touched by restartPods: each evicted pod is
//     stamped with the id first.
//
// The ladder (8 steps of 1 s, no giveUp, no guards) alternates those actions. The
// manager runs with --storm-threshold=100%: every app is unhealthy on purpose.
//
// Duplicate actions are counted two ways: an effect applied twice under one id (two
// restartedAt values for one id), and a ladder step acted twice within one episode (a
// record for a step the episode already has, with no return of the policy to step 0 in
// between, as the test's informer on the apps sees every status write). Lost actions are
// a Succeeded record whose effect is not on its target, or an effect whose id no record
// has.
func TestBenchFaultsSIGKILL(t *testing.T) {
	Require(t)
	const (
		apps      = 6
		kills     = 200
		brokenFor = 12 * time.Second
		healedFor = 4 * time.Second
	)
	ctx := t.Context()
	e := newFaultEnv(t, devcluster.Options{Nodes: 2})
	ns := e.namespace("kill")

	for i := range apps {
		e.create(
			faultDeployment(ns, fmt.Sprintf("probe-%d", i), faultBadImage, 0),
			faultDeployment(ns, fmt.Sprintf("web-%d", i), faultGoodImage, 2),
			faultDeployment(ns, fmt.Sprintf("api-%d", i), faultBadImage, 2),
			faultDeployment(ns, fmt.Sprintf("worker-%d", i), faultGoodImage, 2),
			killApp(ns, i),
		)
	}

	tr := newKillTracker()
	tr.start(t, e, ns)

	m := e.manager("manager", "--storm-threshold=100%")
	e.must(m.start(), "starting the manager")
	for i := range apps {
		_, err := faultWaitUntil(ctx, time.Minute, func(ctx context.Context) (bool, error) {
			a, err := e.app(ns, fmt.Sprintf("app-%d", i))
			if err != nil {
				return false, err
			}
			c := faultCondition(a, v1alpha1.ConditionReady)
			return c != nil && c.Status == metav1.ConditionTrue, nil
		})
		e.must(err, fmt.Sprintf("app-%d Ready", i))
	}

	// The symptom driver: each app broken for brokenFor, healed for healedFor, at its
	// own phase.
	toggleCtx, stopToggling := context.WithCancel(ctx)
	var toggles sync.WaitGroup
	toggles.Go(func() {
		began := time.Now()
		period := brokenFor + healedFor
		state := make([]int32, apps)
		for {
			for i := range apps {
				pos := (time.Since(began) + time.Duration(i)*period/apps) % period
				want := int32(0)
				if pos < brokenFor {
					want = 1
				}
				if want != state[i] {
					if err := e.setReplicas(toggleCtx, ns, fmt.Sprintf("probe-%d", i), want); err == nil {
						state[i] = want
					}
				}
			}
			select {
			case <-toggleCtx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	})

	// The kills.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 42))
	var lifetimes []time.Duration
	var pendingAtKill, beforeEffect int
	pendingSeen := map[string]bool{} // intents already counted at an earlier kill
	began := time.Now()
	for k := range kills {
		if k > 0 {
			e.must(m.start(), "restarting the manager")
		}
		d := 50*time.Millisecond + time.Duration(rng.Int64N(int64(1450*time.Millisecond)))
		time.Sleep(d)
		m.kill()
		lifetimes = append(lifetimes, d)
		p, b := killPendingAtKill(ctx, e, ns, pendingSeen)
		if p > 0 {
			pendingAtKill++
		}
		if b > 0 {
			beforeEffect++
		}
	}
	killsTook := time.Since(began)
	t.Logf("%d kills in %s; %d landed with an intent recorded and its outcome not, %d of them before the effect",
		kills, killsTook.Round(time.Second), pendingAtKill, beforeEffect)

	// Settle: every app healthy, one manager that is left alone.
	stopToggling()
	toggles.Wait()
	for i := range apps {
		e.must(e.setReplicas(ctx, ns, fmt.Sprintf("probe-%d", i), 0), "healing the probes")
	}
	e.must(m.start(), "starting the manager to settle")
	_, err := faultWaitUntil(ctx, 2*time.Minute, func(ctx context.Context) (bool, error) {
		var list v1alpha1.AutonomicAppList
		if err := e.c.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err
		}
		for _, a := range list.Items {
			if p := faultPolicy(&a, "heal"); p.Step != 0 {
				return false, nil
			}
			for _, r := range a.Status.History {
				if r.Result == v1alpha1.ResultPending {
					return false, nil
				}
			}
		}
		return true, nil
	})
	e.must(err, "waiting for every episode to close and every intent to finish")
	time.Sleep(5 * time.Second)
	m.stop()
	tr.stop()

	res := tr.analyze()
	resumed := tr.finished(pendingSeen)
	t.Logf("ledger: %d action records seen (%s)", res.records, res.byKind)
	for _, l := range res.details {
		t.Log(l)
	}
	Record(faultSection,
		faultCount("SIGKILL x200: manager kills", "kills", kills,
			fmt.Sprintf("6 apps escalating 8-step ladders (rolloutRestart, scale, restartPods; 1 s timeouts); SIGKILL after 50-1500 ms of life, restarted at once; %s in all", killsTook.Round(time.Second))),
		Figure{Name: "SIGKILL x200: manager lifetime before the kill", Unit: "ms", Samples: faultMillis(lifetimes...),
			Note: "uniform random; the manager needs part of it to start and sync its caches"},
		faultCount("SIGKILL x200: kills that landed between intent and outcome", "kills", pendingAtKill,
			"a Pending record in some app's ledger right after the kill"),
		faultCount("SIGKILL x200: kills that landed between intent and effect", "kills", beforeEffect,
			"of those, a Pending intent whose effect was not yet on its target"),
		faultCount("SIGKILL x200: intents left Pending by a kill and finished by a later manager", "actions", resumed,
			"the resume path the ledger exists for"),
		faultCount("SIGKILL x200: actions recorded", "actions", res.records, res.byKind),
		faultCount("SIGKILL x200: duplicate actions", "actions", res.duplicates,
			"an effect applied twice under one id, or a ladder step acted twice in one episode; target 0"),
		faultCount("SIGKILL x200: lost actions", "actions", res.lost,
			"a Succeeded record without its effect on the target, or an effect whose id no record has; target 0"),
	)
	Note(faultSection, "SIGKILL x200 found a bug: the intent was written without the policy's step, so a manager killed "+
		"between intent and outcome left the ladder on the step before, and the next manager finished the intent and then "+
		"acted on the same step again under a new id. Before the fix (the step is now written with the intent, "+
		"controllers/act.go carryOut, plan.ActedStatus) this scenario counted 132 duplicate actions in 200 kills "+
		"(second rollout restarts, second evictions, second scale attempts) and 0 lost.")
	if res.duplicates != 0 || res.lost != 0 {
		t.Errorf("%d duplicate and %d lost actions; want 0 and 0 (manager log: %s)", res.duplicates, res.lost, m.logPath)
	}
}

// killApp is app-i of the SIGKILL scenario.
func killApp(ns string, i int) *v1alpha1.AutonomicApp {
	const timeout = time.Second
	return &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("app-%d", i)},
		Spec: v1alpha1.AutonomicAppSpec{
			Mode: v1alpha1.ModeActive,
			Components: []v1alpha1.Component{
				faultWorkload("probe", fmt.Sprintf("probe-%d", i)),
				faultWorkload("web", fmt.Sprintf("web-%d", i)),
				faultWorkload("api", fmt.Sprintf("api-%d", i)),
				faultWorkload("worker", fmt.Sprintf("worker-%d", i)),
			},
			Healing: v1alpha1.Healing{
				Symptoms: []v1alpha1.Symptom{{Name: "Broken", Expression: "components.probe.crashLoopingPods > 0"}},
				Policies: []v1alpha1.Policy{{Name: "heal", Remediate: &v1alpha1.RemediatePolicy{
					When: []string{"Broken"},
					Steps: []v1alpha1.RemediationStep{
						faultStep(faultRolloutRestart("web"), timeout),
						faultStep(faultScaleTo("worker", 3), timeout),
						faultStep(faultRestartPods("api", v1alpha1.PodsUnhealthy), timeout),
						faultStep(faultScaleTo("worker", 2), timeout),
						faultStep(faultRolloutRestart("web"), timeout),
						faultStep(faultScaleTo("worker", 3), timeout),
						faultStep(faultRestartPods("api", v1alpha1.PodsUnhealthy), timeout),
						faultStep(faultScaleTo("worker", 2), timeout),
					},
				}}},
			},
		},
	}
}

// killPendingAtKill reads, right after a kill (nothing changes the ledgers then), how
// many intents this kill left recorded without an outcome (an intent still Pending from
// an earlier kill, whose manager died before it could finish it, is not counted again),
// and how many of those have not had their effect on the target yet.
func killPendingAtKill(ctx context.Context, e *faultEnv, ns string, seen map[string]bool) (pending, beforeEffect int) {
	var list v1alpha1.AutonomicAppList
	if err := e.c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return 0, 0
	}
	for _, a := range list.Items {
		suffix := strings.TrimPrefix(a.Name, "app-")
		for _, r := range a.Status.History {
			if r.Result != v1alpha1.ResultPending || seen[r.ID] {
				continue
			}
			seen[r.ID] = true
			pending++
			if !killEffectPresent(ctx, e, ns, suffix, r) {
				beforeEffect++
			}
		}
	}
	return pending, beforeEffect
}

func killEffectPresent(ctx context.Context, e *faultEnv, ns, suffix string, r v1alpha1.ActionRecord) bool {
	switch r.Action {
	case execute.KindRolloutRestart:
		d := &appsv1.Deployment{}
		if err := e.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web-" + suffix}, d); err != nil {
			return false
		}
		return d.Spec.Template.Annotations[v1alpha1.ActionIDAnnotation] == r.ID
	case execute.KindScale:
		d := &appsv1.Deployment{}
		if err := e.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "worker-" + suffix}, d); err != nil {
			return false
		}
		return d.Annotations[v1alpha1.ActionIDAnnotation] == r.ID ||
			(r.Replicas != nil && d.Spec.Replicas != nil && *d.Spec.Replicas == *r.Replicas)
	case execute.KindRestartPods:
		for _, name := range r.Objects {
			p := &corev1.Pod{}
			err := e.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, p)
			if err != nil || p.DeletionTimestamp != nil || p.Annotations[v1alpha1.ActionIDAnnotation] == r.ID {
				return true
			}
		}
	}
	return false
}

// killRecord is one action record as the test's informer saw it.
type killRecord struct {
	app       string
	rec       v1alpha1.ActionRecord
	firstSeen time.Time
	results   []v1alpha1.ActionResult
}

// killPod is one api pod as the test's informer saw it.
type killPod struct {
	stamps  map[string]bool
	created time.Time
	ended   bool
}

// killTracker watches, with informers of its own, every status write of the apps and
// every change of their targets.
type killTracker struct {
	mu      sync.Mutex
	records map[string]*killRecord
	// steps is, per app, the policy's step as last written and the steps acted (id by
	// step) since the policy last returned to step 0.
	steps map[string]*killSteps
	dups  []string
	// restartedAt: rolloutRestart id -> restartedAt values seen on web templates
	// (Deployments and ReplicaSets); replicaSets: id -> ReplicaSets with that template.
	restartedAt map[string]map[string]bool
	replicaSets map[string]map[string]bool
	// scaled: scale id -> worker's spec.replicas when the id was first stamped on it.
	scaled map[string]int32
	// evicted: restartPods id -> api pods stamped with it; pods by name.
	evicted map[string]map[string]bool
	pods    map[string]*killPod

	cancel context.CancelFunc
	done   chan struct{}
}

type killSteps struct {
	step  int32
	acted map[int32]string
}

func newKillTracker() *killTracker {
	return &killTracker{records: map[string]*killRecord{}, steps: map[string]*killSteps{},
		restartedAt: map[string]map[string]bool{}, replicaSets: map[string]map[string]bool{},
		scaled: map[string]int32{}, evicted: map[string]map[string]bool{}, pods: map[string]*killPod{}}
}

func (tr *killTracker) start(t *testing.T, e *faultEnv, ns string) {
	t.Helper()
	c, err := cache.New(e.cluster.RESTConfig(), cache.Options{Scheme: faultScheme,
		DefaultNamespaces: map[string]cache.Config{ns: {}}})
	e.must(err, "creating the test's cache")
	ctx, cancel := context.WithCancel(context.Background())
	tr.cancel, tr.done = cancel, make(chan struct{})
	handlers := []struct {
		obj client.Object
		fn  func(obj any, deleted bool)
	}{
		{&v1alpha1.AutonomicApp{}, tr.onApp},
		{&appsv1.Deployment{}, tr.onDeployment},
		{&appsv1.ReplicaSet{}, tr.onReplicaSet},
		{&corev1.Pod{}, tr.onPod},
	}
	for _, h := range handlers {
		inf, err := c.GetInformer(ctx, h.obj)
		e.must(err, "getting an informer")
		fn := h.fn
		_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { fn(o, false) },
			UpdateFunc: func(_, o any) { fn(o, false) },
			DeleteFunc: func(o any) {
				if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
					o = d.Obj
				}
				fn(o, true)
			},
		})
		e.must(err, "adding an event handler")
	}
	go func() { defer close(tr.done); _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		t.Fatal("the test's cache did not sync")
	}
}

func (tr *killTracker) stop() {
	tr.cancel()
	<-tr.done
}

func (tr *killTracker) onApp(o any, deleted bool) {
	a, ok := o.(*v1alpha1.AutonomicApp)
	if !ok || deleted {
		return
	}
	now := time.Now()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	st := tr.steps[a.Name]
	if st == nil {
		st = &killSteps{acted: map[int32]string{}}
		tr.steps[a.Name] = st
	}
	step := faultPolicy(a, "heal").Step
	if st.step > 0 && step == 0 {
		st.acted = map[int32]string{}
	}
	st.step = step
	for i := len(a.Status.History) - 1; i >= 0; i-- {
		r := a.Status.History[i]
		kr := tr.records[r.ID]
		if kr == nil {
			kr = &killRecord{app: a.Name, rec: r, firstSeen: now}
			tr.records[r.ID] = kr
			if r.Step > 0 {
				if prev, ok := st.acted[r.Step]; ok {
					tr.dups = append(tr.dups, fmt.Sprintf("%s step %d (%s) acted twice in one episode: %s then %s",
						a.Name, r.Step, r.Action, prev, r.ID))
				}
				st.acted[r.Step] = r.ID
			}
		}
		kr.rec = r
		if len(kr.results) == 0 || kr.results[len(kr.results)-1] != r.Result {
			kr.results = append(kr.results, r.Result)
		}
	}
}

func (tr *killTracker) onDeployment(o any, _ bool) {
	d, ok := o.(*appsv1.Deployment)
	if !ok {
		return
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	switch {
	case strings.HasPrefix(d.Name, "web-"):
		tr.template(d.Spec.Template.Annotations, "")
	case strings.HasPrefix(d.Name, "worker-"):
		if id := d.Annotations[v1alpha1.ActionIDAnnotation]; id != "" {
			if _, seen := tr.scaled[id]; !seen && d.Spec.Replicas != nil {
				tr.scaled[id] = *d.Spec.Replicas
			}
		}
	}
}

func (tr *killTracker) onReplicaSet(o any, _ bool) {
	rs, ok := o.(*appsv1.ReplicaSet)
	if !ok || !strings.HasPrefix(rs.Name, "web-") {
		return
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.template(rs.Spec.Template.Annotations, rs.Name)
}

// template notes a web pod template's action id and restartedAt; called with mu held.
func (tr *killTracker) template(ann map[string]string, rs string) {
	id := ann[v1alpha1.ActionIDAnnotation]
	if id == "" {
		return
	}
	if tr.restartedAt[id] == nil {
		tr.restartedAt[id], tr.replicaSets[id] = map[string]bool{}, map[string]bool{}
	}
	tr.restartedAt[id][ann[execute.RestartedAtAnnotation]] = true
	if rs != "" {
		tr.replicaSets[id][rs] = true
	}
}

func (tr *killTracker) onPod(o any, deleted bool) {
	p, ok := o.(*corev1.Pod)
	if !ok || !strings.HasPrefix(p.Name, "api-") {
		return
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	kp := tr.pods[p.Name]
	if kp == nil {
		kp = &killPod{stamps: map[string]bool{}, created: p.CreationTimestamp.Time}
		tr.pods[p.Name] = kp
	}
	if deleted || p.DeletionTimestamp != nil {
		kp.ended = true
	}
	if id := p.Annotations[v1alpha1.ActionIDAnnotation]; id != "" {
		kp.stamps[id] = true
		if tr.evicted[id] == nil {
			tr.evicted[id] = map[string]bool{}
		}
		tr.evicted[id][p.Name] = true
	}
}

// killResult is what the analysis found.
type killResult struct {
	records, duplicates, lost int
	byKind                    string
	details                   []string
}

func (tr *killTracker) analyze() killResult {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var res killResult
	res.records = len(tr.records)
	kinds := map[string]int{}
	for _, kr := range tr.records {
		kinds[kr.rec.Action+"/"+string(kr.rec.Result)]++
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, kinds[k]))
	}
	res.byKind = strings.Join(parts, ", ")

	// Duplicates: a step acted twice in an episode, an effect applied twice under one id.
	res.duplicates = len(tr.dups)
	res.details = append(res.details, tr.dups...)
	for id, ats := range tr.restartedAt {
		if len(ats) > 1 {
			res.duplicates++
			res.details = append(res.details, fmt.Sprintf("rolloutRestart %s applied with %d restartedAt values %v", id, len(ats), slices.Collect(maps.Keys(ats))))
		}
	}

	// Lost: a Succeeded record without its effect; an effect without a record.
	for id, kr := range tr.records {
		r := kr.rec
		if r.Result == v1alpha1.ResultPending {
			res.lost++
			res.details = append(res.details, fmt.Sprintf("%s %s %s is still Pending after the run settled", kr.app, r.Action, id))
			continue
		}
		if r.Result != v1alpha1.ResultSucceeded {
			continue
		}
		switch r.Action {
		case execute.KindRolloutRestart:
			if len(tr.restartedAt[id]) == 0 {
				res.lost++
				res.details = append(res.details, fmt.Sprintf("%s rolloutRestart %s Succeeded but no web template carries its id", kr.app, id))
			}
		case execute.KindScale:
			got, ok := tr.scaled[id]
			if !ok || r.Replicas == nil || got != *r.Replicas {
				res.lost++
				res.details = append(res.details, fmt.Sprintf("%s scale %s Succeeded but worker was not stamped with it at %v replicas (seen: %v, %d)", kr.app, id, r.Replicas, ok, got))
			}
		case execute.KindRestartPods:
			for _, name := range r.Objects {
				if p := tr.pods[name]; p == nil || !p.ended {
					res.lost++
					res.details = append(res.details, fmt.Sprintf("%s restartPods %s Succeeded but pod %s was never evicted", kr.app, id, name))
				}
			}
		}
	}
	for _, effects := range []map[string]bool{keysOf(tr.restartedAt), keysOf(tr.scaled), keysOf(tr.evicted)} {
		for id := range effects {
			if tr.records[id] == nil {
				res.lost++
				res.details = append(res.details, fmt.Sprintf("an effect carries action id %s, which no record has", id))
			}
		}
	}
	return res
}

// finished counts the given intents that ended with an outcome.
func (tr *killTracker) finished(ids map[string]bool) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for id := range ids {
		if kr := tr.records[id]; kr != nil && kr.rec.Result != v1alpha1.ResultPending {
			n++
		}
	}
	return n
}

func keysOf[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// TestBenchFaultsLeaderElection runs two replicas of a manager with leader election, for
// the manager of faultBeforeRev ("before") and the working tree's ("after"), one pair
// after the other on the same cluster, each pair with its own Lease and namespaces. In
// each episode, as soon as step 1 of a three-step ladder (5 s timeouts) has acted, the
// test stops the leader, in one of two ways:
//
//   - a rolling update: SIGTERM, the graceful shutdown every update of the manager's
//     Deployment sends; the leader releases the Lease and the other replica takes it;
//   - a crash: SIGKILL; the Lease is not released, so the other replica takes it when it
//     expires (lease duration 15 s), when step 2 is already due.
//
// It measures the handover (the stop -> the Lease's acquireTime by the other replica)
// and, after a crash, how soon the new leader acts (acquireTime -> step 2 recorded), and
// checks that each step acted exactly once, by the records and by the targets.
func TestBenchFaultsLeaderElection(t *testing.T) {
	Require(t)
	const (
		episodes = 3
		lease    = "homeostat.autonomic.homeostat.dev"
		timeout  = 5 * time.Second
	)
	ctx := t.Context()
	e := newFaultEnv(t, devcluster.Options{Nodes: 1})
	type variant struct{ name, bin, label string }
	variants := []variant{{name: "after", bin: e.bin, label: " (after)"}}
	if rev := faultBeforeRevision(); rev != "" {
		bin, err := faultManagerAt(ctx, rev)
		e.must(err, "building the manager of "+rev)
		variants = append([]variant{{name: "before", bin: bin, label: " (before, " + rev + ")"}}, variants...)
	}
	type mode struct {
		name string
		sig  syscall.Signal
	}
	modes := []mode{{"rolling update (SIGTERM)", syscall.SIGTERM}, {"crash (SIGKILL)", syscall.SIGKILL}}
	figs := map[string][]time.Duration{} // by figure name and variant label
	for _, v := range variants {
		leaseNS := e.namespace("lease-" + v.name)
		var nss []string
		for mi := range modes {
			for ep := range episodes {
				nss = append(nss, fmt.Sprintf("leader-%s-%d-%d", v.name, mi, ep))
			}
		}
		leArgs := []string{"--leader-elect", "--leader-election-namespace", leaseNS, "--watch-namespaces", strings.Join(nss, ",")}
		managers := []*faultManager{e.managerOf(v.bin, v.name+"-a", leArgs...), e.managerOf(v.bin, v.name+"-b", leArgs...)}
		for _, m := range managers {
			e.must(m.start(), "starting "+m.name)
		}
		held := func(ctx context.Context) (string, time.Time) {
			l, err := e.cs.CoordinationV1().Leases(leaseNS).Get(ctx, lease, metav1.GetOptions{})
			if err != nil || l.Spec.HolderIdentity == nil || l.Spec.AcquireTime == nil {
				return "", time.Time{}
			}
			return *l.Spec.HolderIdentity, l.Spec.AcquireTime.Time
		}
		for mi, md := range modes {
			for ep := range episodes {
				ns := e.namespace(fmt.Sprintf("leader-%s-%d-%d", v.name, mi, ep))
				e.create(
					faultDeployment(ns, "probe", faultBadImage, 0),
					faultDeployment(ns, "web", faultGoodImage, 2),
					faultDeployment(ns, "worker", faultGoodImage, 2),
					&v1alpha1.AutonomicApp{
						ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
						Spec: v1alpha1.AutonomicAppSpec{
							Components: []v1alpha1.Component{faultWorkload("probe", "probe"), faultWorkload("web", "web"), faultWorkload("worker", "worker")},
							Healing: v1alpha1.Healing{
								Symptoms: []v1alpha1.Symptom{{Name: "Broken", Expression: "components.probe.crashLoopingPods > 0"}},
								Policies: []v1alpha1.Policy{{Name: "heal", Remediate: &v1alpha1.RemediatePolicy{
									When: []string{"Broken"},
									Steps: []v1alpha1.RemediationStep{
										faultStep(faultRolloutRestart("web"), timeout),
										faultStep(faultScaleTo("worker", 3), timeout),
										faultStep(faultNotify("web is still broken after a restart and a scale-up"), timeout),
									},
								}}},
							},
						},
					})
				var leader *faultManager
				_, err := faultWaitUntil(ctx, time.Minute, func(ctx context.Context) (bool, error) {
					a, err := e.app(ns, "shop")
					if err != nil {
						return false, err
					}
					c := faultCondition(a, v1alpha1.ConditionReady)
					if c == nil || c.Status != metav1.ConditionTrue {
						return false, nil
					}
					for _, m := range managers {
						if m.running() && m.leads() {
							leader = m
						}
					}
					return leader != nil, nil
				})
				e.must(err, "waiting for a leader and the app to be Ready")
				oldHolder, _ := held(ctx)

				e.must(e.setReplicas(ctx, ns, "probe", 1), "breaking the app")
				_, err = faultWaitUntil(ctx, time.Minute, func(ctx context.Context) (bool, error) {
					a, err := e.app(ns, "shop")
					if err != nil {
						return false, err
					}
					return slices.ContainsFunc(a.Status.History, func(r v1alpha1.ActionRecord) bool {
						return r.Step == 1 && r.Result == v1alpha1.ResultSucceeded
					}), nil
				})
				e.must(err, "waiting for step 1 to act")
				stopped := time.Now()
				go leader.signal(md.sig, 20*time.Second)
				var acquired, step2At time.Time
				_, err = faultWaitUntil(ctx, 2*time.Minute, func(ctx context.Context) (bool, error) {
					now := time.Now()
					if acquired.IsZero() {
						if h, at := held(ctx); h != "" && h != oldHolder {
							acquired = at
						}
					}
					a, err := e.app(ns, "shop")
					if err != nil {
						return false, err
					}
					if step2At.IsZero() && slices.ContainsFunc(a.Status.History, func(r v1alpha1.ActionRecord) bool { return r.Step == 2 }) {
						step2At = now
					}
					return !acquired.IsZero() && !step2At.IsZero(), nil
				})
				e.must(err, "waiting for the handover")
				for leader.running() {
					time.Sleep(50 * time.Millisecond)
				}
				figs["handover, "+md.name+" -> Lease acquired by the other replica"+v.label] = append(
					figs["handover, "+md.name+" -> Lease acquired by the other replica"+v.label], acquired.Sub(stopped))
				if md.sig == syscall.SIGKILL {
					figs["after a crash, Lease acquired -> step 2 recorded by the new leader"+v.label] = append(
						figs["after a crash, Lease acquired -> step 2 recorded by the new leader"+v.label], step2At.Sub(acquired))
				}
				t.Logf("%s, %s, episode %d: Lease acquired %s after the signal, step 2 recorded %s after that",
					v.name, md.name, ep, acquired.Sub(stopped).Round(time.Millisecond), step2At.Sub(acquired).Round(time.Millisecond))

				var final *v1alpha1.AutonomicApp
				_, err = faultWaitUntil(ctx, time.Minute, func(ctx context.Context) (bool, error) {
					a, err := e.app(ns, "shop")
					if err != nil {
						return false, err
					}
					final = a
					return faultPolicy(a, "heal").State == v1alpha1.PolicyGaveUp, nil
				})
				e.must(err, "waiting for the ladder to finish")
				if msg := leaderCheckLadder(ctx, e, ns, final); msg != "" {
					t.Errorf("%s, %s, episode %d: %s", v.name, md.name, ep, msg)
				}
				e.must(e.setReplicas(ctx, ns, "probe", 0), "healing the app")
				e.must(leader.start(), "restarting the stopped manager as a follower")
			}
		}
		for _, m := range managers {
			m.stop()
		}
	}

	var out []Figure
	for _, v := range variants {
		if v.name == "before" {
			continue
		}
		for _, md := range modes {
			for _, name := range []string{"handover, " + md.name + " -> Lease acquired by the other replica",
				"after a crash, Lease acquired -> step 2 recorded by the new leader"} {
				ds, ok := figs[name+v.label]
				if !ok || (md.sig != syscall.SIGKILL && strings.HasPrefix(name, "after a crash")) {
					continue
				}
				f := Figure{Name: "leader election: " + name + v.label, Unit: "s", Samples: faultSeconds(ds...)}
				for _, b := range variants {
					if bs, ok := figs[name+b.label]; ok && b.name == "before" {
						f.Baseline = &Figure{Name: "leader election: " + name + b.label, Unit: "s", Samples: faultSeconds(bs...)}
					}
				}
				switch {
				case strings.HasPrefix(name, "after a crash"):
					f.Note = "target 1 s; step 2 was due during the wait for the Lease to expire; each step acted exactly once (records and targets)"
				case md.sig == syscall.SIGTERM:
					f.Note = "target 2 s; 2 replicas, --leader-elect with the default lease 15 s, renew deadline 10 s, retry 2 s; the leader releases the Lease on SIGTERM"
				default:
					f.Note = "a killed leader does not release the Lease: the other replica waits out the lease duration (15 s), from when it last saw it renewed"
				}
				out = append(out, f)
			}
		}
	}
	Record(faultSection, out...)
	Note(faultSection, "Leader election, rerun for the leader change: the manager's own elector (internal/leader) runs the controllers, "+
		"caches and poller on every replica and lets work through only on the leader, so a new leader's informers are already synced "+
		"and it reconciles every app at once; it watches its Lease, so a Lease released on SIGTERM is taken without waiting for a retry.")
}

// leads says whether the manager's log, since its last start, says it took the Lease.
func (m *faultManager) leads() bool {
	lines := m.logLines("")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "=== start") {
			return false
		}
		if strings.Contains(strings.ToLower(lines[i]), "successfully acquired lease") {
			return true
		}
	}
	return false
}

// leaderCheckLadder checks that the finished ladder acted each of its three steps once,
// and that the targets show exactly those effects.
func leaderCheckLadder(ctx context.Context, e *faultEnv, ns string, a *v1alpha1.AutonomicApp) string {
	bySteps := map[int32][]v1alpha1.ActionRecord{}
	for _, r := range a.Status.History {
		bySteps[r.Step] = append(bySteps[r.Step], r)
	}
	var problems []string
	for step := int32(1); step <= 3; step++ {
		rs := bySteps[step]
		if len(rs) != 1 {
			problems = append(problems, fmt.Sprintf("step %d has %d records", step, len(rs)))
			continue
		}
		if rs[0].Result != v1alpha1.ResultSucceeded {
			problems = append(problems, fmt.Sprintf("step %d ended %s: %s", step, rs[0].Result, rs[0].Message))
		}
	}
	if len(a.Status.History) != 3 {
		problems = append(problems, fmt.Sprintf("%d records, want 3", len(a.Status.History)))
	}
	web, worker := &appsv1.Deployment{}, &appsv1.Deployment{}
	if err := e.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, web); err != nil {
		return err.Error()
	}
	if err := e.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "worker"}, worker); err != nil {
		return err.Error()
	}
	if rs := bySteps[1]; len(rs) == 1 && (web.Spec.Template.Annotations[v1alpha1.ActionIDAnnotation] != rs[0].ID || web.Generation != 2) {
		problems = append(problems, fmt.Sprintf("web: template action id %q, generation %d; want %s and 2 (one restart)",
			web.Spec.Template.Annotations[v1alpha1.ActionIDAnnotation], web.Generation, rs[0].ID))
	}
	// A Deployment's generation counts changes of its annotations too: the scale is one,
	// the action id stamped after it another.
	if rs := bySteps[2]; len(rs) == 1 && (worker.Annotations[v1alpha1.ActionIDAnnotation] != rs[0].ID || *worker.Spec.Replicas != 3 || worker.Generation != 3) {
		problems = append(problems, fmt.Sprintf("worker: action id %q, %d replicas, generation %d; want %s, 3 and 3 (one scale, one stamp)",
			worker.Annotations[v1alpha1.ActionIDAnnotation], *worker.Spec.Replicas, worker.Generation, rs[0].ID))
	}
	return strings.Join(problems, "; ")
}

// TestBenchFaultsAPIServerOutage stops kube-apiserver for 60 s in the middle of two
// episodes and starts it again with the same flags, port and etcd.
//
// Two managers run through the same outage, side by side on the same cluster, each
// with the shipped flags (--leader-elect, its own Lease) and its own namespaces: the
// manager of faultBeforeRev ("before") and the working tree's ("after"). Like a pod's
// kubelet, the test starts a manager again a second after its process exits (a kubelet waits
// 10 s or more).
//
// Each manager has two apps, each of a crash-looping Deployment with a ladder of
// restartPods (of the unhealthy pods) three times 15 s apart, then notify. Right after
// step 1 of every app has acted, the API server stops: step 1's timeout runs out during
// the outage, so the managers want to escalate on data they can no longer refresh, every
// write they try fails, and their Leases cannot be renewed. etcd, the controller manager,
// the scheduler and kwok keep running, blind (node heartbeats cannot land, so the node
// monitor grace period is 5 minutes, longer than the outage).
//
// The managers reach the API server through a loopback gate (apiGate) that closes with
// the outage. Once the API server serves again, and before the gate opens, the test
// changes the world under them: it force-deletes the pods of every app, and pauses one
// app of each manager ("paused") with the paused annotation; the other ("open") is left
// to escalate. Opening the gate is the API server's return for every manager: none can
// see the server before the changes it must notice (without the gate a manager could
// reconnect, and act, in the instant between the server's start and the test's
// changes). Then:
//
//   - no action may be recorded with a decision time inside the outage;
//   - no action of a paused app may be recorded after the pause (an intent written from
//     a stale read of the app; the status patch's optimistic lock refuses it);
//   - recovery is the time from the API server's return to the open app's next step,
//     acted on fresh data, and to the manager's status saying the paused app is paused;
//   - no restartPods, of an open app as it escalates or of a paused app once the test
//     lifts the pause, may name a pod the test deleted (an intent built from a stale pod
//     cache).
func TestBenchFaultsAPIServerOutage(t *testing.T) {
	Require(t)
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("HOMEOSTAT_BENCH_OUTAGES")); err == nil && n > 0 {
		rounds = n
	}
	var merged []Figure
	for round := range rounds {
		t.Run(fmt.Sprintf("outage-%d", round+1), func(t *testing.T) {
			merged = mergeFigures(merged, outageRound(t))
		})
	}
	if len(merged) == 0 {
		return
	}
	Record(faultSection, merged...)
	Note(faultSection, fmt.Sprintf("API server outage, rerun for the lease and the retries: %d outages of 60 s, each on a fresh cluster; in each, both managers ran "+
		"with --leader-elect, side by side, reaching the API server through a loopback gate that closes with the outage and that the test opens once the "+
		"restarted API server serves and the test has deleted the pods and paused an app: every recovery is timed from the gate's opening. A list or watch call that fails because the API server cannot be reached is retried within 1 s inside the call, "+
		"and a 429 after its Retry-After (controllers/cachehealth.go), so client-go's reflector, which would back off for up to a minute, never sees the error; the watch retried within that bound is "+
		"TestInformerRetriesWithinTheBoundWhileTheAPIServerIsDown. The watch an informer resumes, too old for the restarted API server (410), is answered by a list inside the watch "+
		"and a watch from the list's version (controllers/cacherelist.go, TestTooOldWatchIsAnsweredInsideTheWatch), where client-go's reflector would list again only after its backoff; "+
		"and a watch the restarting API server holds unanswered is made again after a second (TestAWatchHeldUnansweredWhileDownIsMadeAgain). A replica that loses its Lease no longer exits: it closes the gate to its "+
		"reconcilers, poller and node controller (internal/leader), keeps its caches, autoscale recommendations and sensor history, suspends "+
		"its readings, and takes the Lease back under the same identity as soon as the API server answers, unless another replica took it "+
		"(TestLeaderThatLostTheLeaseInAnOutageTakesItBack).", rounds))
}

// mergeFigures adds the samples of figures to those of the same name in into, baselines
// too; a figure new to into is appended.
func mergeFigures(into, figures []Figure) []Figure {
	for _, f := range figures {
		i := slices.IndexFunc(into, func(g Figure) bool { return g.Name == f.Name })
		if i < 0 {
			into = append(into, f)
			continue
		}
		into[i].Samples = append(into[i].Samples, f.Samples...)
		if into[i].Baseline != nil && f.Baseline != nil {
			b := *into[i].Baseline
			b.Samples = append(slices.Clone(b.Samples), f.Baseline.Samples...)
			into[i].Baseline = &b
		}
	}
	return into
}

// outageRound is one outage of TestBenchFaultsAPIServerOutage, on a cluster of its own.
func outageRound(t *testing.T) []Figure {
	const outage = 60 * time.Second
	ctx := t.Context()
	e := newFaultEnv(t, devcluster.Options{Nodes: 1, NodeMonitorGracePeriod: 5 * time.Minute})
	type variant struct {
		name, bin, rev string
		m              *faultManager
		paused, open   string
		known          map[string]bool // records written before the return
		deleted        map[string]bool
		openNext       v1alpha1.ActionRecord
		openActed      time.Time
		seen           time.Time
		errorsBefore   float64
	}
	variants := []*variant{{name: "after", bin: e.bin}}
	// HOMEOSTAT_BENCH_OUTAGE_ALSO_BEFORE names more commits, comma-separated, whose
	// managers run beside the others in each outage: a fix of the recovery measured
	// against the commit before it.
	for _, rev := range strings.Split(os.Getenv("HOMEOSTAT_BENCH_OUTAGE_ALSO_BEFORE"), ",") {
		if rev = strings.TrimSpace(rev); rev != "" {
			bin, err := faultManagerAt(ctx, rev)
			e.must(err, "building the manager of "+rev)
			variants = append([]*variant{{name: "before-" + rev, bin: bin, rev: rev}}, variants...)
		}
	}
	if rev := faultBeforeRevision(); rev != "" {
		bin, err := faultManagerAt(ctx, rev)
		e.must(err, "building the manager of "+rev)
		variants = append([]*variant{{name: "before", bin: bin, rev: rev}}, variants...)
	}
	// The managers reach kube-apiserver through a gate the test opens after the outage.
	server, err := url.Parse(e.cluster.RESTConfig().Host)
	e.must(err, "reading the API server's address")
	gate, err := newAPIGate(server.Host)
	e.must(err, "opening a gate to kube-apiserver")
	t.Cleanup(gate.close)
	gateKubeconfig, err := gate.kubeconfig(e.cluster.Kubeconfig(), t.TempDir())
	e.must(err, "writing a kubeconfig through the gate")
	for _, v := range variants {
		v.paused, v.open = e.namespace("paused-"+v.name), e.namespace("open-"+v.name)
		lease := e.namespace("lease-" + v.name)
		for _, ns := range []string{v.paused, v.open} {
			e.create(faultDeployment(ns, "web", faultBadImage, 2), &v1alpha1.AutonomicApp{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
				Spec: v1alpha1.AutonomicAppSpec{
					Components: []v1alpha1.Component{faultWorkload("web", "web")},
					Healing: v1alpha1.Healing{
						Symptoms: []v1alpha1.Symptom{{Name: "CrashLooping", Expression: "components.web.crashLoopingPods > 0",
							ClearFor: faultDur(3 * time.Minute)}},
						Policies: []v1alpha1.Policy{{Name: "heal", Remediate: &v1alpha1.RemediatePolicy{
							When: []string{"CrashLooping"},
							Steps: []v1alpha1.RemediationStep{
								faultStep(faultRestartPods("web", v1alpha1.PodsUnhealthy), 15*time.Second),
								faultStep(faultRestartPods("web", v1alpha1.PodsUnhealthy), 15*time.Second),
								faultStep(faultRestartPods("web", v1alpha1.PodsUnhealthy), 15*time.Second),
								faultStep(faultNotify("web keeps crashing"), time.Minute),
							},
						}}},
					},
				},
			})
		}
		v.m = e.managerOf(v.bin, "manager-"+v.name, "--leader-elect", "--leader-election-namespace", lease,
			"--watch-namespaces", v.paused+","+v.open)
		v.m.kubeconfig = gateKubeconfig
		v.m.supervise = true
		e.must(v.m.start(), "starting the "+v.name+" manager")
	}
	for _, v := range variants {
		for _, ns := range []string{v.paused, v.open} {
			_, err := faultWaitUntil(ctx, 2*time.Minute, func(ctx context.Context) (bool, error) {
				a, err := e.app(ns, "shop")
				if err != nil {
					return false, err
				}
				return slices.ContainsFunc(a.Status.History, func(r v1alpha1.ActionRecord) bool {
					return r.Step == 1 && r.Result == v1alpha1.ResultSucceeded
				}), nil
			})
			e.must(err, "waiting for step 1 to act in "+ns)
		}
		v.errorsBefore = v.m.metric("controller_runtime_reconcile_errors_total", `controller="autonomicapp"`)
	}

	// The outage: the gate closes (every manager connection cut, new ones refused) and
	// kube-apiserver stops.
	gate.close()
	e.must(e.cluster.StopAPIServer(), "stopping kube-apiserver")
	stopped := time.Now()
	t.Logf("kube-apiserver stopped; step 1's timeouts run out during the outage")
	time.Sleep(outage)
	errorsDuring := map[string]float64{}
	for _, v := range variants {
		// A manager that exited during the outage has no metrics to read.
		errorsDuring[v.name] = v.m.metric("controller_runtime_reconcile_errors_total", `controller="autonomicapp"`) - v.errorsBefore
	}
	e.must(e.cluster.StartAPIServer(ctx), "starting kube-apiserver again")
	serving := time.Now()

	// Change the world while no manager can reach the API server yet.
	for _, v := range variants {
		v.deleted, v.known = map[string]bool{}, map[string]bool{}
		for _, ns := range []string{v.paused, v.open} {
			var pods corev1.PodList
			e.must(e.c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app": "web"}), "listing web's pods")
			for _, p := range pods.Items {
				if err := e.c.Delete(ctx, &p, client.GracePeriodSeconds(0)); err == nil {
					v.deleted[p.Name] = true
				}
			}
		}
		paused := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: v.paused, Name: "shop"}}
		e.must(e.c.Patch(ctx, paused, client.RawPatch(types.MergePatchType,
			[]byte(`{"metadata":{"annotations":{"`+v1alpha1.PausedAnnotation+`":"outage test"}}}`))), "pausing the app")
		// Every record there is now was written before the outage: no manager can write
		// another until the gate opens.
		for _, ns := range []string{v.paused, v.open} {
			a, err := e.app(ns, "shop")
			e.must(err, "reading the app")
			for _, r := range a.Status.History {
				v.known[r.ID] = true
			}
		}
	}
	// The API server is ready, for the managers, now.
	e.must(gate.open(), "opening the gate to kube-apiserver")
	ready := time.Now()
	t.Logf("kube-apiserver serving %s after its start began; the test deleted the pods, paused one app of each manager and opened the gate "+
		"at %s, %s later", serving.Sub(stopped.Add(outage)).Round(time.Millisecond), ready.UTC().Format(time.RFC3339Nano),
		ready.Sub(serving).Round(time.Millisecond))

	// Both managers recover at once, each at its own pace: one loop watches for all of it.
	_, err = faultWaitUntil(ctx, 4*time.Minute, func(ctx context.Context) (bool, error) {
		all := true
		for _, v := range variants {
			if v.openActed.IsZero() {
				if a, err := e.app(v.open, "shop"); err == nil {
					for _, r := range a.Status.History {
						if !v.known[r.ID] && r.Result != v1alpha1.ResultPending {
							v.openNext, v.openActed = r, time.Now()
						}
					}
				}
			}
			if v.seen.IsZero() {
				if a, err := e.app(v.paused, "shop"); err == nil {
					if c := faultCondition(a, v1alpha1.ConditionSuspended); c != nil && c.Status == metav1.ConditionTrue &&
						c.Reason == v1alpha1.ReasonPausedAnnotation {
						v.seen = time.Now()
					}
				}
			}
			all = all && !v.openActed.IsZero() && !v.seen.IsZero()
		}
		return all, nil
	})
	e.must(err, "waiting for every manager to escalate its open app and see the pause after the outage")

	var figures []Figure
	var failures []string
	for _, v := range variants {
		t.Logf("%s: open app step %d %s %s %s after the API server was ready (%s); pause seen after %s; process exits %d",
			v.name, v.openNext.Step, v.openNext.Action, v.openNext.Result, v.openActed.Sub(ready).Round(time.Millisecond),
			v.openNext.Message, v.seen.Sub(ready).Round(time.Millisecond), v.m.exits())
		var duringOutage, afterPause []string
		for _, ns := range []string{v.paused, v.open} {
			a, err := e.app(ns, "shop")
			e.must(err, "reading the app")
			for _, r := range a.Status.History {
				// Record times have whole seconds; a second of slack at each end of the outage.
				if r.Time.After(stopped.Add(time.Second)) && r.Time.Time.Before(ready.Add(-time.Second)) {
					duringOutage = append(duringOutage, ns+"/"+r.ID)
				}
				if ns == v.paused && !v.known[r.ID] {
					afterPause = append(afterPause, fmt.Sprintf("%s (step %d, %s, %s)", r.ID, r.Step, r.Action, r.Time.Format(time.RFC3339)))
				}
			}
		}
		conflicts := len(v.m.logLines("the object has been modified")) // optimistic-lock refusals

		// Lift the pause: the ladder goes on, from the pods the manager sees now.
		unpause := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: v.paused, Name: "shop"}}
		e.must(e.c.Patch(ctx, unpause, client.RawPatch(types.MergePatchType,
			[]byte(`{"metadata":{"annotations":{"`+v1alpha1.PausedAnnotation+`":null}}}`))), "lifting the pause")
		var pausedNext v1alpha1.ActionRecord
		_, err := faultWaitUntil(ctx, 2*time.Minute, func(ctx context.Context) (bool, error) {
			a, err := e.app(v.paused, "shop")
			if err != nil {
				return false, err
			}
			for _, r := range a.Status.History {
				if !v.known[r.ID] && r.Result != v1alpha1.ResultPending {
					pausedNext = r
					return true, nil
				}
			}
			return false, nil
		})
		e.must(err, "waiting for the ladder to go on after the pause")
		var stalePods []string
		for _, r := range []v1alpha1.ActionRecord{v.openNext, pausedNext} {
			for _, o := range r.Objects {
				if v.deleted[o] {
					stalePods = append(stalePods, o)
				}
			}
		}
		// Decisions are counted when a policy's state changes, so this counts the holds
		// that began, not how long they lasted (since the process last started).
		staleHeld := v.m.metric("homeostat_decisions_total", `"Held:`+plan.ReasonStaleCache+`"`)
		lost := len(v.m.logLines("leader election lost")) + len(v.m.logLines("Lost the Lease"))
		label := " (" + v.name + ")"
		if v.rev != "" {
			label = " (before, " + v.rev + ")"
		}
		figures = append(figures,
			faultCount("API server outage: failed reconciles during the outage"+label, "reconciles", int(max(errorsDuring[v.name], 0)),
				"controller_runtime_reconcile_errors_total of the app controller: the manager tried and every write failed"),
			faultCount("API server outage: actions decided during the outage"+label, "actions", len(duringOutage), "target 0"),
			faultCount("API server outage: Leases lost, and manager processes that exited"+label, "events", lost+v.m.exits(),
				fmt.Sprintf("%d Lease losses in the log, %d exits of the process (the test starts it again a second later; a kubelet waits 10 s or more)", lost, v.m.exits())),
			Figure{Name: "API server outage: recovery, API server ready -> the open episode's next step acted on fresh data" + label, Unit: "s",
				Samples: faultSeconds(v.openActed.Sub(ready)), Note: fmt.Sprintf("target 5 s; step %d %s: %s", v.openNext.Step, v.openNext.Action, v.openNext.Message)},
			Figure{Name: "API server outage: API server ready -> the manager reports a change made after its return" + label, Unit: "s",
				Samples: faultSeconds(v.seen.Sub(ready)), Note: "the test paused an app before opening the gate"},
			faultCount("API server outage: actions on a stale app (recorded after the pause, before the manager saw it)"+label, "actions", len(afterPause),
				fmt.Sprintf("target 0; optimistic-lock refusals in the manager log: %d", conflicts)),
			faultCount("API server outage: actions on stale pods (restartPods naming a pod deleted at the return)"+label, "actions", len(stalePods),
				fmt.Sprintf("target 0; policies held by the StaleCache guard: %.0f times", staleHeld)),
		)
		if len(duringOutage) > 0 || len(afterPause) > 0 || len(stalePods) > 0 {
			failures = append(failures, fmt.Sprintf("%s: %d decided during the outage %v, %d after the pause %v, %d naming deleted pods %v",
				v.name, len(duringOutage), duringOutage, len(afterPause), afterPause, len(stalePods), stalePods))
		}
		if v.name == "after" {
			if v.m.exits() > 0 {
				failures = append(failures, fmt.Sprintf("after: the manager's process exited %d times", v.m.exits()))
			}
		}
	}
	for _, v := range variants {
		v.m.stop()
	}
	figures = append([]Figure{{Name: "API server outage: duration", Unit: "s", Samples: faultSeconds(outage),
		Note: "kube-apiserver stopped (SIGTERM) and started again with the same flags, port and etcd; 2 episodes open per manager, their step 1 timeouts (15 s) expiring during the outage"}},
		figures...)
	if len(variants) == 2 {
		// The after figures against the before ones, measured side by side in this outage.
		n := (len(figures) - 1) / 2
		for i := range n {
			b := figures[1+i]
			figures[1+n+i].Baseline = &b
		}
		figures = append(figures[:1], figures[1+n:]...)
	}
	if len(failures) > 0 {
		t.Errorf("outage: %s", strings.Join(failures, "; "))
	}
	return figures
}

// TestBenchFaultsSensorOutageAndFlapping runs an autoscaler on a Prometheus sensor
// served by the test on 127.0.0.1 (the /api/v1/query of Prometheus' HTTP API: one sample
// of the value the test sets, or a 503 while it is down). The app scales web on
// load/10 replicas (target averageValue 10, 1 to 10 replicas), polled every second,
// with a scale-down stabilization window of 20 s.
//
//   - Outage: at 3 replicas (load 30), the server answers 503 for 60 s while the load it
//     would report falls to 0, which would call for 1 replica. No scale-down may happen,
//     and SensorsAvailable must turn False. When it answers again, web scales down.
//   - Flapping: the load alternates between 60 (6 replicas) and 20 (2) every 2 s for
//     2 minutes. The scale actions are counted; they must stay within one per
//     stabilization window, plus one.
func TestBenchFaultsSensorOutageAndFlapping(t *testing.T) {
	Require(t)
	const (
		window   = 20 * time.Second
		outage   = 60 * time.Second
		flapping = 2 * time.Minute
		half     = 2 * time.Second
	)
	ctx := t.Context()
	prom := newFaultProm(t)
	e := newFaultEnv(t, devcluster.Options{Nodes: 1})
	ns := e.namespace("sensor")
	prom.set(30)
	e.create(faultDeployment(ns, "web", faultGoodImage, 3), &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
		Spec: v1alpha1.AutonomicAppSpec{
			Components: []v1alpha1.Component{faultWorkload("web", "web")},
			Healing: v1alpha1.Healing{
				Sensors: []v1alpha1.Sensor{{Name: "load", Interval: faultDur(time.Second),
					Prometheus: &v1alpha1.PrometheusSensor{Address: prom.url(), Query: "sum(homeostat_bench_load)"}}},
				Policies: []v1alpha1.Policy{{Name: "scale-web", Autoscale: &v1alpha1.AutoscalePolicy{
					Component: "web", MinReplicas: ptr.To(int32(1)), MaxReplicas: 10,
					Metrics: []v1alpha1.AutoscaleMetric{{Sensor: "load",
						Target: &v1alpha1.MetricTarget{AverageValue: resource.NewQuantity(10, resource.DecimalSI)}}},
					Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
						StabilizationWindowSeconds: ptr.To(int32(window / time.Second))}},
				}}},
			},
		},
	})
	w := newFaultReplicaWatch(t, e, ns, "web")
	m := e.manager("manager")
	e.must(m.start(), "starting the manager")
	steady := func(load string, replicas int32) {
		t.Helper()
		_, err := faultWaitUntil(ctx, time.Minute, func(ctx context.Context) (bool, error) {
			a, err := e.app(ns, "shop")
			if err != nil {
				return false, err
			}
			p := faultPolicy(a, "scale-web")
			ok := len(a.Status.Sensors) == 1 && a.Status.Sensors[0].Value == load && a.Status.Sensors[0].Error == "" &&
				p.Reason == "Steady" && w.replicas() == replicas
			return ok, nil
		})
		e.must(err, fmt.Sprintf("waiting for the autoscaler to hold %d replicas at load %s", replicas, load))
	}
	steady("30", 3)

	// Outage.
	prom.setDown(true)
	prom.set(0)
	down := time.Now()
	unavailable, err := faultWaitUntil(ctx, 30*time.Second, func(ctx context.Context) (bool, error) {
		a, err := e.app(ns, "shop")
		if err != nil {
			return false, err
		}
		c := faultCondition(a, v1alpha1.ConditionSensorsAvailable)
		return c != nil && c.Status == metav1.ConditionFalse, nil
	})
	e.must(err, "waiting for SensorsAvailable=False")
	time.Sleep(time.Until(down.Add(outage)))
	during := w.since(down)
	a, err := e.app(ns, "shop")
	e.must(err, "reading the app")
	held := faultPolicy(a, "scale-web")
	prom.setDown(false)
	back := time.Now()
	scaledDown := w.waitFor(1, 2*window+30*time.Second)
	t.Logf("outage: SensorsAvailable=False %s after the 503s began; %d replica changes during the %s outage (policy: %s %s); after it, 3 -> 1 in %s",
		unavailable.Sub(down).Round(time.Millisecond), len(during), outage, held.State, held.Reason, scaledDown.Sub(back).Round(time.Millisecond))
	if len(during) != 0 {
		t.Errorf("web was scaled during the sensor outage: %v", during)
	}

	// Flapping.
	prom.set(20)
	steady("20", 2)
	recordsBefore := faultScaleRecords(t, e, ns)
	began := time.Now()
	for i := 0; time.Since(began) < flapping; i++ {
		if i%2 == 0 {
			prom.set(60)
		} else {
			prom.set(20)
		}
		time.Sleep(time.Until(began.Add(time.Duration(i+1) * half)))
	}
	prom.set(20)
	ended := time.Now()
	changes := w.between(began, ended)
	actions := faultScaleRecords(t, e, ns) - recordsBefore
	settled := w.waitFor(2, 2*window+30*time.Second)
	bound := int(flapping/window) + 1
	var lines []string
	for _, c := range changes {
		lines = append(lines, fmt.Sprintf("+%.1fs %d->%d", c.at.Sub(began).Seconds(), c.from, c.to))
	}
	t.Logf("flapping 20 <-> 60 every %s for %s: %d scale actions, replica changes %v; back to 2 replicas %s after it ended",
		half, flapping, actions, lines, settled.Sub(ended).Round(time.Millisecond))
	if actions > bound {
		t.Errorf("%d scale actions under flapping, more than %d (one per %s window, plus one)", actions, bound, window)
	}
	m.stop()

	Record(faultSection,
		faultCount("sensor outage: scale-downs on missing data", "actions", len(during),
			fmt.Sprintf("Prometheus answered 503 for %s while the load it would report fell from 30 (3 replicas) to 0 (1 replica); target 0; policy %s/%s", outage, held.State, held.Reason)),
		Figure{Name: "sensor outage: first 503 -> SensorsAvailable=False", Unit: "s", Samples: faultSeconds(unavailable.Sub(down)),
			Note: "sensor interval 1 s"},
		Figure{Name: "sensor outage: Prometheus back -> the scale-down to 1", Unit: "s", Samples: faultSeconds(scaledDown.Sub(back)),
			Note: fmt.Sprintf("scale-down stabilization window %s", window)},
		faultCount("flapping sensor: scale actions", "actions", actions,
			fmt.Sprintf("load alternating 60 / 20 (6 / 2 replicas) every %s for %s, window %s; bound %d (a window per %s, plus one); replica changes: %s",
				half, flapping, window, bound, window, strings.Join(lines, ", "))),
	)
}

// faultScaleRecords counts the scale records in the app's ledger (bounded at 50, more
// than a scenario makes).
func faultScaleRecords(t *testing.T, e *faultEnv, ns string) int {
	t.Helper()
	a, err := e.app(ns, "shop")
	e.must(err, "reading the app")
	n := 0
	for _, r := range a.Status.History {
		if r.Action == execute.KindScale {
			n++
		}
	}
	return n
}

// TestBenchFaultsStorm breaks 6 of 10 apps at once (their Deployments roll out an image
// that crash-loops; the symptom has for: 3s). The storm breaker (default
// --storm-threshold 50%) must stop every disruptive action: no record in any app's ledger
// for 30 s. The apps share one namespace, so the manager runs with
// --storm-min-namespaces=1, as for a cluster one team owns: the breaker then applies the
// share to that namespace's apps, which is what this benchmark times. It measures the time from the break until every one of the 10 apps says
// Suspended=True with reason StormDetected, and, after the 6 are fixed, until every app
// says Suspended=False again.
func TestBenchFaultsStorm(t *testing.T) {
	Require(t)
	const (
		apps   = 10
		broken = 6
		hold   = 30 * time.Second
	)
	ctx := t.Context()
	e := newFaultEnv(t, devcluster.Options{Nodes: 1})
	ns := e.namespace("storm")
	for i := range apps {
		name := fmt.Sprintf("web-%d", i)
		e.create(faultDeployment(ns, name, faultGoodImage, 2), &v1alpha1.AutonomicApp{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("app-%d", i)},
			Spec: v1alpha1.AutonomicAppSpec{
				Components: []v1alpha1.Component{faultWorkload("web", name)},
				Healing: v1alpha1.Healing{
					Symptoms: []v1alpha1.Symptom{{Name: "CrashLooping", Expression: "components.web.crashLoopingPods > 0",
						For: faultDur(3 * time.Second), ClearFor: faultDur(15 * time.Second)}},
					Policies: []v1alpha1.Policy{{Name: "heal", Remediate: &v1alpha1.RemediatePolicy{
						When:  []string{"CrashLooping"},
						Steps: []v1alpha1.RemediationStep{faultStep(faultRestartPods("web", v1alpha1.PodsUnhealthy), 10*time.Second)},
					}}},
				},
			},
		})
	}
	m := e.manager("manager", "--storm-min-namespaces=1")
	e.must(m.start(), "starting the manager")
	everyApp := func(want func(a *v1alpha1.AutonomicApp) bool) func(context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			var list v1alpha1.AutonomicAppList
			if err := e.c.List(ctx, &list, client.InNamespace(ns)); err != nil {
				return false, err
			}
			if len(list.Items) != apps {
				return false, nil
			}
			for i := range list.Items {
				if !want(&list.Items[i]) {
					return false, nil
				}
			}
			return true, nil
		}
	}
	healthy := func(a *v1alpha1.AutonomicApp) bool {
		c := faultCondition(a, v1alpha1.ConditionHealthy)
		return c != nil && c.Status == metav1.ConditionTrue
	}
	_, err := faultWaitUntil(ctx, 2*time.Minute, everyApp(healthy))
	e.must(err, "waiting for every app to be Healthy")

	for i := range broken {
		e.must(e.setImage(ctx, ns, fmt.Sprintf("web-%d", i), faultBadImage), "breaking an app")
	}
	brokeAt := time.Now()
	suspended := func(a *v1alpha1.AutonomicApp) bool {
		c := faultCondition(a, v1alpha1.ConditionSuspended)
		return c != nil && c.Status == metav1.ConditionTrue && c.Reason == v1alpha1.ReasonStormDetected
	}
	allSuspended, err := faultWaitUntil(ctx, hold, everyApp(suspended))
	e.must(err, "waiting for every app to say StormDetected")
	var gauge float64
	_, err = faultWaitUntil(ctx, 10*time.Second, func(context.Context) (bool, error) {
		gauge = m.metric("homeostat_storm_active")
		return gauge == 1, nil
	})
	e.must(err, "waiting for homeostat_storm_active 1")
	time.Sleep(time.Until(brokeAt.Add(hold)))
	var list v1alpha1.AutonomicAppList
	e.must(e.c.List(ctx, &list, client.InNamespace(ns)), "listing the apps")
	var acted []string
	held := 0
	for _, a := range list.Items {
		for _, r := range a.Status.History {
			acted = append(acted, fmt.Sprintf("%s: %s %s", a.Name, r.Action, r.Result))
		}
		if p := faultPolicy(&a, "heal"); p.State == v1alpha1.PolicyHeld && p.Reason == v1alpha1.ReasonStormDetected {
			held++
		}
	}
	t.Logf("storm: every app said StormDetected %s after the break; %d broken apps held; %d actions in %s",
		allSuspended.Sub(brokeAt).Round(time.Millisecond), held, len(acted), hold)
	if len(acted) > 0 {
		t.Errorf("actions during the storm: %v", acted)
	}

	for i := range broken {
		e.must(e.setImage(ctx, ns, fmt.Sprintf("web-%d", i), faultGoodImage), "fixing an app")
	}
	fixedAt := time.Now()
	released, err := faultWaitUntil(ctx, 2*time.Minute, everyApp(func(a *v1alpha1.AutonomicApp) bool {
		c := faultCondition(a, v1alpha1.ConditionSuspended)
		return c != nil && c.Status == metav1.ConditionFalse
	}))
	e.must(err, "waiting for the storm breaker to release")
	t.Logf("storm: released %s after the fix", released.Sub(fixedAt).Round(time.Millisecond))
	m.stop()

	Record(faultSection,
		faultCount("storm: actions while 6 of 10 apps were broken", "actions", len(acted),
			fmt.Sprintf("crash-looping rollouts in 6 apps at once, symptom for: 3s, ladder restartPods; --storm-threshold 50%%, --storm-min-namespaces=1; counted over %s; target 0; %d broken apps held with StormDetected", hold, held)),
		Figure{Name: "storm: break -> every app Suspended (StormDetected)", Unit: "s", Samples: faultSeconds(allSuspended.Sub(brokeAt)),
			Note: "from the last of the 6 image changes to the 10th app's condition, polled every 50 ms"},
		Figure{Name: "storm: fix -> every app Suspended=False", Unit: "s", Samples: faultSeconds(released.Sub(fixedAt)),
			Note: "the 6 images set back to a good one; includes the rollouts"},
	)
}
