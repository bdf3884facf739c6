package devcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Options say what cluster Start makes. The zero value is a one-node cluster in a fresh
// temporary directory.
type Options struct {
	// Name names the cluster. A named cluster works in $HOMEOSTAT_CACHE/clusters/<name>
	// (default ~/.cache/homeostat/clusters/<name>): its kubeconfig path stays the same from
	// one run to the next, only one process at a time can run it, and whatever a killed
	// run left behind is killed by the next Start of that name. Lower-case letters, digits
	// and dashes. Unnamed clusters work in a new temporary directory that Stop removes.
	Name string
	// Dir is the work directory, instead of the one Name implies. It is kept after Stop.
	Dir string
	// Nodes is the number of kwok nodes. Default 1; NodesFor says how many a load needs.
	Nodes int
	// PodsPerNode is the pod capacity of every node. Default 110, the kubelet's.
	PodsPerNode int
	// DisableQPSLimits lifts the client rate limits of the controller manager and the
	// scheduler and the apiserver's in-flight limits and priority and fairness, for scale
	// benchmarks; RESTConfig then has no client-side rate limit either.
	DisableQPSLimits bool
	// ExtraStages are kwok Stage documents (YAML, several per string allowed) added to
	// kwok's default node and pod stages: faults such as CrashLoopStage. A stage with a
	// weight above zero wins over the defaults, whose weight is zero.
	ExtraStages []string
	// NodeMonitorGracePeriod is how long the node lifecycle controller waits for a node's
	// heartbeat before it marks the node NotReady. Default 40s, as kwokctl.
	NodeMonitorGracePeriod time.Duration
	// Log, when set, receives the output of every component, each line prefixed with the
	// component's name. The output always goes to <dir>/logs/<component>.log too.
	Log io.Writer
	// Logger receives progress messages. Default: none.
	Logger logr.Logger
	// Binaries are the executables to run; FindBinaries fills in the empty ones.
	Binaries Binaries
	// KeepDir keeps a temporary work directory after Stop, to read the logs.
	KeepDir bool
}

// startTimeout bounds the wait for a started cluster to become ready.
const startTimeout = 2 * time.Minute

var namePattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

func (o Options) withDefaults() Options {
	if o.Nodes == 0 {
		o.Nodes = 1
	}
	if o.PodsPerNode == 0 {
		o.PodsPerNode = 110
	}
	if o.NodeMonitorGracePeriod == 0 {
		o.NodeMonitorGracePeriod = 40 * time.Second
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	return o
}

func (o Options) validate() error {
	var errs []error
	if o.Name != "" && !namePattern.MatchString(o.Name) {
		errs = append(errs, fmt.Errorf("name %q: use lower-case letters, digits and dashes", o.Name))
	}
	if o.Nodes < 0 {
		errs = append(errs, fmt.Errorf("nodes must not be negative, got %d", o.Nodes))
	}
	if o.PodsPerNode < 1 || o.PodsPerNode > 1<<16 {
		errs = append(errs, fmt.Errorf("pods per node must be between 1 and 65536, got %d", o.PodsPerNode))
	}
	if o.NodeMonitorGracePeriod < time.Second {
		errs = append(errs, fmt.Errorf("node monitor grace period must be at least 1s, got %s", o.NodeMonitorGracePeriod))
	}
	return errors.Join(errs...)
}

// Cluster is a running local control plane with kwok nodes.
type Cluster struct {
	opts      Options
	log       logr.Logger
	bins      Binaries
	dir       string
	removeDir bool     // the dir is temporary: Stop removes it
	lock      *os.File // holds an exclusive flock on <dir>/lock while the cluster runs

	ports      clusterPorts
	pki        *pki
	restConfig *rest.Config
	client     kubernetes.Interface
	health     *http.Client // trusts the cluster's CA, for the components' health endpoints

	procsMu sync.Mutex
	procs   []*process

	nodesMu sync.Mutex
	nodes   int

	stopOnce sync.Once
	stopErr  error
}

type clusterPorts struct {
	etcdClient, etcdPeer, apiserver, controllerManager, scheduler, kwok int
}

// Start starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the kwok
// controller as child processes, creates the kwok nodes and returns once the cluster can be
// used: the apiserver is ready, every component is healthy, the default ServiceAccount
// exists and every node is Ready and untainted. The cluster is new: nothing of an earlier
// run in the same directory survives. Stop it with Stop; its processes also die with the
// calling process, however that ends.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	began := time.Now()
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("invalid cluster options: %w", err)
	}
	bins, err := FindBinaries(ctx, opts.Binaries)
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, log: opts.Logger, bins: bins}
	if err := c.prepareDir(); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		err = c.start(ctx)
		if err == nil {
			break
		}
		c.stopProcesses()
		if errors.Is(err, errPortInUse) && attempt < 3 && ctx.Err() == nil {
			c.log.Info("Retrying the start with other ports", "reason", err.Error())
			continue
		}
		_ = c.Stop()
		return nil, fmt.Errorf("starting the cluster in %s: %w", c.dir, err)
	}
	c.log.Info("Cluster is ready", "kubeconfig", c.Kubeconfig(), "nodes", opts.Nodes,
		"took", time.Since(began).Round(time.Millisecond).String())
	return c, nil
}

