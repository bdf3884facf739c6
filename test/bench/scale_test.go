package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/devcluster"
	"github.com/homeostat-dev/homeostat/test/bench/harness"
)

// Knobs of TestBenchScaleAndLatency, all optional.
const (
	// scaleEnvScales lists the app counts, one local control plane each, in order.
	scaleEnvScales = "HOMEOSTAT_BENCH_SCALES"
	// scaleEnvBefore is the git revision whose manager is measured beside the working
	// tree's at scaleEnvImproveAt apps (the "improvements" section); "none" skips it.
	scaleEnvBefore = "HOMEOSTAT_BENCH_BEFORE"
	// scaleEnvImproveAt lists the app counts of the before/after comparison (1000,10000).
	scaleEnvImproveAt = "HOMEOSTAT_BENCH_IMPROVE_AT"
	// scaleEnvTrials overrides the detect-to-act repetitions at every scale.
	scaleEnvTrials = "HOMEOSTAT_BENCH_TRIALS"
)

// scaleBeforeRev is the commit the profile-driven fixes were made on: the manager as it
// was before them.
const scaleBeforeRev = "579bc7e"

// scaleCreateBudget bounds the creation of one scale's Deployments; what is created
// within it (and whose pods all become ready) is the scale measured.
const scaleCreateBudget = 25 * time.Minute

// scaleMinFreeMiB stops creating Deployments when the machine's available memory falls
// below it: other engineers' clusters share the machine.
const scaleMinFreeMiB = 3 * 1024

// scaleTrials is how many detect-to-act repetitions run at a scale.
func scaleTrials(n int) int {
	if v, err := strconv.Atoi(os.Getenv(scaleEnvTrials)); err == nil && v > 0 {
		return v
	}
	// Enough for a p99 at every scale.
	return 200
}

// TestBenchScaleAndLatency measures, for each app count (10, 1,000, 10,000 by default),
// on a local control plane of its own with the client and server rate limits lifted and
// a kwok node per 100 pods:
//
//   - the manager's resident memory with no app (its fixed cost), in that cluster;
//   - cold start: N Deployments of 3 ready pods and N apps exist, the manager starts,
//     until every app's status is of its generation and Ready; beside it, the time a
//     bare informer takes to list the same objects (the floor of any cold start);
//   - resident memory after settling, and per app: (RSS(N) - RSS(0)) / N;
//   - API writes during a minute in which every app is healthy and nothing changes;
//   - API requests per reconcile in bursts of changes: spec edits of 200 apps (each
//     needs one status write) and metadata touches of their Deployments (nothing to write);
//   - detect-to-act: a pod's status is set to CrashLoopBackOff by an update to the API
//     server, and the time from the update's response to the manager's first mutating
//     calls, as informers of this test see them arrive (the ledger intent on the app,
//     then the action-id patch on the pod right before its eviction), beside a bare
//     informer on pods receiving the status change itself (the physical floor).
//
// At the app counts of HOMEOSTAT_BENCH_IMPROVE_AT (1,000 and 10,000) it measures the
// manager of HOMEOSTAT_BENCH_BEFORE (the commit the fixes were made on) first, with the
// same protocol, clears every app's status, and then the working tree's. From 1,000 apps
// up the working tree's manager is profiled (heap and cold-start CPU, in bench/tmp).
func TestBenchScaleAndLatency(t *testing.T) {
	Require(t)
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	scales := []int{10, 1000, 10000}
	if v := os.Getenv(scaleEnvScales); v != "" {
		scales = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				t.Fatalf("%s=%q: want app counts like 10,1000", scaleEnvScales, v)
			}
			scales = append(scales, n)
		}
	}
	improveAt := []int{1000, 10000}
	if v := os.Getenv(scaleEnvImproveAt); v != "" {
		improveAt = nil
		for _, f := range strings.Split(v, ",") {
			if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
				improveAt = append(improveAt, n)
			}
		}
	}
	beforeRev := cmpOr(os.Getenv(scaleEnvBefore), scaleBeforeRev)

	bins := t.TempDir()
	after := scaleVariant{name: "after", bin: filepath.Join(bins, "manager"), pprof: true}
	if err := harness.BuildManager(t.Context(), root, after.bin); err != nil {
		t.Fatal(err)
	}
	var before *scaleVariant
	if beforeRev != "none" && slices.ContainsFunc(scales, func(n int) bool { return slices.Contains(improveAt, n) }) {
		before = &scaleVariant{name: "before", bin: filepath.Join(bins, "manager-before"), rev: beforeRev}
		if err := harness.BuildManagerAt(t.Context(), root, beforeRev, before.bin); err != nil {
			t.Fatalf("Building the manager of %s: %v", beforeRev, err)
		}
	}
	Note("scale", "Each app count runs on a local control plane of its own (etcd, kube-apiserver, controller-manager, "+
		"scheduler, kwok; one kwok node per 100 pods) with the client and server rate limits lifted. Each app is one Deployment "+
		"of 3 pods (image "+harness.Image+"), a CrashLooping symptom and a restartPods step. The manager runs as its own "+
		"process, built from main.go, with --max-concurrent-reconciles at its default.")

	var results []scaleResult
	for _, n := range scales {
		var variants []scaleVariant
		if slices.Contains(improveAt, n) && before != nil {
			variants = append(variants, *before)
		}
		variants = append(variants, after)
		var res *scaleResult
		t.Run(fmt.Sprintf("%d-apps", n), func(t *testing.T) {
			res = runScale(t, root, n, variants)
		})
		if res != nil {
			results = append(results, *res)
		}
	}
	recordCapacity(t, results)
}

