package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/devcluster"
	"github.com/homeostat-dev/homeostat/internal/devcluster/metricsapi"
)

// TestBenchHPAComparison measures, on one fresh local control plane, the time from a
// step of CPU usage to the scale of a Deployment, for the HPA of kube-controller-manager
// at its defaults (15 s sync period, default behavior) and for Homeostat (the manager
// built from main.go) with a resource sensor polled every second and an autoscale policy
// of the same target. Both read the same metrics.k8s.io: the test's own aggregated API
// (internal/devcluster/metricsapi), whose samples are fresh at every request, so neither
// waits on a scrape and the figures are the autoscalers' own.
//
// Two Deployments of identical pods (4 replicas, 100m CPU requested each): web-hpa is
// scaled by an autoscaling/v2 HPA, web-homeostat by an AutonomicApp; both target 50%
// average CPU utilization, minReplicas 4, maxReplicas 20, behavior unset. Each
// repetition:
//
//  1. resets: deletes the last repetition's HPA and app, sets every pod to 20m (20%),
//     scales both Deployments back to 4 and waits until only their 4 ready pods remain;
//  2. creates a new HPA and a new app (new names: no autoscaler remembers an earlier
//     repetition) and waits until the HPA's status and the app's sensor read 20%;
//  3. waits a time offset from the HPA's last sync, stratified over the 15 s period (the
//     i-th of N repetitions waits (i + u) x 15 s / N, u uniform in [0, 1), shuffled), so
//     the samples cover the phases of a step against the HPA's sync and, through u, fall
//     at random phases of the 1 s sensor interval;
//  4. steps all eight pods from 20m to 150m (150%) at one instant, and takes the time
//     from there to the first change of each Deployment's spec.replicas, as one informer
//     of the test sees them.
//
// Both go 4 -> 8: 150% asks for ceil(4 x 150 / 50) = 12, and each allows at most 8 in
// one step. The rate limits differ below 4 replicas, which is why the Deployments start
// at 4: an HPA without behavior keeps kube-controller-manager's older rule of at most
// max(2 x current, 4), while Homeostat's unset behavior is autoscaling/v2's documented
// default, max(+100%, +4 pods) per 15 s; from 2 replicas the HPA would go to 4 and
// Homeostat to 6.
//
// It records section "hpa" of the report (bench/results/hpa.json): Homeostat's latency
// with the HPA's of the same run as its baseline, so bench/report.md gives both medians,
// both p99s and their ratio; the test's output has the same comparison as a table.
func TestBenchHPAComparison(t *testing.T) {
	Require(t)
	began := time.Now()
	ctx := t.Context()
	root, err := devcluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	manager := buildHPABenchManager(t, root)
	cluster := devcluster.StartForTest(t, devcluster.Options{Nodes: 1})
	if err := cluster.InstallCRDs(ctx, filepath.Join(root, "config", "crd", "bases")); err != nil {
		t.Fatal(err)
	}
	metrics, err := metricsapi.Start(ctx, cluster.RESTConfig(), metricsapi.Options{Logger: testr.New(t)})
	if err != nil {
		t.Fatalf("Serving metrics.k8s.io: %v", err)
	}
	t.Cleanup(func() { _ = metrics.Stop(context.Background()) })
	startHPABenchManager(t, cluster, manager)

	b := newHPABench(t, cluster, metrics)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("HOMEOSTAT_BENCH_SEED"); s != "" {
		_, _ = fmt.Sscan(s, &seed)
	}
	offsets := hpaStratifiedOffsets(hpaBenchReps, hpaSyncPeriod, rand.New(rand.NewPCG(seed, seed)))
	t.Logf("%d repetitions, seed %d (HOMEOSTAT_BENCH_SEED repeats the offsets)", hpaBenchReps, seed)

	var samples []hpaSample
	for i, off := range offsets {
		s, err := b.repetition(i, off)
		if err != nil {
			t.Fatalf("Repetition %d: %v\nmanager log:\n%s", i+1, err, hpaTail(filepath.Join(cluster.Dir(), "manager.log"), 40))
		}
		t.Logf("Repetition %2d: step %5.2fs after the HPA's sync: HPA %6.2fs (%d -> %d), Homeostat %5.2fs (%d -> %d)",
			i+1, s.Offset, s.HPASeconds, hpaBaseReplicas, s.HPAReplicas, s.HomeostatSeconds, hpaBaseReplicas, s.HomeostatReplicas)
		samples = append(samples, s)
	}

	version, err := b.clientset.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	figs := hpaFigures(samples, seed, version.GitVersion, runtime.NumCPU(), time.Since(began))
	Note(hpaSection, hpaMethod)
	Record(hpaSection, figs...)
	fmt.Printf("\nTime from a step of CPU usage (20%% -> 150%%) to the Deployment's scale, spec.replicas as an informer sees it:\n\n%s\n", hpaMarkdown(figs))
	t.Logf("Recorded section %s in bench/results/%s.json; the run took %s", hpaSection, hpaSection, time.Since(began).Round(time.Second))

	// The comparison holds only if both autoscalers made the same decision on the step.
	for i, s := range samples {
		if s.HPAReplicas != hpaScaledReplicas || s.HomeostatReplicas != hpaScaledReplicas {
			t.Errorf("Repetition %d scaled the HPA to %d and Homeostat to %d replicas; both should go to %d",
				i+1, s.HPAReplicas, s.HomeostatReplicas, hpaScaledReplicas)
		}
	}
}