// tempDirPrefix names the work directories of unnamed clusters.
const tempDirPrefix = "homeostat-devcluster-"

// prepareDir creates and locks the work directory and kills what an earlier run there
// left behind.
func (c *Cluster) prepareDir() error {
	dir := c.opts.Dir
	switch {
	case dir != "":
	case c.opts.Name != "":
		cache, err := CacheDir()
		if err != nil {
			return err
		}
		dir = filepath.Join(cache, "clusters", c.opts.Name)
	default:
		reapOrphans(c.log)
		tmp, err := os.MkdirTemp("", tempDirPrefix)
		if err != nil {
			return err
		}
		dir, c.removeDir = tmp, true
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	c.dir = dir
	lock, err := lockDir(dir)
	if err != nil {
		return err
	}
	c.lock = lock
	killed, err := killStale(dir)
	if len(killed) > 0 {
		c.log.Info("Killed processes an earlier run left behind", "dir", dir, "processes", killed)
	}
	if err != nil {
		_ = lock.Close()
		return err
	}
	return nil
}

// lockDir takes an exclusive lock of dir for this process. The kernel drops the lock when
// the process dies, however it dies, so a lock that can be taken means that no live
// process runs a cluster in dir.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("the cluster in %s is already running, in process %s", dir, strings.TrimSpace(string(owner)))
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// reapOrphans removes the temporary work directories of unnamed clusters whose process was
// killed: their lock is free and their pid file is still there (Stop removes it). It kills
// any component of theirs that is still alive.
func reapOrphans(log logr.Logger) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempDirPrefix+"*"))
	for _, dir := range dirs {
		if !fileExists(filepath.Join(dir, pidFileName)) {
			continue
		}
		lock, err := lockDir(dir)
		if err != nil {
			continue // running
		}
		killed, err := killStale(dir)
		if err == nil {
			err = os.RemoveAll(dir)
		}
		_ = lock.Close()
		log.V(1).Info("Removed the work directory of a killed cluster", "dir", dir, "killed", killed, "err", err)
	}
}

