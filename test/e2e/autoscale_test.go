package e2e

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/execute"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// The autoscaling specs run one real Prometheus (Debian's package) that scrapes an
// exporter the test serves on 127.0.0.1; each spec sets the load of its own scenario
// (its namespace) and watches the Deployment's spec.replicas with an informer of its
// own, so every latency is measured on the test's clock, from the moment the test set
// the gauge to the moment the watch event arrived.
//
// The apps scale web on one Prometheus sensor with target averageValue 10: the
// recommendation is ceil(load / 10) replicas. Scale-up has the HPA's defaults (no
// window; 4 pods or 100% per 15s); scale-down has a stabilization window of
// scaleDownWindow, short for the tests' sake.
var _ = Describe("autoscaling on a real Prometheus", Ordered, ContinueOnFailure, func() {
	const (
		sensorInterval  = time.Second
		scaleDownWindow = 20 * time.Second
		image           = "registry.local/shop/web:good"
	)
	ctx := context.Background()
	var (
		exporter *loadExporter
		prom     *promServer
	)

	BeforeAll(func() {
		By("starting the load exporter and Prometheus on 127.0.0.1")
		exporter = startExporter()
		exporter.set("warmup", 0)
		prom = startPrometheus(exporter.addr)
		logf("Prometheus %s (scrape interval %s, lookback delta %s) scrapes the exporter at %s", prom.url(), scrapeInterval, lookbackDelta, exporter.addr)
	})

	AfterEach(func() {
		if CurrentSpecReport().Failed() && prom != nil {
			AddReportEntry("prometheus log (tail)", prom.logTail(40))
		}
	})

	// app is an AutonomicApp that autoscales the Deployment web on the scenario's load.
	app := func(ns string, minReplicas, maxReplicas int32, activationThreshold *string) *v1alpha1.AutonomicApp {
		return &v1alpha1.AutonomicApp{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
			Spec: v1alpha1.AutonomicAppSpec{
				Mode:       v1alpha1.ModeActive,
				Components: []v1alpha1.Component{workload("web", "web")},
				Healing: v1alpha1.Healing{
					Sensors: []v1alpha1.Sensor{{
						Name: "load", Interval: dur(sensorInterval),
						Prometheus: &v1alpha1.PrometheusSensor{Address: prom.url(), Query: loadSelector(ns)},
					}},
					Policies: []v1alpha1.Policy{{Name: "scale-web", Autoscale: &v1alpha1.AutoscalePolicy{
						Component: "web", MinReplicas: ptr.To(minReplicas), MaxReplicas: maxReplicas,
						Metrics: []v1alpha1.AutoscaleMetric{{
							Sensor:              "load",
							Target:              &v1alpha1.MetricTarget{AverageValue: resource.NewQuantity(10, resource.DecimalSI)},
							ActivationThreshold: activationThreshold,
						}},
						Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
							StabilizationWindowSeconds: ptr.To(int32(scaleDownWindow / time.Second)),
						}},
					}}},
				},
			},
		}
	}

	// measure sets the scenario's load and waits for web's spec.replicas to become want.
	measure := func(ns string, w *replicaWatch, load float64, want int32) reaction {
		r := reaction{set: exporter.set(ns, load)}
		r.visible = prom.waitVisible(loadSelector(ns), load, 10*time.Second)
		r.scaled = w.waitChange(want, r.set, 20*time.Second).at
		var err error
		r.scraped, err = prom.firstScrapeOf(loadSelector(ns), load, r.set.Add(-scrapeInterval/2))
		Expect(err).NotTo(HaveOccurred())
		return r
	}

	// expectPrompt asserts a reaction's latency: from the moment the value could be read
	// from Prometheus, within one sensor interval and a second; from the moment the gauge
	// was set, within that plus Prometheus' own scrape interval and a second of slack.
	expectPrompt := func(r reaction) {
		Expect(r.scaled.Sub(r.visible)).To(BeNumerically("<", sensorInterval+time.Second),
			"from Prometheus returning the new load to spec.replicas: %s", r)
		Expect(r.total()).To(BeNumerically("<", sensorInterval+scrapeInterval+2*time.Second),
			"from the gauge's change to spec.replicas: %s", r)
	}

	It("scales up on a rise within a sensor interval, down only after the stabilization window, writing only spec.replicas as homeostat", func() {
		ns := newNamespace("autoscale")
		exporter.set(ns, 20)
		createDeployment(ns, "web", image, 2)
		w := watchReplicas(ns, "web")
		Expect(k8s.Create(ctx, app(ns, 1, 10, nil))).To(Succeed())
		waitReady(ns, "shop")
		waitAutoscaler(ns, "20", plan.ReasonSteady)
		Expect(w.replicas()).To(BeEquivalentTo(2))

		By("the load rises from 20 to 50: web scales from 2 to 5 replicas")
		rise := measure(ns, w, 50, 5)
		logf("RISE 2 -> 5 replicas: %s", rise)
		expectPrompt(rise)
		// The ledger records the outcome just after the apply that the watch saw.
		var last v1alpha1.ActionRecord
		Eventually(func(g Gomega) {
			recs := records(getApp(ns, "shop"), execute.KindScale)
			g.Expect(recs).To(HaveLen(1))
			last = recs[0]
			g.Expect(last.Result).To(Equal(v1alpha1.ResultSucceeded), last.Message)
		}).WithTimeout(5 * time.Second).WithPolling(50 * time.Millisecond).Should(Succeed())
		Expect(last.Policy).To(Equal("scale-web"))
		Expect(last.Replicas).To(HaveValue(BeEquivalentTo(5)))
		logf("ledger: %s %s", last.Reason, last.Message)

		By("the scale wrote spec.replicas alone, by server-side apply on /scale as homeostat")
		expectReplicasOwnedByHomeostat(ns, "web")

		By("the load stays at 50 for longer than the window: web stays at 5")
		Consistently(w.replicas).WithTimeout(scaleDownWindow + 5*time.Second).WithPolling(100 * time.Millisecond).
			Should(BeEquivalentTo(5))

		By("the load falls from 50 to 20: web waits out the stabilization window, then scales down to 2")
		fell := exporter.set(ns, 20)
		Eventually(func(g Gomega) {
			p := policyStatus(getApp(ns, "shop"), "scale-web")
			g.Expect(p.Reason).To(Equal(plan.ReasonScaleDownStabilized), p.Message)
			logf("while stabilizing: %s", p.Message)
		}).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
		Consistently(w.replicas).WithTimeout(scaleDownWindow-time.Second-time.Since(fell)).WithPolling(100*time.Millisecond).
			Should(BeEquivalentTo(5), "no scale-down within the %s window after the fall", scaleDownWindow)
		down := w.waitChange(2, fell, 15*time.Second)
		logf("FALL 5 -> 2 replicas %s after the load fell (window %s)", down.at.Sub(fell).Round(time.Millisecond), scaleDownWindow)
		Expect(down.at.Sub(fell)).To(BeNumerically(">=", scaleDownWindow-time.Second))
		Expect(down.at.Sub(fell)).To(BeNumerically("<", scaleDownWindow+sensorInterval+scrapeInterval+2*time.Second))
		Expect(w.changes()).To(HaveLen(2), "one scale-up and one scale-down: %v", w.changes())
		expectReplicasOwnedByHomeostat(ns, "web")
	})

	It("leaves a Deployment that an HPA already scales alone and says Conflict with the HPA's name", func() {
		ns := newNamespace("autoscale-hpa")
		exporter.set(ns, 80)
		createDeployment(ns, "web", image, 3)
		w := watchReplicas(ns, "web")
		// The HPA controller of kube-controller-manager runs against it and cannot get CPU
		// metrics (no metrics server), so it never scales; min = max = the current replicas
		// makes sure of that.
		hpa := &autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-hpa"},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
				MinReplicas:    ptr.To(int32(3)), MaxReplicas: 3,
				Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
					Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(int32(50))},
				}}},
			},
		}
		Expect(k8s.Create(ctx, hpa)).To(Succeed())
		Expect(k8s.Create(ctx, app(ns, 1, 10, nil))).To(Succeed())

		By("the policy says Conflict and names the HPA, though the load of 80 asks for 8 replicas")
		Eventually(func(g Gomega) {
			a := getApp(ns, "shop")
			g.Expect(a.Status.Sensors).To(ContainElement(sensorReading("80")))
			p := policyStatus(a, "scale-web")
			g.Expect(p.State).To(Equal(v1alpha1.PolicyConflict), p.Message)
			g.Expect(p.Reason).To(Equal(plan.ReasonConflict))
			g.Expect(p.Message).To(ContainSubstring("HorizontalPodAutoscaler web-hpa"))
		}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
		logf("policy: %s", policyStatus(getApp(ns, "shop"), "scale-web").Message)

		By("the load keeps rising; the app reads every value and still leaves the replicas alone")
		for _, load := range []float64{90, 100, 120} {
			exporter.set(ns, load)
			Eventually(func(g Gomega) {
				a := getApp(ns, "shop")
				g.Expect(a.Status.Sensors).To(ContainElement(sensorReading(fmt.Sprint(load))))
				g.Expect(policyStatus(a, "scale-web").State).To(Equal(v1alpha1.PolicyConflict))
			}).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
			Consistently(w.replicas).WithTimeout(2 * time.Second).Should(BeEquivalentTo(3))
		}
		Expect(w.changes()).To(BeEmpty())
		Expect(records(getApp(ns, "shop"), execute.KindScale)).To(BeEmpty())
		d := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, d)).To(Succeed())
		for _, m := range d.ManagedFields {
			Expect(m.Manager).NotTo(Equal(v1alpha1.FieldManager), "homeostat wrote to a Deployment an HPA scales")
		}
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web-hpa"}, hpa)).To(Succeed())
		for _, c := range hpa.Status.Conditions {
			logf("the HPA's own condition %s=%s %s: %s", c.Type, c.Status, c.Reason, c.Message)
		}
	})

	It("scales an idle workload to zero after the window and activates it as soon as the load crosses the activation threshold", func() {
		ns := newNamespace("autoscale-zero")
		exporter.set(ns, 0)
		createDeployment(ns, "web", image, 2)
		w := watchReplicas(ns, "web")
		created := time.Now()
		Expect(k8s.Create(ctx, app(ns, 0, 10, ptr.To("5")))).To(Succeed())

		By("with no load, web goes to zero once the window has passed")
		zero := w.waitChange(0, created, scaleDownWindow+15*time.Second)
		logf("IDLE 2 -> 0 replicas %s after the app was created (window %s)", zero.at.Sub(created).Round(time.Millisecond), scaleDownWindow)
		Expect(zero.at.Sub(created)).To(BeNumerically(">=", scaleDownWindow-time.Second), "the first recommendation, the current replicas, holds for the window")
		Eventually(func(g Gomega) {
			p := policyStatus(getApp(ns, "shop"), "scale-web")
			g.Expect(p.Reason).To(Equal(plan.ReasonScaledToZero), p.Message)
		}).WithTimeout(10 * time.Second).Should(Succeed())

		By("a load of 3, at or below the activation threshold of 5, keeps it at zero")
		exporter.set(ns, 3)
		waitAutoscaler(ns, "3", plan.ReasonScaledToZero)
		Consistently(w.replicas).WithTimeout(3 * time.Second).WithPolling(100 * time.Millisecond).Should(BeEquivalentTo(0))

		By("a load of 8, above the threshold, activates web at once")
		act := measure(ns, w, 8, 1)
		logf("ACTIVATION 0 -> 1 replica: %s", act)
		expectPrompt(act)
		recs := records(getApp(ns, "shop"), execute.KindScale)
		Expect(recs).NotTo(BeEmpty())
		Expect(recs[len(recs)-1].Reason).To(ContainSubstring("above its activation threshold 5"))
		logf("ledger: %s", recs[len(recs)-1].Reason)
	})

	It("reverses direction at most once per stabilization window under a square wave of load", func() {
		const (
			period  = 8 * time.Second
			windows = 5
			low     = 20.0 // 2 replicas
			high    = 60.0 // 6 replicas
		)
		ns := newNamespace("autoscale-wave")
		exporter.set(ns, low)
		createDeployment(ns, "web", image, 2)
		w := watchReplicas(ns, "web")
		Expect(k8s.Create(ctx, app(ns, 1, 10, nil))).To(Succeed())
		waitReady(ns, "shop")
		waitAutoscaler(ns, fmt.Sprint(low), plan.ReasonSteady)

		By(fmt.Sprintf("the load alternates between %v and %v every %s for %d windows of %s", high, low, period/2, windows, scaleDownWindow))
		start := time.Now()
		halves := int(windows * scaleDownWindow / (period / 2))
		for i := range halves {
			load := high
			if i%2 == 1 {
				load = low
			}
			exporter.set(ns, load)
			time.Sleep(time.Until(start.Add(time.Duration(i+1) * period / 2)))
		}
		end := exporter.set(ns, low)

		By("after the wave, web returns to 2 replicas once the window has passed")
		w.waitChange(2, end, scaleDownWindow+15*time.Second)
		changes := w.since(start)
		var lines []string
		for _, c := range changes {
			lines = append(lines, fmt.Sprintf("  +%6.2fs  %d -> %d", c.at.Sub(start).Seconds(), c.from, c.to))
		}
		n := reversals(changes)
		logf("SQUARE WAVE (period %s, %d windows of %s, wave ended at +%.2fs): %d replica changes, %d reversals\n%s",
			period, windows, scaleDownWindow, end.Sub(start).Seconds(), len(changes), n, strings.Join(lines, "\n"))
		Expect(changes).NotTo(BeEmpty())
		Expect(changes[0].to).To(BeNumerically(">", changes[0].from), "the first high half scales up")
		Expect(n).To(BeNumerically("<=", windows+1), "direction reversals")
		var lastUp time.Time
		for _, c := range changes {
			switch {
			case c.to > c.from:
				lastUp = c.at
			case !lastUp.IsZero():
				Expect(c.at.Sub(lastUp)).To(BeNumerically(">=", scaleDownWindow-time.Second),
					"a scale-down at +%.2fs came sooner than the window after the scale-up at +%.2fs", c.at.Sub(start).Seconds(), lastUp.Sub(start).Seconds())
			}
		}
	})

	It("holds the replicas while Prometheus is down, says SensorsAvailable=False, and scales again once it is back", func() {
		ns := newNamespace("autoscale-outage")
		exporter.set(ns, 30)
		createDeployment(ns, "web", image, 3)
		w := watchReplicas(ns, "web")
		Expect(k8s.Create(ctx, app(ns, 1, 10, nil))).To(Succeed())
		waitReady(ns, "shop")
		waitAutoscaler(ns, "30", plan.ReasonSteady)

		By("Prometheus stops, and the load falls to 0 meanwhile")
		DeferCleanup(func() {
			if !prom.running() {
				Expect(prom.start()).To(Succeed())
			}
		})
		prom.stop()
		stopped := time.Now()
		exporter.set(ns, 0)

		By("the sensor is unavailable: SensorsAvailable=False, status.sensors has the error, the autoscaler holds")
		Eventually(func(g Gomega) {
			a := getApp(ns, "shop")
			c := condition(a, v1alpha1.ConditionSensorsAvailable)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse), c.Message)
			g.Expect(c.Reason).To(Equal(v1alpha1.ReasonSensorsUnavailable))
			g.Expect(c.Message).To(ContainSubstring("load"))
			g.Expect(a.Status.Sensors).To(ContainElement(And(
				HaveField("Name", "load"), HaveField("Value", "30"),
				HaveField("Error", ContainSubstring(prom.addr)),
				HaveField("ConsecutiveFailures", BeNumerically(">", 0)))))
			p := policyStatus(a, "scale-web")
			g.Expect(p.State).To(Equal(v1alpha1.PolicyHeld), p.Message)
			g.Expect(p.Reason).To(Equal(plan.ReasonSensorUnavailable))
		}).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
		a := getApp(ns, "shop")
		logf("SensorsAvailable=False: %s", condition(a, v1alpha1.ConditionSensorsAvailable).Message)
		logf("status.sensors[load]: %+v", a.Status.Sensors[0])
		logf("policy: %s", policyStatus(a, "scale-web").Message)

		By("for longer than the window, web is not scaled down on missing data")
		Consistently(w.replicas).WithTimeout(scaleDownWindow + 5*time.Second).WithPolling(100 * time.Millisecond).
			Should(BeEquivalentTo(3))
		Expect(w.since(stopped)).To(BeEmpty())

		By("Prometheus comes back on the same port with the same data, and the load is now 60: web scales up to 6")
		// A starting Prometheus applies its scrape targets at the first tick of its scrape
		// manager's 5s reload timer, so its first scrape comes a few seconds after it is
		// ready: the operator's part is measured from the moment a query returns the load.
		exporter.set(ns, 60)
		restarted := time.Now()
		Expect(prom.start()).To(Succeed())
		ready := time.Now()
		visible := prom.waitVisible(loadSelector(ns), 60, 20*time.Second)
		up := w.waitChange(6, restarted, 20*time.Second)
		logf("RECOVERY after an outage of %s: Prometheus was ready %s after the restart began, returned the load %s after that, and web went 3 -> 6 %s later",
			restarted.Sub(stopped).Round(time.Second), ready.Sub(restarted).Round(time.Millisecond),
			visible.Sub(ready).Round(time.Millisecond), up.at.Sub(visible).Round(time.Millisecond))
		Expect(up.at.Sub(visible)).To(BeNumerically("<", sensorInterval+time.Second))
		Eventually(func(g Gomega) {
			c := condition(getApp(ns, "shop"), v1alpha1.ConditionSensorsAvailable)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		}).WithTimeout(10 * time.Second).Should(Succeed())
	})
})