// The benchmark's parameters.
const (
	hpaBenchReps = 10
	// hpaSyncPeriod is kube-controller-manager's default --horizontal-pod-autoscaler-sync-period,
	// which internal/devcluster leaves alone.
	hpaSyncPeriod      = 15 * time.Second
	hpaSensorInterval  = time.Second
	hpaBaseReplicas    = 4
	hpaScaledReplicas  = 8 // 12 asked for, 8 allowed in one step
	hpaMaxReplicas     = 20
	hpaTargetPercent   = 50
	hpaRequestMilliCPU = 100
	hpaLowMilliCPU     = 20  // 20%: both stay at minReplicas
	hpaHighMilliCPU    = 150 // 150%: ceil(4 x 150 / 50) = 12
	hpaBenchNS         = "bench-hpa"
	hpaDeployment      = "web-hpa"
	hpaAppDeployment   = "web-homeostat"
	// hpaScaleTimeout bounds the wait for a scale after the step: two HPA periods.
	hpaScaleTimeout = 2*hpaSyncPeriod + 5*time.Second
)

// hpaSample is one repetition.
type hpaSample struct {
	// Offset is how long after the HPA's last sync the step came, in seconds.
	Offset            float64 `json:"offsetFromHPASyncSeconds"`
	HPASeconds        float64 `json:"hpaSeconds"`
	HPAReplicas       int32   `json:"hpaReplicas"`
	HomeostatSeconds  float64 `json:"homeostatSeconds"`
	HomeostatReplicas int32   `json:"homeostatReplicas"`
}

// hpaStratifiedOffsets returns n offsets, the i-th uniform in [i, i+1) x period / n, in a
// random order.
func hpaStratifiedOffsets(n int, period time.Duration, rng *rand.Rand) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration((float64(i) + rng.Float64()) * float64(period) / float64(n))
	}
	rng.Shuffle(n, func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// hpaBench is the cluster side of the benchmark: clients, the metrics table and an
// informer that stamps every change of the Deployments' spec.replicas.
type hpaBench struct {
	t         *testing.T
	clientset kubernetes.Interface
	client    client.Client
	metrics   *metricsapi.Running

	mu      sync.Mutex
	current map[string]int32
	changes []hpaReplicaChange
}

type hpaReplicaChange struct {
	at       time.Time
	name     string
	from, to int32
}

func newHPABench(t *testing.T, cluster *devcluster.Cluster, metrics *metricsapi.Running) *hpaBench {
	ctx := t.Context()
	scheme := kruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cluster.RESTConfig(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	b := &hpaBench{t: t, clientset: kubernetes.NewForConfigOrDie(cluster.RESTConfig()), client: c, metrics: metrics, current: map[string]int32{}}
	if _, err := b.clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: hpaBenchNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{hpaDeployment, hpaAppDeployment} {
		if _, err := b.clientset.AppsV1().Deployments(hpaBenchNS).Create(ctx, hpaBenchDeployment(name), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	stop := make(chan struct{})
	f := informers.NewSharedInformerFactoryWithOptions(b.clientset, 0, informers.WithNamespace(hpaBenchNS))
	observe := func(obj any) {
		now := time.Now()
		d, ok := obj.(*appsv1.Deployment)
		if !ok {
			return
		}
		n := ptr.Deref(d.Spec.Replicas, 1)
		b.mu.Lock()
		defer b.mu.Unlock()
		if old, known := b.current[d.Name]; known && old != n {
			b.changes = append(b.changes, hpaReplicaChange{at: now, name: d.Name, from: old, to: n})
		}
		b.current[d.Name] = n
	}
	if _, err := f.Apps().V1().Deployments().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: observe, UpdateFunc: func(_, o any) { observe(o) },
	}); err != nil {
		t.Fatal(err)
	}
	f.Start(stop)
	f.WaitForCacheSync(stop)
	t.Cleanup(func() { close(stop); f.Shutdown() })
	return b
}

func hpaBenchDeployment(name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: hpaBenchNS, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(hpaBaseReplicas)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "registry.local/bench/web:1",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU:    *resource.NewMilliQuantity(hpaRequestMilliCPU, resource.DecimalSI),
						corev1.ResourceMemory: resource.MustParse("64Mi"),
					}},
				}}},
			},
		},
	}
}

