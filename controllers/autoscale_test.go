package controllers

import (
	"testing"
	"time"

	"k8s.io/utils/ptr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

func TestMetricInputCarriesAResourceSensorsPodsToThePlan(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	cpu := v1alpha1.AutoscaleMetric{Sensor: "cpu", Target: &v1alpha1.MetricTarget{AverageUtilization: ptr.To(int32(50))}}
	cases := []struct {
		name    string
		reading monitor.Reading
		ok      bool
		want    plan.MetricInput
		desired int32 // from 3 replicas, with the default behavior
	}{
		{name: "a resource sensor: 150% over 2 ready pods, 1 missing, is the HPA's 3 -> 6",
			reading: monitor.Reading{Value: 150, At: now, Pods: &monitor.PodCounts{Ready: 2, Missing: 1}}, ok: true,
			want:    plan.MetricInput{Sensor: "cpu", Value: 150, Available: true, ReadyPods: 2, MissingPods: 1},
			desired: 6},
		{name: "unready pods reach the plan too and damp a scale up",
			reading: monitor.Reading{Value: 150, At: now, Pods: &monitor.PodCounts{Ready: 2, Unready: 1}}, ok: true,
			want:    plan.MetricInput{Sensor: "cpu", Value: 150, Available: true, ReadyPods: 2, UnreadyPods: 1},
			desired: 6},
		{name: "a sensor of another kind has no pods: the replicas count as ready, 9 cut to 7",
			reading: monitor.Reading{Value: 150, At: now}, ok: true,
			want:    plan.MetricInput{Sensor: "cpu", Value: 150, Available: true},
			desired: 7},
		{name: "a failing sensor is unavailable, whatever its last pods",
			reading: monitor.Reading{Value: 150, At: now, Err: "down", ConsecutiveFailures: 1, Pods: &monitor.PodCounts{Ready: 3}}, ok: true,
			want:    plan.MetricInput{Sensor: "cpu", Value: 150, ReadyPods: 3},
			desired: 3},
		{name: "a sensor not polled yet is unavailable",
			want:    plan.MetricInput{Sensor: "cpu"},
			desired: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := metricInput("cpu", tc.reading, tc.ok)
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
			d := plan.Autoscale(plan.AutoscaleInput{
				Now: now, CurrentReplicas: 3, Metrics: []plan.MetricInput{got},
				Policy:  v1alpha1.AutoscalePolicy{Component: "web", MinReplicas: ptr.To(int32(1)), MaxReplicas: 10, Metrics: []v1alpha1.AutoscaleMetric{cpu}},
				History: []plan.Recommendation{{Time: now.Add(-time.Hour), Replicas: 3}},
			})
			if d.Desired != tc.desired {
				t.Fatalf("3 -> %d (%s), want %d", d.Desired, d.Message, tc.desired)
			}
		})
	}
}
