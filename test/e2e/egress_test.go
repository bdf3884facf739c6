package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// The egress policy of the running manager, which allows loopback (the suite's servers
// listen there) with --egress-allow-cidrs: its own ports and the API server, on loopback
// too, stay refused, and a timeout above --egress-max-timeout is cut and named in status.
// Every address here is on 127.0.0.1, and the refused ones are refused before connect.
var _ = Describe("the egress policy", func() {
	It("refuses sensors aimed at the manager's metrics port and at the API server although loopback is allowed, and says a capped timeout is capped", func() {
		ctx := context.Background()
		var hits atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
		DeferCleanup(srv.Close)
		mgr.mu.Lock()
		metrics := mgr.metricsAddr
		mgr.mu.Unlock()
		api, err := url.Parse(restConfig.Host)
		Expect(err).NotTo(HaveOccurred())

		ns := newNamespace("egress")
		createDeployment(ns, "web", "registry.local/shop/web:good", 1)
		sensor := func(name, u string, timeout time.Duration) v1alpha1.Sensor {
			s := v1alpha1.Sensor{Name: name, Interval: dur(time.Second), HTTP: &v1alpha1.HTTPSensor{URL: u}}
			if timeout > 0 {
				s.Timeout = dur(timeout)
			}
			return s
		}
		app := &v1alpha1.AutonomicApp{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
			Spec: v1alpha1.AutonomicAppSpec{
				Mode:       v1alpha1.ModeActive,
				Components: []v1alpha1.Component{workload("web", "web")},
				Healing: v1alpha1.Healing{Sensors: []v1alpha1.Sensor{
					sensor("own", "http://"+metrics+"/metrics", 0),
					sensor("apiserver", "https://"+api.Host+"/version", 0),
					sensor("slow", srv.URL+"/healthz", 2*time.Minute),
				}},
			},
		}
		Expect(k8s.Create(ctx, app)).To(Succeed())

		Eventually(func(g Gomega) {
			a := getApp(ns, "shop")
			g.Expect(a.Status.Sensors).To(HaveLen(3))
			errs := map[string]string{}
			for _, s := range a.Status.Sensors {
				errs[s.Name] = s.Error
			}
			g.Expect(errs["own"]).To(Equal("GET http://" + metrics + "/metrics: the egress policy refused " + metrics +
				": it is the manager's own metrics listener (--metrics-bind-address); no flag allows it"))
			g.Expect(errs["apiserver"]).To(HaveSuffix(": it is the Kubernetes API server; no flag allows it"))
			g.Expect(errs["apiserver"]).To(ContainSubstring("the egress policy refused " + api.Host))
			g.Expect(errs["slow"]).To(BeEmpty(), "a server on loopback is reached: the suite allows loopback")
			c := condition(a, v1alpha1.ConditionSensorsAvailable)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Message).To(HavePrefix("2 of 3 sensors are unavailable: own ("))
			g.Expect(c.Message).To(HaveSuffix(" The admin's --egress-max-timeout caps sensor timeouts: slow asks for 2m0s and gets 30s."))
		}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
		Expect(hits.Load()).To(BeNumerically(">", 0))
	})
})
