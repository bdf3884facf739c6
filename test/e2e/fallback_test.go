package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// onSensorFailure Fallback through the whole loop: real polls of an HTTP sensor on
// 127.0.0.1 that fail, counted by the poller, shown in status, and acted on by the
// autoscaler through the scale subresource.
var _ = Describe("an autoscale policy with onSensorFailure Fallback", func() {
	It("goes to the fallback replicas once the sensor has failed failureThreshold polls in a row, and says why", func() {
		ctx := context.Background()
		var failing atomic.Bool
		failing.Store(true)
		var polls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			polls.Add(1)
			if failing.Load() {
				http.Error(w, "backend down", http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusOK)
		}))
		DeferCleanup(srv.Close)

		ns := newNamespace("fallback")
		createDeployment(ns, "web", "registry.local/shop/web:good", 1)
		app := &v1alpha1.AutonomicApp{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
			Spec: v1alpha1.AutonomicAppSpec{
				Mode:       v1alpha1.ModeActive,
				Components: []v1alpha1.Component{workload("web", "web")},
				Healing: v1alpha1.Healing{
					Sensors: []v1alpha1.Sensor{{Name: "latency", Interval: dur(time.Second),
						HTTP: &v1alpha1.HTTPSensor{URL: srv.URL + "/healthz", Timeout: dur(500 * time.Millisecond)}}},
					Policies: []v1alpha1.Policy{{Name: "scale-web", Autoscale: &v1alpha1.AutoscalePolicy{
						Component: "web", MinReplicas: ptr.To(int32(1)), MaxReplicas: 10,
						Metrics: []v1alpha1.AutoscaleMetric{{Sensor: "latency",
							Target: &v1alpha1.MetricTarget{Value: resource.NewMilliQuantity(300, resource.DecimalSI)}}},
						OnSensorFailure: &v1alpha1.SensorFailurePolicy{Mode: v1alpha1.SensorFailureFallback,
							Replicas: ptr.To(int32(4)), FailureThreshold: 3},
					}}},
				},
			},
		}
		Expect(k8s.Create(ctx, app)).To(Succeed())

		By("the failed polls are counted in status, SensorsAvailable=False names the sensor, and web goes to 4")
		Eventually(func(g Gomega) {
			a := getApp(ns, "shop")
			g.Expect(a.Status.Sensors).To(HaveLen(1))
			s := a.Status.Sensors[0]
			g.Expect(s.ConsecutiveFailures).To(BeNumerically(">=", 3), "status.sensors[0]: %+v", s)
			g.Expect(s.Error).To(ContainSubstring("503"))
			c := condition(a, v1alpha1.ConditionSensorsAvailable)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Message).To(ContainSubstring("latency"))
			p := policyStatus(a, "scale-web")
			g.Expect(p.Reason).To(Equal(plan.ReasonFallback), p.Message)
			g.Expect(specReplicas(ns, "web")).To(Equal(int32(4)))
		}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
		sc := records(getApp(ns, "shop"), "scale")
		Expect(sc).NotTo(BeEmpty())
		Expect(sc[0].Replicas).To(Equal(ptr.To(int32(4))))
		Expect(sc[0].Reason).To(ContainSubstring("latency"))
		expectReplicasOwnedByHomeostat(ns, "web")

		By("the sensor answers again: the count resets and the failure is gone from status")
		failing.Store(false)
		Eventually(func(g Gomega) {
			a := getApp(ns, "shop")
			g.Expect(a.Status.Sensors[0].ConsecutiveFailures).To(BeZero())
			g.Expect(a.Status.Sensors[0].Error).To(BeEmpty())
			g.Expect(condition(a, v1alpha1.ConditionSensorsAvailable).Status).To(Equal(metav1.ConditionTrue))
			g.Expect(policyStatus(a, "scale-web").Reason).NotTo(Equal(plan.ReasonFallback))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Expect(polls.Load()).To(BeNumerically(">=", 4))
	})
})
