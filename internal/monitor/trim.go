package monitor

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
)

// Trim is the cache transform: it drops what no sensor or effector reads, so the cache
// stays small as apps grow. Managed fields go from every object; pods keep their
// metadata, status, node, and per container only name, image and resources (resource
// sensors read the requests); ReplicaSets keep their template (rollback copies it).
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
	case *corev1.Node:
		o.Status.Images = nil
	case *appsv1.Deployment:
		delete(o.Annotations, corev1.LastAppliedConfigAnnotation)
	}
	return obj, nil
}

func trimPodSpec(s *corev1.PodSpec) {
	s.Volumes = nil
	s.Affinity = nil
	s.Tolerations = nil
	s.TopologySpreadConstraints = nil
	trim := func(cs []corev1.Container) []corev1.Container {
		out := make([]corev1.Container, len(cs))
		for i, c := range cs {
			// RestartPolicy marks a sidecar, whose requests count for the pod.
			out[i] = corev1.Container{Name: c.Name, Image: c.Image, Resources: c.Resources, RestartPolicy: c.RestartPolicy}
		}
		return out
	}
	s.Containers = trim(s.Containers)
	s.InitContainers = trim(s.InitContainers)
	s.EphemeralContainers = nil
}
