package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/test/bench/harness"
)

// variantFigures is what one manager binary measured at one scale.
type variantFigures struct {
	coldStart, floor     float64 // s
	writeFloor           float64 // s
	coldCPU              float64 // s of the manager's CPU until every app was reconciled
	rss0, rss, perAppKiB []float64
	idleWrites, idleReqs []float64 // per minute
	reqPerEdit           []float64 // requests per reconcile
	writesPerEdit        []float64
	reqPerTouch          []float64
	stamp, intent        []float64 // ms from the accepted status update
	managerView          []float64 // ms, homeostat_detect_to_act_seconds
	floorInformer        []float64 // ms: the bare informer
	floorAct             []float64 // ms: the reference controller's patch of the pod
	roundTrip            []float64 // ms: the status update's request
	reqPerTrial          []float64
	detectedAtOK         int
	trialsFailed         int
}

// measureVariant runs one manager binary through cold start, idle, bursts and
// detect-to-act, and stops it.
func (r *scaleRun) measureVariant(v scaleVariant, rss0 []float64) *variantFigures {
	t, ctx := r.t, r.ctx
	vf := &variantFigures{rss0: rss0}
	vf.floor = r.informerFloor()
	vf.writeFloor = r.writeFloor()

	m := r.startManager(v, true)
	defer m.Stop()
	// Profiles are taken from 1,000 apps up.
	profile := v.pprof && !r.profiled && r.n >= 1000
	var cpuDone chan error
	if profile {
		cpuDone = make(chan error, 1)
		go func() {
			cpuDone <- m.Profile(ctx, "profile", "seconds=20", filepath.Join(r.scratch, fmt.Sprintf("cpu-coldstart-%d-apps.pprof", r.n)))
		}()
	}
	if err := harness.WaitFor(ctx, fmt.Sprintf("%d apps reconciled by the %s manager", r.n, v.name), 45*time.Minute, 5*time.Minute,
		r.w.ReconciledApps, func() bool { return r.w.ReconciledApps() >= r.n }); err != nil {
		t.Fatalf("%v\nmanager log:\n%s", err, harness.Tail(m.LogPath, 30))
	}
	vf.coldStart = time.Since(m.Started).Seconds()
	vf.coldCPU, _ = harness.ProcessCPUSeconds(m.Pid())
	t.Logf("[%s] cold start of %d apps: %.1f s, %.1f s of CPU (floors: status writes %.1f s, informer %.2f s)",
		v.name, r.n, vf.coldStart, vf.coldCPU, vf.writeFloor, vf.floor)

	r.waitQuiet(m, 10*time.Second)
	if profile {
		if err := <-cpuDone; err != nil {
			t.Logf("CPU profile: %v", err)
		}
		heap := filepath.Join(r.scratch, fmt.Sprintf("heap-%d-apps.pprof", r.n))
		if err := m.Profile(ctx, "heap", "gc=1", heap); err != nil {
			t.Logf("heap profile: %v", err)
		} else {
			Note("profile", fmt.Sprintf("Heap in use after settling at %d apps (%s), top functions:\n```\n%s```",
				r.n, heap, pprofTop(v.bin, heap, "-sample_index=inuse_space")))
			Note("profile", fmt.Sprintf("CPU during the cold start of %d apps (first 20 s), top functions:\n```\n%s```",
				r.n, pprofTop(v.bin, filepath.Join(r.scratch, fmt.Sprintf("cpu-coldstart-%d-apps.pprof", r.n)))))
		}
		r.profiled = true
	}

	// Idle: three windows of 20 s, every app healthy, nothing changing.
	for range 3 {
		c0, at0 := r.counts(m), time.Now()
		for range 4 {
			r.sleep(5 * time.Second)
			if rss, err := m.RSSMiB(); err == nil {
				vf.rss = append(vf.rss, rss)
				vf.perAppKiB = append(vf.perAppKiB, (rss-Summarize(rss0).Median)*1024/float64(r.n))
			}
		}
		d, mins := r.counts(m).Sub(c0), time.Since(at0).Minutes()
		vf.idleWrites = append(vf.idleWrites, d.Writes/mins)
		vf.idleReqs = append(vf.idleReqs, d.Requests/mins)
	}
	t.Logf("[%s] idle: RSS %.1f MiB (%.1f KiB/app), writes/min %v", v.name, Summarize(vf.rss).Median,
		Summarize(vf.perAppKiB).Median, vf.idleWrites)
	if profile {
		r.noteMemory(m, Summarize(vf.rss).Median)
	}

	// Bursts of changes.
	k := min(r.n, 200)
	for b := range 3 {
		reqs, writes := r.burst(m, k, b, r.editApps)
		vf.reqPerEdit = append(vf.reqPerEdit, reqs)
		vf.writesPerEdit = append(vf.writesPerEdit, writes)
		reqs, _ = r.burst(m, k, b, r.touchDeployments)
		vf.reqPerTouch = append(vf.reqPerTouch, reqs)
	}
	t.Logf("[%s] requests per reconcile: spec edits %v, workload touches %v", v.name, vf.reqPerEdit, vf.reqPerTouch)

	r.detectToAct(m, vf)
	return vf
}