// scaleVariant is a manager binary under test.
type scaleVariant struct {
	name, bin, rev string
	pprof          bool
}

// scaleResult is what one scale measured with the working tree's manager.
type scaleResult struct {
	apps          int
	rss0, rss     []float64 // MiB
	perAppKiB     []float64
	objectsKiB    float64 // the app's objects as JSON, per app
	requested     int
	stoppedReason string
}

// scaleRun is one app count on one cluster.
type scaleRun struct {
	t        *testing.T
	ctx      context.Context
	root     string
	cluster  *devcluster.Cluster
	cs       kubernetes.Interface
	c        client.Client
	w        *harness.Watcher
	fleet    harness.Fleet
	n        int // apps measured
	scratch  string
	rng      *rand.Rand
	profiled bool
	// edits counts the spec edits of the whole run, so each edit flips the spec from
	// where the last one (of any variant) left it and always makes a new generation.
	edits int
}

var scaleScheme = func() *kruntime.Scheme {
	s := kruntime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}()

func runScale(t *testing.T, root string, requested int, variants []scaleVariant) *scaleResult {
	ctx := t.Context()
	pods := requested * harness.PodsPerApp
	began := time.Now()
	cluster := devcluster.StartForTest(t, devcluster.Options{Nodes: devcluster.NodesFor(pods), DisableQPSLimits: true})
	if err := cluster.InstallCRDs(ctx, filepath.Join(root, "config", "crd", "bases")); err != nil {
		t.Fatal(err)
	}
	cfg := cluster.RESTConfig()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scaleScheme})
	if err != nil {
		t.Fatal(err)
	}
	w, err := harness.StartWatcher(ctx, cfg, scaleScheme)
	if err != nil {
		t.Fatal(err)
	}
	scratch, err := ScratchDir()
	if err != nil {
		t.Fatal(err)
	}
	r := &scaleRun{t: t, ctx: ctx, root: root, cluster: cluster, cs: cs, c: c, w: w, n: requested, scratch: scratch,
		rng: rand.New(rand.NewPCG(uint64(requested), 42))}
	t.Logf("Cluster of %d nodes ready after %s", devcluster.NodesFor(pods), time.Since(began).Round(time.Second))

	// The manager's fixed cost, before anything exists.
	rss0 := map[string][]float64{}
	for _, v := range variants {
		rss0[v.name] = r.idleRSS(v)
	}

	res := &scaleResult{requested: requested}
	res.apps, res.stoppedReason = r.createFleet(requested)
	r.n = res.apps
	n := r.n
	label := fmt.Sprintf("%d apps", n)
	if n < requested {
		Note("scale", fmt.Sprintf("%d apps were asked for but %d were measured: %s.", requested, n, res.stoppedReason))
		Note("detect-to-act", fmt.Sprintf("%d apps were asked for but %d were measured: %s.", requested, n, res.stoppedReason))
	}
	res.objectsKiB = r.objectsKiBPerApp()

	perVariant := map[string]*variantFigures{}
	for vi, v := range variants {
		if vi > 0 {
			r.clearStatuses()
		}
		vf := r.measureVariant(v, rss0[v.name])
		perVariant[v.name] = vf
		if v.name == "after" {
			res.rss0, res.rss, res.perAppKiB = rss0[v.name], vf.rss, vf.perAppKiB
		}
	}
	r.record(label, perVariant["after"], res)
	if b := perVariant["before"]; b != nil {
		r.recordImprovements(label, b, perVariant["after"], variants[0].rev)
	}
	return res
}

// idleRSS runs the manager on the cluster as it is and samples its resident memory
// once a second for 10 s after 15 s of settling.
func (r *scaleRun) idleRSS(v scaleVariant) []float64 {
	m := r.startManager(v, false)
	defer m.Stop()
	r.sleep(15 * time.Second)
	var out []float64
	for range 10 {
		if rss, err := m.RSSMiB(); err == nil {
			out = append(out, rss)
		}
		r.sleep(time.Second)
	}
	r.t.Logf("Manager (%s) with no app: RSS median %.1f MiB", v.name, Summarize(out).Median)
	return out
}

