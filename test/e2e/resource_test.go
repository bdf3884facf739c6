package e2e

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/devcluster/metricsapi"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// The resource sensor reads a real metrics.k8s.io API: not metrics-server, which scrapes
// kubelets at the nodes' addresses (kwok's are fake), but the test's own aggregated API
// server (internal/devcluster/metricsapi) on 127.0.0.1, registered with kube-apiserver
// by an APIService. The manager reads it through kube-apiserver's aggregation layer as
// it would read metrics-server, and so does kube-controller-manager's HPA controller,
// which these specs use as the oracle of the HPA's semantics.
//
// The Deployments request 100m CPU per pod, so a pod that uses 150m is at 150%.
var _ = Describe("the resource sensor on a real metrics.k8s.io API", Label("kwok"), Ordered, ContinueOnFailure, func() {
	const image = "registry.local/shop/web:good"
	ctx := context.Background()
	var metrics *metricsapi.Running

	BeforeAll(func() {
		By("serving metrics.k8s.io from the test on 127.0.0.1 and registering it with the cluster")
		var err error
		// A window of 1s: the HPA sets aside the CPU sample of a pod younger than 5
		// minutes until the sample is a window past the pod's readiness; a short window
		// spares the specs the wait.
		metrics, err = metricsapi.Start(ctx, restConfig, metricsapi.Options{Window: time.Second})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { Expect(metrics.Stop(context.Background())).To(Succeed()) })
		logf("metrics.k8s.io is served at %s through APIService %s", metrics.Addr(), metricsapi.APIServiceName)
	})

	// setCPU sets the CPU usage, in millicores, of the named pods.
	setCPU := func(ns string, milli int64, podNames ...string) {
		for _, p := range podNames {
			metrics.SetPodUsage(ns, p, *resource.NewMilliQuantity(milli, resource.DecimalSI), resource.MustParse("32Mi"))
		}
	}

	It("reads utilization over the ready pods that have metrics, as the HPA does, and scales up on it", func() {
		ns := newNamespace("resource")
		createDeployment(ns, "web", image, 3)
		createDeployment(ns, "twin", image, 3)
		web, twin := resourceReadyPods(ns, "web", 3), resourceReadyPods(ns, "twin", 3)

		By("two pods of each Deployment use 150m (150% of the request); the third has no metrics yet")
		setCPU(ns, 150, web[0], web[1])
		setCPU(ns, 150, twin[0], twin[1])

		By("an app scales web on a resource sensor, target 50%; an HPA scales twin the same way")
		Expect(k8s.Create(ctx, resourceApp(ns, "web", 1, 10, nil))).To(Succeed())
		Expect(k8s.Create(ctx, cpuHPA(ns, "twin", 1, 10))).To(Succeed())

		By("the sensor reads 150: the pod without metrics is left out of the average, as the HPA leaves it out")
		Eventually(func(g Gomega) {
			a := getApp(ns, "shop")
			g.Expect(a.Status.Sensors).To(ContainElement(And(
				HaveField("Name", "cpu"), HaveField("Value", "150"), HaveField("Error", ""))))
		}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(hpaUtilization(ns, "twin")).To(HaveValue(BeEquivalentTo(150)), "the HPA's status.currentMetrics")
		}).WithTimeout(40 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
		logf("the sensor and the HPA both read 150%% utilization over the two measured pods")

		By("both scale up; the HPA counts the pod without metrics as 0% on a scale-up: (150+150+0)/3 = 100% -> 6 replicas")
		hpaReplicas := resourceWaitReplicasAbove(ns, "twin", 3, 40*time.Second)
		Expect(hpaReplicas).To(BeEquivalentTo(6), "the HPA's own answer")
		homeostatReplicas := resourceWaitReplicasAbove(ns, "web", 3, 20*time.Second)
		a := getApp(ns, "shop")
		logf("HPA: twin 3 -> %d; Homeostat: web 3 -> %d (%s)", hpaReplicas, homeostatReplicas, policyStatus(a, "scale-web").Message)
		Expect(homeostatReplicas).To(BeNumerically(">", 3))

		By("both read metrics.k8s.io through kube-apiserver: the manager with the workload's label selector, the HPA controller too")
		var users []string
		for _, r := range metrics.Requests() {
			if r.Path == "/apis/metrics.k8s.io/v1beta1/namespaces/"+ns+"/pods" && r.Code == 200 {
				users = append(users, r.User+"?"+r.Query)
			}
		}
		Expect(users).To(ContainElement(And(HavePrefix(managerUser+"?"), ContainSubstring("app%3Dweb"))), "the manager (its ServiceAccount)")
		Expect(users).To(ContainElement(And(HavePrefix("system:kube-controller-manager?"), ContainSubstring("app%3Dtwin"))), "the HPA controller")
	})

	// The sensor's reading carries the pods behind its value (2 ready with metrics, 1
	// missing), and the autoscaler applies the HPA's missing-pod rule to them.
	It("counts a ready pod without metrics as 0% on a scale-up, as the HPA does", func() {
		ns := newNamespace("resource-missing")
		createDeployment(ns, "web", image, 3)
		web := resourceReadyPods(ns, "web", 3)
		setCPU(ns, 150, web[0], web[1])
		Expect(k8s.Create(ctx, resourceApp(ns, "web", 1, 10, nil))).To(Succeed())
		// The HPA, in the spec above, answers 6 for exactly these pods and usage.
		got := resourceWaitReplicasAbove(ns, "web", 3, 20*time.Second)
		logf("Homeostat: web 3 -> %d (%s)", got, policyStatus(getApp(ns, "shop"), "scale-web").Message)
		Expect(got).To(BeEquivalentTo(6), "ceil(3 x (150+150+0)/3 / 50) = 6, as the HPA; "+
			"ceil(3 x 150/50) = 9, limited to 7 by the default scale-up policy, counts the pod without metrics as if it used 150%%")
	})

	It("is unavailable while metrics.k8s.io has no metrics for the pods, and never scales down on that", func() {
		ns := newNamespace("resource-outage")
		createDeployment(ns, "web", image, 4)
		web := resourceReadyPods(ns, "web", 4)
		setCPU(ns, 50, web...)
		// No scale-down window: the replicas would fall at once on a low reading.
		noWindow := &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To(int32(0))}}
		Expect(k8s.Create(ctx, resourceApp(ns, "web", 2, 10, noWindow))).To(Succeed())
		Eventually(func(g Gomega) {
			a := getApp(ns, "shop")
			g.Expect(a.Status.Sensors).To(ContainElement(And(HaveField("Name", "cpu"), HaveField("Value", "50"), HaveField("Error", ""))))
			p := policyStatus(a, "scale-web")
			g.Expect(p.Reason).To(Equal(plan.ReasonSteady), p.Message)
		}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())

		By("the metrics of every pod disappear: the sensor is unavailable and the autoscaler holds")
		var gone []types.NamespacedName
		for _, p := range web {
			gone = append(gone, types.NamespacedName{Namespace: ns, Name: p})
		}
		metrics.DeletePodUsage(gone...)
		Eventually(func(g Gomega) {
			a := getApp(ns, "shop")
			c := condition(a, v1alpha1.ConditionSensorsAvailable)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse), c.Message)
			g.Expect(a.Status.Sensors).To(ContainElement(And(
				HaveField("Name", "cpu"), HaveField("Value", "50"),
				HaveField("Error", ContainSubstring("no cpu metrics for the 4 ready pods")))))
			p := policyStatus(a, "scale-web")
			g.Expect(p.State).To(Equal(v1alpha1.PolicyHeld), p.Message)
			g.Expect(p.Reason).To(Equal(plan.ReasonSensorUnavailable))
		}).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
		a := getApp(ns, "shop")
		logf("SensorsAvailable=False: %s", condition(a, v1alpha1.ConditionSensorsAvailable).Message)
		logf("policy: %s", policyStatus(a, "scale-web").Message)
		Consistently(func() int32 { return resourceReplicas(ns, "web") }).WithTimeout(5*time.Second).
			WithPolling(200*time.Millisecond).Should(BeEquivalentTo(4), "no scale-down on missing data")

		By("metrics come back at 10%: with no window, web scales down at once, so the hold was the missing data's")
		setCPU(ns, 10, web...)
		Expect(resourceWaitReplicas(ns, "web", 2, 20*time.Second)).To(BeEquivalentTo(2))
		Eventually(func(g Gomega) {
			c := condition(getApp(ns, "shop"), v1alpha1.ConditionSensorsAvailable)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		}).WithTimeout(10 * time.Second).Should(Succeed())
	})
})

