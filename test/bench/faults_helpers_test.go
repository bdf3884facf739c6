package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/devcluster"
	"github.com/homeostat-dev/homeostat/internal/egress/egresstest"
	"github.com/homeostat-dev/homeostat/test/bench/harness"
)

// faultSection is the report section of the fault-tolerance scenarios.
const faultSection = "faults"

// faultScheme knows the built-in kinds and Homeostat's.
var faultScheme = func() *kruntime.Scheme {
	s := kruntime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}()

// faultManagerBinary builds the manager from main.go once per test binary, into
// bench/tmp/faults (ignored by git).
var faultManagerBinary = sync.OnceValues(func() (string, error) {
	root, dir, err := faultDirs()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "manager")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the manager: %w\n%s", err, out)
	}
	return bin, nil
})

// faultEnv is one scenario's world: its own local control plane, an admin client and
// the manager binary. Every scenario starts a fresh one.
type faultEnv struct {
	t       *testing.T
	cluster *devcluster.Cluster
	c       client.Client
	cs      kubernetes.Interface
	bin     string
	// logDir keeps the managers' logs: bench/tmp/faults/<test>.
	logDir string
}

// faultQuietLogs gives controller-runtime's logger (the test's own caches) somewhere to go.
var faultQuietLogs sync.Once

func newFaultEnv(t *testing.T, opts devcluster.Options) *faultEnv {
	t.Helper()
	faultQuietLogs.Do(func() { ctrllog.SetLogger(logr.Discard()) })
	bin, err := faultManagerBinary()
	if err != nil {
		t.Fatal(err)
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	opts.ExtraStages = append(opts.ExtraStages, devcluster.CrashLoopStage)
	cluster := devcluster.StartForTest(t, opts)
	if err := cluster.InstallCRDs(t.Context(), filepath.Join(root, "config", "crd", "bases")); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cluster.RESTConfig(), client.Options{Scheme: faultScheme})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	scratch, err := ScratchDir()
	if err != nil {
		t.Fatal(err)
	}
	logDir := filepath.Join(scratch, "faults", t.Name())
	_ = os.RemoveAll(logDir)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &faultEnv{t: t, cluster: cluster, c: c, cs: cs, bin: bin, logDir: logDir}
}

// manager returns a manager process of this env (not started). Its log is
// <logDir>/<name>.log, appended to across restarts.
func (e *faultEnv) manager(name string, args ...string) *faultManager {
	return e.managerOf(e.bin, name, args...)
}

// managerOf is manager, of another binary.
func (e *faultEnv) managerOf(bin, name string, args ...string) *faultManager {
	// Log times to the nanosecond, so a recovery can be read from the log.
	args = append([]string{"--zap-time-encoding=rfc3339nano"}, args...)
	m := &faultManager{name: name, bin: bin, kubeconfig: e.cluster.Kubeconfig(), args: args,
		logPath: filepath.Join(e.logDir, name+".log")}
	e.t.Cleanup(m.stop)
	return m
}

// faultBeforeRev is the manager the fixes of the outage and leader change are measured
// against: the last commit before them. HOMEOSTAT_BENCH_FAULTS_BEFORE names another;
// "none" measures the working tree alone.
const faultBeforeRev = "54f12a0"

func faultBeforeRevision() string {
	rev := cmpOr(os.Getenv("HOMEOSTAT_BENCH_FAULTS_BEFORE"), faultBeforeRev)
	if rev == "none" {
		return ""
	}
	return rev
}

// faultDirs are the repository's root and bench/tmp/faults, made if missing.
func faultDirs() (root, dir string, err error) {
	if root, err = RepoRoot(); err != nil {
		return "", "", err
	}
	scratch, err := ScratchDir()
	if err != nil {
		return "", "", err
	}
	dir = filepath.Join(scratch, "faults")
	return root, dir, os.MkdirAll(dir, 0o755)
}

