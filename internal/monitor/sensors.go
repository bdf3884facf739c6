package monitor

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// PodUnhealthy says whether a pod needs attention: pending, not ready, a container in
// CrashLoopBackOff, or a container last killed for running out of memory. A pod that is
// terminating is not unhealthy: it is on its way out.
func PodUnhealthy(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded {
		return false
	}
	return p.Status.Phase != corev1.PodRunning || !PodReady(p) || crashLooping(p) || oomKilled(p)
}

// PodReady is the pod's Ready condition.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func crashLooping(p *corev1.Pod) bool {
	for _, cs := range containerStatuses(p) {
		if cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff" {
			return true
		}
	}
	return false
}

func oomKilled(p *corev1.Pod) bool {
	for _, cs := range containerStatuses(p) {
		if t := cs.LastTerminationState.Terminated; t != nil && t.Reason == "OOMKilled" {
			return true
		}
		if t := cs.State.Terminated; t != nil && t.Reason == "OOMKilled" {
			return true
		}
	}
	return false
}

func containerStatuses(p *corev1.Pod) []corev1.ContainerStatus {
	return append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
}

// ComputeStatus turns what was gathered into the built-in sensors of a component.
// Ready, restart, crash-loop, OOM and pending counts come from the pods themselves, so a
// failed pod is seen as soon as its status changes, before the workload controller
// updates the workload's status.
func ComputeStatus(c *Component) v1alpha1.ComponentStatus {
	s := v1alpha1.ComponentStatus{Name: c.Name}
	if c.Ref == nil {
		s.Kind = "AutonomicApp"
		if c.Child == nil {
			s.Message = "Child AutonomicApp not found."
			return s
		}
		s.Found = true
		s.Phase = c.Child.Status.Phase
		s.Healthy = childHealthy(c.Child)
		if !s.Healthy {
			s.Message = fmt.Sprintf("Child app is %s.", orUnknown(string(c.Child.Status.Phase)))
		}
		return s
	}
	s.Kind = c.Ref.Kind
	if c.Workload == nil {
		s.Message = fmt.Sprintf("%s %q not found.", c.Ref.Kind, c.Ref.Name)
		return s
	}
	s.Found = true
	desired, available := workloadReplicas(c)
	s.DesiredReplicas, s.AvailableReplicas = desired, available
	var live int32 // pods not being deleted: during a rollout or a scale-down, not desired
	for i := range c.Pods {
		p := &c.Pods[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		live++
		for _, cs := range containerStatuses(p) {
			s.Restarts += cs.RestartCount
		}
		if p.Status.Phase == corev1.PodPending {
			s.PendingPods++
		}
		if p.Status.Phase == corev1.PodRunning && PodReady(p) {
			s.ReadyReplicas++
		}
		if crashLooping(p) {
			s.CrashLoopingPods++
		}
		if oomKilled(p) {
			s.OOMKilledPods++
		}
	}
	if s.AvailableReplicas > s.ReadyReplicas {
		// The workload's status lags the pods: a pod that stopped being ready is not
		// available either.
		s.AvailableReplicas = s.ReadyReplicas
	}
	s.UnavailableReplicas = max(0, s.DesiredReplicas-s.AvailableReplicas)
	s.RolloutStuck = rolloutStuck(c)
	s.Healthy = s.ReadyReplicas >= s.DesiredReplicas && s.CrashLoopingPods == 0 && !s.RolloutStuck
	switch {
	case s.RolloutStuck:
		s.Message = "The rollout exceeded its progress deadline."
	case s.CrashLoopingPods > 0:
		s.Message = fmt.Sprintf("%d of %d pods are crash-looping.", s.CrashLoopingPods, live)
	case !s.Healthy:
		s.Message = fmt.Sprintf("%d of %d replicas are ready.", s.ReadyReplicas, s.DesiredReplicas)
	}
	return s
}

func workloadReplicas(c *Component) (desired, available int32) {
	switch w := c.Workload.(type) {
	case *appsv1.Deployment:
		return replicas(w.Spec.Replicas), w.Status.AvailableReplicas
	case *appsv1.StatefulSet:
		return replicas(w.Spec.Replicas), w.Status.AvailableReplicas
	case *appsv1.ReplicaSet:
		return replicas(w.Spec.Replicas), w.Status.AvailableReplicas
	}
	return 0, 0
}

func rolloutStuck(c *Component) bool {
	d, ok := c.Workload.(*appsv1.Deployment)
	if !ok {
		return false
	}
	for _, cond := range d.Status.Conditions {
		if cond.Type == appsv1.DeploymentProgressing && cond.Status == corev1.ConditionFalse && cond.Reason == "ProgressDeadlineExceeded" {
			return true
		}
	}
	return false
}

func childHealthy(a *v1alpha1.AutonomicApp) bool {
	for _, c := range a.Status.Conditions {
		if c.Type == v1alpha1.ConditionHealthy {
			return c.Status == "True"
		}
	}
	return false
}

func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

func orUnknown(s string) string {
	if s == "" {
		return "not yet reconciled"
	}
	return s
}

// HealthyPods counts a component's pods and the unhealthy ones, for the guards.
func HealthyPods(c *Component) (total, unhealthy, terminating int) {
	for i := range c.Pods {
		p := &c.Pods[i]
		if p.DeletionTimestamp != nil {
			terminating++
			continue
		}
		total++
		if PodUnhealthy(p) {
			unhealthy++
		}
	}
	return total, unhealthy, terminating
}
