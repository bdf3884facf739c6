package controllers

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/execute"
	"github.com/homeostat-dev/homeostat/internal/monitor"
)

// newFakeReconciler wires an AppReconciler as main.go does, on a fake client that holds
// objs and the monitor's indexes, with clk as the loop's clock: for tests of one
// reconcile's decisions that need no API server.
func newFakeReconciler(t *testing.T, clk clock.Clock, objs ...client.Object) (client.Client, *AppReconciler) {
	t.Helper()
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	b := fake.NewClientBuilder().WithScheme(scheme).WithStatusSubresource(&v1alpha1.AutonomicApp{}).WithObjects(objs...)
	if err := monitor.SetupIndexes(context.Background(), builderIndexer{b}); err != nil {
		t.Fatal(err)
	}
	c := b.Build()
	rec := &events.FakeRecorder{}
	return c, &AppReconciler{
		Client: c, Recorder: rec, Clock: clk,
		Gatherer:  monitor.Gatherer{Reader: c},
		Effectors: &execute.Effectors{Client: c, Recorder: rec, Clock: clock.RealClock{}},
		Metrics:   newMetrics(prometheus.NewRegistry()),
		Storm:     newStormBreaker(0.5, DefaultStormMinUnhealthy, countApps(c), nil),
		triggers:  newTriggers(),
	}
}
