package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/kube"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	release "helm.sh/helm/v4/pkg/release/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// The Helm chart in charts/homeostat, installed with the Helm SDK as `helm install`
// would. kwok runs no containers, so the chart's Deployment gets a pod that never runs
// the manager: that pod proves the Deployment passes the restricted Pod Security
// Standard, and the manager runs here as a process instead, as the suite runs its own:
// with the args of the Deployment the chart rendered and a token of the chart's
// ServiceAccount, so every permission it uses is one the chart's RBAC grants. Only what
// a process outside a pod needs is changed: a kubeconfig for the in-cluster config, its
// listeners on loopback, the namespace the downward API would give it. Between install
// and the manager, upgrades turn the webhook on and off again; no app is written while
// it is on.
var _ = Describe("The Helm chart", Label("helm", "kwok"), func() {
	ctx := context.Background()

	It("installs the CRDs and RBAC, upgrades keeping its webhook certificate, runs a manager that heals a crash loop with the chart's rights and args, and uninstalls keeping the CRDs and the apps", func() {
		By("standing the suite's manager down, so only the chart's acts")
		mgr.stop()
		DeferCleanup(func() { Expect(mgr.start(nil)).To(Succeed()) })

		By("a namespace for the release, enforcing the restricted Pod Security Standard, and one for an app")
		releaseNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "helm-", Labels: map[string]string{
			"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}}}
		Expect(k8s.Create(ctx, releaseNS)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(context.Background(), releaseNS) })
		appNS := newNamespace("helm-app")
		const releaseName = "hs"
		fullname := releaseName + "-homeostat"

		By("installing the chart with the Helm SDK, the manager watching the app's namespace")
		cfg := helmConfig(releaseNS.Name)
		ch, err := loader.Load(filepath.Join(repoRoot, "charts", "homeostat"))
		Expect(err).NotTo(HaveOccurred())
		install := action.NewInstall(cfg)
		install.ReleaseName, install.Namespace = releaseName, releaseNS.Name
		install.WaitStrategy, install.Timeout = kube.HookOnlyStrategy, 2*time.Minute
		// The suite installed the same CRDs from config/crd/bases before any spec: the
		// release adopts them, as a `helm install --take-ownership` over `make install`.
		install.TakeOwnership = true
		values := func(webhook bool) map[string]any {
			return map[string]any{
				"manager": map[string]any{"watchNamespaces": []any{appNS}},
				"webhook": map[string]any{"enabled": webhook},
			}
		}
		rel, err := install.RunWithContext(ctx, ch, values(false))
		Expect(err).NotTo(HaveOccurred())
		r := rel.(*release.Release)
		Expect(r.Info.Status).To(Equal(rcommon.StatusDeployed), r.Info.Description)
		uninstalled := false
		DeferCleanup(func() {
			if !uninstalled {
				_, _ = action.NewUninstall(cfg).Run(releaseName)
			}
		})

		By("the CRDs belong to the release, and are kept on uninstall")
		for _, name := range homeostatCRDs {
			crd := crdMeta(name)
			Expect(crd.Annotations).To(HaveKeyWithValue("meta.helm.sh/release-name", releaseName))
			Expect(crd.Annotations).To(HaveKeyWithValue("helm.sh/resource-policy", "keep"))
		}

		By("the manager's ClusterRole carries config/rbac/role.yaml's rules, bound to the chart's ServiceAccount")
		role := &rbacv1.ClusterRole{}
		Expect(k8s.Get(ctx, types.NamespacedName{Name: fullname + "-manager-role"}, role)).To(Succeed())
		generated := &rbacv1.ClusterRole{}
		b, err := os.ReadFile(filepath.Join(repoRoot, "config", "rbac", "role.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(yaml.Unmarshal(b, generated)).To(Succeed())
		Expect(role.Rules).To(Equal(generated.Rules))
		sa := fullname + "-controller-manager"
		binding := &rbacv1.ClusterRoleBinding{}
		Expect(k8s.Get(ctx, types.NamespacedName{Name: fullname + "-manager-rolebinding"}, binding)).To(Succeed())
		Expect(binding.Subjects).To(ConsistOf(rbacv1.Subject{Kind: "ServiceAccount", Name: sa, Namespace: releaseNS.Name}))

		By("no validating webhook: it is off by default, as in config/default")
		var vwcs admissionregistrationv1.ValidatingWebhookConfigurationList
		Expect(k8s.List(ctx, &vwcs, client.MatchingLabels{"app.kubernetes.io/instance": releaseName})).To(Succeed())
		Expect(vwcs.Items).To(BeEmpty())

		By("upgrading with the webhook on: the chart makes a certificate, and the next upgrade keeps it")
		// No AutonomicApp is created or changed while the webhook is on, so the API server
		// never calls it (its Service leads only to a kwok pod's fake address).
		upgrade := func(webhook bool) {
			u := action.NewUpgrade(cfg)
			u.Namespace, u.WaitStrategy, u.Timeout = releaseNS.Name, kube.HookOnlyStrategy, 2*time.Minute
			rel, err := u.RunWithContext(ctx, releaseName, ch, values(webhook))
			Expect(err).NotTo(HaveOccurred())
			Expect(rel.(*release.Release).Info.Status).To(Equal(rcommon.StatusDeployed))
		}
		certSecret := types.NamespacedName{Namespace: releaseNS.Name, Name: fullname + "-webhook-server-cert"}
		upgrade(true)
		first := &corev1.Secret{}
		Expect(k8s.Get(ctx, certSecret, first)).To(Succeed())
		vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		Expect(k8s.Get(ctx, types.NamespacedName{Name: fullname + "-validating-webhook-configuration"}, vwc)).To(Succeed())
		Expect(vwc.Webhooks).To(HaveLen(1))
		Expect(vwc.Webhooks[0].ClientConfig.CABundle).To(Equal(first.Data["ca.crt"]), "the API server trusts the chart's CA")
		Expect(vwc.Webhooks[0].ClientConfig.Service.Name).To(Equal(fullname + "-webhook-service"))
		upgrade(true)
		second := &corev1.Secret{}
		Expect(k8s.Get(ctx, certSecret, second)).To(Succeed())
		Expect(second.Data).To(Equal(first.Data), "an upgrade keeps the certificate in the cluster")
		upgrade(false)
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(vwc), vwc))
		}).WithTimeout(30*time.Second).Should(BeTrue(), "the webhook goes with webhook.enabled=false")
		for _, name := range homeostatCRDs {
			Expect(crdMeta(name).Annotations).To(HaveKeyWithValue("meta.helm.sh/release-name", releaseName), "the upgrades kept CRD %s", name)
		}

		By("the chart's Deployment gets its pod on a kwok node: the restricted Pod Security Standard admits it")
		// The namespace does enforce it: a pod without the manager's security context is
		// refused (a dry run, nothing is created).
		bare := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: releaseNS.Name, Name: "bare"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.local/bare:good"}}},
		}
		err = k8s.Create(ctx, bare, client.DryRunAll)
		Expect(err).To(MatchError(ContainSubstring(`violates PodSecurity "restricted:latest"`)))
		deploy := &appsv1.Deployment{}
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: releaseNS.Name, Name: sa}, deploy)).To(Succeed())
			g.Expect(deploy.Status.AvailableReplicas).To(Equal(int32(1)))
		}).WithTimeout(60*time.Second).WithPolling(500*time.Millisecond).Should(Succeed(), "the manager's pod is admitted and scheduled")

		By("running the manager with the args the chart rendered, as the chart's ServiceAccount")
		kubeconfig, err := serviceAccountKubeconfig(ctx, releaseNS.Name, sa, filepath.Join(workDir, "helm-manager.kubeconfig"))
		Expect(err).NotTo(HaveOccurred())
		rendered := renderedDeployment(r.Manifest)
		Expect(rendered.Spec.Template.Spec.ServiceAccountName).To(Equal(sa))
		args := rendered.Spec.Template.Spec.Containers[0].Args
		Expect(args).To(ContainElements("--leader-elect", "--enable-webhooks=false", "--watch-namespaces="+appNS))
		probePort, err := freePort()
		Expect(err).NotTo(HaveOccurred())
		metricsPort, err := freePort()
		Expect(err).NotTo(HaveOccurred())
		// Flags given twice take their last value: these override the Deployment's
		// listeners on every address (:8081, :8443), which a shared machine must not open.
		// Outside a pod the manager cannot find its namespace for the leader election
		// Lease: the chart's Role grants it there.
		args = slices.Concat(args, []string{
			"--kubeconfig", kubeconfig,
			fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probePort),
			fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metricsPort),
			"--leader-election-namespace=" + releaseNS.Name,
		})
		logf("the chart's manager runs with %q", args)
		logPath := filepath.Join(workDir, "manager-helm.log")
		stop := startProcess(mgr.bin, args, []string{"POD_NAMESPACE=" + releaseNS.Name}, logPath, "the chart's manager log (tail)")

		By("it leads, with the Lease of the chart's leader election Role")
		Eventually(func(g Gomega) {
			lease := &coordinationv1.Lease{}
			g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: releaseNS.Name, Name: "homeostat.autonomic.homeostat.dev"}, lease)).To(Succeed())
			g.Expect(ptr.Deref(lease.Spec.HolderIdentity, "")).NotTo(BeEmpty())
		}).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())

		By("an app whose pods crash: restarted, then rolled back, and healthy again")
		createDeployment(appNS, "web", "registry.local/shop/web:good", 3)
		waitRunning(appNS, "web", ":good", 3)
		Expect(k8s.Create(ctx, healApp(appNS, "shop", "web", v1alpha1.ModeActive,
			step(restartPods("web"), 15*time.Second),
			step(rollback("web"), 30*time.Second),
			step(notify("web keeps crashing after restart and rollback"), time.Minute)))).To(Succeed())
		waitReady(appNS, "shop")
		setImage(appNS, "web", "registry.local/shop/web:bad")
		Eventually(func(g Gomega) {
			rs := records(getApp(appNS, "shop"), "restartPods")
			g.Expect(rs).NotTo(BeEmpty())
			g.Expect(rs[0].Result).To(Equal(v1alpha1.ResultSucceeded), rs[0].Message)
		}).WithTimeout(30 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
		Eventually(func(g Gomega) {
			rb := records(getApp(appNS, "shop"), "rollback")
			g.Expect(rb).NotTo(BeEmpty())
			g.Expect(rb[0].Result).To(Equal(v1alpha1.ResultSucceeded), rb[0].Message)
		}).WithTimeout(60 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
		waitRunning(appNS, "web", ":good", 3)
		Eventually(func(g Gomega) {
			g.Expect(getApp(appNS, "shop").Status.Phase).To(Equal(v1alpha1.PhaseHealthy))
		}).WithTimeout(60 * time.Second).Should(Succeed())

		By("a scraper bound to the chart's metrics-reader role reads the metrics over HTTPS")
		scraper := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNS.Name, Name: "scraper"}}
		Expect(k8s.Create(ctx, scraper)).To(Succeed())
		readerBinding := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: releaseNS.Name + "-scraper"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: fullname + "-metrics-reader"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: releaseNS.Name, Name: "scraper"}},
		}
		Expect(k8s.Create(ctx, readerBinding)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(context.Background(), readerBinding) })
		tok, err := clientset.CoreV1().ServiceAccounts(releaseNS.Name).CreateToken(ctx, "scraper",
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(3600))}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			body, status, err := scrape(fmt.Sprintf("https://127.0.0.1:%d/metrics", metricsPort), tok.Status.Token)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(status).To(Equal(http.StatusOK), body)
			g.Expect(body).To(MatchRegexp(`homeostat_actions_total\{action="rollback",policy="heal-web",result="Succeeded"\} [1-9]`))
		}).WithTimeout(30 * time.Second).WithPolling(time.Second).Should(Succeed())
		_, status, err := scrape(fmt.Sprintf("https://127.0.0.1:%d/metrics", metricsPort), "")
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(http.StatusUnauthorized), "a scrape without a token is refused")

		By("the API server refused the chart's ServiceAccount nothing")
		stop()
		Expect(forbiddenInLogFor(logPath, "system:serviceaccount:"+releaseNS.Name+":"+sa)).To(BeEmpty(),
			"the chart's RBAC lacks what the manager needs")

		By("uninstalling: the release's objects go, the CRDs and the app stay")
		uninstall := action.NewUninstall(cfg)
		uninstall.WaitStrategy, uninstall.Timeout = kube.HookOnlyStrategy, 2*time.Minute
		res, err := uninstall.Run(releaseName)
		Expect(err).NotTo(HaveOccurred())
		uninstalled = true
		Expect(res.Info).To(ContainSubstring("These resources were kept due to the resource policy"))
		Eventually(func(g Gomega) {
			for _, o := range []client.Object{
				&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNS.Name, Name: sa}},
				&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNS.Name, Name: sa}},
				&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: fullname + "-manager-role"}},
				&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: fullname + "-manager-rolebinding"}},
				&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNS.Name, Name: fullname + "-leader-election-role"}},
				&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNS.Name, Name: fullname + "-controller-manager-metrics-service"}},
			} {
				err := k8s.Get(ctx, client.ObjectKeyFromObject(o), o)
				g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%T %s is gone (%v)", o, o.GetName(), err)
			}
		}).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
		for _, name := range homeostatCRDs {
			Expect(crdMeta(name).DeletionTimestamp).To(BeNil(), "CRD %s is kept", name)
		}
		Consistently(func() error {
			return k8s.Get(ctx, types.NamespacedName{Namespace: appNS, Name: "shop"}, &v1alpha1.AutonomicApp{})
		}).WithTimeout(3*time.Second).Should(Succeed(), "the app outlives the release")
	})
})

