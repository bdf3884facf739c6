package devcluster

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

// These tests start real clusters: a few seconds each once hack/tools.sh has built the
// binaries (minutes, once). go test -short skips them.

func skipIfShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a local control plane; skipped with -short")
	}
}

// eventually polls check every 100 ms until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Timed out after %s waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestClusterRunsWorkloadsOnKwokNodesAndStopLeavesNothingBehind(t *testing.T) {
	skipIfShort(t)
	ctx := t.Context()
	began := time.Now()
	c, err := Start(ctx, Options{Nodes: 2, ExtraStages: []string{CrashLoopStage}, Logger: testr.New(t)})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("The cluster started in %s", time.Since(began).Round(time.Millisecond))
	stopped := false
	defer func() {
		if !stopped {
			if t.Failed() {
				t.Logf("Component logs:\n%s", c.LogTails(30))
			}
			_ = c.Stop()
		}
	}()

	// The kubeconfig file, not only the in-memory config, must reach the cluster.
	fileConfig, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig())
	if err != nil {
		t.Fatalf("Loading the kubeconfig: %v", err)
	}
	client := kubernetes.NewForConfigOrDie(fileConfig)

	t.Run("the nodes are Ready, untainted kwok nodes", func(t *testing.T) {
		nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes.Items) != 2 {
			t.Fatalf("Got %d nodes, want 2", len(nodes.Items))
		}
		for _, n := range nodes.Items {
			if n.Annotations[kwokNodeAnnotation] != kwokNodeValue {
				t.Errorf("Node %s lacks the kwok annotation", n.Name)
			}
			if !isNodeReady(&n) || len(n.Spec.Taints) > 0 {
				t.Errorf("Node %s: ready=%v taints=%v, want Ready and untainted", n.Name, isNodeReady(&n), n.Spec.Taints)
			}
			if got := n.Status.Allocatable.Pods().Value(); got != 110 {
				t.Errorf("Node %s holds %d pods, want 110", n.Name, got)
			}
			if len(n.Status.Addresses) != 2 {
				t.Errorf("Node %s has addresses %v, want an InternalIP and a Hostname", n.Name, n.Status.Addresses)
			}
		}
	})

	t.Run("kubectl works with the kubeconfig", func(t *testing.T) {
		kubectl, err := exec.LookPath("kubectl")
		if err != nil {
			msg := "no kubectl on PATH: run `bash hack/tools.sh kubernetes` and put the directory of " +
				"`bash hack/tools.sh path kubectl` first on PATH (make test does)"
			if os.Getenv("CI") != "" {
				t.Fatal(msg + "; CI is set, so this fails instead of skipping")
			}
			t.Skip(msg)
		}
		out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", c.Kubeconfig(), "auth", "can-i", "*", "*").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "yes" {
			t.Fatalf("kubectl auth can-i '*' '*': %v: %s", err, out)
		}
	})

	t.Run("RBAC is enforced", func(t *testing.T) {
		// A service account without bindings may not list pods.
		cfg := c.RESTConfig()
		cfg.Impersonate.UserName = "system:serviceaccount:default:default"
		_, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err == nil || !strings.Contains(err.Error(), "forbidden") {
			t.Fatalf("Listing pods as the default service account: got %v, want forbidden", err)
		}
	})

	t.Run("a Deployment gets Running pods on the kwok nodes", func(t *testing.T) {
		createDeployment(t, client, "good", "registry.local/app:good", 3)
		eventually(t, time.Minute, "3 Running, Ready pods of good", func() error {
			pods := podsOf(t, client, "good")
			if len(pods) != 3 {
				return fmt.Errorf("%d pods", len(pods))
			}
			for _, p := range pods {
				if p.Status.Phase != corev1.PodRunning || !isPodReady(&p) {
					return fmt.Errorf("pod %s is %s, ready=%v", p.Name, p.Status.Phase, isPodReady(&p))
				}
				if !strings.HasPrefix(p.Spec.NodeName, "kwok-node-") {
					return fmt.Errorf("pod %s is on node %q", p.Name, p.Spec.NodeName)
				}
			}
			return nil
		})
	})

	t.Run("with the crash-loop stage a :bad image crash-loops", func(t *testing.T) {
		createDeployment(t, client, "bad", "registry.local/app:bad", 2)
		restarts := map[string]int32{}
		eventually(t, time.Minute, "2 crash-looping pods of bad", func() error {
			pods := podsOf(t, client, "bad")
			if len(pods) != 2 {
				return fmt.Errorf("%d pods", len(pods))
			}
			for _, p := range pods {
				if err := crashLooping(&p); err != nil {
					return err
				}
				restarts[p.Name] = p.Status.ContainerStatuses[0].RestartCount
			}
			return nil
		})
		eventually(t, 30*time.Second, "the restart counts to go up", func() error {
			for _, p := range podsOf(t, client, "bad") {
				if err := crashLooping(&p); err != nil {
					return err
				}
				if got := p.Status.ContainerStatuses[0].RestartCount; got <= restarts[p.Name] {
					return fmt.Errorf("pod %s: restartCount %d, was %d", p.Name, got, restarts[p.Name])
				}
			}
			return nil
		})
		// The :good pods are untouched by the fault stages.
		for _, p := range podsOf(t, client, "good") {
			if !isPodReady(&p) || p.Status.ContainerStatuses[0].RestartCount != 0 {
				t.Errorf("Good pod %s: ready=%v restarts=%d", p.Name, isPodReady(&p), p.Status.ContainerStatuses[0].RestartCount)
			}
		}
	})

	t.Run("AddNodes adds Ready nodes", func(t *testing.T) {
		if err := c.AddNodes(ctx, 1); err != nil {
			t.Fatal(err)
		}
		nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes.Items) != 3 || !isNodeReady(&nodes.Items[2]) {
			t.Fatalf("Got %d nodes, want 3 Ready", len(nodes.Items))
		}
	})

	pids := c.Pids()
	if len(pids) != 5 {
		t.Fatalf("Got the pids %v, want the 5 components", pids)
	}
	ports := []int{c.ports.etcdClient, c.ports.etcdPeer, c.ports.apiserver, c.ports.controllerManager, c.ports.scheduler, c.ports.kwok}
	for name, port := range map[string]int{"kube-apiserver": c.ports.apiserver, "etcd": c.ports.etcdClient} {
		if portFree(port) {
			t.Errorf("The %s port %d is free while the cluster runs", name, port)
		}
	}
	dir := c.Dir()

	began = time.Now()
	stopped = true
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("The cluster stopped in %s", time.Since(began).Round(time.Millisecond))
	for name, pid := range pids {
		if processAlive(pid) {
			t.Errorf("%s (pid %d) is alive after Stop", name, pid)
		}
	}
	for _, port := range ports {
		if !portFree(port) {
			t.Errorf("Port %d is still in use after Stop", port)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("The temporary work dir %s is still there after Stop (%v)", dir, err)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("A second Stop: %v", err)
	}
}

