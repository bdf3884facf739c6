package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// The manager that config/lockdown deploys, run here as a process: the args and the
// environment of its rendered Deployment, with only what a process outside a pod needs
// changed (a kubeconfig of config/default's ServiceAccount instead of the in-cluster
// config, its listeners on loopback, the namespace the downward API would give it). The
// tenant namespace gets what config/lockdown/tenant gives one.
var _ = Describe("config/lockdown", Label("tenancy", "kwok"), func() {
	ctx := context.Background()

	It("runs the manager it deploys: an app acts with the rights of its namespace's homeostat-tenant, reaches no loopback, and one in a namespace without that ServiceAccount waits", func() {
		By("standing the suite's manager down, so only this one acts")
		mgr.stop()
		DeferCleanup(func() { Expect(mgr.start(nil)).To(Succeed()) })

		By("rendering config/lockdown")
		var d *appsv1.Deployment
		for _, o := range kustomize(filepath.Join("config", "lockdown")) {
			if o.GetKind() == "Deployment" {
				d = &appsv1.Deployment{}
				Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, d)).To(Succeed())
			}
		}
		Expect(d).NotTo(BeNil(), "config/lockdown renders the manager's Deployment")
		c := d.Spec.Template.Spec.Containers[0]
		Expect(c.Args).To(ContainElements("--default-service-account=homeostat-tenant", "--egress-max-timeout=10s",
			"--egress-max-response-bytes=262144", "--storm-min-namespaces=2", "--object-sensor-cluster-kinds=",
			"--node-actions-namespaces=", "--max-nodes-per-action=1", "--max-unavailable-nodes=10%"))
		Expect(slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--egress-allow-cidrs") })).To(BeFalse())

		probePort, err := freePort()
		Expect(err).NotTo(HaveOccurred())
		metricsPort, err := freePort()
		Expect(err).NotTo(HaveOccurred())
		// Flags given twice take their last value: these override the Deployment's
		// listeners on every address (:8081, :8443), which a shared machine must not open.
		args := slices.Concat(c.Args, []string{
			"--kubeconfig", mgr.kubeconfig,
			fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probePort),
			fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metricsPort),
			"--leader-election-namespace=" + managerNamespace,
		})
		logf("config/lockdown's manager runs with %q", args)
		logPath := filepath.Join(workDir, "manager-lockdown.log")
		logFile, err := os.Create(logPath)
		Expect(err).NotTo(HaveOccurred())
		cmd := exec.Command(mgr.bin, args...)
		cmd.Env = append(os.Environ(), "POD_NAMESPACE="+managerNamespace)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		Expect(cmd.Start()).To(Succeed())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait(); _ = logFile.Close() }()
		DeferCleanup(func() {
			// SIGTERM releases the leader Lease for the next manager that elects one.
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
		DeferCleanup(func() {
			if CurrentSpecReport().Failed() {
				b, _ := os.ReadFile(logPath)
				lines := strings.Split(string(b), "\n")
				AddReportEntry("config/lockdown manager log (tail)", strings.Join(lines[max(0, len(lines)-150):], "\n"))
			}
		})

		By("a tenant namespace set up as config/lockdown/tenant says, with a Deployment and an app that names no ServiceAccount")
		shop := newTenant("lockdown")
		shop.create(deployment(shop.ns, "web", "registry.local/shop/web:good", 2))
		waitRunning(shop.ns, "web", ":good", 2)
		local := serve("127.0.0.1", nil)
		app := healApp(shop.ns, "shop", "web", v1alpha1.ModeActive,
			// homeostat-tenant may not scale: refused, and the ladder moves on at the timeout.
			step(v1alpha1.Action{Scale: &v1alpha1.ScaleAction{Component: "web", Delta: ptr.To(int32(2))}}, 5*time.Second),
			step(restartPods("web"), time.Minute))
		app.Spec.Sensors = []v1alpha1.Sensor{httpSensor("probe", local.URL+"/healthz")}
		shop.createApp(app)
		Eventually(func(g Gomega) {
			c := condition(getApp(shop.ns, "shop"), v1alpha1.ConditionReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		}).WithTimeout(60*time.Second).WithPolling(250*time.Millisecond).Should(Succeed(), "config/lockdown's manager reconciles the app (it leads)")

		By("its sensor may not reach loopback: config/lockdown allows none")
		sensorStatuses(shop.ns, "shop", map[string]OmegaMatcher{"probe": failsWith(Equal("GET " + local.URL + "/healthz: the egress policy refused " +
			strings.TrimPrefix(local.URL, "http://") + ": it is a loopback address (127.0.0.0/8), denied by default; --egress-allow-cidrs=127.0.0.0/8 would allow it"))})
		Expect(local.hits.Load()).To(BeZero())

		By("web breaks: the scale is Forbidden, the eviction homeostat-tenant may make heals it")
		setImageAs(shop, "web", "registry.local/shop/web:bad")
		Eventually(func(g Gomega) {
			rs := records(getApp(shop.ns, "shop"), "")
			g.Expect(len(rs)).To(BeNumerically(">=", 2))
			g.Expect(rs[0].Action).To(Equal("scale"))
			g.Expect(rs[0].Result).To(Equal(v1alpha1.ResultForbidden))
			g.Expect(rs[0].Message).To(ContainSubstring(`ServiceAccount %s/homeostat-tenant may not patch deployments.apps/scale in namespace %s ("web")`, shop.ns, shop.ns))
			g.Expect(rs[1].Action).To(Equal("restartPods"))
			g.Expect(rs[1].Result).To(Equal(v1alpha1.ResultSucceeded), rs[1].Message)
		}).WithTimeout(90 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
		w := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: shop.ns, Name: "web"}, w)).To(Succeed())
		Expect(*w.Spec.Replicas).To(Equal(int32(2)), "the refused scale changed nothing")

		By("an app in a namespace without homeostat-tenant waits, and says how to fix it")
		bare := newNamespace("lockdown-bare")
		createDeployment(bare, "web", "registry.local/shop/web:good", 1)
		Expect(k8s.Create(ctx, healApp(bare, "shop", "web", v1alpha1.ModeActive, step(restartPods("web"), time.Minute)))).To(Succeed())
		Eventually(func(g Gomega) {
			c := condition(getApp(bare, "shop"), v1alpha1.ConditionReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(v1alpha1.ReasonServiceAccountNotFound))
			g.Expect(c.Message).To(HavePrefix("ServiceAccount %s/homeostat-tenant does not exist, and the app acts with its rights: "+
				"create it (kubectl create serviceaccount homeostat-tenant -n %s)", bare, bare))
		}).WithTimeout(30 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
	})
})
