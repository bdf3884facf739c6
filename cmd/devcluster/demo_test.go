package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/devcluster"
	"github.com/homeostat-dev/homeostat/internal/devcluster/demo"
)

// TestMakeRunServesEverySampleAndScalesAsTheREADMESays is `make run` with a fresh cluster:
// devcluster run, with the manager built from main.go and the manager flags of the
// Makefile's run target (on free ports), must bring every sample's AutonomicApp to
// Healthy with its sensors available within a minute of the manager's start; then the
// README's scale step, run as written (its kubectl lines), must scale the api Deployment
// up, and the second must bring the autoscaler's recommendation down (the sample's
// scale-down window is five minutes, so the replicas themselves follow later). Prometheus
// must scrape the manager, and the manager's log must hold no error and no unavailable
// sensor.
func TestMakeRunServesEverySampleAndScalesAsTheREADMESays(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local control plane and the manager; skipped with -short")
	}
	kubectl := needTool(t, "kubectl", "run `bash hack/tools.sh kubernetes` and put the directory of "+
		"`bash hack/tools.sh path kubectl` first on PATH (make test does)")
	needTool(t, "prometheus", "run `bash hack/tools.sh prometheus` (make test-e2e does)")
	began := time.Now()
	root, err := devcluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	setContext, patches := scaleStep(t, string(readme))

	dir := t.TempDir()
	manager := filepath.Join(dir, "manager")
	build := exec.Command("go", "build", "-o", manager, ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("Building the manager: %v\n%s", err, out)
	}
	t.Logf("Built the manager in %s", time.Since(began).Round(time.Second))

	ports := freeLoopbackPorts(t, 3)
	promAddr := "127.0.0.1:" + strconv.Itoa(ports[0])
	managerArgs := makeRunManagerArgs(t, root, ports[1], ports[2])
	kubeconfig := filepath.Join(dir, "kubeconfig")
	t.Setenv("KUBECONFIG", filepath.Join(dir, "none")) // no cluster answers: run starts its own

	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		args := append([]string{"run", "--name=", "--kubeconfig", kubeconfig, "--prometheus-address", promAddr,
			"--manager", manager, "--"}, managerArgs...)
		done <- run(ctx, args, &stdout, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("devcluster run exited with %d after the test stopped it", code)
			}
		case <-time.After(time.Minute):
			t.Error("devcluster run did not stop within a minute")
		}
		if t.Failed() {
			t.Logf("devcluster and the manager wrote:\n%s\n%s", stdout.String(), stderr.String())
		}
	})

	// The manager starts right after devcluster says where the kubeconfig is.
	managerStart := waitFor(t, done, 3*time.Minute, "devcluster to start the manager", func() error {
		if !strings.Contains(stderr.String(), "devcluster: In another terminal") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	t.Logf("devcluster started the manager %s after the test began", managerStart.Sub(began).Round(time.Second))
	c := newClient(t, kubeconfig)

	apps := sampleApps(t, root)
	healthy := waitFor(t, done, time.Minute, "every sample's app to be Healthy with its sensors available", func() error {
		return allHealthy(ctx, c, apps)
	})
	t.Logf("Every sample's app (%d) was Healthy with its sensors available %s after the manager started",
		len(apps), healthy.Sub(managerStart).Round(time.Second))

	env := append(os.Environ(), "KUBECONFIG="+kubeconfig, "PATH="+filepath.Dir(kubectl)+string(os.PathListSeparator)+os.Getenv("PATH"))
	sh := func(line string) {
		t.Helper()
		cmd := exec.Command("sh", "-c", line)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("The README's %q: %v\n%s", line, err, out)
		}
	}
	sh(setContext)
	sh(patches[0])
	raised := time.Now()
	up := waitFor(t, done, time.Minute, "api to scale up", func() error {
		n, err := replicas(ctx, c)
		if err == nil && n <= 2 {
			err = fmt.Errorf("api has %d replicas", n)
		}
		return err
	})
	n, _ := replicas(ctx, c)
	t.Logf("%q scaled api up to %d replicas in %s", patches[0], n, up.Sub(raised).Round(time.Second))

	sh(patches[1])
	lowered := time.Now()
	down := waitFor(t, done, 2*time.Minute, "the recommendation to go down", func() error {
		app := &v1alpha1.AutonomicApp{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: demo.Namespace, Name: "api"}, app); err != nil {
			return err
		}
		i := slices.IndexFunc(app.Status.Policies, func(p v1alpha1.PolicyStatus) bool { return p.Name == "scale-api" })
		if i < 0 || app.Status.Policies[i].Autoscale == nil {
			return fmt.Errorf("scale-api has no recommendation")
		}
		a := app.Status.Policies[i].Autoscale
		if a.RecommendedReplicas >= a.CurrentReplicas {
			return fmt.Errorf("scale-api recommends %d of %d replicas: %s", a.RecommendedReplicas, a.CurrentReplicas, app.Status.Policies[i].Message)
		}
		t.Logf("scale-api: %s", app.Status.Policies[i].Message)
		return nil
	})
	t.Logf("%q brought the recommendation down in %s", patches[1], down.Sub(lowered).Round(time.Second))

	if v, err := promValue(ctx, promAddr, `up{job="homeostat"}`); err != nil || v != 1 {
		t.Errorf("Prometheus does not scrape the manager: up{job=\"homeostat\"} is %v (%v)", v, err)
	}
	if err := allHealthy(ctx, c, apps); err != nil {
		t.Errorf("After the scale step: %v", err)
	}
	for _, line := range strings.Split(stdout.String()+stderr.String(), "\n") {
		if managerError.MatchString(line) {
			t.Errorf("The manager logged an error in a healthy demo: %s", line)
		}
	}
	t.Logf("The test took %s", time.Since(began).Round(time.Second))
}