// resourceApp is an app that scales the Deployment on its CPU utilization, polled every
// second, with a target of 50%.
func resourceApp(ns, deploy string, minReplicas, maxReplicas int32, behavior *autoscalingv2.HorizontalPodAutoscalerBehavior) *v1alpha1.AutonomicApp {
	return &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
		Spec: v1alpha1.AutonomicAppSpec{
			Mode:       v1alpha1.ModeActive,
			Components: []v1alpha1.Component{workload("web", deploy)},
			Healing: v1alpha1.Healing{
				Sensors: []v1alpha1.Sensor{{
					Name: "cpu", Interval: dur(time.Second),
					Resource: &v1alpha1.ResourceSensor{Component: "web", Resource: v1alpha1.ResourceName(corev1.ResourceCPU)},
				}},
				Policies: []v1alpha1.Policy{{Name: "scale-web", Autoscale: &v1alpha1.AutoscalePolicy{
					Component: "web", MinReplicas: ptr.To(minReplicas), MaxReplicas: maxReplicas,
					Metrics:  []v1alpha1.AutoscaleMetric{{Sensor: "cpu", Target: &v1alpha1.MetricTarget{AverageUtilization: ptr.To(int32(50))}}},
					Behavior: behavior,
				}}},
			},
		},
	}
}