// CacheDir is Homeostat's cache: $HOMEOSTAT_CACHE, or homeostat in the user's cache
// directory ($XDG_CACHE_HOME or ~/.cache), as hack/tools.sh has it.
func CacheDir() (string, error) {
	if d := os.Getenv("HOMEOSTAT_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "homeostat"), nil
}

// start runs one attempt at starting the cluster in the prepared work directory.
func (c *Cluster) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()

	for _, sub := range []string{"etcd", "pki", "logs"} {
		if err := os.RemoveAll(filepath.Join(c.dir, sub)); err != nil {
			return err
		}
	}
	pk, err := newPKI(filepath.Join(c.dir, "pki"))
	if err != nil {
		return fmt.Errorf("creating certificates: %w", err)
	}
	c.pki = pk
	ports, err := freePorts(6)
	if err != nil {
		return err
	}
	c.ports = clusterPorts{
		etcdClient: ports[0], etcdPeer: ports[1], apiserver: ports[2],
		controllerManager: ports[3], scheduler: ports[4], kwok: ports[5],
	}
	server := "https://127.0.0.1:" + strconv.Itoa(c.ports.apiserver)

	if err := writeKubeconfig(pk.kubeconfig(server, c.contextName(), "admin"), c.Kubeconfig()); err != nil {
		return err
	}
	kubeconfigs := map[string]string{}
	for component, userName := range map[string]string{
		"controller-manager": "system:kube-controller-manager",
		"scheduler":          "system:kube-scheduler",
		"kwok":               "kwok-controller",
	} {
		path := filepath.Join(pk.dir, component+".kubeconfig")
		if err := writeKubeconfig(pk.kubeconfig(server, component, userName), path); err != nil {
			return err
		}
		kubeconfigs[component] = path
	}
	schedulerConfigPath := filepath.Join(c.dir, "scheduler.yaml")
	if err := os.WriteFile(schedulerConfigPath, []byte(schedulerConfig(kubeconfigs["scheduler"], c.opts.DisableQPSLimits)), 0o644); err != nil {
		return err
	}
	kwokConf, err := kwokConfig("127.0.0.1:"+strconv.Itoa(c.ports.kwok), c.opts.ExtraStages)
	if err != nil {
		return fmt.Errorf("kwok stages: %w", err)
	}
	kwokConfigPath := filepath.Join(c.dir, "kwok.yaml")
	if err := os.WriteFile(kwokConfigPath, kwokConf, 0o644); err != nil {
		return err
	}

	c.restConfig = pk.restConfig(server, "admin")
	c.restConfig.QPS, c.restConfig.Burst = clientQPS, clientBurst
	if c.opts.DisableQPSLimits {
		c.restConfig.QPS = -1 // no client-side rate limit
	}
	if c.client, err = kubernetes.NewForConfig(c.restConfig); err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pk.ca.certPEM)
	c.health = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}

	c.log.Info("Starting etcd and kube-apiserver", "dir", c.dir)
	if err := c.launch("etcd", c.bins.Etcd, etcdArgs(c.dir, c.ports), nil); err != nil {
		return err
	}
	if err := c.launch("kube-apiserver", c.bins.KubeAPIServer, apiserverArgs(c.dir, c.ports, pk, c.opts.DisableQPSLimits), nil); err != nil {
		return err
	}
	if err := c.waitFor(ctx, "kube-apiserver to be ready", func(ctx context.Context) error {
		_, err := c.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	}); err != nil {
		return err
	}

	c.log.Info("Starting kube-controller-manager, kube-scheduler and kwok", "nodes", c.opts.Nodes)
	if err := c.launch("kube-controller-manager", c.bins.KubeControllerManager,
		controllerManagerArgs(c.dir, c.ports, pk, kubeconfigs["controller-manager"], c.opts), nil); err != nil {
		return err
	}
	if err := c.launch("kube-scheduler", c.bins.KubeScheduler,
		schedulerArgs(c.ports, pk, kubeconfigs["scheduler"], schedulerConfigPath), nil); err != nil {
		return err
	}
	// KWOK_WORKDIR keeps kwok from reading the user's ~/.kwok/kwok.yaml.
	if err := c.launch("kwok", c.bins.Kwok, kwokArgs(kubeconfigs["kwok"], kwokConfigPath),
		[]string{"KWOK_WORKDIR=" + filepath.Join(c.dir, "kwok")}); err != nil {
		return err
	}
	c.nodes = 0
	if err := c.createNodes(ctx, c.opts.Nodes); err != nil {
		return err
	}
	checks := []struct {
		what  string
		check func(context.Context) error
	}{
		{"kube-controller-manager to be healthy", c.healthy("https", c.ports.controllerManager, "/healthz")},
		{"kube-scheduler to be ready", c.healthy("https", c.ports.scheduler, "/readyz")},
		{"kwok to be healthy", c.healthy("http", c.ports.kwok, "/healthz")},
		{"the default ServiceAccount", func(ctx context.Context) error {
			_, err := c.client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
			return err
		}},
		{"the nodes to be Ready", func(ctx context.Context) error { return c.nodesReady(ctx, 0, c.opts.Nodes) }},
	}
	for _, ch := range checks {
		if err := c.waitFor(ctx, ch.what, ch.check); err != nil {
			return err
		}
	}
	return nil
}

