package monitor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
	metricsapi "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsfake "k8s.io/metrics/pkg/client/clientset/versioned/fake"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func testScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// webPod is a pod of the web component in namespace shop, with the given requests per
// container ("" leaves a container without a request of that resource).
func webPod(name string, ready bool, cpu, memory string, mutate ...func(*corev1.Pod)) corev1.Pod {
	p := pod(name, corev1.PodRunning, ready, mutate...)
	p.Namespace = "shop"
	if p.Labels == nil {
		p.Labels = map[string]string{"app": "web", "pod-template-hash": name}
	}
	req := corev1.ResourceList{}
	if cpu != "" {
		req[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if memory != "" {
		req[corev1.ResourceMemory] = resource.MustParse(memory)
	}
	p.Spec.Containers = []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{Requests: req}}}
	return p
}

func podMetrics(name string, labels map[string]string, usage ...corev1.ResourceList) *metricsapi.PodMetrics {
	m := &metricsapi.PodMetrics{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: labels},
		Timestamp: metav1.Now(), Window: metav1.Duration{Duration: 30 * time.Second}}
	for i, u := range usage {
		m.Containers = append(m.Containers, metricsapi.ContainerMetrics{Name: []string{"app", "sidecar"}[i], Usage: u})
	}
	return m
}

func usage(cpu, memory string) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}
}

// metricsClient serves the pod metrics as metrics-server does, filtering by the label
// selector. (The generated fake's object tracker files PodMetrics under the wrong
// resource, so a reactor serves them.)
func metricsClient(t *testing.T, items ...*metricsapi.PodMetrics) (*metricsfake.Clientset, *[]string) {
	c := metricsfake.NewSimpleClientset()
	var selectors []string
	c.PrependReactor("list", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		la := action.(k8stesting.ListAction)
		sel := la.GetListRestrictions().Labels
		selectors = append(selectors, sel.String())
		out := &metricsapi.PodMetricsList{}
		for _, m := range items {
			if m.Namespace == la.GetNamespace() && sel.Matches(labels.Set(m.Labels)) {
				out.Items = append(out.Items, *m)
			}
		}
		return true, out, nil
	})
	return c, &selectors
}