// counts scrapes the manager's counters.
func (r *scaleRun) counts(m *harness.Manager) harness.Counts {
	ms, err := m.Metrics(r.ctx)
	if err != nil {
		r.t.Fatalf("Scraping the manager: %v", err)
	}
	return harness.CountsOf(ms)
}

// waitQuiet waits until the manager's queue is empty and no reconcile has run for hold.
func (r *scaleRun) waitQuiet(m *harness.Manager, hold time.Duration) {
	deadline := time.Now().Add(10 * time.Minute)
	last, since := -1.0, time.Now()
	for time.Now().Before(deadline) && r.ctx.Err() == nil {
		ms, err := m.Metrics(r.ctx)
		if err != nil {
			r.t.Fatal(err)
		}
		rec := harness.CountsOf(ms).Reconciles
		depth := ms.Sum(harness.MetricQueueDepth, map[string]string{"name": "autonomicapp"})
		if rec != last || depth > 0 {
			last, since = rec, time.Now()
		} else if time.Since(since) >= hold {
			return
		}
		r.sleep(250 * time.Millisecond)
	}
	r.t.Logf("The manager did not fall quiet within 10 minutes")
}

// burst applies change to k apps and returns the manager's API requests, and writes,
// per reconcile from the change until it falls quiet again.
func (r *scaleRun) burst(m *harness.Manager, k, round int, change func(k, round int)) (reqs, writes float64) {
	r.waitQuiet(m, 3*time.Second)
	c0 := r.counts(m)
	change(k, round)
	r.waitQuiet(m, 3*time.Second)
	d := r.counts(m).Sub(c0)
	if d.Reconciles == 0 {
		return math.NaN(), math.NaN()
	}
	return d.Requests / d.Reconciles, d.Writes / d.Reconciles
}

// editApps changes the spec of apps 0..k-1 (health.minHealthyComponents 1 <-> unset, the
// same rule for one component) and waits until their status is of the new generation.
func (r *scaleRun) editApps(k, _ int) {
	patch := `{"spec":{"health":{"minHealthyComponents":1}}}`
	r.edits++
	if r.edits%2 == 0 {
		patch = `{"spec":{"health":null}}`
	}
	gens := make([]int64, k)
	if _, err := harness.ForEach(r.ctx, k, 8, nil, func(ctx context.Context, i int) error {
		app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: r.fleet.Namespace(i), Name: r.fleet.Name(i)}}
		if err := r.c.Patch(ctx, app, rawMerge(patch)); err != nil {
			return err
		}
		gens[i] = app.Generation
		return nil
	}); err != nil {
		r.t.Fatalf("Editing apps: %v", err)
	}
	if err := harness.WaitFor(r.ctx, "the edited apps to be reconciled", 5*time.Minute, 0, nil, func() bool {
		for i := range k {
			a := r.w.App(r.ctx, r.fleet.Namespace(i), r.fleet.Name(i))
			if a == nil || a.Status.ObservedGeneration < gens[i] || !harness.AppReconciled(a) {
				return false
			}
		}
		return true
	}); err != nil {
		r.t.Fatal(err)
	}
}

