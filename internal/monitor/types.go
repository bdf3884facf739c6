package monitor

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// Component is what the monitor gathered about one component of an app: the workload
// (nil when it does not exist), its pods, for a Deployment its ReplicaSets and for a
// StatefulSet its ControllerRevisions. For a child app, Child is set instead.
type Component struct {
	// Name is the component's name in the app.
	Name string
	// Ref is the component's workload reference; nil for a child app.
	Ref *v1alpha1.WorkloadReference
	// Workload is the *appsv1.Deployment, *appsv1.StatefulSet or *appsv1.ReplicaSet, from
	// the informer cache; nil when not found.
	Workload client.Object
	// ReplicaSets are a Deployment's ReplicaSets (owned by it), for rollback.
	ReplicaSets []appsv1.ReplicaSet
	// Revisions are a StatefulSet's ControllerRevisions (owned by it), for rollback.
	Revisions []appsv1.ControllerRevision
	// Pods are the workload's pods (owned by it or, for a Deployment, by its ReplicaSets).
	Pods []corev1.Pod
	// Child is the child app of an appRef component; nil when not found or a workload.
	Child *v1alpha1.AutonomicApp
	// Status is the built-in sensors computed from the above.
	Status v1alpha1.ComponentStatus
}