func (r *scaleRun) startManager(v scaleVariant, pprof bool) *harness.Manager {
	m, err := harness.StartManager(r.cluster, v.bin, harness.ManagerOptions{Pprof: pprof && v.pprof,
		LogPath: filepath.Join(r.cluster.Dir(), "manager-"+v.name+".log")})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := m.WaitMetrics(r.ctx, time.Minute); err != nil {
		m.Stop()
		r.t.Fatal(err)
	}
	return m
}

func (r *scaleRun) sleep(d time.Duration) {
	select {
	case <-r.ctx.Done():
	case <-time.After(d):
	}
}

// createFleet creates the namespaces, n Deployments and, once all their pods are ready,
// n apps. It stops creating Deployments when the budget runs out or the machine runs
// low on memory, and measures the Deployments it made.
func (r *scaleRun) createFleet(n int) (int, string) {
	t, ctx := r.t, r.ctx
	for _, ns := range r.fleet.Namespaces(n) {
		if err := harness.IgnoreExists(r.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})); err != nil {
			t.Fatal(err)
		}
	}
	began := time.Now()
	stopped := ""
	lastCheck := time.Now()
	var mu sync.Mutex
	stop := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if stopped != "" {
			return true
		}
		if time.Since(began) > scaleCreateBudget {
			stopped = fmt.Sprintf("creating the Deployments took longer than %s", scaleCreateBudget)
		} else if time.Since(lastCheck) > 2*time.Second {
			lastCheck = time.Now()
			if free := availableMiB(); free > 0 && free < scaleMinFreeMiB {
				stopped = fmt.Sprintf("the machine had %d MiB of memory left, below %d MiB", free, scaleMinFreeMiB)
			}
		}
		return stopped != ""
	}
	// One worker decides when to stop, so the Deployments made are 0..done-1.
	created, err := harness.ForEach(ctx, n, 16, func() bool { return false }, func(ctx context.Context, i int) error {
		if stop() {
			return errStopCreating
		}
		_, err := r.cs.AppsV1().Deployments(r.fleet.Namespace(i)).Create(ctx, r.fleet.Deployment(i), metav1.CreateOptions{})
		return harness.IgnoreExists(err)
	})
	if err != nil && !errors.Is(err, errStopCreating) {
		t.Fatalf("Creating Deployments: %v", err)
	}
	if stopped != "" {
		created = r.contiguousDeployments(n)
		t.Logf("Stopped creating Deployments at %d: %s", created, stopped)
	}
	pods := created * harness.PodsPerApp
	if err := harness.WaitFor(ctx, fmt.Sprintf("%d ready pods", pods), 40*time.Minute, 5*time.Minute, r.w.ReadyPods,
		func() bool { return r.w.ReadyPods() >= pods }); err != nil {
		t.Fatalf("%v\n%s", err, r.cluster.LogTails(20))
	}
	took := time.Since(began)
	rate := float64(pods) / took.Seconds()
	t.Logf("%d Deployments, %d pods ready in %s (%.0f pods/s)", created, pods, took.Round(time.Second), rate)
	pids := r.cluster.Pids()
	api, _ := harness.ProcessRSSMiB(pids["kube-apiserver"])
	etcd, _ := harness.ProcessRSSMiB(pids["etcd"])
	label := fmt.Sprintf("%d apps", created)
	Record("scale",
		Figure{Name: "pods created and ready per second, " + label, Unit: "pods/s", Samples: []float64{rate},
			Note: fmt.Sprintf("%d Deployments created by 16 client workers, then %d pods scheduled and made ready by kwok, in %s.", created, pods, took.Round(time.Second))},
		Figure{Name: "kube-apiserver RSS with the pods of " + label, Unit: "MiB", Samples: []float64{api}},
		Figure{Name: "etcd RSS with the pods of " + label, Unit: "MiB", Samples: []float64{etcd}},
	)
	if _, err := harness.ForEach(ctx, created, 16, nil, func(ctx context.Context, i int) error {
		return harness.IgnoreExists(r.c.Create(ctx, r.fleet.App(i)))
	}); err != nil {
		t.Fatalf("Creating apps: %v", err)
	}
	return created, stopped
}

var errStopCreating = errors.New("stopped creating")