// repetition runs one step and measures both autoscalers.
func (b *hpaBench) repetition(i int, offset time.Duration) (hpaSample, error) {
	ctx := b.t.Context()
	hpaName, appName := fmt.Sprintf("web-hpa-%d", i+1), fmt.Sprintf("web-%d", i+1)

	// 1. Reset.
	if i > 0 {
		prevHPA, prevApp := fmt.Sprintf("web-hpa-%d", i), fmt.Sprintf("web-%d", i)
		if err := b.clientset.AutoscalingV2().HorizontalPodAutoscalers(hpaBenchNS).Delete(ctx, prevHPA, metav1.DeleteOptions{}); err != nil {
			return hpaSample{}, err
		}
		app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: hpaBenchNS, Name: prevApp}}
		if err := b.client.Delete(ctx, app); err != nil {
			return hpaSample{}, err
		}
		if err := b.waitGone(ctx, prevHPA, prevApp); err != nil {
			return hpaSample{}, err
		}
	}
	var pods []types.NamespacedName
	for _, name := range []string{hpaDeployment, hpaAppDeployment} {
		if err := b.scale(ctx, name, hpaBaseReplicas); err != nil {
			return hpaSample{}, err
		}
		p, err := b.onlyReadyPods(ctx, name, hpaBaseReplicas)
		if err != nil {
			return hpaSample{}, err
		}
		pods = append(pods, p...)
	}
	b.metrics.SetPodsUsage(hpaCPUUsage(hpaLowMilliCPU), pods...)

	// 2. New autoscalers, at rest on 20%.
	if _, err := b.clientset.AutoscalingV2().HorizontalPodAutoscalers(hpaBenchNS).Create(ctx, hpaBenchHPA(hpaName), metav1.CreateOptions{}); err != nil {
		return hpaSample{}, err
	}
	if err := b.client.Create(ctx, hpaBenchApp(appName)); err != nil {
		return hpaSample{}, err
	}
	synced, err := b.waitHPAReads(ctx, hpaName, hpaLowMilliCPU*100/hpaRequestMilliCPU)
	if err != nil {
		return hpaSample{}, err
	}
	if err := b.waitAppReads(ctx, appName, hpaLowMilliCPU*100/hpaRequestMilliCPU); err != nil {
		return hpaSample{}, err
	}

	// 3. Wait for the offset from a sync of the HPA: the first one at least 2 s ahead.
	at := synced.Add(offset)
	for time.Until(at) < 2*time.Second {
		at = at.Add(hpaSyncPeriod)
	}
	time.Sleep(time.Until(at))

	// 4. Step, and measure.
	b.metrics.SetPodsUsage(hpaCPUUsage(hpaHighMilliCPU), pods...)
	step := time.Now()
	s := hpaSample{Offset: hpaRound(float64(offset) / float64(time.Second))}
	var errs []string
	for _, name := range []string{hpaDeployment, hpaAppDeployment} {
		c, ok := b.waitChange(name, step, hpaScaleTimeout)
		if !ok {
			errs = append(errs, fmt.Sprintf("%s was not scaled within %s of the step", name, hpaScaleTimeout))
			continue
		}
		secs := hpaRound(c.at.Sub(step).Seconds())
		if name == hpaDeployment {
			s.HPASeconds, s.HPAReplicas = secs, c.to
		} else {
			s.HomeostatSeconds, s.HomeostatReplicas = secs, c.to
		}
	}
	if len(errs) > 0 {
		return s, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return s, nil
}

