package monitor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	metricsapi "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// PodsOf returns the pods of one workload component of the app, from the cache, as
// Gather finds them. A component that is not in the app, or that is a child app, is an
// error; a workload that does not exist has no pods.
func (g Gatherer) PodsOf(ctx context.Context, app *v1alpha1.AutonomicApp, component string) ([]corev1.Pod, error) {
	for _, spec := range app.Spec.Components {
		if spec.Name != component {
			continue
		}
		if spec.WorkloadRef == nil {
			return nil, fmt.Errorf("component %q is a child app; a resource sensor needs a workload", component)
		}
		c := Component{Name: spec.Name, Ref: spec.WorkloadRef}
		if err := g.gatherWorkload(ctx, app.Namespace, spec.WorkloadRef, &c); err != nil {
			return nil, fmt.Errorf("gathering component %q: %w", component, err)
		}
		return c.Pods, nil
	}
	return nil, fmt.Errorf("component %q is not in the app", component)
}

// resourceProbe reads a component's CPU or memory utilization from metrics.k8s.io.
type resourceProbe struct {
	p    *Poller
	spec v1alpha1.ResourceSensor
}

func (*resourceProbe) release() {}

func (rp *resourceProbe) read(ctx context.Context, appKey types.NamespacedName, timeout time.Duration) (float64, *PodCounts, error) {
	if rp.p.Metrics == nil {
		return 0, nil, errors.New("the poller has no metrics.k8s.io client for resource sensors")
	}
	if rp.p.Reader == nil {
		return 0, nil, errors.New("the poller has no reader for resource sensors")
	}
	app := &v1alpha1.AutonomicApp{}
	if err := rp.p.Reader.Get(ctx, appKey, app); err != nil {
		return 0, nil, fmt.Errorf("reading the app: %w", err)
	}
	pods, err := rp.p.PodsOf(ctx, app, rp.spec.Component)
	if err != nil {
		return 0, nil, err
	}
	if !slices.ContainsFunc(pods, func(p corev1.Pod) bool { return measurable(&p) }) {
		return 0, nil, fmt.Errorf("component %q has no ready pods to measure", rp.spec.Component)
	}
	// The metrics of unready pods are asked for too: they tell an unready pod from a
	// missing one.
	list, err := rp.p.Metrics.PodMetricses(appKey.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: sharedLabels(slices.DeleteFunc(slices.Clone(pods), func(p corev1.Pod) bool { return left(&p) })).String(),
	})
	if err != nil {
		switch {
		case timedOut(ctx, err):
			return 0, nil, fmt.Errorf("listing pod metrics from metrics.k8s.io: no answer within %s", timeout)
		case apierrors.IsNotFound(err):
			return 0, nil, fmt.Errorf("listing pod metrics from metrics.k8s.io: %w (is metrics-server installed?)", err)
		}
		return 0, nil, fmt.Errorf("listing pod metrics from metrics.k8s.io: %w", err)
	}
	value, counts, err := Utilization(pods, list.Items, corev1.ResourceName(rp.spec.Resource), rp.spec.Component)
	if err != nil {
		return 0, nil, err
	}
	return value, &counts, nil
}

// measurable says whether a pod counts for utilization: running, ready and not
// terminating.
func measurable(p *corev1.Pod) bool {
	return !left(p) && p.Status.Phase == corev1.PodRunning && PodReady(p)
}

// left says whether a pod is left out of the count altogether, as the HPA leaves it
// out: it is terminating, or finished (failed or succeeded).
func left(p *corev1.Pod) bool {
	return p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
}

// sharedLabels is a selector of the labels every pod carries: the pods of one workload
// share at least its selector's labels, so metrics-server returns those pods and few
// others (which are dropped by name). With no label in common it selects everything.
func sharedLabels(pods []corev1.Pod) labels.Selector {
	if len(pods) == 0 {
		return labels.Everything()
	}
	common := maps.Clone(pods[0].Labels)
	for _, p := range pods[1:] {
		maps.DeleteFunc(common, func(k, v string) bool { return p.Labels[k] != v })
	}
	if len(common) == 0 {
		return labels.Everything()
	}
	return labels.SelectorFromSet(common)
}