// The helper process of TestKilledParentLeavesNoProcessBehind: it starts a cluster in the
// directory it is given, prints the components' pids and waits to be killed.
const helperEnv = "HOMEOSTAT_DEVCLUSTER_HELPER_DIR"

func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("only runs as the helper process of another test")
	}
	c, err := Start(context.Background(), Options{Dir: dir})
	if err != nil {
		fmt.Printf("ERROR %v\n", err)
		os.Exit(1)
	}
	for name, pid := range c.Pids() {
		fmt.Printf("PID %s %d\n", name, pid)
	}
	fmt.Println("READY")
	time.Sleep(10 * time.Minute)
}

func TestKilledParentLeavesNoProcessBehind(t *testing.T) {
	skipIfShort(t)
	dir := t.TempDir()
	// Should the components survive (the test failing), kill them through the pid file.
	t.Cleanup(func() { _, _ = killStale(dir) })
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pids := map[string]int{}
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		line := lines.Text()
		if line == "READY" {
			break
		}
		if strings.HasPrefix(line, "ERROR") {
			t.Fatalf("The helper failed: %s\n%s", line, tailFile(filepath.Join(dir, "logs", "kube-apiserver.log"), 20))
		}
		if f := strings.Fields(line); len(f) == 3 && f[0] == "PID" {
			pid, _ := strconv.Atoi(f[2])
			pids[f[1]] = pid
		}
	}
	if len(pids) != 5 {
		_ = cmd.Process.Kill()
		t.Fatalf("The helper reported the pids %v, want the 5 components", pids)
	}
	for name, pid := range pids {
		if !processAlive(pid) {
			t.Fatalf("%s (pid %d) is not running before the kill", name, pid)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	eventually(t, 5*time.Second, "every component to die with its parent", func() error {
		var alive []string
		for name, pid := range pids {
			if processAlive(pid) {
				alive = append(alive, fmt.Sprintf("%s (pid %d)", name, pid))
			}
		}
		if len(alive) > 0 {
			return fmt.Errorf("still alive: %v", alive)
		}
		return nil
	})

	// The killed run's pid file is still there; the next Start in the directory finds
	// nothing to kill, starts and cleans up.
	if _, err := readPidFile(dir); err != nil {
		t.Fatal(err)
	}
	c := StartForTest(t, Options{Dir: dir})
	for name, pid := range c.Pids() {
		if pids[name] == pid {
			t.Errorf("%s kept pid %d across runs", name, pid)
		}
	}
}

func TestSecondStartInALockedDirFails(t *testing.T) {
	dir := t.TempDir()
	first, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Close() }()
	if _, err := lockDir(dir); err == nil || !strings.Contains(err.Error(), "already running, in process "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("Locking a locked dir: got %v, want an error naming this process", err)
	}
	c := &Cluster{opts: Options{Dir: dir}.withDefaults()}
	c.log = c.opts.Logger
	if err := c.prepareDir(); err == nil {
		t.Fatal("prepareDir succeeded in a dir another cluster holds")
	}
	_ = first.Close()
	if err := c.prepareDir(); err != nil {
		t.Fatalf("prepareDir after the lock was released: %v", err)
	}
	_ = c.lock.Close()
}

