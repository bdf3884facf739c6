package controllers

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/execute"
	"github.com/homeostat-dev/homeostat/internal/monitor"
)

// newFakeReconciler wires an AppReconciler as main.go does, on a fake client that holds
// objs and the monitor's indexes, with clk as the loop's clock: for tests of one
// reconcile's decisions that need no API server.
func newFakeReconciler(t *testing.T, clk clock.Clock, objs ...client.Object) (client.Client, *AppReconciler) {
	return newFakeReconcilerWith(t, clk, interceptor.Funcs{}, objs...)
}

// newFakeReconcilerWith is newFakeReconciler with the client's calls intercepted.
func newFakeReconcilerWith(t *testing.T, clk clock.Clock, funcs interceptor.Funcs, objs ...client.Object) (client.Client, *AppReconciler) {
	t.Helper()
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	b := fake.NewClientBuilder().WithScheme(scheme).WithStatusSubresource(&v1alpha1.AutonomicApp{}).WithObjects(objs...).
		WithInterceptorFuncs(funcs)
	if err := monitor.SetupIndexes(context.Background(), builderIndexer{b}); err != nil {
		t.Fatal(err)
	}
	c := b.Build()
	return c, reconcilerOn(c, clk)
}

// reconcilerOn is a new AppReconciler on c, with nothing in memory: a new manager
// process against the same cluster.
func reconcilerOn(c client.Client, clk clock.Clock) *AppReconciler {
	rec := &events.FakeRecorder{}
	return &AppReconciler{
		Client: c, Recorder: rec, Clock: clk,
		Gatherer:  monitor.Gatherer{Reader: c},
		Effectors: &execute.Effectors{Client: c, Recorder: rec, Clock: clock.RealClock{}},
		Metrics:   newMetrics(prometheus.NewRegistry()),
		Storm:     newStormBreaker(0.5, DefaultStormMinUnhealthy, DefaultStormMinNamespaces, countApps(c), nil),
		triggers:  newTriggers(),
	}
}

// unreadyWeb is the shop namespace, a Deployment web of 2 replicas and an app shop on it
// whose symptom Unready is always active (no pod is ever ready without a controller
// manager), with a policy heal of the given ladder.
func unreadyWeb(image string, steps ...v1alpha1.RemediationStep) []client.Object {
	labels := map[string]string{"app": "web"}
	web := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Generation: 1},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}}},
	}
	app := &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop"},
		Spec: v1alpha1.AutonomicAppSpec{
			Mode:       v1alpha1.ModeActive,
			Components: []v1alpha1.Component{{Name: "web", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}}},
			Healing: v1alpha1.Healing{
				Symptoms: []v1alpha1.Symptom{{Name: "Unready", Expression: "components.web.readyReplicas < components.web.desiredReplicas"}},
				Policies: []v1alpha1.Policy{{Name: "heal", Remediate: &v1alpha1.RemediatePolicy{When: []string{"Unready"}, Steps: steps}}},
			},
		},
	}
	return []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, web, app}
}