// Utilization is the HPA's resource utilization of a component's pods, in percent of
// their requests, and the pods behind it. The value is the usage summed over the ready
// pods that have metrics, divided by the requests of those same pods, times 100. The
// pods are grouped as the HPA's groupPods groups them, in this order: a terminating or
// finished pod is left out; a pending pod is unready; a pod without a metric (just
// started, or not scraped yet) is missing; a pod that is not running and ready is
// unready; the rest are ready. Only the ready ones make the average; the counts let the
// autoscaler apply the HPA's missing-data rules to the rest (see PodCounts). A ready pod
// that requests no amount of the resource makes the utilization undefined: that is an
// error, in the HPA's words ("missing request for cpu in container app of Pod web-1").
//
// Requests are the pod-level requests when the pod sets them (KEP-2837), otherwise the
// sum over its containers and restartable init containers (sidecars); usage is the sum
// over the containers metrics-server reports, and a pod whose metrics lack a container's
// usage has no metric, as the HPA's metrics client reads it. Unlike the HPA, unready
// pods are set aside for memory too, not only for CPU and not only in their first
// minutes, and the result keeps its fraction.
func Utilization(pods []corev1.Pod, metrics []metricsapi.PodMetrics, resource corev1.ResourceName, component string) (float64, PodCounts, error) {
	usages := make(map[string]int64, len(metrics))
	for i := range metrics {
		if u, ok := podUsage(&metrics[i], resource); ok {
			usages[metrics[i].Name] = u
		}
	}
	var counts PodCounts
	var usage, requested int64
	ready := 0
	for i := range pods {
		p := &pods[i]
		u, measured := usages[p.Name]
		if measurable(p) {
			// Every ready pod must request the resource, measured or not, as the HPA
			// requires of the pods it counts.
			req, err := podRequest(p, resource)
			if err != nil {
				return 0, PodCounts{}, err
			}
			if measured {
				usage += u
				requested += req
			}
			ready++
		}
		switch {
		case left(p):
		case p.Status.Phase == corev1.PodPending:
			counts.Unready++
		case !measured:
			counts.Missing++
		case !measurable(p):
			counts.Unready++
		default:
			counts.Ready++
		}
	}
	switch {
	case counts.Ready == 0:
		return 0, counts, fmt.Errorf("metrics.k8s.io has no %s metrics for the %d ready pods of component %q", resource, ready, component)
	case requested == 0:
		return 0, counts, fmt.Errorf("the ready pods of component %q request no %s", component, resource)
	}
	return float64(usage) * 100 / float64(requested), counts, nil
}

// podRequest is a pod's request of the resource in milli-units, as the HPA computes it.
func podRequest(pod *corev1.Pod, resource corev1.ResourceName) (int64, error) {
	if pod.Spec.Resources != nil {
		if q, ok := pod.Spec.Resources.Requests[resource]; ok {
			return q.MilliValue(), nil
		}
	}
	containers := pod.Spec.Containers
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			containers = append(containers[:len(containers):len(containers)], c)
		}
	}
	var sum int64
	for _, c := range containers {
		q, ok := c.Resources.Requests[resource]
		if !ok {
			return 0, fmt.Errorf("missing request for %s in container %s of Pod %s", resource, c.Name, pod.Name)
		}
		sum += q.MilliValue()
	}
	return sum, nil
}

// podUsage is a pod's usage of the resource in milli-units, summed over its containers;
// false when a container has no such metric, as the HPA's metrics client treats it.
func podUsage(m *metricsapi.PodMetrics, resource corev1.ResourceName) (int64, bool) {
	if len(m.Containers) == 0 {
		return 0, false
	}
	var sum int64
	for _, c := range m.Containers {
		q, ok := c.Usage[resource]
		if !ok {
			return 0, false
		}
		sum += q.MilliValue()
	}
	return sum, true
}