func TestKillStaleKillsOnlyComponentsOfTheDir(t *testing.T) {
	dir := t.TempDir()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	// A stand-in for a component left behind: started without a parent-death signal, its
	// command line names the dir. The ": dir" after the sleep keeps sh from exec'ing it.
	stale := exec.Command(sh, "-c", "sleep 600; : "+dir)
	// An unrelated process whose pid might have been reused: no mention of the dir.
	unrelated := exec.Command(sh, "-c", "sleep 600; : elsewhere")
	for _, cmd := range []*exec.Cmd{stale, unrelated} {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = cmd.Wait() }()
		t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	}
	pidFile := fmt.Sprintf("etcd %d %s\nkube-apiserver %d %s\n", stale.Process.Pid, sh, unrelated.Process.Pid, sh)
	if err := os.WriteFile(filepath.Join(dir, pidFileName), []byte(pidFile), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the stand-ins to run sh", func() error {
		for _, cmd := range []*exec.Cmd{stale, unrelated} {
			if !processAlive(cmd.Process.Pid) {
				return fmt.Errorf("pid %d not running", cmd.Process.Pid)
			}
		}
		return nil
	})

	killed, err := killStale(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(killed) != 1 || !strings.HasPrefix(killed[0], "etcd ") {
		t.Errorf("Killed %v, want only the etcd stand-in", killed)
	}
	if processAlive(stale.Process.Pid) {
		t.Error("The stale component is alive")
	}
	if !processAlive(unrelated.Process.Pid) {
		t.Error("The unrelated process was killed")
	}
	if _, err := os.Stat(filepath.Join(dir, pidFileName)); !os.IsNotExist(err) {
		t.Errorf("The pid file is still there: %v", err)
	}
}

