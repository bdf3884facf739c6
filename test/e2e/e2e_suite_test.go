// Package e2e runs Homeostat against a real local control plane (etcd, kube-apiserver,
// controller-manager, scheduler) with kwok nodes, started by internal/devcluster. The
// manager runs as its own process, built from main.go, so tests can kill and restart it.
package e2e

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/devcluster"
	"github.com/homeostat-dev/homeostat/internal/egress/egresstest"
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Homeostat e2e on the local control plane")
}

// externalKubeconfigEnv names a kubeconfig of a cluster to run the suite against instead
// of the local control plane (make test-e2e-kind sets it to a kind cluster's). The specs
// labelled kwok need the local control plane (its kwok stages fake a kubelet's faults,
// and its nodes can be added and made NotReady) and skip there.
const externalKubeconfigEnv = "HOMEOSTAT_E2E_KUBECONFIG"

var (
	// cluster is the local control plane; nil on an external cluster.
	cluster *devcluster.Cluster
	// kubeconfigPath, restConfig and workDir (logs, kubeconfigs) are the cluster's,
	// local or external.
	kubeconfigPath string
	restConfig     *rest.Config
	workDir        string
	k8s            client.Client
	clientset      *kubernetes.Clientset
	scheme         = runtime.NewScheme()
	mgr            *managerProcess
	repoRoot       string
)

var _ = BeforeSuite(func() {
	// controller-runtime's clients log (an API server's warning, say) to its global
	// logger; a client made later without one prints a complaint instead.
	ctrllog.SetLogger(GinkgoLogr)
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	var err error
	repoRoot, err = filepath.Abs("../..")
	Expect(err).NotTo(HaveOccurred())

	By("building the manager")
	bin := filepath.Join(GinkgoT().TempDir(), "manager")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir, build.Stdout, build.Stderr = repoRoot, GinkgoWriter, GinkgoWriter
	Expect(build.Run()).To(Succeed())

	crds := filepath.Join(repoRoot, "config", "crd", "bases")
	if kc := os.Getenv(externalKubeconfigEnv); kc != "" {
		By("using the cluster of " + externalKubeconfigEnv + "; the specs labelled kwok skip")
		kubeconfigPath = kc
		restConfig, err = clientcmd.BuildConfigFromFlags("", kc)
		Expect(err).NotTo(HaveOccurred())
		workDir, err = os.MkdirTemp("", "homeostat-e2e-")
		Expect(err).NotTo(HaveOccurred())
		_, err = envtest.InstallCRDs(restConfig, envtest.CRDInstallOptions{Paths: []string{crds}, ErrorIfPathMissing: true})
		Expect(err).NotTo(HaveOccurred())
	} else {
		By("starting the local control plane with kwok nodes")
		log := funcr.New(func(prefix, args string) { fmt.Fprintln(GinkgoWriter, prefix, args) }, funcr.Options{})
		cluster, err = devcluster.Start(context.Background(), devcluster.Options{
			Nodes: 2, ExtraStages: []string{devcluster.CrashLoopStage}, Logger: log,
		})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { Expect(cluster.Stop()).To(Succeed()) })
		Expect(cluster.InstallCRDs(context.Background(), crds)).To(Succeed())
		kubeconfigPath, restConfig, workDir = cluster.Kubeconfig(), cluster.RESTConfig(), cluster.Dir()
	}

	k8s, err = client.New(restConfig, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	clientset, err = kubernetes.NewForConfig(restConfig)
	Expect(err).NotTo(HaveOccurred())

	By("creating the manager's ServiceAccount and the RBAC of config/rbac")
	managerKubeconfig, err := installManagerIdentity(context.Background(), workDir)
	Expect(err).NotTo(HaveOccurred())

	By("starting the manager as that ServiceAccount")
	mgr = &managerProcess{bin: bin, kubeconfig: managerKubeconfig, logPath: filepath.Join(workDir, "manager.log")}
	Expect(mgr.start(nil)).To(Succeed())
	DeferCleanup(func() {
		mgr.stop()
		// Least privilege, proved: every spec ran with config/rbac's permissions and none
		// was refused. (Checked after the specs, from the logs of every manager run.)
		logs, _ := filepath.Glob(filepath.Join(workDir, "manager*.log"))
		for _, l := range logs {
			Expect(forbiddenInLog(l)).To(BeEmpty(), "the API server refused the manager (%s) something its RBAC lacks; add a +kubebuilder:rbac marker with a reason in config/rbac_test.go", l)
		}
	})
})

