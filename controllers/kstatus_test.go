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
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// TestKstatusReadsTheAppAsGitOpsToolsDo runs kstatus itself (the library behind Flux's
// wait and healthChecks, kpt and cli-utils) over an app's status through its lifecycle:
// a component still to be created is InProgress, a resolved app is Current, a spec that
// cannot run is Failed with Ready's message, and a spec edit not yet reconciled is
// InProgress.
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