// managerError matches a line of the manager's log (zap's development console format)
// at error level, or one that says a sensor is unavailable.
var managerError = regexp.MustCompile(`\t(ERROR|DPANIC|PANIC|FATAL)\t|Sensor is unavailable`)

// scaleStep finds the README quick start's scale step: the line that sets the context's
// namespace, which the step's lines rely on, and the two lines that patch the demo load,
// up then down, without their comments.
func scaleStep(t *testing.T, readme string) (setContext string, patches []string) {
	t.Helper()
	_, quick, ok := strings.Cut(readme, "## Quick start")
	if !ok {
		t.Fatal("The README has no quick start")
	}
	quick, _, _ = strings.Cut(quick, "\n## ")
	s := bufio.NewScanner(strings.NewReader(quick))
	for s.Scan() {
		line, _, _ := strings.Cut(s.Text(), " #")
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "kubectl config set-context"):
			setContext = line
		case strings.HasPrefix(line, "kubectl") && strings.Contains(line, "patch configmap "+demo.LoadConfigMap):
			patches = append(patches, line)
		}
	}
	if setContext == "" || len(patches) != 2 {
		t.Fatalf("The README's quick start should set the namespace and patch the demo load twice, up then down; found %q and %q", setContext, patches)
	}
	return setContext, patches
}

// makeRunManagerArgs are the manager's arguments in the Makefile's run target, with the
// metrics and health ports moved to free ones.
func makeRunManagerArgs(t *testing.T, root string, metricsPort, healthPort int) []string {
	t.Helper()
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mk), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "bin/devcluster run ") {
			continue
		}
		_, args, ok := strings.Cut(line, " -- ")
		if !ok {
			break
		}
		out := strings.Fields(args)
		for i, a := range out {
			a = strings.Replace(a, "127.0.0.1:8080", "127.0.0.1:"+strconv.Itoa(metricsPort), 1)
			out[i] = strings.Replace(a, "127.0.0.1:8081", "127.0.0.1:"+strconv.Itoa(healthPort), 1)
		}
		return out
	}
	t.Fatal("The Makefile's run target has no `bin/devcluster run ... -- <manager args>` line")
	return nil
}