func TestUtilizationIsTheHPAsAverageOverReadyPods(t *testing.T) {
	withHash := func(h string) map[string]string { return map[string]string{"app": "web", "pod-template-hash": h} }
	sidecar := func(p *corev1.Pod) {
		p.Spec.InitContainers = []corev1.Container{{Name: "sidecar", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}}
	}
	cases := []struct {
		name     string
		resource corev1.ResourceName
		pods     []corev1.Pod
		metrics  []*metricsapi.PodMetrics
		want     float64
		counts   PodCounts // the pods behind want
		wantErr  string
	}{
		{name: "usage over requests of the ready pods with metrics",
			resource: corev1.ResourceCPU,
			pods:     []corev1.Pod{webPod("a", true, "100m", "64Mi"), webPod("b", true, "300m", "64Mi")},
			metrics:  []*metricsapi.PodMetrics{podMetrics("a", withHash("a"), usage("50m", "32Mi")), podMetrics("b", withHash("b"), usage("250m", "16Mi"))},
			want:     75, counts: PodCounts{Ready: 2}}, // (50+250) / (100+300)
		{name: "memory the same way",
			resource: corev1.ResourceMemory,
			pods:     []corev1.Pod{webPod("a", true, "100m", "64Mi"), webPod("b", true, "300m", "64Mi")},
			metrics:  []*metricsapi.PodMetrics{podMetrics("a", withHash("a"), usage("50m", "32Mi")), podMetrics("b", withHash("b"), usage("250m", "16Mi"))},
			want:     37.5, counts: PodCounts{Ready: 2}}, // (32+16) / (64+64)
		{name: "unready, pending and terminating pods are left out of the average, and so are their requests",
			resource: corev1.ResourceCPU,
			pods: []corev1.Pod{
				webPod("a", true, "100m", ""),
				webPod("b", false, "", ""), // no request, but unready: not counted
				webPod("c", true, "100m", "", func(p *corev1.Pod) { p.DeletionTimestamp = ptr.To(metav1.Now()) }),
				webPod("d", true, "100m", "", func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }),
			},
			metrics: []*metricsapi.PodMetrics{podMetrics("a", withHash("a"), usage("80m", "1Mi")), podMetrics("b", withHash("b"), usage("900m", "1Mi")),
				podMetrics("c", withHash("c"), usage("900m", "1Mi")), podMetrics("d", withHash("d"), usage("900m", "1Mi"))},
			want: 80, counts: PodCounts{Ready: 1, Unready: 2}}, // the terminating pod is not counted at all
		{name: "a ready pod without metrics yet is left out of the average",
			resource: corev1.ResourceCPU,
			pods:     []corev1.Pod{webPod("a", true, "100m", ""), webPod("b", true, "100m", "")},
			metrics:  []*metricsapi.PodMetrics{podMetrics("a", withHash("a"), usage("120m", "1Mi"))},
			want:     120, counts: PodCounts{Ready: 1, Missing: 1}},
		{name: "three ready pods, two at 150% and one without metrics: 150 over two ready, one missing (the HPA's 3 -> 6)",
			resource: corev1.ResourceCPU,
			pods:     []corev1.Pod{webPod("a", true, "100m", ""), webPod("b", true, "100m", ""), webPod("c", true, "100m", "")},
			metrics:  []*metricsapi.PodMetrics{podMetrics("a", withHash("a"), usage("150m", "1Mi")), podMetrics("b", withHash("b"), usage("150m", "1Mi"))},
			want:     150, counts: PodCounts{Ready: 2, Missing: 1}},
		{name: "the pods are grouped in the HPA's order: pending is unready, then no metric is missing, then not ready is unready",
			resource: corev1.ResourceCPU,
			pods: []corev1.Pod{
				webPod("ready", true, "100m", ""),
				webPod("pending", false, "100m", "", func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }),
				webPod("starting", false, "100m", ""), // running, not ready, no metric yet: missing
				webPod("warming", false, "100m", ""),  // running, not ready, with a metric: unready
				webPod("no-usage", true, "100m", ""),  // ready, but its metrics lack the resource: missing
				webPod("failed", false, "100m", "", func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }),
				webPod("done", false, "100m", "", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
				webPod("gone", true, "100m", "", func(p *corev1.Pod) { p.DeletionTimestamp = ptr.To(metav1.Now()) }),
			},
			metrics: []*metricsapi.PodMetrics{
				podMetrics("ready", withHash("ready"), usage("40m", "1Mi")),
				podMetrics("pending", withHash("pending"), usage("900m", "1Mi")),
				podMetrics("warming", withHash("warming"), usage("900m", "1Mi")),
				podMetrics("no-usage", withHash("no-usage"), corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Mi")}),
				podMetrics("failed", withHash("failed"), usage("900m", "1Mi")),
				podMetrics("gone", withHash("gone"), usage("900m", "1Mi")),
			},
			want: 40, counts: PodCounts{Ready: 1, Missing: 2, Unready: 2}},
		{name: "metrics of pods of other workloads are ignored",
			resource: corev1.ResourceCPU,
			pods:     []corev1.Pod{webPod("a", true, "100m", "")},
			metrics:  []*metricsapi.PodMetrics{podMetrics("a", withHash("a"), usage("10m", "1Mi")), podMetrics("web-other", withHash("a"), usage("990m", "1Mi"))},
			want:     10, counts: PodCounts{Ready: 1}},
		{name: "sidecars count in requests and usage",
			resource: corev1.ResourceCPU,
			pods:     []corev1.Pod{webPod("a", true, "100m", "", sidecar)},
			metrics:  []*metricsapi.PodMetrics{podMetrics("a", withHash("a"), usage("50m", "1Mi"), usage("50m", "1Mi"))},
			want:     50, counts: PodCounts{Ready: 1}},
		{name: "pod-level requests win over the containers'",
			resource: corev1.ResourceCPU,
			pods: []corev1.Pod{webPod("a", true, "", "", func(p *corev1.Pod) {
				p.Spec.Resources = &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}
			})},
			metrics: []*metricsapi.PodMetrics{podMetrics("a", withHash("a"), usage("250m", "1Mi"))},
			want:    25, counts: PodCounts{Ready: 1}},
		{name: "a ready pod without a request is an error, in the HPA's words",
			resource: corev1.ResourceCPU,
			pods:     []corev1.Pod{webPod("a", true, "100m", ""), webPod("b", true, "", "64Mi")},
			metrics:  []*metricsapi.PodMetrics{podMetrics("a", withHash("a"), usage("10m", "1Mi"))},
			wantErr:  "missing request for cpu in container app of Pod b"},
		{name: "no metrics for any ready pod",
			resource: corev1.ResourceMemory,
			pods:     []corev1.Pod{webPod("a", true, "", "64Mi"), webPod("b", true, "", "64Mi")},
			wantErr:  `metrics.k8s.io has no memory metrics for the 2 ready pods of component "web"`},
		{name: "no ready pods",
			resource: corev1.ResourceCPU,
			pods:     []corev1.Pod{webPod("a", false, "100m", "")},
			wantErr:  `component "web" has no ready pods to measure`},
		{name: "requests of zero",
			resource: corev1.ResourceCPU,
			pods:     []corev1.Pod{webPod("a", true, "0", "")},
			metrics:  []*metricsapi.PodMetrics{podMetrics("a", withHash("a"), usage("10m", "1Mi"))},
			wantErr:  `the ready pods of component "web" request no cpu`},
	}
	app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "app"}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mc, selectors := metricsClient(t, tc.metrics...)
			p := &Poller{
				Reader:  fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(app).Build(),
				Metrics: mc.MetricsV1beta1(),
				PodsOf: func(_ context.Context, a *v1alpha1.AutonomicApp, component string) ([]corev1.Pod, error) {
					if a.Name != "app" || component != "web" {
						return nil, errors.New("asked for the wrong component")
					}
					return tc.pods, nil
				},
			}
			p.init()
			pr := &resourceProbe{p: p, spec: v1alpha1.ResourceSensor{Component: "web", Resource: v1alpha1.ResourceName(tc.resource)}}
			got, pods, err := pr.read(context.Background(), types.NamespacedName{Namespace: "shop", Name: "app"}, time.Second)
			switch {
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr || pods != nil):
				t.Fatalf("got %v, %+v, %v\nwant error %s and no pod counts", got, pods, err, tc.wantErr)
			case tc.wantErr == "" && (err != nil || got != tc.want || pods == nil || *pods != tc.counts):
				t.Fatalf("got %v, %+v, %v; want %v, %+v", got, pods, err, tc.want, tc.counts)
			}
			// The selector is the labels the pods share: their pod-template-hash too
			// when they all have the same one.
			for _, s := range *selectors {
				if !strings.HasPrefix(s, "app=web") {
					t.Errorf("pod metrics were listed with selector %q, want the labels the pods share", s)
				}
			}
		})
	}
}