// homeostatCRDs are the names of Homeostat's CRDs.
var homeostatCRDs = []string{"autonomicapps.autonomic.homeostat.dev", "healingpolicies.autonomic.homeostat.dev",
	"clusterhealingpolicies.autonomic.homeostat.dev"}

// crdMeta returns the metadata of a CustomResourceDefinition (the suite's scheme has no
// apiextensions types).
func crdMeta(name string) *metav1.PartialObjectMetadata {
	crd := &metav1.PartialObjectMetadata{}
	crd.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
	Expect(k8s.Get(context.Background(), types.NamespacedName{Name: name}, crd)).To(Succeed(), "CRD %s", name)
	return crd
}

// helmConfig is the Helm SDK's configuration for the suite's cluster, as `helm -n
// namespace` with the suite's kubeconfig: releases are Secrets in namespace.
func helmConfig(namespace string) *action.Configuration {
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = ptr.To(kubeconfigPath), ptr.To(namespace)
	// Discovery's cache in the spec's own directory, not the home directory.
	flags.CacheDir = ptr.To(filepath.Join(GinkgoT().TempDir(), "kube-cache"))
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.NewTextHandler(GinkgoWriter, nil)))
	Expect(cfg.Init(flags, namespace, "secret")).To(Succeed())
	return cfg
}