// touchDeployments changes an annotation of the Deployments of apps 0..k-1: every app
// is reconciled and nothing about it changes.
func (r *scaleRun) touchDeployments(k, round int) {
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"bench.homeostat.dev/touch":"%d"}}}`, round)
	if _, err := harness.ForEach(r.ctx, k, 8, nil, func(ctx context.Context, i int) error {
		_, err := r.cs.AppsV1().Deployments(r.fleet.Namespace(i)).Patch(ctx, r.fleet.Name(i), types.MergePatchType,
			[]byte(patch), metav1.PatchOptions{})
		return err
	}); err != nil {
		r.t.Fatalf("Touching Deployments: %v", err)
	}
	r.sleep(time.Second)
}

// d2aTrial is one detect-to-act repetition, timed by this process's clock.
type d2aTrial struct {
	mu                                sync.Mutex
	sent, accepted                    time.Time
	statusSeen, intentSeen, stampSeen time.Time
	floorSeen                         time.Time
	detectedAt                        time.Time
	existing                          map[string]bool
}

var errNotReady = errors.New("the app is not healthy with 3 ready pods")

// detectToAct runs the repetitions over apps in a shuffled order, each app healthy with
// 3 ready pods when its turn comes (at 10 apps each app serves several times).
func (r *scaleRun) detectToAct(m *harness.Manager, vf *variantFigures) {
	floor, err := startFloorController(r.ctx, r.cs)
	if err != nil {
		r.t.Fatalf("Starting the reference controller: %v", err)
	}
	defer floor.stop()
	trials := scaleTrials(r.n)
	order := r.rng.Perm(r.n)
	for i := 0; len(vf.stamp)+vf.trialsFailed < trials && i < trials*20; i++ {
		idx := order[i%r.n]
		ns, name := r.fleet.Namespace(idx), r.fleet.Name(idx)
		if r.n < trials {
			// The app served before: wait until it has healed.
			_ = harness.WaitFor(r.ctx, "app "+name+" to heal", time.Minute, 0, nil, func() bool {
				return r.w.AppHealthy(ns, name) && len(readyPods(r.w.PodsOf(ns, name))) == harness.PodsPerApp
			})
		}
		c0 := r.counts(m)
		tr, err := r.trial(ns, name)
		if errors.Is(err, errNotReady) {
			continue
		}
		if err != nil {
			vf.trialsFailed++
			r.t.Logf("Trial on %s/%s: %v", ns, name, err)
			continue
		}
		// The manager observes its histogram before it calls the effector: by the time the
		// stamp arrived it is there.
		var d harness.Counts
		for range 20 {
			if d = r.counts(m).Sub(c0); d.DetectToActCount >= 1 {
				break
			}
			r.sleep(100 * time.Millisecond)
		}
		ms := func(a, b time.Time) float64 { return float64(b.Sub(a).Microseconds()) / 1000 }
		vf.stamp = append(vf.stamp, ms(tr.accepted, tr.stampSeen))
		vf.intent = append(vf.intent, ms(tr.accepted, tr.intentSeen))
		vf.floorInformer = append(vf.floorInformer, ms(tr.accepted, tr.statusSeen))
		if !tr.floorSeen.IsZero() {
			// The manager evicted the pod before the reference controller's patch landed
			// otherwise: rare, and then that trial has no floor.
			vf.floorAct = append(vf.floorAct, ms(tr.accepted, tr.floorSeen))
		}
		vf.roundTrip = append(vf.roundTrip, ms(tr.sent, tr.accepted))
		if d.DetectToActCount == 1 {
			vf.managerView = append(vf.managerView, d.DetectToActSum*1000)
		}
		vf.reqPerTrial = append(vf.reqPerTrial, d.Requests)
		// detectedAt is a metav1.Time, whole seconds: it must fall within the second of the
		// change, or the next (the manager's event arrived after the change).
		if !tr.detectedAt.IsZero() && !tr.detectedAt.Before(tr.sent.Truncate(time.Second)) &&
			!tr.detectedAt.After(tr.stampSeen) {
			vf.detectedAtOK++
		}
		r.sleep(time.Duration(300+r.rng.IntN(400)) * time.Millisecond)
	}
	r.t.Logf("detect-to-act over %d trials: stamp p50 %.1f ms, intent p50 %.1f ms, reference controller p50 %.1f ms, bare informer p50 %.2f ms, manager's view p50 %.1f ms",
		len(vf.stamp), medianOf(vf.stamp), medianOf(vf.intent), medianOf(vf.floorAct), medianOf(vf.floorInformer), medianOf(vf.managerView))
}

func medianOf(s []float64) float64 {
	if st := Summarize(s); st != nil {
		return st.Median
	}
	return math.NaN()
}

func readyPods(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if harness.PodRunningReady(p) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *corev1.Pod) int { return compareStrings(a.Name, b.Name) })
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// trial makes one ready pod of the app crash-loop, through a status update, and waits
// until the manager has stamped it.
func (r *scaleRun) trial(ns, name string) (*d2aTrial, error) {
	pods := readyPods(r.w.PodsOf(ns, name))
	if len(pods) != harness.PodsPerApp || !r.w.AppHealthy(ns, name) {
		return nil, errNotReady
	}
	pod := pods[r.rng.IntN(len(pods))].DeepCopy()
	tr := &d2aTrial{existing: map[string]bool{}}
	if app := r.w.App(r.ctx, ns, name); app != nil {
		for _, h := range app.Status.History {
			tr.existing[h.ID] = true
		}
	}
	stamped := make(chan struct{})
	r.w.HookPod(ns, pod.Name, func(old, cur *corev1.Pod, at time.Time) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if tr.statusSeen.IsZero() && crashLooping(cur) && !crashLooping(old) {
			tr.statusSeen = at
		}
		if tr.floorSeen.IsZero() && cur.Annotations[floorAnnotation] != "" && old.Annotations[floorAnnotation] == "" {
			tr.floorSeen = at
		}
		if tr.stampSeen.IsZero() && cur.Annotations[v1alpha1.ActionIDAnnotation] != "" && old.Annotations[v1alpha1.ActionIDAnnotation] == "" {
			tr.stampSeen = at
			close(stamped)
		}
	})
	r.w.HookApp(ns, name, func(cur *v1alpha1.AutonomicApp, at time.Time) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if !tr.intentSeen.IsZero() {
			return
		}
		for _, h := range cur.Status.History {
			if !tr.existing[h.ID] && h.Action == "restartPods" {
				tr.intentSeen = at
				if h.DetectedAt != nil {
					tr.detectedAt = h.DetectedAt.Time
				}
				return
			}
		}
	})
	defer r.w.HookPod(ns, pod.Name, nil)
	defer r.w.HookApp(ns, name, nil)

	crash(pod)
	tr.mu.Lock()
	tr.sent = time.Now()
	tr.mu.Unlock()
	_, err := r.cs.CoreV1().Pods(ns).UpdateStatus(r.ctx, pod, metav1.UpdateOptions{})
	accepted := time.Now()
	if apierrors.IsConflict(err) {
		return nil, errNotReady
	}
	if err != nil {
		return nil, fmt.Errorf("updating the status of pod %s: %w", pod.Name, err)
	}
	tr.mu.Lock()
	tr.accepted = accepted
	tr.mu.Unlock()
	select {
	case <-stamped:
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("pod %s was not stamped within 30 s", pod.Name)
	case <-r.ctx.Done():
		return nil, r.ctx.Err()
	}
	// The intent's and the status change's events may still be on their way.
	_ = harness.WaitFor(r.ctx, "the intent and the status change to be seen", 5*time.Second, 0, nil, func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return !tr.intentSeen.IsZero() && !tr.statusSeen.IsZero() && !tr.floorSeen.IsZero()
	})
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.intentSeen.IsZero() || tr.statusSeen.IsZero() {
		return nil, fmt.Errorf("pod %s: the intent or the status change was not seen", pod.Name)
	}
	return tr, nil
}

// crash sets the pod's status as the kubelet reports a container in CrashLoopBackOff.
func crash(p *corev1.Pod) {
	now := metav1.Now()
	for i := range p.Status.ContainerStatuses {
		cs := &p.Status.ContainerStatuses[i]
		cs.Ready, cs.Started = false, new(bool)
		cs.RestartCount++
		cs.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 1, Reason: "Error", StartedAt: now, FinishedAt: now}}
		cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
			Message: "back-off 10s restarting failed container=" + cs.Name}}
	}
	for i := range p.Status.Conditions {
		c := &p.Status.Conditions[i]
		if c.Type == corev1.PodReady || c.Type == corev1.ContainersReady {
			c.Status, c.Reason, c.LastTransitionTime = corev1.ConditionFalse, "ContainersNotReady", now
		}
	}
}

func crashLooping(p *corev1.Pod) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff" {
			return true
		}
	}
	return false
}

// noteMemory notes in the profile section what the manager's RSS after settling is made
// of, as the Go runtime counts it at the end of the idle minute, without a collection.
func (r *scaleRun) noteMemory(m *harness.Manager, rss float64) {
	h, err := m.HeapNow(r.ctx)
	if err != nil {
		r.t.Logf("heap figures: %v", err)
		return
	}
	mib := func(b float64) string { return fmt.Sprintf("%.0f MiB", b/(1<<20)) }
	Note("profile", fmt.Sprintf("Memory at %d apps at the end of the idle minute, as the Go runtime counts it (no collection forced): "+
		"RSS %.0f MiB; heap objects %s (live and not yet collected), heap spans in use %s, free heap still held %s, "+
		"heap returned to the system %s, goroutine stacks %s, all obtained from the system %s; the next collection at %s.",
		r.n, rss, mib(h.Alloc), mib(h.Inuse), mib(h.Idle-h.Released), mib(h.Released), mib(h.Stack), mib(h.Sys), mib(h.NextGC)))
}
