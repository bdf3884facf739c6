package monitor

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// Trim is the cache transform: it drops what no sensor or effector reads, so the cache
// stays small as apps grow. Managed fields go from every object; pods keep their
// metadata, node, pod-level resources, per container only name, image, requests and
// restart policy (resource sensors read the requests), and of their status the phase, the
// Ready condition and per container what the sensors count (ready, restarts, state and
// last state, without messages); ReplicaSets keep their template (rollback copies it), and
// so do a StatefulSet's ControllerRevisions; other ControllerRevisions lose their data.
//
// What is kept is then shared between objects that hold equal values (see intern.go):
// labels, annotations, owner references, selectors, pod templates' containers and
// volumes, pods' containers and requests. An app, decoded from JSON with slices grown
// as it was read, is replaced by its exact-size copy.
//
// A pod is most of what the cache holds per app (three of them here against one app,
// Deployment and ReplicaSet), so each field dropped from it counts three times.
func Trim(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		// Written only when there is something to drop: an object trimmed before (a
		// cached one handed back) has shared maps and readers.
		if len(m.GetManagedFields()) > 0 {
			m.SetManagedFields(nil)
		}
		if a := m.GetAnnotations(); a[corev1.LastAppliedConfigAnnotation] != "" {
			// The object's own map for a typed object, a copy for an unstructured one.
			delete(a, corev1.LastAppliedConfigAnnotation)
			m.SetAnnotations(a)
		}
	}
	if app, ok := obj.(*v1alpha1.AutonomicApp); ok {
		obj = app.DeepCopy()
	}
	in := shared
	if _, ok := obj.(runtime.Unstructured); !ok {
		if m, ok := obj.(metav1.Object); ok {
			in.object(m)
		}
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		trimPodSpec(in, &o.Spec)
		trimPodStatus(in, &o.Status)
	case *corev1.Node:
		o.Status.Images = nil
	case *appsv1.Deployment:
		o.Spec.Selector = in.selector(o.Spec.Selector)
		in.podTemplate(&o.Spec.Template)
	case *appsv1.ReplicaSet:
		o.Spec.Selector = in.selector(o.Spec.Selector)
		in.podTemplate(&o.Spec.Template)
	case *appsv1.StatefulSet:
		o.Spec.Selector = in.selector(o.Spec.Selector)
		in.podTemplate(&o.Spec.Template)
	case *appsv1.ControllerRevision:
		// A StatefulSet's revisions keep their data, the pod template a rollback returns
		// to; a DaemonSet's (or anyone else's) are never read.
		if ref := metav1.GetControllerOf(o); ref == nil || ref.Kind != "StatefulSet" {
			o.Data = runtime.RawExtension{}
		}
	}
	return obj, nil
}

func trimPodSpec(in *interner, s *corev1.PodSpec) {
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
		return in.containers(out)
	}
	*s = corev1.PodSpec{NodeName: str(s.NodeName), Containers: trim(s.Containers), InitContainers: trim(s.InitContainers),
		Resources: s.Resources, RestartPolicy: corev1.RestartPolicy(str(string(s.RestartPolicy)))}
}

// readyConditions are the two Ready conditions a trimmed pod can have, shared by all.
var readyConditions = map[corev1.ConditionStatus][]corev1.PodCondition{
	corev1.ConditionTrue:    {{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
	corev1.ConditionFalse:   {{Type: corev1.PodReady, Status: corev1.ConditionFalse}},
	corev1.ConditionUnknown: {{Type: corev1.PodReady, Status: corev1.ConditionUnknown}},
}

func trimPodStatus(in *interner, s *corev1.PodStatus) {
	var conditions []corev1.PodCondition
	for _, c := range s.Conditions {
		if c.Type == corev1.PodReady {
			conditions = readyConditions[c.Status]
			if conditions == nil {
				conditions = []corev1.PodCondition{{Type: c.Type, Status: c.Status}}
			}
		}
	}
	trim := func(cs []corev1.ContainerStatus) []corev1.ContainerStatus {
		if len(cs) == 0 {
			return nil
		}
		out := make([]corev1.ContainerStatus, len(cs))
		for i, c := range cs {
			out[i] = corev1.ContainerStatus{Name: str(c.Name), Ready: c.Ready, RestartCount: c.RestartCount,
				State: withoutMessages(c.State), LastTerminationState: withoutMessages(c.LastTerminationState)}
		}
		return out
	}
	*s = corev1.PodStatus{Phase: corev1.PodPhase(str(string(s.Phase))), Conditions: conditions,
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