func TestResourceSensorSaysWhenMetricsServerIsMissing(t *testing.T) {
	mc := metricsfake.NewSimpleClientset()
	mc.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, &metricsNotFound{}
	})
	app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "app"}}
	p := &Poller{
		Reader:  fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(app).Build(),
		Metrics: mc.MetricsV1beta1(),
		PodsOf: func(context.Context, *v1alpha1.AutonomicApp, string) ([]corev1.Pod, error) {
			return []corev1.Pod{webPod("a", true, "100m", "")}, nil
		},
	}
	p.init()
	pr := &resourceProbe{p: p, spec: v1alpha1.ResourceSensor{Component: "web", Resource: v1alpha1.ResourceCPU}}
	_, _, err := pr.read(context.Background(), types.NamespacedName{Namespace: "shop", Name: "app"}, time.Second)
	want := "listing pod metrics from metrics.k8s.io: the server could not find the requested resource (is metrics-server installed?)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

// metricsNotFound is what the API server answers when metrics.k8s.io is not served.
type metricsNotFound struct{}

func (*metricsNotFound) Error() string { return "the server could not find the requested resource" }
func (*metricsNotFound) Status() metav1.Status {
	return metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonNotFound, Code: 404,
		Message: "the server could not find the requested resource"}
}

func TestGathererPodsOfFindsAComponentsPodsThroughItsReplicaSets(t *testing.T) {
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "d1"}}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", UID: "r1",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "d1", Controller: ptr.To(true)}}}}
	owned := func(name, rsName string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rsName, UID: "r1", Controller: ptr.To(true)}}}}
	}
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).
		WithObjects(dep, rs, owned("web-1-a", "web-1"), owned("web-1-b", "web-1"), owned("other", "other-1")).
		WithIndex(&corev1.Pod{}, IndexOwner, ownerIndex).
		WithIndex(&appsv1.ReplicaSet{}, IndexOwner, ownerIndex).
		Build()
	app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "app"},
		Spec: v1alpha1.AutonomicAppSpec{Components: []v1alpha1.Component{
			{Name: "web", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}},
			{Name: "pay", AppRef: &v1alpha1.AppReference{Name: "payments"}},
		}}}
	g := Gatherer{Reader: c}
	pods, err := g.PodsOf(context.Background(), app, "web")
	if err != nil || len(pods) != 2 {
		t.Fatalf("got %d pods, %v; want web-1-a and web-1-b", len(pods), err)
	}
	if _, err := g.PodsOf(context.Background(), app, "pay"); err == nil || err.Error() != `component "pay" is a child app; a resource sensor needs a workload` {
		t.Fatalf("got %v", err)
	}
	if _, err := g.PodsOf(context.Background(), app, "nope"); err == nil || err.Error() != `component "nope" is not in the app` {
		t.Fatalf("got %v", err)
	}
}