// contiguousDeployments returns how many Deployments 0..k-1 exist without a gap.
func (r *scaleRun) contiguousDeployments(n int) int {
	have := map[string]bool{}
	for _, ns := range r.fleet.Namespaces(n) {
		list, err := r.cs.AppsV1().Deployments(ns).List(r.ctx, metav1.ListOptions{})
		if err != nil {
			r.t.Fatal(err)
		}
		for _, d := range list.Items {
			have[d.Namespace+"/"+d.Name] = true
		}
	}
	k := 0
	for k < n && have[r.fleet.Namespace(k)+"/"+r.fleet.Name(k)] {
		k++
	}
	// Delete what lies past the gap, so every pod in the cluster belongs to a measured app.
	for i := k; i < n; i++ {
		if have[r.fleet.Namespace(i)+"/"+r.fleet.Name(i)] {
			prop := metav1.DeletePropagationForeground
			_ = r.cs.AppsV1().Deployments(r.fleet.Namespace(i)).Delete(r.ctx, r.fleet.Name(i), metav1.DeleteOptions{PropagationPolicy: &prop})
		}
	}
	return k
}

// objectsKiBPerApp is the size, as JSON without managed fields, of one app's objects:
// the app, its Deployment, its ReplicaSet and its 3 pods. It is what any cache of them
// must hold, at least.
func (r *scaleRun) objectsKiBPerApp() float64 {
	ns, name := r.fleet.Namespace(0), r.fleet.Name(0)
	var objs []client.Object
	app := r.fleet.App(0)
	if err := r.c.Get(r.ctx, types.NamespacedName{Namespace: ns, Name: name}, app); err == nil {
		objs = append(objs, app)
	}
	if d, err := r.cs.AppsV1().Deployments(ns).Get(r.ctx, name, metav1.GetOptions{}); err == nil {
		objs = append(objs, d)
	}
	if rss, err := r.cs.AppsV1().ReplicaSets(ns).List(r.ctx, metav1.ListOptions{LabelSelector: "app=" + name}); err == nil {
		for i := range rss.Items {
			objs = append(objs, &rss.Items[i])
		}
	}
	if pods, err := r.cs.CoreV1().Pods(ns).List(r.ctx, metav1.ListOptions{LabelSelector: "app=" + name}); err == nil {
		for i := range pods.Items {
			objs = append(objs, &pods.Items[i])
		}
	}
	total := 0
	for _, o := range objs {
		o.SetManagedFields(nil)
		b, err := json.Marshal(o)
		if err == nil {
			total += len(b)
		}
	}
	return float64(total) / 1024
}

// clearStatuses removes every app's status, so the next manager starts as cold as the
// first one did.
func (r *scaleRun) clearStatuses() {
	if _, err := harness.ForEach(r.ctx, r.n, 16, nil, func(ctx context.Context, i int) error {
		app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: r.fleet.Namespace(i), Name: r.fleet.Name(i)}}
		return r.c.Status().Patch(ctx, app, client.RawPatch(types.MergePatchType, []byte(`{"status":null}`)))
	}); err != nil {
		r.t.Fatalf("Clearing the apps' status: %v", err)
	}
	if err := harness.WaitFor(r.ctx, "every app's status to be cleared", 5*time.Minute, 0, nil,
		func() bool { return r.w.ReconciledApps() == 0 }); err != nil {
		r.t.Fatal(err)
	}
}

// writeFloor writes a small status to every app, 4 at a time as the manager's workers,
// through a bare client: the least a cold start costs, one status write per app. The
// status it leaves (observedGeneration 0) is not a reconciled one.
func (r *scaleRun) writeFloor() float64 {
	began := time.Now()
	if _, err := harness.ForEach(r.ctx, r.n, 4, nil, func(ctx context.Context, i int) error {
		app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: r.fleet.Namespace(i), Name: r.fleet.Name(i)}}
		return r.c.Status().Patch(ctx, app, rawMerge(`{"status":{"observedGeneration":0}}`))
	}); err != nil {
		r.t.Fatalf("Writing the apps' status: %v", err)
	}
	return time.Since(began).Seconds()
}

// informerFloor lists and syncs, in a fresh cache of this process, every object the
// manager caches for the apps: the least time any manager needs to see them all.
func (r *scaleRun) informerFloor() float64 {
	began := time.Now()
	c, err := crcache.New(r.cluster.RESTConfig(), crcache.Options{Scheme: scaleScheme})
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	for _, o := range []client.Object{&v1alpha1.AutonomicApp{}, &appsv1.Deployment{}, &appsv1.ReplicaSet{}, &corev1.Pod{}} {
		if _, err := c.GetInformer(ctx, o); err != nil {
			r.t.Fatal(err)
		}
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		r.t.Fatal("the floor's cache did not sync")
	}
	return time.Since(began).Seconds()
}

func availableMiB() int {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return kb / 1024
		}
	}
	return 0
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// pprofTop returns the first lines of `go tool pprof -top` of a profile.
func pprofTop(bin, profile string, args ...string) string {
	cmd := exec.Command("go", append(append([]string{"tool", "pprof", "-top", "-nodecount=15"}, args...), bin, profile)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("go tool pprof failed: %v", err)
	}
	return string(out)
}
