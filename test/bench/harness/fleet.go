package harness

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// Image is the image of the fleet's pods; kwok runs it (it does not end in ":bad").
const Image = "registry.local/bench/app:good"

// PodsPerApp is the replicas of every app's Deployment.
const PodsPerApp = 3

// AppsPerNamespace is how many apps share a namespace.
const AppsPerNamespace = 500

// Fleet names the i-th app, its Deployment and its namespace.
type Fleet struct{}

// Namespace of app i.
func (Fleet) Namespace(i int) string { return fmt.Sprintf("bench-%03d", i/AppsPerNamespace) }

// Name of app i and of its Deployment.
func (Fleet) Name(i int) string { return fmt.Sprintf("app-%05d", i) }

// Namespaces returns the namespaces of n apps.
func (f Fleet) Namespaces(n int) []string {
	var out []string
	for i := 0; i < n; i += AppsPerNamespace {
		out = append(out, f.Namespace(i))
	}
	return out
}

// Deployment returns app i's Deployment: 3 pods of Image, label app=<name>.
func (f Fleet) Deployment(i int) *appsv1.Deployment {
	name := f.Name(i)
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.Namespace(i), Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(PodsPerApp)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: ptr.To(intstr.FromInt32(0)), MaxSurge: ptr.To(intstr.FromString("100%"))}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: Image,
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}},
				}}},
			},
		},
	}
}

// App returns app i: one component, web, its Deployment; a CrashLooping symptom over it;
// a policy whose first step restarts the unhealthy pods. The restart's eviction (and the
// pod patch that stamps the action id before it) is the app's first call that changes a
// workload when a pod starts crash-looping.
func (f Fleet) App(i int) *v1alpha1.AutonomicApp {
	name := f.Name(i)
	return &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.Namespace(i), Name: name},
		Spec: v1alpha1.AutonomicAppSpec{
			Components: []v1alpha1.Component{{Name: "web", WorkloadRef: &v1alpha1.WorkloadReference{
				APIVersion: "apps/v1", Kind: "Deployment", Name: name}}},
			Healing: v1alpha1.Healing{
				Symptoms: []v1alpha1.Symptom{{Name: "CrashLooping", Expression: "components.web.crashLoopingPods > 0"}},
				Policies: []v1alpha1.Policy{{Name: "heal-web", Remediate: &v1alpha1.RemediatePolicy{
					When: []string{"CrashLooping"},
					Steps: []v1alpha1.RemediationStep{{
						Action:  v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "web", Pods: v1alpha1.PodsUnhealthy}},
						Timeout: &metav1.Duration{Duration: time.Minute},
					}},
				}}},
			},
		},
	}
}

// ForEach runs fn for 0..n-1 on workers goroutines, retrying an item whose error is
// transient (a timeout, a 429, a 5xx) up to 5 times. It stops at the first other error,
// or when stop returns true (checked before each item); it returns how many items
// finished without error, which for a stop is a prefix 0..done-1 only when workers is 1.
func ForEach(ctx context.Context, n, workers int, stop func() bool, fn func(ctx context.Context, i int) error) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next, done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				if stop != nil && stop() {
					return
				}
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				var err error
				for attempt := range 5 {
					if err = fn(ctx, i); err == nil || !transient(err) {
						break
					}
					time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
				}
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("item %d: %w", i, err); cancel() })
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	return int(done.Load()), firstErr
}

func transient(err error) bool {
	return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) || errors.Is(err, context.DeadlineExceeded)
}

// IgnoreExists treats AlreadyExists as success.
func IgnoreExists(err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}
