package monitor

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Trim is the cache transform: it drops what no sensor or effector reads, so the cache
// stays small as apps grow. Managed fields go from every object; pods keep their
// metadata, node, pod-level resources, per container only name, image, requests and
// restart policy (resource sensors read the requests), and of their status the phase, the
// Ready condition and per container what the sensors count (ready, restarts, state and
// last state, without messages); ReplicaSets keep their template (rollback copies it), and
// so do a StatefulSet's ControllerRevisions; other ControllerRevisions lose their data.
//
// A pod is most of what the cache holds per app (three of them here against one app,
// Deployment and ReplicaSet), so each field dropped from it counts three times.
func Trim(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
		if a := m.GetAnnotations(); a != nil {
			delete(a, corev1.LastAppliedConfigAnnotation)
		}
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		trimPodSpec(&o.Spec)
		trimPodStatus(&o.Status)
	case *corev1.Node:
		o.Status.Images = nil
	case *appsv1.Deployment:
		delete(o.Annotations, corev1.LastAppliedConfigAnnotation)
	case *appsv1.ControllerRevision:
		// A StatefulSet's revisions keep their data, the pod template a rollback returns
		// to; a DaemonSet's (or anyone else's) are never read.
		if ref := metav1.GetControllerOf(o); ref == nil || ref.Kind != "StatefulSet" {
			o.Data = runtime.RawExtension{}
		}
	}
	return obj, nil
}

func trimPodSpec(s *corev1.PodSpec) {
	trim := func(cs []corev1.Container) []corev1.Container {
		if len(cs) == 0 {
			return nil
		}
		out := make([]corev1.Container, len(cs))
		for i, c := range cs {
			// RestartPolicy marks a sidecar, whose requests count for the pod.
			out[i] = corev1.Container{Name: c.Name, Image: c.Image,
				Resources: corev1.ResourceRequirements{Requests: c.Resources.Requests}, RestartPolicy: c.RestartPolicy}
		}
		return out
	}
	*s = corev1.PodSpec{NodeName: s.NodeName, Containers: trim(s.Containers), InitContainers: trim(s.InitContainers),
		Resources: s.Resources, RestartPolicy: s.RestartPolicy}
}

func trimPodStatus(s *corev1.PodStatus) {
	var conditions []corev1.PodCondition
	for _, c := range s.Conditions {
		if c.Type == corev1.PodReady {
			conditions = []corev1.PodCondition{{Type: c.Type, Status: c.Status}}
		}
	}
	trim := func(cs []corev1.ContainerStatus) []corev1.ContainerStatus {
		if len(cs) == 0 {
			return nil
		}
		out := make([]corev1.ContainerStatus, len(cs))
		for i, c := range cs {
			out[i] = corev1.ContainerStatus{Name: c.Name, Ready: c.Ready, RestartCount: c.RestartCount,
				State: withoutMessages(c.State), LastTerminationState: withoutMessages(c.LastTerminationState)}
		}
		return out
	}
	*s = corev1.PodStatus{Phase: s.Phase, Conditions: conditions,
		ContainerStatuses: trim(s.ContainerStatuses), InitContainerStatuses: trim(s.InitContainerStatuses)}
}

// withoutMessages drops the free-text messages of a container state; the sensors read
// its reasons.
func withoutMessages(st corev1.ContainerState) corev1.ContainerState {
	if st.Waiting != nil {
		st.Waiting.Message = ""
	}
	if st.Terminated != nil {
		st.Terminated.Message = ""
	}
	return st
}