// StartComponent starts a process that belongs to the cluster beside its components
// (make run's Prometheus): like them it runs in the work directory, logs to
// logs/<name>.log (and to Options.Log), is recorded in the pid file, dies with this
// process and is stopped by Stop. Its arguments must name the work directory (a path
// under Dir), so that the next Start recognizes it if a killed run left it behind.
func (c *Cluster) StartComponent(name, binary string, args []string) error {
	if !slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, c.dir) }) {
		return fmt.Errorf("the arguments of %s name no path under %s: the next start could not tell it from another process", name, c.dir)
	}
	return c.launch(name, binary, args, nil)
}

// WaitFor polls check, every 50ms with 2s for each call, until it succeeds, ctx ends or
// a process of the cluster exits; the error of an exit ends with the process's log.
func (c *Cluster) WaitFor(ctx context.Context, what string, check func(context.Context) error) error {
	return c.waitFor(ctx, what, check)
}

// launch starts a component and records it in the pid file.
func (c *Cluster) launch(name, binary string, args, env []string) error {
	p, err := startProcess(c.dir, name, binary, args, env, c.opts.Log)
	if err != nil {
		return err
	}
	c.procsMu.Lock()
	defer c.procsMu.Unlock()
	c.procs = append(c.procs, p)
	return writePidFile(c.dir, c.procs)
}

// healthy returns a check of a component's health endpoint on loopback.
func (c *Cluster) healthy(scheme string, port int, path string) func(context.Context) error {
	url := scheme + "://127.0.0.1:" + strconv.Itoa(port) + path
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.health.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
		}
		return nil
	}
}

