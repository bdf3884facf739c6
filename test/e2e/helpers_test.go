package e2e

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// newNamespace creates a namespace for one spec and deletes it afterwards. Its apps are
// deleted first, and waited for: a namespace takes seconds to terminate, and its apps,
// unhealthy as a spec leaves them, would meanwhile count towards the storm breaker of the
// next spec, which shares the manager (three unhealthy apps in two namespaces can hold every
// disruptive action).
func newNamespace(prefix string) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	Expect(k8s.Create(context.Background(), ns)).To(Succeed())
	DeferCleanup(func() {
		ctx := context.Background()
		Expect(client.IgnoreNotFound(k8s.DeleteAllOf(ctx, &v1alpha1.AutonomicApp{}, client.InNamespace(ns.Name)))).To(Succeed())
		Eventually(func(g Gomega) {
			var apps v1alpha1.AutonomicAppList
			g.Expect(k8s.List(ctx, &apps, client.InNamespace(ns.Name))).To(Succeed())
			g.Expect(apps.Items).To(BeEmpty())
		}).WithTimeout(30*time.Second).Should(Succeed(), "the apps of namespace %s are deleted", ns.Name)
		_ = k8s.Delete(ctx, ns)
	})
	return ns.Name
}

func deployment(ns, name, image string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: ptr.To(intstr.FromInt32(0)), MaxSurge: ptr.To(intstr.FromString("100%"))}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: image,
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}},
				}}},
			},
		},
	}
}

func createDeployment(ns, name, image string, replicas int32) *appsv1.Deployment {
	d := deployment(ns, name, image, replicas)
	Expect(k8s.Create(context.Background(), d)).To(Succeed())
	return d
}

// setImage changes the Deployment's image, as a person rolling out a release would.
func setImage(ns, name, image string) {
	Eventually(func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, d); err != nil {
			return err
		}
		d.Spec.Template.Spec.Containers[0].Image = image
		return k8s.Update(context.Background(), d)
	}).Should(Succeed())
}

func pods(ns, app string) []corev1.Pod {
	var list corev1.PodList
	Expect(k8s.List(context.Background(), &list, client.InNamespace(ns), client.MatchingLabels{"app": app})).To(Succeed())
	return list.Items
}

func runningReady(ns, app, imageSuffix string) int {
	n := 0
	for _, p := range pods(ns, app) {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || !strings.HasSuffix(p.Spec.Containers[0].Image, imageSuffix) {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				n++
			}
		}
	}
	return n
}

func waitRunning(ns, app, imageSuffix string, n int) {
	Eventually(func() int { return runningReady(ns, app, imageSuffix) }).WithTimeout(60*time.Second).
		Should(BeNumerically(">=", n), "%d ready pods of %s with image *%s", n, app, imageSuffix)
}

func getApp(ns, name string) *v1alpha1.AutonomicApp {
	a := &v1alpha1.AutonomicApp{}
	Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, a)).To(Succeed())
	return a
}

func condition(a *v1alpha1.AutonomicApp, typ string) *metav1.Condition {
	return meta.FindStatusCondition(a.Status.Conditions, typ)
}

func policyStatus(a *v1alpha1.AutonomicApp, name string) v1alpha1.PolicyStatus {
	for _, p := range a.Status.Policies {
		if p.Name == name {
			return p
		}
	}
	return v1alpha1.PolicyStatus{}
}

// records returns the app's ledger records of one action kind, oldest first.
func records(a *v1alpha1.AutonomicApp, action string) []v1alpha1.ActionRecord {
	var out []v1alpha1.ActionRecord
	for i := len(a.Status.History) - 1; i >= 0; i-- {
		if action == "" || a.Status.History[i].Action == action {
			out = append(out, a.Status.History[i])
		}
	}
	return out
}

// eventsFor lists the events.k8s.io Events about an app with a reason.
func eventsFor(ns, app, reason string) []eventsv1.Event {
	var list eventsv1.EventList
	Expect(k8s.List(context.Background(), &list, client.InNamespace(ns))).To(Succeed())
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == app && e.Regarding.Kind == "AutonomicApp" && (reason == "" || e.Reason == reason) {
			out = append(out, e)
		}
	}
	return out
}

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func workload(name, deploy string) v1alpha1.Component {
	return v1alpha1.Component{Name: name, WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: deploy}}
}

// crashLooping is the symptom of the e2e apps. clearFor keeps it active while evicted or
// restarted pods are replaced by new ones that have not crashed yet, so a ladder
// escalates instead of opening a new episode at step 1 each time.
func crashLooping(component string) v1alpha1.Symptom {
	return v1alpha1.Symptom{Name: "CrashLooping", Expression: fmt.Sprintf("components.%s.crashLoopingPods > 0", component),
		ClearFor: dur(15 * time.Second)}
}

func step(a v1alpha1.Action, timeout time.Duration) v1alpha1.RemediationStep {
	return v1alpha1.RemediationStep{Action: a, Timeout: dur(timeout)}
}

func restartPods(c string) v1alpha1.Action {
	return v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: c, Pods: v1alpha1.PodsUnhealthy}}
}
func rollback(c string) v1alpha1.Action {
	return v1alpha1.Action{Rollback: &v1alpha1.ComponentAction{Component: c}}
}
func rolloutRestart(c string) v1alpha1.Action {
	return v1alpha1.Action{RolloutRestart: &v1alpha1.ComponentAction{Component: c}}
}
func notify(msg string) v1alpha1.Action {
	return v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: msg}}
}

// healApp is an app of one Deployment with a CrashLooping symptom and a ladder.
func healApp(ns, name, deploy string, mode v1alpha1.Mode, steps ...v1alpha1.RemediationStep) *v1alpha1.AutonomicApp {
	return &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.AutonomicAppSpec{
			Mode:       mode,
			Components: []v1alpha1.Component{workload("web", deploy)},
			Healing: v1alpha1.Healing{
				Symptoms: []v1alpha1.Symptom{crashLooping("web")},
				Policies: []v1alpha1.Policy{{Name: "heal-web", Remediate: &v1alpha1.RemediatePolicy{
					When: []string{"CrashLooping"}, Steps: steps}}},
			},
		},
	}
}

func waitReady(ns, name string) *v1alpha1.AutonomicApp {
	var a *v1alpha1.AutonomicApp
	Eventually(func(g Gomega) {
		a = getApp(ns, name)
		c := condition(a, v1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		g.Expect(a.Status.ObservedGeneration).To(Equal(a.Generation))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	return a
}

func logf(format string, args ...any) { fmt.Fprintf(GinkgoWriter, format+"\n", args...) }