// renderedDeployment returns the Deployment of a release's manifest.
func renderedDeployment(manifest string) *appsv1.Deployment {
	for _, doc := range strings.Split(manifest, "\n---") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil || meta.Kind != "Deployment" {
			continue
		}
		d := &appsv1.Deployment{}
		Expect(yaml.UnmarshalStrict([]byte(doc), d)).To(Succeed())
		return d
	}
	Fail("the release renders no Deployment")
	return nil
}

// startProcess starts a manager process with its output in logPath, and returns a func
// that stops it with SIGTERM (which releases its leader election Lease), then SIGKILL;
// the spec's cleanup calls it too. A failed spec reports the log's tail under title.
func startProcess(bin string, args, env []string, logPath, title string) (stop func()) {
	logFile, err := os.Create(logPath)
	Expect(err).NotTo(HaveOccurred())
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	Expect(cmd.Start()).To(Succeed())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); _ = logFile.Close() }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	DeferCleanup(stop)
	DeferCleanup(func() {
		if CurrentSpecReport().Failed() {
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(string(b), "\n")
			AddReportEntry(title, strings.Join(lines[max(0, len(lines)-150):], "\n"))
		}
	})
	return stop
}

// scrape GETs a manager's HTTPS metrics endpoint on loopback with a bearer token (none
// if empty). The manager's certificate is self-signed in memory, so it is not verified.
func scrape(url, token string) (string, int, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the manager's own self-signed certificate, on loopback
	}}
	resp, err := c.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, err
}