func hpaCPUUsage(milli int64) metricsapi.Usage {
	return metricsapi.Usage{CPU: *resource.NewMilliQuantity(milli, resource.DecimalSI), Memory: resource.MustParse("32Mi")}
}

// hpaBenchHPA is an autoscaling/v2 HPA of web-hpa on CPU utilization, with the default
// behavior.
func hpaBenchHPA(name string) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: hpaBenchNS, Name: name},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: hpaDeployment},
			MinReplicas:    ptr.To(int32(hpaBaseReplicas)), MaxReplicas: hpaMaxReplicas,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name:   corev1.ResourceCPU,
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(int32(hpaTargetPercent))},
			}}},
		},
	}
}

// hpaBenchApp is an AutonomicApp that scales web-homeostat as hpaBenchHPA scales web-hpa, on a
// resource sensor polled every second.
func hpaBenchApp(name string) *v1alpha1.AutonomicApp {
	return &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: hpaBenchNS, Name: name},
		Spec: v1alpha1.AutonomicAppSpec{
			Mode: v1alpha1.ModeActive,
			Components: []v1alpha1.Component{{Name: "web",
				WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: hpaAppDeployment}}},
			Healing: v1alpha1.Healing{
				Sensors: []v1alpha1.Sensor{{
					Name: "cpu", Interval: &metav1.Duration{Duration: hpaSensorInterval},
					Resource: &v1alpha1.ResourceSensor{Component: "web", Resource: v1alpha1.ResourceName(corev1.ResourceCPU)},
				}},
				Policies: []v1alpha1.Policy{{Name: "scale-web", Autoscale: &v1alpha1.AutoscalePolicy{
					Component: "web", MinReplicas: ptr.To(int32(hpaBaseReplicas)), MaxReplicas: hpaMaxReplicas,
					Metrics: []v1alpha1.AutoscaleMetric{{Sensor: "cpu", Target: &v1alpha1.MetricTarget{AverageUtilization: ptr.To(int32(hpaTargetPercent))}}},
				}}},
			},
		},
	}
}

// hpaPoll runs check every 20 ms until it is done or timeout passes.
func hpaPoll(ctx context.Context, timeout time.Duration, check func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, check)
}

func (b *hpaBench) waitGone(ctx context.Context, hpa, app string) error {
	return hpaPoll(ctx, time.Minute, func(ctx context.Context) (bool, error) {
		_, err := b.clientset.AutoscalingV2().HorizontalPodAutoscalers(hpaBenchNS).Get(ctx, hpa, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return false, nil
		}
		err = b.client.Get(ctx, types.NamespacedName{Namespace: hpaBenchNS, Name: app}, &v1alpha1.AutonomicApp{})
		return apierrors.IsNotFound(err), nil
	})
}

// scale sets the Deployment's replicas through its scale subresource, as a person would.
func (b *hpaBench) scale(ctx context.Context, name string, replicas int32) error {
	return hpaPoll(ctx, 30*time.Second, func(ctx context.Context) (bool, error) {
		s, err := b.clientset.AppsV1().Deployments(hpaBenchNS).GetScale(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if s.Spec.Replicas == replicas {
			return true, nil
		}
		s.Spec.Replicas = replicas
		_, err = b.clientset.AppsV1().Deployments(hpaBenchNS).UpdateScale(ctx, name, s, metav1.UpdateOptions{})
		return err == nil, nil
	})
}

// onlyReadyPods waits until the Deployment's pods are n ready pods and nothing else (the
// pods of an earlier scale-up are gone) and returns them.
func (b *hpaBench) onlyReadyPods(ctx context.Context, name string, n int) ([]types.NamespacedName, error) {
	var out []types.NamespacedName
	var last string
	err := hpaPoll(ctx, time.Minute, func(ctx context.Context) (bool, error) {
		list, err := b.clientset.CoreV1().Pods(hpaBenchNS).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			return false, err
		}
		out = nil
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && hpaPodReady(&p) {
				out = append(out, types.NamespacedName{Namespace: p.Namespace, Name: p.Name})
			}
		}
		last = fmt.Sprintf("%d pods, %d of them ready", len(list.Items), len(out))
		return len(list.Items) == n && len(out) == n, nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for %s to have %d ready pods and no other: %w (%s)", name, n, err, last)
	}
	return out, nil
}

