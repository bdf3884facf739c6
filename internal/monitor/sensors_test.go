package monitor

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func pod(name string, phase corev1.PodPhase, ready bool, mutate ...func(*corev1.Pod)) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{Phase: phase}}
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app"}}
	for _, m := range mutate {
		m(&p)
	}
	return p
}

func crashing(restarts int32) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses[0].RestartCount = restarts
		p.Status.ContainerStatuses[0].State.Waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}
	}
}

func deployment(replicas, available int32, conds ...appsv1.DeploymentCondition) *appsv1.Deployment {
	return &appsv1.Deployment{
		Spec:   appsv1.DeploymentSpec{Replicas: ptr.To(replicas)},
		Status: appsv1.DeploymentStatus{AvailableReplicas: available, Conditions: conds},
	}
}

func TestComputeStatus(t *testing.T) {
	ref := &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}
	now := metav1.Now()
	cases := []struct {
		name string
		c    Component
		want v1alpha1.ComponentStatus
	}{
		{name: "missing workload is not found and not healthy",
			c:    Component{Name: "web", Ref: ref},
			want: v1alpha1.ComponentStatus{Name: "web", Kind: "Deployment", Message: `Deployment "web" not found.`}},
		{name: "all pods ready is healthy",
			c: Component{Name: "web", Ref: ref, Workload: deployment(2, 2),
				Pods: []corev1.Pod{pod("a", corev1.PodRunning, true), pod("b", corev1.PodRunning, true)}},
			want: v1alpha1.ComponentStatus{Name: "web", Kind: "Deployment", Found: true, Healthy: true,
				DesiredReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2}},
		{name: "a crash-looping pod is seen from the pod before the workload status catches up",
			c: Component{Name: "web", Ref: ref, Workload: deployment(2, 2),
				Pods: []corev1.Pod{pod("a", corev1.PodRunning, true), pod("b", corev1.PodRunning, false, crashing(4))}},
			want: v1alpha1.ComponentStatus{Name: "web", Kind: "Deployment", Found: true, DesiredReplicas: 2, ReadyReplicas: 1,
				AvailableReplicas: 1, UnavailableReplicas: 1, Restarts: 4, CrashLoopingPods: 1, Message: "1 of 2 pods are crash-looping."}},
		{name: "pending and OOM-killed pods are counted",
			c: Component{Name: "web", Ref: ref, Workload: deployment(2, 0), Pods: []corev1.Pod{
				pod("a", corev1.PodPending, false),
				pod("b", corev1.PodRunning, true, func(p *corev1.Pod) {
					p.Status.ContainerStatuses[0].LastTerminationState.Terminated = &corev1.ContainerStateTerminated{Reason: "OOMKilled"}
				})}},
			want: v1alpha1.ComponentStatus{Name: "web", Kind: "Deployment", Found: true, DesiredReplicas: 2, ReadyReplicas: 1,
				UnavailableReplicas: 2, PendingPods: 1, OOMKilledPods: 1, Message: "1 of 2 replicas are ready."}},
		{name: "terminating pods are ignored",
			c: Component{Name: "web", Ref: ref, Workload: deployment(1, 1), Pods: []corev1.Pod{
				pod("a", corev1.PodRunning, true),
				pod("b", corev1.PodRunning, false, crashing(9), func(p *corev1.Pod) { p.DeletionTimestamp = &now })}},
			want: v1alpha1.ComponentStatus{Name: "web", Kind: "Deployment", Found: true, Healthy: true, DesiredReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}},
		{name: "a stuck rollout is unhealthy",
			c: Component{Name: "web", Ref: ref, Workload: deployment(1, 1, appsv1.DeploymentCondition{
				Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded"}),
				Pods: []corev1.Pod{pod("a", corev1.PodRunning, true)}},
			want: v1alpha1.ComponentStatus{Name: "web", Kind: "Deployment", Found: true, DesiredReplicas: 1, ReadyReplicas: 1,
				AvailableReplicas: 1, RolloutStuck: true, Message: "The rollout exceeded its progress deadline."}},
		{name: "scaled to zero is healthy",
			c:    Component{Name: "web", Ref: ref, Workload: deployment(0, 0)},
			want: v1alpha1.ComponentStatus{Name: "web", Kind: "Deployment", Found: true, Healthy: true}},
		{name: "a child app rolls up its Healthy condition and phase",
			c: Component{Name: "pay", Child: &v1alpha1.AutonomicApp{Status: v1alpha1.AutonomicAppStatus{Phase: v1alpha1.PhaseDegraded,
				Conditions: []metav1.Condition{{Type: v1alpha1.ConditionHealthy, Status: metav1.ConditionFalse}}}}},
			want: v1alpha1.ComponentStatus{Name: "pay", Kind: "AutonomicApp", Found: true, Phase: v1alpha1.PhaseDegraded, Message: "Child app is Degraded."}},
		{name: "a missing child app",
			c:    Component{Name: "pay"},
			want: v1alpha1.ComponentStatus{Name: "pay", Kind: "AutonomicApp", Message: "Child AutonomicApp not found."}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ComputeStatus(&tc.c); got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestTrimKeepsWhatSensorsRead(t *testing.T) {
	p := pod("a", corev1.PodRunning, true, crashing(2))
	p.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
	p.Spec = corev1.PodSpec{NodeName: "n1", Volumes: []corev1.Volume{{Name: "v"}}, Containers: []corev1.Container{{
		Name: "app", Image: "x:1", Env: []corev1.EnvVar{{Name: "A", Value: "b"}},
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: *resourceQty("100m")}},
	}}}
	out, err := Trim(&p)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Pod)
	if got.ManagedFields != nil || got.Spec.Volumes != nil || got.Spec.Containers[0].Env != nil {
		t.Fatalf("not trimmed: %+v", got)
	}
	if got.Spec.NodeName != "n1" || got.Spec.Containers[0].Image != "x:1" || got.Spec.Containers[0].Resources.Requests.Cpu().MilliValue() != 100 ||
		got.Status.ContainerStatuses[0].RestartCount != 2 {
		t.Fatalf("trimmed too much: %+v", got)
	}
}

func resourceQty(s string) *resource.Quantity { q := resource.MustParse(s); return &q }