// cpuHPA is an autoscaling/v2 HPA of the Deployment on CPU utilization, target 50%,
// with the default behavior.
func cpuHPA(ns, deploy string, minReplicas, maxReplicas int32) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: deploy},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: deploy},
			MinReplicas:    ptr.To(minReplicas), MaxReplicas: maxReplicas,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name:   corev1.ResourceCPU,
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(int32(50))},
			}}},
		},
	}
}

// hpaUtilization is the CPU utilization in the HPA's status, or nil.
func hpaUtilization(ns, name string) *int32 {
	h := &autoscalingv2.HorizontalPodAutoscaler{}
	Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, h)).To(Succeed())
	for _, m := range h.Status.CurrentMetrics {
		if m.Resource != nil && m.Resource.Name == corev1.ResourceCPU {
			return m.Resource.Current.AverageUtilization
		}
	}
	var conds []string
	for _, c := range h.Status.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s %s: %s", c.Type, c.Status, c.Reason, c.Message))
	}
	logf("HPA %s/%s has no CPU reading yet: %s", ns, name, strings.Join(conds, "; "))
	return nil
}

// resourceReadyPods waits until the app's Deployment has n ready pods and returns their
// names.
func resourceReadyPods(ns, app string, n int) []string {
	var names []string
	Eventually(func(g Gomega) {
		names = nil
		for _, p := range pods(ns, app) {
			if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning &&
				ptr.Deref(podReadyCondition(&p), corev1.ConditionFalse) == corev1.ConditionTrue {
				names = append(names, p.Name)
			}
		}
		g.Expect(names).To(HaveLen(n))
	}).WithTimeout(60*time.Second).Should(Succeed(), "%d ready pods of %s", n, app)
	return names
}

func podReadyCondition(p *corev1.Pod) *corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return &c.Status
		}
	}
	return nil
}

func resourceReplicas(ns, name string) int32 {
	d := &appsv1.Deployment{}
	Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, d)).To(Succeed())
	return ptr.Deref(d.Spec.Replicas, 1)
}

// resourceWaitReplicasAbove waits until the Deployment's spec.replicas exceeds n and
// returns it.
func resourceWaitReplicasAbove(ns, name string, n int32, timeout time.Duration) int32 {
	var got int32
	Eventually(func() int32 { got = resourceReplicas(ns, name); return got }).WithTimeout(timeout).
		WithPolling(100*time.Millisecond).Should(BeNumerically(">", n), "spec.replicas of %s", name)
	return got
}

func resourceWaitReplicas(ns, name string, want int32, timeout time.Duration) int32 {
	Eventually(func() int32 { return resourceReplicas(ns, name) }).WithTimeout(timeout).
		WithPolling(100*time.Millisecond).Should(Equal(want), "spec.replicas of %s", name)
	return want
}