// loadSelector is the PromQL selector of a scenario's load: one series.
func loadSelector(scenario string) string {
	return fmt.Sprintf(`%s{scenario=%q}`, loadMetric, scenario)
}

// sensorReading matches the status of the load sensor reading value without an error.
func sensorReading(value string) OmegaMatcher {
	return And(HaveField("Name", "load"), HaveField("Value", value), HaveField("Error", ""))
}

// waitAutoscaler waits until the app's load sensor reads value and its autoscale policy
// has decided with reason.
func waitAutoscaler(ns, value, reason string) {
	Eventually(func(g Gomega) {
		a := getApp(ns, "shop")
		g.Expect(a.Status.Sensors).To(ContainElement(sensorReading(value)))
		p := policyStatus(a, "scale-web")
		g.Expect(p.Reason).To(Equal(reason), p.Message)
	}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
}

// expectReplicasOwnedByHomeostat checks the Deployment's managedFields: homeostat owns
// f:spec.f:replicas through a server-side apply on the scale subresource, owns nothing
// else of the spec, and no other manager owns spec.replicas any more.
func expectReplicasOwnedByHomeostat(ns, name string) {
	d := &appsv1.Deployment{}
	Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, d)).To(Succeed())
	applied := false
	for _, m := range d.ManagedFields {
		logf("managedFields: manager=%s operation=%s subresource=%q fields=%s", m.Manager, m.Operation, m.Subresource, m.FieldsV1.Raw)
		var fields map[string]any
		Expect(json.Unmarshal(m.FieldsV1.Raw, &fields)).To(Succeed())
		switch {
		case m.Manager == v1alpha1.FieldManager && m.Operation == metav1.ManagedFieldsOperationApply && m.Subresource == "scale":
			Expect(fields).To(Equal(map[string]any{"f:spec": map[string]any{"f:replicas": map[string]any{}}}))
			applied = true
		case m.Manager == v1alpha1.FieldManager:
			// The one other write of Homeostat: the action id stamped on what it changed.
			Expect(fields).To(HaveLen(1))
			Expect(fields).To(HaveKey("f:metadata"))
			meta := fields["f:metadata"].(map[string]any)
			Expect(meta).To(HaveLen(1))
			Expect(meta).To(HaveKey("f:annotations"))
			for k := range meta["f:annotations"].(map[string]any) {
				Expect(k).To(BeElementOf(".", "f:"+v1alpha1.ActionIDAnnotation))
			}
		default:
			if spec, ok := fields["f:spec"].(map[string]any); ok {
				Expect(spec).NotTo(HaveKey("f:replicas"), "manager %s still owns spec.replicas", m.Manager)
			}
		}
	}
	Expect(applied).To(BeTrue(), "homeostat applied spec.replicas on the scale subresource")
}

