package controllers

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/egress"
	"github.com/homeostat-dev/homeostat/internal/egress/egresstest"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

func TestTheSummaryNamesTheSensorsWhoseTimeoutsTheEgressMaximumCuts(t *testing.T) {
	d := func(x time.Duration) *metav1.Duration { return &metav1.Duration{Duration: x} }
	sensors := []v1alpha1.Sensor{
		{Name: "probe", HTTP: &v1alpha1.HTTPSensor{URL: "http://web.shop.svc/healthz", Timeout: d(time.Minute)}},
		{Name: "latency", Timeout: d(45 * time.Second), Prometheus: &v1alpha1.PrometheusSensor{Address: "http://prometheus.monitoring:9090", Query: "up"}},
		{Name: "quick", Timeout: d(5 * time.Second), HTTP: &v1alpha1.HTTPSensor{URL: "http://web.shop.svc/healthz"}},
		// Not an outbound request: the API server's own timeouts apply.
		{Name: "depth", Timeout: d(time.Hour), Object: &v1alpha1.ObjectSensor{Expression: "1.0"}},
	}
	r := &AppReconciler{Poller: &monitor.Poller{Egress: egresstest.AllowLoopback(t, func(c *egress.Config) { c.MaxTimeout = 30 * time.Second })}}
	want := []plan.CappedTimeout{{Sensor: "probe", Asked: time.Minute, Cap: 30 * time.Second}, {Sensor: "latency", Asked: 45 * time.Second, Cap: 30 * time.Second}}
	if got := r.cappedTimeouts(sensors); !slices.Equal(got, want) {
		t.Errorf("cappedTimeouts() = %v, want %v", got, want)
	}
	if got := (&AppReconciler{}).cappedTimeouts(sensors); got != nil {
		t.Errorf("without a poller: %v", got)
	}
}