// faultManagerAt builds the manager of a commit once per test binary.
func faultManagerAt(ctx context.Context, rev string) (string, error) {
	faultBuiltMu.Lock()
	defer faultBuiltMu.Unlock()
	if bin, ok := faultBuilt[rev]; ok {
		return bin, nil
	}
	root, dir, err := faultDirs()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "manager-"+rev)
	if err := harness.BuildManagerAt(ctx, root, rev, bin); err != nil {
		return "", err
	}
	faultBuilt[rev] = bin
	return bin, nil
}

var (
	faultBuiltMu sync.Mutex
	faultBuilt   = map[string]string{}
)

func (e *faultEnv) namespace(name string) string {
	e.t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := e.c.Create(e.t.Context(), ns); err != nil {
		e.t.Fatal(err)
	}
	return name
}

func (e *faultEnv) create(objs ...client.Object) {
	e.t.Helper()
	for _, o := range objs {
		if err := e.c.Create(e.t.Context(), o); err != nil {
			e.t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

func (e *faultEnv) app(ns, name string) (*v1alpha1.AutonomicApp, error) {
	a := &v1alpha1.AutonomicApp{}
	err := e.c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, a)
	return a, err
}

// setReplicas sets a Deployment's spec.replicas with a merge patch, as a person would.
func (e *faultEnv) setReplicas(ctx context.Context, ns, name string, n int32) error {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	return e.c.Patch(ctx, d, client.RawPatch(types.MergePatchType, []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, n))))
}

// setImage sets the image of a Deployment's only container.
func (e *faultEnv) setImage(ctx context.Context, ns, name, image string) error {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":%q}]}}}}`, image)
	return e.c.Patch(ctx, d, client.RawPatch(types.StrategicMergePatchType, []byte(patch)))
}

// faultWaitUntil polls check every 50 ms until it returns true, an error, or timeout passes.
// It returns when check first held.
func faultWaitUntil(ctx context.Context, timeout time.Duration, check func(context.Context) (bool, error)) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := check(ctx)
		if ok && err == nil {
			return time.Now(), nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			if last != nil {
				return time.Time{}, fmt.Errorf("not within %s; last error: %w", timeout, last)
			}
			return time.Time{}, fmt.Errorf("not within %s", timeout)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// must fails the test on an error.
func (e *faultEnv) must(err error, what string) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
}

// faultDeployment is a Deployment of replicas pods labelled app=name, rolling with
// maxUnavailable 0 and maxSurge 100%, as the e2e suite's.
func faultDeployment(ns, name, image string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: ptr.To(intstr.FromInt32(0)), MaxSurge: ptr.To(intstr.FromString("100%"))}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: image,
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}},
				}}},
			},
		},
	}
}

const (
	faultGoodImage = "registry.local/shop/web:good"
	faultBadImage  = "registry.local/shop/web:bad"
)

func faultDur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func faultWorkload(name, deploy string) v1alpha1.Component {
	return v1alpha1.Component{Name: name, WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: deploy}}
}

func faultStep(a v1alpha1.Action, timeout time.Duration) v1alpha1.RemediationStep {
	return v1alpha1.RemediationStep{Action: a, Timeout: faultDur(timeout)}
}

func faultRolloutRestart(c string) v1alpha1.Action {
	return v1alpha1.Action{RolloutRestart: &v1alpha1.ComponentAction{Component: c}}
}

func faultRestartPods(c string, pods v1alpha1.PodSelection) v1alpha1.Action {
	return v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: c, Pods: pods}}
}

func faultScaleTo(c string, n int32) v1alpha1.Action {
	return v1alpha1.Action{Scale: &v1alpha1.ScaleAction{Component: c, Replicas: ptr.To(n)}}
}

func faultNotify(msg string) v1alpha1.Action {
	return v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: msg}}
}

func faultCondition(a *v1alpha1.AutonomicApp, typ string) *metav1.Condition {
	return meta.FindStatusCondition(a.Status.Conditions, typ)
}

