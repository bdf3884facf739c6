package monitor

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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

func statefulSet(replicas *int32, available int32) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		Spec:   appsv1.StatefulSetSpec{Replicas: replicas},
		Status: appsv1.StatefulSetStatus{AvailableReplicas: available},
	}
}

func replicaSet(replicas, available int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		Spec:   appsv1.ReplicaSetSpec{Replicas: ptr.To(replicas)},
		Status: appsv1.ReplicaSetStatus{AvailableReplicas: available},
	}
}

func TestComputeStatus(t *testing.T) {
	ref := &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}
	stsRef := &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db"}
	rsRef := &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "batch"}
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

		// StatefulSets: desired and available come from the StatefulSet, the rest from its pods.
		{name: "a missing StatefulSet is not found and names its kind",
			c:    Component{Name: "db", Ref: stsRef},
			want: v1alpha1.ComponentStatus{Name: "db", Kind: "StatefulSet", Message: `StatefulSet "db" not found.`}},
		{name: "a StatefulSet with every pod ready is healthy",
			c: Component{Name: "db", Ref: stsRef, Workload: statefulSet(ptr.To(int32(3)), 3), Pods: []corev1.Pod{
				pod("db-0", corev1.PodRunning, true), pod("db-1", corev1.PodRunning, true), pod("db-2", corev1.PodRunning, true)}},
			want: v1alpha1.ComponentStatus{Name: "db", Kind: "StatefulSet", Found: true, Healthy: true,
				DesiredReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}},
		{name: "a StatefulSet without replicas wants one, as the API server defaults it",
			c: Component{Name: "db", Ref: stsRef, Workload: statefulSet(nil, 0), Pods: []corev1.Pod{pod("db-0", corev1.PodPending, false)}},
			want: v1alpha1.ComponentStatus{Name: "db", Kind: "StatefulSet", Found: true, DesiredReplicas: 1,
				UnavailableReplicas: 1, PendingPods: 1, Message: "0 of 1 replicas are ready."}},
		{name: "a crash-looping StatefulSet pod is seen before the StatefulSet's status catches up",
			c: Component{Name: "db", Ref: stsRef, Workload: statefulSet(ptr.To(int32(3)), 3), Pods: []corev1.Pod{
				pod("db-0", corev1.PodRunning, true), pod("db-1", corev1.PodRunning, false, crashing(7)), pod("db-2", corev1.PodRunning, true)}},
			want: v1alpha1.ComponentStatus{Name: "db", Kind: "StatefulSet", Found: true, DesiredReplicas: 3, ReadyReplicas: 2,
				AvailableReplicas: 2, UnavailableReplicas: 1, Restarts: 7, CrashLoopingPods: 1, Message: "1 of 3 pods are crash-looping."}},
		{name: "a StatefulSet with a pod missing is unhealthy though every pod it has is ready",
			c: Component{Name: "db", Ref: stsRef, Workload: statefulSet(ptr.To(int32(3)), 2), Pods: []corev1.Pod{
				pod("db-0", corev1.PodRunning, true), pod("db-1", corev1.PodRunning, true)}},
			want: v1alpha1.ComponentStatus{Name: "db", Kind: "StatefulSet", Found: true, DesiredReplicas: 3, ReadyReplicas: 2,
				AvailableReplicas: 2, UnavailableReplicas: 1, Message: "2 of 3 replicas are ready."}},

		// A bare ReplicaSet, owned by no Deployment.
		{name: "a missing ReplicaSet is not found and names its kind",
			c:    Component{Name: "batch", Ref: rsRef},
			want: v1alpha1.ComponentStatus{Name: "batch", Kind: "ReplicaSet", Message: `ReplicaSet "batch" not found.`}},
		{name: "a bare ReplicaSet with every pod ready is healthy",
			c: Component{Name: "batch", Ref: rsRef, Workload: replicaSet(2, 2), Pods: []corev1.Pod{
				pod("batch-a", corev1.PodRunning, true), pod("batch-b", corev1.PodRunning, true)}},
			want: v1alpha1.ComponentStatus{Name: "batch", Kind: "ReplicaSet", Found: true, Healthy: true,
				DesiredReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2}},
		{name: "a bare ReplicaSet counts crash-looping, OOM-killed and pending pods from the pods",
			c: Component{Name: "batch", Ref: rsRef, Workload: replicaSet(3, 3), Pods: []corev1.Pod{
				pod("batch-a", corev1.PodRunning, false, crashing(3)),
				pod("batch-b", corev1.PodRunning, true, func(p *corev1.Pod) {
					p.Status.ContainerStatuses[0].RestartCount = 1
					p.Status.ContainerStatuses[0].LastTerminationState.Terminated = &corev1.ContainerStateTerminated{Reason: "OOMKilled"}
				}),
				pod("batch-c", corev1.PodPending, false)}},
			want: v1alpha1.ComponentStatus{Name: "batch", Kind: "ReplicaSet", Found: true, DesiredReplicas: 3, ReadyReplicas: 1,
				AvailableReplicas: 1, UnavailableReplicas: 2, Restarts: 4, CrashLoopingPods: 1, OOMKilledPods: 1, PendingPods: 1,
				Message: "1 of 3 pods are crash-looping."}},
		{name: "a bare ReplicaSet is never a stuck rollout, whatever its conditions say",
			c: Component{Name: "batch", Ref: rsRef, Workload: func() *appsv1.ReplicaSet {
				rs := replicaSet(1, 1)
				rs.Status.Conditions = []appsv1.ReplicaSetCondition{{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue}}
				return rs
			}(), Pods: []corev1.Pod{pod("batch-a", corev1.PodRunning, true)}},
			want: v1alpha1.ComponentStatus{Name: "batch", Kind: "ReplicaSet", Found: true, Healthy: true,
				DesiredReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}},
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