func hpaPodReady(p *corev1.Pod) bool {
	return slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
		return c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
	})
}

// waitHPAReads waits until the HPA's status reads the utilization and returns when it
// was first seen: a moment just after one of the HPA's syncs.
func (b *hpaBench) waitHPAReads(ctx context.Context, name string, percent int32) (time.Time, error) {
	var last string
	var seen time.Time
	err := hpaPoll(ctx, 90*time.Second, func(ctx context.Context) (bool, error) {
		h, err := b.clientset.AutoscalingV2().HorizontalPodAutoscalers(hpaBenchNS).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, m := range h.Status.CurrentMetrics {
			if m.Resource != nil && ptr.Deref(m.Resource.Current.AverageUtilization, -1) == percent {
				seen = time.Now()
				return true, nil
			}
		}
		last = ""
		for _, c := range h.Status.Conditions {
			last += fmt.Sprintf("%s=%s %s: %s; ", c.Type, c.Status, c.Reason, c.Message)
		}
		return false, nil
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("waiting for HPA %s to read %d%%: %w (%s)", name, percent, err, last)
	}
	return seen, nil
}

// waitAppReads waits until the app's cpu sensor reads the utilization.
func (b *hpaBench) waitAppReads(ctx context.Context, name string, percent int32) error {
	var last string
	err := hpaPoll(ctx, 30*time.Second, func(ctx context.Context) (bool, error) {
		a := &v1alpha1.AutonomicApp{}
		if err := b.client.Get(ctx, types.NamespacedName{Namespace: hpaBenchNS, Name: name}, a); err != nil {
			return false, err
		}
		for _, s := range a.Status.Sensors {
			if s.Name == "cpu" {
				last = fmt.Sprintf("value %q error %q", s.Value, s.Error)
				return s.Value == fmt.Sprint(percent) && s.Error == "", nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for app %s to read %d%%: %w (%s)", name, percent, err, last)
	}
	return nil
}

// waitChange waits for the first change of the Deployment's spec.replicas at or after t.
func (b *hpaBench) waitChange(name string, t time.Time, timeout time.Duration) (hpaReplicaChange, bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		for _, c := range b.changes {
			if c.name == name && !c.at.Before(t) {
				b.mu.Unlock()
				return c, true
			}
		}
		b.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	return hpaReplicaChange{}, false
}

// The report: section "hpa" of bench/report.md.

// hpaSection is the report section of the comparison.
const hpaSection = "hpa"

// hpaMethod is the section's note: how the figures were measured.
const hpaMethod = "TestBenchHPAComparison, on one local control plane: two Deployments of 4 identical pods (100m CPU " +
	"requested each); web-hpa is scaled by an autoscaling/v2 HPA (kube-controller-manager at its defaults: 15 s sync " +
	"period, no behavior), web-homeostat by an AutonomicApp (a resource sensor polled every 1 s, an autoscale policy); " +
	"both target 50% average CPU utilization with min 4 and max 20, and read the same metrics.k8s.io (the test's " +
	"aggregated API, internal/devcluster/metricsapi, fresh samples at every request). Each repetition creates a new HPA " +
	"and a new app, waits a time after the HPA's last sync stratified over its 15 s period, steps the CPU usage of all " +
	"8 pods from 20% to 150% at one instant, and takes the time from the step to the first change of each " +
	"Deployment's spec.replicas as one informer of the test sees it. Both scale 4 -> 8 (12 asked for, 8 allowed in " +
	"one step). docs/autoscaling-vs-hpa.md explains the figures."

// hpaFigures turns the repetitions into the section's figures: Homeostat's latency with
// the HPA's of the same run as its baseline, and the HPA's step offset plus latency,
// which is its sync period when the HPA waits for its next sync.
func hpaFigures(samples []hpaSample, seed uint64, kubernetesVersion string, cpus int, took time.Duration) []Figure {
	var hpa, hs, phase []float64
	same := 0
	for _, s := range samples {
		hpa = append(hpa, s.HPASeconds)
		hs = append(hs, s.HomeostatSeconds)
		phase = append(phase, hpaRound(s.Offset+s.HPASeconds))
		if s.HPAReplicas == hpaScaledReplicas && s.HomeostatReplicas == hpaScaledReplicas {
			same++
		}
	}
	run := fmt.Sprintf("%d repetitions, seed %d (HOMEOSTAT_BENCH_SEED repeats the offsets), Kubernetes %s, %d CPUs; "+
		"the run took %s; both went %d -> %d in %d of %d repetitions.", len(samples), seed, kubernetesVersion, cpus,
		took.Round(time.Second), hpaBaseReplicas, hpaScaledReplicas, same, len(samples))
	return []Figure{
		{Name: "metric step -> scale call, Homeostat", Unit: "s", Samples: hs,
			Baseline: &Figure{Name: "the HPA, default settings", Unit: "s", Samples: hpa},
			Note: "CPU usage steps 20% -> 150% in metrics.k8s.io; the time until an informer sees spec.replicas change. " +
				"Homeostat: resource sensor every 1 s; the HPA: 15 s sync period, no behavior. " + run},
		{Name: "the HPA: step offset from its last sync + metric step -> scale call", Unit: "s", Samples: phase,
			Note: "offsets stratified over 0-15 s; a constant sum near 15 s is the HPA waiting for its next sync"},
	}
}

// hpaRound rounds seconds to milliseconds.
func hpaRound(x float64) float64 { return math.Round(x*1000) / 1000 }

// hpaMarkdown is the comparison as a table, for the test's output.
func hpaMarkdown(figs []Figure) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| autoscaler (same pods, same metric, target 50%%) | median | p99 | min | max | mean | n |\n")
	fmt.Fprintf(&b, "|---|---:|---:|---:|---:|---:|---:|\n")
	row := func(name string, s *Stats) {
		if s != nil {
			fmt.Fprintf(&b, "| %s | %.2f s | %.2f s | %.2f s | %.2f s | %.2f s | %d |\n", name, s.Median, s.P99, s.Min, s.Max, s.Mean, s.N)
		}
	}
	row("HPA, kube-controller-manager defaults (15 s sync)", Summarize(figs[0].Baseline.Samples))
	row("Homeostat, resource sensor every 1 s", Summarize(figs[0].Samples))
	return b.String()
}

// The manager process.

// buildHPABenchManager builds the manager from main.go.
func buildHPABenchManager(t *testing.T, root string) string {
	bin := filepath.Join(t.TempDir(), "manager")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("Building the manager: %v\n%s", err, out)
	}
	return bin
}

// startHPABenchManager runs the manager against the cluster until the test ends; its log
// is manager.log in the cluster's directory.
func startHPABenchManager(t *testing.T, cluster *devcluster.Cluster, bin string) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := cluster.Command(ctx, bin, "--kubeconfig", cluster.Kubeconfig(), "--enable-webhooks=false",
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--zap-log-level", "info")
	logf, err := os.Create(filepath.Join(cluster.Dir(), "manager.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("Starting the manager: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		_ = logf.Close()
	})
}

// hpaTail returns the last n lines of a file.
func hpaTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

func TestHPAFiguresPairHomeostatWithTheHPAOfTheSameRun(t *testing.T) {
	samples := []hpaSample{
		{Offset: 1, HPASeconds: 14, HPAReplicas: 8, HomeostatSeconds: 0.5, HomeostatReplicas: 8},
		{Offset: 10, HPASeconds: 5, HPAReplicas: 8, HomeostatSeconds: 0.3, HomeostatReplicas: 8},
	}
	figs := hpaFigures(samples, 1, "v1.0.0", 2, time.Minute)
	f := figs[0]
	f.complete()
	if f.Name != "metric step -> scale call, Homeostat" || f.Baseline == nil || f.Baseline.Name != "the HPA, default settings" {
		t.Fatalf("figure %q with baseline %+v", f.Name, f.Baseline)
	}
	if !slices.Equal(f.Samples, []float64{0.5, 0.3}) || !slices.Equal(f.Baseline.Samples, []float64{14, 5}) {
		t.Fatalf("samples %v, baseline %v", f.Samples, f.Baseline.Samples)
	}
	if f.Ratio == nil || math.Abs(*f.Ratio-0.4/9.5) > 1e-9 {
		t.Fatalf("ratio %v, want %v", f.Ratio, 0.4/9.5)
	}
	if !strings.Contains(f.Note, "both went 4 -> 8 in 2 of 2 repetitions") {
		t.Errorf("note %q", f.Note)
	}
	if !slices.Equal(figs[1].Samples, []float64{15, 15}) {
		t.Errorf("offset + latency %v, want [15 15]", figs[1].Samples)
	}
}
