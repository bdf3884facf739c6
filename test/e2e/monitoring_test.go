package e2e

import (
	"context"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/config/monitoring"
)

// The monitoring mixin against the real thing: a Prometheus (Debian's package) scrapes the
// manager, an app heals a crash loop once, and then every query of both dashboards, with
// their variables set to that app, returns data. A query that names a metric the manager
// does not serve, or selects labels it does not set, returns nothing and fails the spec.
var _ = Describe("the monitoring mixin", Label("monitoring", "kwok"), func() {
	ctx := context.Background()

	It("returns data for every dashboard query once an app has healed", func() {
		ns := newNamespace("monitoring")
		By("starting Prometheus on 127.0.0.1, scraping the load exporter and the manager")
		exporter := startExporter()
		exporter.set(ns, 20)
		prom := startPrometheus(exporter.addr, mgr.metricsAddr)
		DeferCleanup(func() {
			if CurrentSpecReport().Failed() {
				AddReportEntry("prometheus log (tail)", prom.logTail(40))
			}
		})

		By("an app with a crash-loop ladder, a polled sensor and an autoscaler")
		createDeployment(ns, "web", "registry.local/shop/web:good", 3)
		waitRunning(ns, "web", ":good", 3)
		app := healApp(ns, "shop", "web", v1alpha1.ModeActive,
			step(restartPods("web"), 15*time.Second),
			step(rollback("web"), 30*time.Second),
			step(notify("web keeps crashing after restart and rollback"), time.Minute))
		app.Spec.Sensors = []v1alpha1.Sensor{{Name: "load", Interval: dur(time.Second),
			Prometheus: &v1alpha1.PrometheusSensor{Address: prom.url(), Query: loadSelector(ns)}}}
		// A load of 20 at 10 per replica asks for 2; minReplicas keeps the 3 the ladder
		// expects, so the autoscaler recommends without scaling.
		app.Spec.Policies = append(app.Spec.Policies, v1alpha1.Policy{Name: "scale-web", Autoscale: &v1alpha1.AutoscalePolicy{
			Component: "web", MinReplicas: ptr.To(int32(3)), MaxReplicas: 3,
			Metrics: []v1alpha1.AutoscaleMetric{{Sensor: "load",
				Target: &v1alpha1.MetricTarget{AverageValue: resource.NewQuantity(10, resource.DecimalSI)}}},
		}})
		Expect(k8s.Create(ctx, app)).To(Succeed())
		waitReady(ns, "shop")

		By("rolling out a release whose containers crash, and healing it")
		setImage(ns, "web", "registry.local/shop/web:bad")
		Eventually(func(g Gomega) {
			rb := records(getApp(ns, "shop"), "rollback")
			g.Expect(rb).NotTo(BeEmpty())
			g.Expect(rb[0].Result).To(Equal(v1alpha1.ResultSucceeded), rb[0].Message)
		}).WithTimeout(90 * time.Second).Should(Succeed())
		d := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, d)).To(Succeed())
		Expect(d.Spec.Template.Spec.Containers[0].Image).To(HaveSuffix(":good"))
		waitRunning(ns, "web", ":good", 3)
		Eventually(func(g Gomega) {
			a := getApp(ns, "shop")
			g.Expect(a.Status.Phase).To(Equal(v1alpha1.PhaseHealthy))
			g.Expect(policyStatus(a, "heal-web").Reason).To(Equal("Healed"))
		}).WithTimeout(60 * time.Second).Should(Succeed())

		By("every dashboard query, for this app, returns data")
		vars := map[string]string{"datasource": "prometheus", "namespace": ns, "app": "shop", "__rate_interval": "1m"}
		var queries []monitoring.Query
		for _, f := range []string{"homeostat-fleet.json", "homeostat-app.json"} {
			qs, err := monitoring.DashboardQueries(f, vars)
			Expect(err).NotTo(HaveOccurred())
			queries = append(queries, qs...)
		}
		Expect(len(queries)).To(BeNumerically(">=", 20))
		Eventually(func() []string {
			var empty []string
			for _, q := range queries {
				if n, err := prom.resultSize(q.Expr); err != nil || n == 0 {
					empty = append(empty, q.String()+errSuffix(err))
				}
			}
			return empty
		}).WithTimeout(time.Minute).WithPolling(2*time.Second).Should(BeEmpty(),
			"dashboard queries that return no data")
		logf("all %d dashboard queries return data for %s/shop", len(queries), ns)
	})
})

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " (" + strings.TrimSpace(err.Error()) + ")"
}