func faultPolicy(a *v1alpha1.AutonomicApp, name string) v1alpha1.PolicyStatus {
	for _, p := range a.Status.Policies {
		if p.Name == name {
			return p
		}
	}
	return v1alpha1.PolicyStatus{}
}

// faultManager runs the manager binary as a child process in its own process group,
// with SIGKILL as its parent-death signal, so it never outlives the test.
type faultManager struct {
	name, bin, kubeconfig string
	args, env             []string
	logPath               string

	mu          sync.Mutex
	cmd         *exec.Cmd
	done        chan struct{}
	metricsAddr string
	startedAt   time.Time
	starts      int
	// supervise starts the process again the moment it exits on its own, as a pod's
	// kubelet would (after its backoff); exited counts those exits.
	supervise bool
	exited    int
}

// faultRestartDelay is how long a supervised manager stays down after it exited.
const faultRestartDelay = time.Second

// exits is how many times the process exited on its own.
func (m *faultManager) exits() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.exited
}

func (m *faultManager) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return fmt.Errorf("manager %s is already running", m.name)
	}
	port, err := faultFreePort()
	if err != nil {
		return err
	}
	m.metricsAddr = fmt.Sprintf("127.0.0.1:%d", port)
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	m.starts++
	fmt.Fprintf(logf, "=== start %d of %s at %s\n", m.starts, m.name, time.Now().Format(time.RFC3339Nano))
	// The benchmark's Prometheus listens on loopback, which the egress policy refuses
	// unless allowed.
	args := append([]string{"--kubeconfig", m.kubeconfig, "--enable-webhooks=false",
		"--metrics-bind-address", m.metricsAddr, "--metrics-secure=false",
		"--health-probe-bind-address", "0", "--zap-log-level", "info",
		"--egress-allow-cidrs", egresstest.LoopbackCIDRs}, m.args...)
	cmd := exec.Command(m.bin, args...)
	cmd.Env = append(os.Environ(), m.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := devcluster.StartProcess(cmd); err != nil {
		_ = logf.Close()
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(done)
		// signal holds mu until it has seen done and cleared cmd: an exit it asked for
		// is never taken for one on the process's own.
		m.mu.Lock()
		own := m.cmd == cmd
		if own {
			m.cmd = nil
			m.exited++
		}
		restart := own && m.supervise
		m.mu.Unlock()
		if restart {
			// Not at once: a manager that exits as it starts would spin. A kubelet
			// waits 10 s, doubling up to 5 minutes.
			time.Sleep(faultRestartDelay)
			_ = m.start()
		}
	}()
	m.cmd, m.done, m.startedAt = cmd, done, time.Now()
	return nil
}

// kill sends SIGKILL to the manager's process group and waits until it is reaped.
func (m *faultManager) kill() {
	m.signal(syscall.SIGKILL, 0)
}

// stop sends SIGTERM (a graceful shutdown), then SIGKILL after 20 s.
func (m *faultManager) stop() {
	m.signal(syscall.SIGTERM, 20*time.Second)
}

