package controllers

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/execute"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/rights"
)

// The envtest suite runs a real kube-apiserver and etcd (no controller-manager) with the
// manager in-process: the validating webhook installed, and the app reconciler wired
// as in main.go.

var (
	testEnv   *envtest.Environment
	k8sClient client.Client
	testCtx   context.Context
	cancel    context.CancelFunc
)

func TestControllers(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set: run `make test` or set it to $(bash hack/tools.sh envtest-dir)")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controllers (envtest)")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	testCtx, cancel = context.WithCancel(context.Background())

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))

	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: []string{filepath.Join("..", "config", "webhook", "manifests.yaml")}},
	}
	cfg, err := testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		cancel()
		Expect(testEnv.Stop()).To(Succeed())
	})

	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	wo := testEnv.WebhookInstallOptions
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: wo.LocalServingHost, Port: wo.LocalServingPort, CertDir: wo.LocalServingCertDir,
		}),
		Client: ClientOptions(),
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(monitor.SetupIndexes(testCtx, mgr.GetFieldIndexer())).To(Succeed())
	rec := mgr.GetEventRecorder("homeostat")
	r := &AppReconciler{
		Client: mgr.GetClient(), Recorder: rec, Clock: clock.RealClock{},
		Gatherer:  monitor.Gatherer{Reader: mgr.GetClient()},
		Effectors: &execute.Effectors{Client: mgr.GetClient(), Recorder: rec, Clock: clock.RealClock{}},
		Metrics:   newMetrics(prometheus.NewRegistry()),
		Storm:     newStormBreaker(0.5, DefaultStormMinUnhealthy, DefaultStormMinNamespaces, countApps(mgr.GetClient()), nil),
		triggers:  newTriggers(),
	}
	r.notify = newNotifier(nil)
	// The tenant's rights are asked of the API server's RBAC; apps that name no
	// ServiceAccount are not checked, as on a manager without --default-service-account.
	suiteRights = &askedAuthorizer{Authorizer: &rights.Reviewer{Client: mgr.GetClient(), Reader: mgr.GetAPIReader()}}
	r.Rights = &rights.Checker{Authorizer: suiteRights}
	r.Effectors.Webhooks = &execute.WebhookRunner{Notify: r.notify.Wake}
	Expect(r.SetupWithManager(mgr, 2)).To(Succeed())
	Expect((&SharedPolicyReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr)).To(Succeed())
	Expect((&SharedPolicyReconciler{Client: mgr.GetClient(), Cluster: true}).SetupWithManager(mgr)).To(Succeed())
	Expect(ctrl.NewWebhookManagedBy(mgr, &v1alpha1.AutonomicApp{}).WithValidator(&AppValidator{Reader: mgr.GetClient()}).Complete()).To(Succeed())

	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(testCtx)).To(Succeed())
	}()

	By("waiting for the webhook server")
	addr := net.JoinHostPort(wo.LocalServingHost, fmt.Sprint(wo.LocalServingPort))
	Eventually(func() error {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test server
		if err != nil {
			return err
		}
		return conn.Close()
	}).Should(Succeed())
})