// waitFor polls check until it succeeds. It fails at once when a component exits.
func (c *Cluster) waitFor(ctx context.Context, what string, check func(context.Context) error) error {
	began := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if p := c.exitedProcess(); p != nil {
			return fmt.Errorf("waiting for %s: %w", what, p.exitError())
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := check(cctx)
		cancel()
		if err == nil {
			c.log.V(1).Info("Done waiting", "for", what, "took", time.Since(began).Round(time.Millisecond).String())
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w; last error: %v", what, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

func (c *Cluster) exitedProcess() *process {
	c.procsMu.Lock()
	defer c.procsMu.Unlock()
	for _, p := range c.procs {
		if p.exited() {
			return p
		}
	}
	return nil
}

// createNodes creates n more kwok nodes.
func (c *Cluster) createNodes(ctx context.Context, n int) error {
	c.nodesMu.Lock()
	defer c.nodesMu.Unlock()
	for i := c.nodes; i < c.nodes+n; i++ {
		_, err := c.client.CoreV1().Nodes().Create(ctx, newNode(i, c.opts.PodsPerNode), metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating node %s: %w", nodeName(i), err)
		}
	}
	c.nodes += n
	return nil
}

// nodesReady checks that the nodes from index first on, n of them, are Ready and carry no
// taint: kwok has taken them over and the node lifecycle controller has seen it.
func (c *Cluster) nodesReady(ctx context.Context, first, n int) error {
	for i := first; i < first+n; i++ {
		node, err := c.client.CoreV1().Nodes().Get(ctx, nodeName(i), metav1.GetOptions{})
		if err != nil {
			return err
		}
		ready := slices.ContainsFunc(node.Status.Conditions, func(c corev1.NodeCondition) bool {
			return c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
		})
		if !ready {
			return fmt.Errorf("node %s is not Ready", node.Name)
		}
		if len(node.Spec.Taints) > 0 {
			return fmt.Errorf("node %s is tainted %s", node.Name, node.Spec.Taints[0].ToString())
		}
	}
	return nil
}

// AddNodes adds n kwok nodes and waits until they are Ready.
func (c *Cluster) AddNodes(ctx context.Context, n int) error {
	c.nodesMu.Lock()
	first := c.nodes
	c.nodesMu.Unlock()
	if err := c.createNodes(ctx, n); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	return c.waitFor(ctx, fmt.Sprintf("%d new nodes to be Ready", n), func(ctx context.Context) error {
		return c.nodesReady(ctx, first, n)
	})
}

// Stop stops every component (SIGTERM, then SIGKILL after a grace period) and waits until
// they are gone. A temporary work directory is removed. Stop can be called more than once
// and from a deferred call after a failure; it returns the first call's result.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		began := time.Now()
		c.stopProcesses()
		var errs []error
		if err := os.Remove(filepath.Join(c.dir, pidFileName)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		if c.lock != nil {
			errs = append(errs, c.lock.Close())
		}
		if c.removeDir && !c.opts.KeepDir {
			errs = append(errs, os.RemoveAll(c.dir))
		}
		c.stopErr = errors.Join(errs...)
		c.log.Info("Stopped the cluster", "dir", c.dir, "took", time.Since(began).Round(time.Millisecond).String())
	})
	return c.stopErr
}

func (c *Cluster) stopProcesses() {
	c.procsMu.Lock()
	procs := c.procs
	c.procs = nil
	c.procsMu.Unlock()
	stopAll(procs)
}

func (c *Cluster) contextName() string {
	if c.opts.Name != "" {
		return "homeostat-" + c.opts.Name
	}
	return "homeostat-devcluster"
}

// Kubeconfig returns the path of the cluster's kubeconfig: a cluster admin (user admin in
// group system:masters) with certificates embedded, for kubectl or any client.
func (c *Cluster) Kubeconfig() string { return filepath.Join(c.dir, "kubeconfig") }

// WriteKubeconfig writes a copy of the kubeconfig to path.
func (c *Cluster) WriteKubeconfig(path string) error {
	return writeKubeconfig(c.pki.kubeconfig(c.restConfig.Host, c.contextName(), "admin"), path)
}

// The client rate limit of RESTConfig: a test that creates a hundred objects should not
// wait on client-go's default of 5 a second.
const (
	clientQPS   = 100
	clientBurst = 200
)

// RESTConfig returns a new client configuration of the cluster admin, rate-limited to 100
// requests a second (burst 200), or not at all with DisableQPSLimits.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.restConfig) }

// Dir returns the work directory: logs/<component>.log, the pid file, pki, etcd's data.
func (c *Cluster) Dir() string { return c.dir }

// Pids returns the process id of every running component by name (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kwok), to measure them.
func (c *Cluster) Pids() map[string]int {
	c.procsMu.Lock()
	defer c.procsMu.Unlock()
	out := map[string]int{}
	for _, p := range c.procs {
		out[p.name] = p.pid()
	}
	return out
}

// LogTails returns the last n lines of every component's log, for a failure report.
func (c *Cluster) LogTails(n int) string {
	names := []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
	c.procsMu.Lock()
	for _, p := range c.procs {
		if !slices.Contains(names, p.name) {
			names = append(names, p.name) // one StartComponent started
		}
	}
	c.procsMu.Unlock()
	var b strings.Builder
	for _, name := range names {
		path := filepath.Join(c.dir, "logs", name+".log")
		if tail := tailFile(path, n); tail != "" {
			fmt.Fprintf(&b, "==> %s <==\n%s\n", path, tail)
		}
	}
	return b.String()
}