func TestTrimKeepsOnlyAStatefulSetsRevisionData(t *testing.T) {
	data := runtime.RawExtension{Raw: []byte(`{"spec":{"template":{"$patch":"replace"}}}`)}
	rev := func(kind string) *appsv1.ControllerRevision {
		return &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "r",
			OwnerReferences: []metav1.OwnerReference{{Kind: kind, Name: "x", Controller: ptr.To(true)}}}, Data: data, Revision: 3}
	}
	for kind, keep := range map[string]bool{"StatefulSet": true, "DaemonSet": false, "": false} {
		out, err := Trim(rev(kind))
		if err != nil {
			t.Fatal(err)
		}
		got := out.(*appsv1.ControllerRevision)
		if kept := len(got.Data.Raw) > 0; kept != keep || got.Revision != 3 {
			t.Errorf("a revision owned by %q: data kept %v, revision %d; want kept %v, revision 3", kind, kept, got.Revision, keep)
		}
	}
}

func resourceQty(s string) *resource.Quantity { q := resource.MustParse(s); return &q }

// kubeletPod is a pod as the API server returns it: defaulted spec, every condition,
// container statuses with images, ids and messages.
func kubeletPod(name string, mutate ...func(*corev1.Pod)) corev1.Pod {
	now := metav1.Now()
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "web"},
			Annotations: map[string]string{v1alpha1.ActionIDAnnotation: "heal-1", corev1.LastAppliedConfigAnnotation: "{}"}},
		Spec: corev1.PodSpec{
			NodeName: "n1", SchedulerName: "default-scheduler", ServiceAccountName: "default", DNSPolicy: corev1.DNSClusterFirst,
			RestartPolicy: corev1.RestartPolicyAlways, TerminationGracePeriodSeconds: ptr.To(int64(30)),
			SecurityContext: &corev1.PodSecurityContext{}, Volumes: []corev1.Volume{{Name: "token"}},
			Tolerations: []corev1.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists}},
			InitContainers: []corev1.Container{{Name: "proxy", Image: "proxy:1", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: *resourceQty("50m")}}}},
			Containers: []corev1.Container{{Name: "app", Image: "app:1", ImagePullPolicy: corev1.PullIfNotPresent,
				Env: []corev1.EnvVar{{Name: "A", Value: "b"}}, VolumeMounts: []corev1.VolumeMount{{Name: "token", MountPath: "/var/run"}},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: *resourceQty("100m")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: *resourceQty("1")}}}},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, HostIP: "10.0.0.1", PodIP: "10.1.0.1", PodIPs: []corev1.PodIP{{IP: "10.1.0.1"}},
			StartTime: &now, QOSClass: corev1.PodQOSBurstable,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			},
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "proxy", Image: "proxy:1", Ready: true,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Image: "app:1", ImageID: "sha256:0123", ContainerID: "containerd://abc",
				Ready: true, Started: ptr.To(true), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}},
		},
	}
	for _, m := range mutate {
		m(&p)
	}
	return p
}