// reaction is one measured reaction to a change of load, on the test's clock: when the
// test set the gauge, when Prometheus scraped the new value (the sample's timestamp),
// when an instant query first returned it (polled every 10ms), and when the test's
// informer saw the Deployment's spec.replicas change.
type reaction struct {
	set, scraped, visible, scaled time.Time
}

func (r reaction) total() time.Duration { return r.scaled.Sub(r.set) }

func (r reaction) String() string {
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	return fmt.Sprintf("%s in all = %s until Prometheus scraped the new value + %s until a query returned it + %s from there to spec.replicas (sensor poll, reconcile, apply, watch)",
		ms(r.total()), ms(r.scraped.Sub(r.set)), ms(r.visible.Sub(r.scraped)), ms(r.scaled.Sub(r.visible)))
}

// replicaWatch records every change of a Deployment's spec.replicas, stamped when the
// test's own informer receives it.
type replicaWatch struct {
	mu      sync.Mutex
	known   bool
	current int32
	log     []replicaChange
}

type replicaChange struct {
	at       time.Time
	from, to int32
}

func (c replicaChange) String() string {
	return fmt.Sprintf("%s %d->%d", c.at.Format("15:04:05.000"), c.from, c.to)
}

func watchReplicas(ns, name string) *replicaWatch {
	w := &replicaWatch{}
	stop := make(chan struct{})
	f := informers.NewSharedInformerFactoryWithOptions(clientset, 0, informers.WithNamespace(ns))
	observe := func(obj any) {
		now := time.Now()
		d, ok := obj.(*appsv1.Deployment)
		if !ok || d.Name != name {
			return
		}
		n := ptr.Deref(d.Spec.Replicas, 1)
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.known && n != w.current {
			w.log = append(w.log, replicaChange{at: now, from: w.current, to: n})
		}
		w.known, w.current = true, n
	}
	_, err := f.Apps().V1().Deployments().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: observe, UpdateFunc: func(_, o any) { observe(o) },
	})
	Expect(err).NotTo(HaveOccurred())
	f.Start(stop)
	f.WaitForCacheSync(stop)
	DeferCleanup(func() { close(stop); f.Shutdown() })
	Eventually(func() bool { w.mu.Lock(); defer w.mu.Unlock(); return w.known }).Should(BeTrue(), "the informer sees %s", name)
	return w
}

func (w *replicaWatch) replicas() int32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.current
}

func (w *replicaWatch) changes() []replicaChange {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]replicaChange(nil), w.log...)
}

// since returns the changes at or after t.
func (w *replicaWatch) since(t time.Time) []replicaChange {
	var out []replicaChange
	for _, c := range w.changes() {
		if !c.at.Before(t) {
			out = append(out, c)
		}
	}
	return out
}

// waitChange waits for the first change to want at or after t.
func (w *replicaWatch) waitChange(want int32, t time.Time, timeout time.Duration) replicaChange {
	var got replicaChange
	Eventually(func() bool {
		for _, c := range w.since(t) {
			if c.to == want {
				got = c
				return true
			}
		}
		return false
	}).WithTimeout(timeout).WithPolling(10*time.Millisecond).Should(BeTrue(), func() string {
		return fmt.Sprintf("spec.replicas becomes %d (now %d; changes %v)", want, w.replicas(), w.changes())
	})
	return got
}

// reversals counts the changes of direction in a sequence of replica changes.
func reversals(cs []replicaChange) int {
	n, last := 0, 0
	for _, c := range cs {
		dir := cmp.Compare(c.to, c.from)
		if last != 0 && dir != last {
			n++
		}
		last = dir
	}
	return n
}
