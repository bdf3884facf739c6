package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// TestKstatusReadsTheAppAsGitOpsToolsDo runs kstatus itself (the library behind Flux's
// wait and healthChecks, kpt and cli-utils) over an app's status through its lifecycle:
// a component still to be created is InProgress, a resolved app is Current, a spec that
// cannot run is Failed with Ready's message, and a spec edit not yet reconciled is
// InProgress. Argo CD's health script (config/argocd) reads each of these statuses as
// Progressing, Healthy and Degraded.
func TestKstatusReadsTheAppAsGitOpsToolsDo(t *testing.T) {
	ctx := context.Background()
	app := &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop", Generation: 1},
		Spec: v1alpha1.AutonomicAppSpec{
			Mode:       v1alpha1.ModeActive,
			Components: []v1alpha1.Component{{Name: "web", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}}},
		},
	}
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))
	c, r := newFakeReconciler(t, clk, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, app)
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "shop", Name: "shop"}}
	kstatus := func(step string, reconcile bool) *status.Result {
		t.Helper()
		if reconcile {
			if _, err := r.Reconcile(ctx, req); err != nil {
				t.Fatalf("%s: %v", step, err)
			}
		}
		a := &v1alpha1.AutonomicApp{}
		if err := c.Get(ctx, req.NamespacedName, a); err != nil {
			t.Fatal(err)
		}
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(a)
		if err != nil {
			t.Fatal(err)
		}
		res, err := status.Compute(&unstructured.Unstructured{Object: obj})
		if err != nil {
			t.Fatalf("%s: kstatus: %v", step, err)
		}
		return res
	}
	expect := func(step string, res *status.Result, want status.Status, msg string) {
		t.Helper()
		if res.Status != want {
			t.Fatalf("%s: kstatus says %s (%s), want %s", step, res.Status, res.Message, want)
		}
		if msg != "" && !strings.Contains(res.Message, msg) {
			t.Fatalf("%s: kstatus message %q, want it to contain %q", step, res.Message, msg)
		}
		// Argo CD reads the same status with config/argocd's health script.
		a := &v1alpha1.AutonomicApp{}
		if err := c.Get(ctx, req.NamespacedName, a); err != nil {
			t.Fatal(err)
		}
		argo := map[status.Status]string{status.InProgressStatus: "Progressing", status.CurrentStatus: "Healthy", status.FailedStatus: "Degraded"}[want]
		if got, argoMsg := argoHealth(t, a); got != argo || !strings.Contains(argoMsg, msg) {
			t.Fatalf("%s: Argo CD's health script says %s (%q), want %s with %q", step, got, argoMsg, argo, msg)
		}
	}

	expect("the component does not exist yet", kstatus("missing", true), status.InProgressStatus, `Component "web"`)

	labels := map[string]string{"app": "web"}
	web := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Generation: 1},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(0)), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "web:1"}}}}},
	}
	if err := c.Create(ctx, web); err != nil {
		t.Fatal(err)
	}
	expect("the component exists", kstatus("found", true), status.CurrentStatus, "")

	a := &v1alpha1.AutonomicApp{}
	if err := c.Get(ctx, req.NamespacedName, a); err != nil {
		t.Fatal(err)
	}
	a.Spec.Symptoms = []v1alpha1.Symptom{{Name: "Broken", Expression: "components.nosuch.healthy == false"}}
	a.Generation = 2 // the fake client does not count generations
	if err := c.Update(ctx, a); err != nil {
		t.Fatal(err)
	}
	expect("a spec edit not reconciled yet", kstatus("edited", false), status.InProgressStatus, "")
	expect("a symptom that names an unknown component", kstatus("invalid", true), status.FailedStatus, "Broken")

	if err := c.Get(ctx, req.NamespacedName, a); err != nil {
		t.Fatal(err)
	}
	a.Spec.Symptoms = nil
	a.Generation = 3
	if err := c.Update(ctx, a); err != nil {
		t.Fatal(err)
	}
	expect("the spec fixed", kstatus("fixed", true), status.CurrentStatus, "")
}

// TestArgoCDReadsTheStatusesTheControllerWrites runs config/argocd's health scripts over
// statuses the reconcilers wrote: an app whose web is never ready restarts it (an open
// episode: Progressing), reaches its ladder's notify step (NeedsAttention: Degraded), and
// is paused by the annotation (Suspended); a HealingPolicy the shared policy reconciler
// counted is Healthy, and Progressing once its spec changes until it is counted again.
func TestArgoCDReadsTheStatusesTheControllerWrites(t *testing.T) {
	ctx := context.Background()
	objs := unreadyWeb("web:1",
		v1alpha1.RemediationStep{Action: v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "web"}},
			Timeout: &metav1.Duration{Duration: time.Minute}},
		v1alpha1.RemediationStep{Action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "web stays unready"}}})
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))
	c, r := newFakeReconciler(t, clk, objs...)
	key := types.NamespacedName{Namespace: "shop", Name: "shop"}
	expect := func(step, want, msg string) {
		t.Helper()
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: key}); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		a := &v1alpha1.AutonomicApp{}
		if err := c.Get(ctx, key, a); err != nil {
			t.Fatal(err)
		}
		if got, argoMsg := argoHealth(t, a); got != want || !strings.Contains(argoMsg, msg) {
			t.Fatalf("%s: Argo CD's health script says %s (%q), want %s with %q; phase %s", step, got, argoMsg, want, msg, a.Status.Phase)
		}
	}
	expect("the first step acted", "Progressing", "Remediation episodes are open: heal")
	clk.Step(time.Minute + time.Second)
	expect("the ladder reached notify", "Degraded", "Needs attention: heal: ")

	a := &v1alpha1.AutonomicApp{}
	if err := c.Get(ctx, key, a); err != nil {
		t.Fatal(err)
	}
	a.Annotations = map[string]string{v1alpha1.PausedAnnotation: "true"}
	if err := c.Update(ctx, a); err != nil {
		t.Fatal(err)
	}
	expect("paused", "Suspended", v1alpha1.PausedAnnotation)

	// The shared policy reconciler over a client that knows the policy's status subresource.
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	team := &v1alpha1.HealingPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "team", Generation: 1}}
	c = fake.NewClientBuilder().WithScheme(scheme).WithStatusSubresource(&v1alpha1.HealingPolicy{}).
		WithObjects(append(objs, team)...).Build()
	pr := &SharedPolicyReconciler{Client: c}
	pkey := types.NamespacedName{Namespace: "shop", Name: "team"}
	policyHealth := func(step, want string) {
		t.Helper()
		p := &v1alpha1.HealingPolicy{}
		if err := c.Get(ctx, pkey, p); err != nil {
			t.Fatal(err)
		}
		if got, msg := argoHealth(t, p); got != want {
			t.Fatalf("%s: Argo CD's health script says %s (%q) of the HealingPolicy, want %s", step, got, msg, want)
		}
	}
	policyHealth("not reconciled yet", "Progressing")
	if _, err := pr.Reconcile(ctx, ctrl.Request{NamespacedName: pkey}); err != nil {
		t.Fatal(err)
	}
	policyHealth("reconciled", "Healthy")
	p := &v1alpha1.HealingPolicy{}
	if err := c.Get(ctx, pkey, p); err != nil {
		t.Fatal(err)
	}
	p.Spec.Priority = 10
	p.Generation = 2 // the fake client does not count generations
	if err := c.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	policyHealth("edited", "Progressing")
	if _, err := pr.Reconcile(ctx, ctrl.Request{NamespacedName: pkey}); err != nil {
		t.Fatal(err)
	}
	policyHealth("reconciled again", "Healthy")
}