// sampleApps are the AutonomicApps of config/samples.
func sampleApps(t *testing.T, root string) []client.ObjectKey {
	t.Helper()
	objs, err := devcluster.ReadManifests(filepath.Join(root, "config", "samples"))
	if err != nil {
		t.Fatal(err)
	}
	var out []client.ObjectKey
	for _, o := range objs {
		if o.GetKind() == "AutonomicApp" {
			out = append(out, client.ObjectKey{Namespace: o.GetNamespace(), Name: o.GetName()})
		}
	}
	if len(out) < 8 {
		t.Fatalf("config/samples has %d apps; expected every sample's", len(out))
	}
	return out
}

// allHealthy checks that every app is Healthy with SensorsAvailable True and no sensor
// in error.
func allHealthy(ctx context.Context, c client.Client, apps []client.ObjectKey) error {
	var bad []string
	for _, key := range apps {
		app := &v1alpha1.AutonomicApp{}
		if err := c.Get(ctx, key, app); err != nil {
			return err
		}
		cond := meta.FindStatusCondition(app.Status.Conditions, v1alpha1.ConditionSensorsAvailable)
		switch {
		case app.Status.Phase != v1alpha1.PhaseHealthy:
			bad = append(bad, fmt.Sprintf("%s is %s", key.Name, app.Status.Phase))
		case cond == nil || cond.Status != "True":
			bad = append(bad, fmt.Sprintf("%s's sensors are not available: %v", key.Name, cond))
		}
		for _, s := range app.Status.Sensors {
			if s.Error != "" {
				bad = append(bad, fmt.Sprintf("%s's sensor %s: %s", key.Name, s.Name, s.Error))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return nil
}

func replicas(ctx context.Context, c client.Client) (int32, error) {
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: demo.Namespace, Name: "api"}, d); err != nil {
		return 0, err
	}
	if d.Spec.Replicas == nil {
		return 1, nil
	}
	return *d.Spec.Replicas, nil
}

func newClient(t *testing.T, kubeconfig string) client.Client {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func promValue(ctx context.Context, addr, query string) (float64, error) {
	pc, err := api.NewClient(api.Config{Address: demo.PrometheusURL(addr)})
	if err != nil {
		return 0, err
	}
	v, _, _, err := promv1.NewAPI(pc).Query(ctx, query, time.Time{})
	if err != nil {
		return 0, err
	}
	vec, ok := v.(model.Vector)
	if !ok || len(vec) != 1 {
		return 0, fmt.Errorf("%s returned %v", query, v)
	}
	return float64(vec[0].Value), nil
}

// waitFor polls check every 500ms until it succeeds and returns when it did; the test
// fails after timeout, or at once when devcluster exits.
func waitFor(t *testing.T, done chan int, timeout time.Duration, what string, check func() error) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("Waited %s for %s: %v", timeout, what, err)
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("devcluster run exited with %d while waiting for %s", code, what)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// needTool returns the path of a tool the test needs, and skips without it, or fails
// when CI is set.
func needTool(t *testing.T, name, how string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		msg := name + " is not on PATH: " + how
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; CI is set, so this fails instead of skipping")
		}
		t.Skip(msg)
	}
	return path
}

// freeLoopbackPorts returns n free ports of 127.0.0.1 below the kernel's ephemeral range
// (32768 on Linux by default), which no outgoing connection takes before the demo's
// Prometheus and the manager bind them.
func freeLoopbackPorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for tries := 0; len(ports) < n && tries < 1000; tries++ {
		p := 20000 + rand.IntN(12000)
		if slices.Contains(ports, p) {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		_ = l.Close()
		ports = append(ports, p)
	}
	if len(ports) < n {
		t.Fatalf("Found %d free ports of 127.0.0.1, want %d", len(ports), n)
	}
	return ports
}

// syncBuffer is a bytes.Buffer that a child's output and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
