package execute

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/monitor"
)

// fakeDeployment builds the monitor's view of a Deployment component "web" for the
// table tests, which do no I/O.
type fakeDeployment struct {
	replicas int32
	mutate   func(*appsv1.Deployment)
	rss      []appsv1.ReplicaSet
}

func (f *fakeDeployment) deployment() *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "web-uid"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(f.replicas),
			Template: podTemplateSpec("web:v1"),
		},
	}
	if f.mutate != nil {
		f.mutate(d)
	}
	return d
}

func (f *fakeDeployment) component(pods ...corev1.Pod) *monitor.Component {
	return &monitor.Component{
		Name:        "web",
		Ref:         &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: kindDeployment, Name: "web"},
		Workload:    f.deployment(),
		ReplicaSets: f.rss,
		Pods:        pods,
	}
}

func TestRolloutPods(t *testing.T) {
	ip := func(v intstr.IntOrString) *intstr.IntOrString { return &v }
	tests := []struct {
		name string
		obj  client.Object
		want int
	}{
		{"a Deployment's default rolling update takes 25% down, rounded down",
			&appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](8)}}, 2},
		{"a Deployment with maxUnavailable 0 and a surge takes none down", &appsv1.Deployment{Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](4), Strategy: appsv1.DeploymentStrategy{RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: ip(intstr.FromInt32(0)), MaxSurge: ip(intstr.FromInt32(1))}}}}, 0},
		{"a Deployment with maxUnavailable 0% and maxSurge 0% takes one down, as the controller does",
			&appsv1.Deployment{Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](3), Strategy: appsv1.DeploymentStrategy{RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ip(intstr.FromString("0%")), MaxSurge: ip(intstr.FromString("0%"))}}}}, 1},
		{"a Recreate Deployment takes every replica down", &appsv1.Deployment{Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](5), Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}}}, 5},
		{"a StatefulSet takes one pod down by default", &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](3)}}, 1},
		{"a StatefulSet's maxUnavailable rounds up", &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](5), UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{MaxUnavailable: ip(intstr.FromString("30%"))}}}}, 2},
		{"a workload with no replicas takes none down", &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](0)}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rolloutPods(tt.obj); got != tt.want {
				t.Errorf("rolloutPods() = %d, want %d", got, tt.want)
			}
		})
	}
}