func TestUnnamedStartRemovesTheDirsOfKilledRuns(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	mkdir := func(name string, pidFile bool) string {
		dir := filepath.Join(tmp, tempDirPrefix+name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if pidFile {
			// A pid that cannot be a component of this dir: this test process runs go test.
			line := fmt.Sprintf("etcd %d /nonexistent/etcd\n", os.Getpid())
			if err := os.WriteFile(filepath.Join(dir, pidFileName), []byte(line), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	killed := mkdir("killed", true)   // its process died: the pid file is left, the lock free
	stopped := mkdir("kept", false)   // stopped with KeepDir: no pid file
	running := mkdir("running", true) // another process runs it: locked
	lock, err := lockDir(running)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Close() }()

	reapOrphans(testr.New(t))

	if fileExists(killed) {
		t.Error("The dir of the killed run is still there")
	}
	if !fileExists(stopped) || !fileExists(running) {
		t.Error("A kept or running cluster's dir was removed")
	}
}

func TestPrefixWriterPrefixesEveryLine(t *testing.T) {
	var b strings.Builder
	w := &prefixWriter{prefix: "[etcd] ", w: &b}
	for _, s := range []string{"one\ntw", "o\n", "three\nfour"} {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if want := "[etcd] one\n[etcd] two\n[etcd] three\n"; b.String() != want {
		t.Errorf("Got %q, want %q", b.String(), want)
	}
}

func TestKwokConfigPutsDefaultStagesBeforeExtraOnes(t *testing.T) {
	conf, err := kwokConfig("127.0.0.1:1234", []string{CrashLoopStage})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, doc := range strings.Split(string(conf), "\n---\n")[1:] {
		stages, err := splitStages(doc)
		if err != nil || len(stages) != 1 {
			t.Fatalf("Document %q: %v", doc, err)
		}
		names = append(names, stages[0].name)
	}
	want := []string{
		"node-initialize", "node-heartbeat-with-lease", "pod-ready", "pod-complete", "pod-delete",
		"homeostat-pod-bad-image-crashloop", "homeostat-pod-bad-image-restart", "homeostat-pod-bad-image-failed",
	}
	if !slices.Equal(names, want) {
		t.Errorf("Stages %v, want %v", names, want)
	}
	if !strings.Contains(strings.Split(string(conf), "\n---\n")[0], "serverAddress: 127.0.0.1:1234") {
		t.Errorf("The KwokConfiguration lacks the server address:\n%s", conf)
	}
}

func TestKwokConfigRejectsBadStages(t *testing.T) {
	for name, extra := range map[string]string{
		"not a Stage":       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
		"no name":           "apiVersion: kwok.x-k8s.io/v1alpha1\nkind: Stage\nspec: {}\n",
		"a default's name":  "apiVersion: kwok.x-k8s.io/v1alpha1\nkind: Stage\nmetadata: {name: pod-ready}\n",
		"not YAML":          "apiVersion: [\n",
		"twice in one file": "apiVersion: kwok.x-k8s.io/v1alpha1\nkind: Stage\nmetadata: {name: a}\n---\napiVersion: kwok.x-k8s.io/v1alpha1\nkind: Stage\nmetadata: {name: a}\n",
	} {
		if _, err := kwokConfig("127.0.0.1:1", []string{extra}); err == nil {
			t.Errorf("%s: kwokConfig accepted %q", name, extra)
		}
	}
}

func TestPodCIDRHoldsThePodsOfTheNode(t *testing.T) {
	for _, tc := range []struct {
		node, pods int
		want       string
	}{
		{0, 110, "10.128.0.0/24"},
		{1, 110, "10.128.1.0/24"},
		{300, 110, "10.129.44.0/24"},
		{0, 254, "10.128.0.0/24"},
		{1, 255, "10.128.2.0/23"},
		{2, 1000, "10.128.8.0/22"},
	} {
		if got := podCIDR(tc.node, tc.pods); got != tc.want {
			t.Errorf("podCIDR(%d, %d) = %s, want %s", tc.node, tc.pods, got, tc.want)
		}
	}
}

func TestNodesForPlansANodePer100Pods(t *testing.T) {
	for pods, want := range map[int]int{0: 1, 1: 1, 100: 1, 101: 2, 3000: 30} {
		if got := NodesFor(pods); got != want {
			t.Errorf("NodesFor(%d) = %d, want %d", pods, got, want)
		}
	}
}

func TestOptionsAreValidated(t *testing.T) {
	for name, o := range map[string]Options{
		"a path as name":     {Name: "../x"},
		"negative nodes":     {Nodes: -1},
		"too many pods":      {PodsPerNode: 1 << 20},
		"a tiny grace":       {NodeMonitorGracePeriod: time.Millisecond},
		"upper-case in name": {Name: "Homeostat"},
	} {
		if err := o.withDefaults().validate(); err == nil {
			t.Errorf("%s: %+v passed validation", name, o)
		}
	}
	if err := (Options{Name: "homeostat"}).withDefaults().validate(); err != nil {
		t.Errorf("The default options with a name: %v", err)
	}
}

func createDeployment(t *testing.T, client kubernetes.Interface, name, image string, replicas int32) {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
	if _, err := client.AppsV1().Deployments(d.Namespace).Create(t.Context(), d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("Creating deployment %s: %v", name, err)
	}
}

func podsOf(t *testing.T, client kubernetes.Interface, app string) []corev1.Pod {
	t.Helper()
	pods, err := client.CoreV1().Pods(metav1.NamespaceDefault).List(t.Context(), metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		t.Fatalf("Listing the pods of %s: %v", app, err)
	}
	return pods.Items
}

// crashLooping checks that the pod's one container is as the kubelet reports a crash loop.
func crashLooping(p *corev1.Pod) error {
	if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != 1 {
		return fmt.Errorf("pod %s is %s with %d container statuses", p.Name, p.Status.Phase, len(p.Status.ContainerStatuses))
	}
	cs := p.Status.ContainerStatuses[0]
	if cs.State.Waiting == nil || cs.State.Waiting.Reason != "CrashLoopBackOff" || cs.Ready || cs.RestartCount < 1 {
		return fmt.Errorf("pod %s: state %+v, ready %v, restarts %d", p.Name, cs.State, cs.Ready, cs.RestartCount)
	}
	if cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 {
		return fmt.Errorf("pod %s: last state %+v, want terminated with exit code 1", p.Name, cs.LastTerminationState)
	}
	if isPodReady(p) {
		return fmt.Errorf("pod %s is Ready", p.Name)
	}
	return nil
}

func isPodReady(p *corev1.Pod) bool {
	return slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
		return c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
	})
}

func isNodeReady(n *corev1.Node) bool {
	return slices.ContainsFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool {
		return c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
	})
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}