func TestTrimLeavesEverySensorAsItWas(t *testing.T) {
	notReady := func(p *corev1.Pod) {
		p.Status.Conditions[1].Status = corev1.ConditionFalse
		p.Status.ContainerStatuses[0].Ready = false
	}
	crashLoop := func(p *corev1.Pod) {
		notReady(p)
		p.Status.ContainerStatuses[0].RestartCount = 4
		p.Status.ContainerStatuses[0].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason: "CrashLoopBackOff", Message: "back-off 40s restarting failed container=app"}}
		p.Status.ContainerStatuses[0].LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 1, Reason: "Error", Message: "panic: boom"}}
	}
	oom := func(p *corev1.Pod) {
		p.Status.ContainerStatuses[0].RestartCount = 1
		p.Status.ContainerStatuses[0].LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 137, Reason: "OOMKilled"}}
	}
	pending := func(p *corev1.Pod) {
		p.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/3 nodes are available"}}}
	}
	terminating := func(p *corev1.Pod) { p.DeletionTimestamp = ptr.To(metav1.Now()) }
	pods := []corev1.Pod{kubeletPod("ok"), kubeletPod("not-ready", notReady), kubeletPod("crash", crashLoop),
		kubeletPod("oom", oom), kubeletPod("pending", pending), kubeletPod("terminating", terminating, crashLoop)}

	ref := &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}
	full := Component{Name: "web", Ref: ref, Workload: deployment(6, 6), Pods: pods}
	trimmed := full
	trimmed.Pods = nil
	for i := range pods {
		p := pods[i].DeepCopy()
		if _, err := Trim(p); err != nil {
			t.Fatal(err)
		}
		trimmed.Pods = append(trimmed.Pods, *p)
		if PodUnhealthy(p) != PodUnhealthy(&pods[i]) || PodReady(p) != PodReady(&pods[i]) {
			t.Errorf("pod %s: unhealthy or ready changed by the trim", p.Name)
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			a, errA := podRequest(p, r)
			b, errB := podRequest(&pods[i], r)
			if a != b || (errA == nil) != (errB == nil) {
				t.Errorf("pod %s: the %s request changed by the trim: %d (%v), was %d (%v)", p.Name, r, a, errA, b, errB)
			}
		}
	}
	if got, want := ComputeStatus(&trimmed), ComputeStatus(&full); got != want {
		t.Fatalf("sensors changed by the trim:\ngot  %+v\nwant %+v", got, want)
	}
	if total, unhealthy, terminating := HealthyPods(&trimmed); total != 5 || unhealthy != 4 || terminating != 1 {
		t.Fatalf("HealthyPods of the trimmed pods = %d, %d, %d; want 5, 4 (not ready, crash, OOM, pending), 1", total, unhealthy, terminating)
	}

	got := trimmed.Pods[2]
	switch {
	case got.Spec.Volumes != nil || got.Spec.Tolerations != nil || got.Spec.SecurityContext != nil || got.Spec.Containers[0].Env != nil ||
		got.Spec.Containers[0].Resources.Limits != nil:
		t.Errorf("the spec was not trimmed: %+v", got.Spec)
	case len(got.Status.Conditions) != 1 || got.Status.PodIP != "" || got.Status.StartTime != nil ||
		got.Status.ContainerStatuses[0].ImageID != "" || got.Status.ContainerStatuses[0].State.Waiting.Message != "":
		t.Errorf("the status was not trimmed: %+v", got.Status)
	case got.Annotations[v1alpha1.ActionIDAnnotation] != "heal-1" || got.Annotations[corev1.LastAppliedConfigAnnotation] != "" ||
		got.Spec.NodeName != "n1" || got.Spec.InitContainers[0].RestartPolicy == nil || got.Labels["app"] != "web":
		t.Errorf("trimmed what effectors read: %+v", got.ObjectMeta)
	}
}