// Specs labelled kwok skip on an external cluster.
var _ = BeforeEach(func() {
	if cluster == nil && slices.Contains(CurrentSpecReport().Labels(), "kwok") {
		Skip("needs the local control plane: kwok stages and nodes")
	}
})

var _ = ReportAfterEach(func(r SpecReport) {
	if r.Failed() && mgr != nil {
		AddReportEntry("manager log (tail)", mgr.tail(120))
	}
})

// e2eUncordonAfter is the e2e manager's --node-uncordon-after.
const e2eUncordonAfter = 15 * time.Second

// managerProcess runs the manager binary against the cluster.
type managerProcess struct {
	bin, kubeconfig, logPath string
	metricsAddr              string
	// extraArgs are appended to the manager's flags at its next start. A flag given
	// twice takes its last value, so they override the suite's (the tenancy specs'
	// manager allows less egress).
	extraArgs []string
	// metricsHost is the loopback address the metrics endpoint listens on; default
	// 127.0.0.1.
	metricsHost string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error
}

func (m *managerProcess) start(extraEnv []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	host := cmp.Or(m.metricsHost, "127.0.0.1")
	port, err := freePortOn(host)
	if err != nil {
		return err
	}
	m.metricsAddr = net.JoinHostPort(host, strconv.Itoa(port))
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	// The specs' HTTP sensors, webhooks and Prometheus listen on loopback, which the
	// egress policy refuses unless allowed; the manager's own ports stay refused. Node
	// actions run from every namespace (the default, said out loud), and a node the
	// specs' kubelets bring back is uncordoned after a window short enough to watch.
	args := []string{"--kubeconfig", m.kubeconfig, "--enable-webhooks=false",
		"--metrics-bind-address", m.metricsAddr, "--metrics-secure=false",
		"--health-probe-bind-address", "0", "--zap-log-level", "info",
		"--egress-allow-cidrs", egresstest.LoopbackCIDRs,
		"--node-actions-namespaces=*", "--node-uncordon-after", e2eUncordonAfter.String()}
	cmd := exec.Command(m.bin, append(args, m.extraArgs...)...)
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	m.cmd, m.done = cmd, make(chan error, 1)
	go func() { m.done <- cmd.Wait(); logf.Close() }()
	return nil
}

// stop ends the manager with SIGTERM (a graceful shutdown), then SIGKILL.
func (m *managerProcess) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(20 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
	m.cmd = nil
}

// kill ends the manager with SIGKILL, as a crash would: no graceful shutdown, nothing
// finished or flushed.
func (m *managerProcess) kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.done
	m.cmd = nil
}

// running reports whether the manager was started and has not been stopped or seen to
// exit.
func (m *managerProcess) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd != nil
}

// wait waits for the manager to exit by itself and returns its exit code.
func (m *managerProcess) wait(timeout time.Duration) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case err := <-m.done:
		m.cmd = nil
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), nil
		}
		return 0, err
	case <-time.After(timeout):
		return -1, fmt.Errorf("the manager did not exit within %s", timeout)
	}
}

func (m *managerProcess) tail(n int) string {
	f, err := os.Open(m.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// metrics scrapes the manager's metrics endpoint (plain HTTP on loopback in tests).
func (m *managerProcess) metrics() (string, error) {
	resp, err := http.Get("http://" + m.metricsAddr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func freePort() (int, error) { return freePortOn("127.0.0.1") }

// freePortOn is a port free on a loopback address.
func freePortOn(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