func (m *faultManager) signal(sig syscall.Signal, grace time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	pid := m.cmd.Process.Pid
	_ = syscall.Kill(-pid, sig)
	if sig != syscall.SIGKILL {
		select {
		case <-m.done:
		case <-time.After(grace):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
	<-m.done
	m.cmd = nil
}

func (m *faultManager) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd != nil
}

// metric sums the samples of a metric in the manager's /metrics whose labels contain
// every given label (name="value" pairs); it returns -1 when it cannot read them.
func (m *faultManager) metric(name string, labels ...string) float64 {
	m.mu.Lock()
	addr := m.metricsAddr
	m.mu.Unlock()
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? (\S+)$`)
	total := 0.0
	for _, match := range re.FindAllStringSubmatch(string(body), -1) {
		ok := true
		for _, l := range labels {
			if !strings.Contains(match[1], l) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(match[2], 64)
		if err == nil {
			total += v
		}
	}
	return total
}

// logLines returns the lines of the manager's log that contain substr.
func (m *faultManager) logLines(substr string) []string {
	f, err := os.Open(m.logPath)
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), substr) {
			out = append(out, sc.Text())
		}
	}
	return out
}

func faultFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// faultSeconds and faultMillis turn durations into figure samples.
func faultSeconds(ds ...time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

func faultMillis(ds ...time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d.Microseconds()) / 1000
	}
	return out
}

// faultCount is a figure of one count.
func faultCount(name, unit string, n int, note string) Figure {
	return Figure{Name: name, Unit: unit, Samples: []float64{float64(n)}, Note: note}
}

// faultProm answers Prometheus' instant queries (/api/v1/query, GET or POST) on
// 127.0.0.1 with one sample of the value the test sets, or 503 while it is down.
type faultProm struct {
	srv *httptest.Server

	mu    sync.Mutex
	value float64
	down  bool
}

func newFaultProm(t *testing.T) *faultProm {
	p := &faultProm{}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *faultProm) url() string { return p.srv.URL }

func (p *faultProm) set(v float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.value = v
}

func (p *faultProm) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

func (p *faultProm) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" {
		http.NotFound(w, r)
		return
	}
	p.mu.Lock()
	v, down := p.value, p.down
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if down {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"status":"error","errorType":"unavailable","error":"the benchmark took Prometheus down"}`)
		return
	}
	now := float64(time.Now().UnixMilli()) / 1000
	_, _ = fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%.3f,"%s"]}]}}`,
		now, strconv.FormatFloat(v, 'f', -1, 64))
}

// faultReplicaWatch records every change of a Deployment's spec.replicas, as a watch of
// the test's own sees it.
type faultReplicaWatch struct {
	mu      sync.Mutex
	current int32
	changes []faultReplicaChange
}

type faultReplicaChange struct {
	at       time.Time
	from, to int32
}

func newFaultReplicaWatch(t *testing.T, e *faultEnv, ns, name string) *faultReplicaWatch {
	w := &faultReplicaWatch{current: -1}
	inf := informers.NewSharedInformerFactoryWithOptions(e.cs, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "metadata.name=" + name }))
	on := func(o any) {
		d, ok := o.(*appsv1.Deployment)
		if !ok || d.Spec.Replicas == nil {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if n := *d.Spec.Replicas; n != w.current {
			if w.current >= 0 {
				w.changes = append(w.changes, faultReplicaChange{at: time.Now(), from: w.current, to: n})
			}
			w.current = n
		}
	}
	_, err := inf.Apps().V1().Deployments().Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: on, UpdateFunc: func(_, o any) { on(o) }})
	e.must(err, "watching the Deployment")
	stop := make(chan struct{})
	inf.Start(stop)
	t.Cleanup(func() { close(stop); inf.Shutdown() })
	inf.WaitForCacheSync(stop)
	return w
}

func (w *faultReplicaWatch) replicas() int32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.current
}

func (w *faultReplicaWatch) since(t time.Time) []faultReplicaChange {
	return w.between(t, time.Now().Add(time.Hour))
}

func (w *faultReplicaWatch) between(from, to time.Time) []faultReplicaChange {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []faultReplicaChange
	for _, c := range w.changes {
		if !c.at.Before(from) && c.at.Before(to) {
			out = append(out, c)
		}
	}
	return out
}

// waitFor waits until spec.replicas is n and returns when it became n (now if it
// already was), or the zero time after timeout.
func (w *faultReplicaWatch) waitFor(n int32, timeout time.Duration) time.Time {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		cur := w.current
		var at time.Time
		if len(w.changes) > 0 {
			at = w.changes[len(w.changes)-1].at
		}
		w.mu.Unlock()
		if cur == n {
			if at.IsZero() {
				return time.Now()
			}
			return at
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Time{}
}
