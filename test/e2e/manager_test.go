package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// The manager's operational options, on the real binary: leader election, probes, the
// secured metrics endpoint, watching some namespaces only, and a graceful shutdown that
// releases the lease.
var _ = Describe("the manager binary", func() {
	ctx := context.Background()

	It("elects a leader, serves probes and secured metrics, watches only the namespaces it is given, and releases its lease on SIGTERM", func() {
		// Before the apps exist: the suite's manager must never reconcile the app in the
		// namespace this one ignores.
		By("standing the suite's manager down, so only this one acts")
		mgr.stop()
		DeferCleanup(func() { Expect(mgr.start(nil)).To(Succeed()) })

		watched, other := newNamespace("watched"), newNamespace("ignored")
		for _, ns := range []string{watched, other} {
			createDeployment(ns, "web", "registry.local/shop/web:good", 1)
			Expect(k8s.Create(ctx, healApp(ns, "shop", "web", v1alpha1.ModeActive, step(restartPods("web"), time.Minute)))).To(Succeed())
		}

		probePort, err := freePort()
		Expect(err).NotTo(HaveOccurred())
		metricsPort, err := freePort()
		Expect(err).NotTo(HaveOccurred())
		logPath := filepath.Join(workDir, "manager-options.log")
		logFile, err := os.Create(logPath)
		Expect(err).NotTo(HaveOccurred())
		cmd := exec.Command(mgr.bin, "--kubeconfig", mgr.kubeconfig, "--enable-webhooks=false",
			"--leader-elect", "--leader-election-namespace", managerNamespace,
			"--watch-namespaces", watched,
			"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", probePort),
			"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", metricsPort), "--metrics-secure=true",
			"--graceful-shutdown-timeout", "10s")
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		Expect(cmd.Start()).To(Succeed())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait(); _ = logFile.Close() }()
		DeferCleanup(func() {
			_ = cmd.Process.Kill()
			select { // the spec itself may have received the exit already
			case <-done:
			case <-time.After(5 * time.Second):
			}
		})

		By("the probes answer")
		for _, path := range []string{"/healthz", "/readyz"} {
			Eventually(func() (int, error) {
				resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", probePort, path))
				if err != nil {
					return 0, err
				}
				defer resp.Body.Close()
				return resp.StatusCode, nil
			}).WithTimeout(30*time.Second).Should(Equal(http.StatusOK), path)
		}

		By("it holds the leader lease")
		Eventually(func(g Gomega) {
			l := &coordinationv1.Lease{}
			g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: managerNamespace, Name: "homeostat.autonomic.homeostat.dev"}, l)).To(Succeed())
			g.Expect(l.Spec.HolderIdentity).NotTo(BeNil())
			g.Expect(*l.Spec.HolderIdentity).NotTo(BeEmpty())
		}).WithTimeout(30 * time.Second).Should(Succeed())

		By("metrics are served over HTTPS and refuse a request without a token")
		insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test's own loopback server
		Eventually(func() (int, error) {
			resp, err := insecure.Get(fmt.Sprintf("https://127.0.0.1:%d/metrics", metricsPort))
			if err != nil {
				return 0, err
			}
			defer resp.Body.Close()
			return resp.StatusCode, nil
		}).WithTimeout(30 * time.Second).Should(Equal(http.StatusUnauthorized))

		By("only the watched namespace's app is reconciled")
		waitReady(watched, "shop")
		Consistently(func() int64 { return getApp(other, "shop").Status.ObservedGeneration }).
			WithTimeout(5 * time.Second).Should(BeZero())

		By("SIGTERM shuts it down gracefully and releases the lease")
		Expect(cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
		Eventually(done).WithTimeout(20*time.Second).Should(Receive(BeNil()), "the manager exits 0")
		l := &coordinationv1.Lease{}
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: managerNamespace, Name: "homeostat.autonomic.homeostat.dev"}, l)).To(Succeed())
		Expect(l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "").To(BeTrue(), "the lease is released on shutdown")
	})
})
