package controllers

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// failoverPair is the shop namespace with two Deployments of two pods each: web, whose
// pods are not ready, and web-standby, whose pods are; a Service web that selects web's
// pods; and an app shop whose failover policy web-failover prefers web and falls back
// to the warm standby (scaleStandby false, so the move is the first change).
func failoverPair() []client.Object {
	objs := []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}}
	for _, w := range []struct {
		name  string
		ready bool
	}{{"web", false}, {"web-standby", true}} {
		labels := map[string]string{"app": w.name}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: w.name, Generation: 1, UID: types.UID(w.name)},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "web:v1"}}}}},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2},
		}
		rs := &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: w.name + "-1", UID: types.UID(w.name + "-1"), Labels: labels,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: w.name, UID: d.UID, Controller: ptr.To(true)}}},
			Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(2)), Selector: d.Spec.Selector, Template: d.Spec.Template},
		}
		objs = append(objs, d, rs)
		for i := range 2 {
			cond := corev1.ConditionFalse
			if w.ready {
				cond = corev1.ConditionTrue
				d.Status.ReadyReplicas++
				d.Status.AvailableReplicas++
			}
			objs = append(objs, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: fmt.Sprintf("%s-1-%d", w.name, i), Labels: labels,
					OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr.To(true)}}},
				Spec:   d.Spec.Template.Spec,
				Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: cond}}},
			})
		}
	}
	workload := func(name string) v1alpha1.Component {
		return v1alpha1.Component{Name: name, WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name}}
	}
	objs = append(objs,
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
		&v1alpha1.AutonomicApp{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop"},
			Spec: v1alpha1.AutonomicAppSpec{
				Mode:       v1alpha1.ModeActive,
				Components: []v1alpha1.Component{workload("web"), workload("web-standby")},
				Healing: v1alpha1.Healing{Policies: []v1alpha1.Policy{{Name: "web-failover", Failover: &v1alpha1.FailoverPolicy{
					Service:      "web",
					Candidates:   []v1alpha1.FailoverCandidate{{Component: "web", Weight: 100}, {Component: "web-standby", Weight: 50}},
					ScaleStandby: ptr.To(false),
				}}}},
			},
		})
	return objs
}

// TestAResumedTrafficMoveNamesItsPrimaryInTheSameWrite: a manager that died between a
// traffic move's intent and its effect left the intent Pending. The next manager carries
// it on; the status write that says the move Succeeded must also name the new primary.
// Before, that write kept the old primary and only a later reconcile, once the cached
// Service showed the move, corrected it: a reader (the failover e2e spec, a GitOps
// health check, kubectl) could see traffic moved and the old primary still named.
func TestAResumedTrafficMoveNamesItsPrimaryInTheSameWrite(t *testing.T) {
	ctx := context.Background()
	var dying atomic.Bool
	var mu sync.Mutex
	var writes []v1alpha1.AutonomicAppStatus
	funcs := interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
			if _, ok := obj.(*corev1.Service); ok && dying.Load() {
				panic(errDied{}) // the move's first write: the intent is recorded, nothing changed yet
			}
			return c.Patch(ctx, obj, p, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
			if err := c.SubResource(sub).Patch(ctx, obj, p, opts...); err != nil {
				return err
			}
			if a, ok := obj.(*v1alpha1.AutonomicApp); ok && !dying.Load() {
				mu.Lock()
				writes = append(writes, *a.Status.DeepCopy())
				mu.Unlock()
			}
			return nil
		},
	}
	c, _ := newFakeReconcilerWith(t, clock.RealClock{}, funcs, failoverPair()...)
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "shop", Name: "shop"}}
	get := appGetter(t, c, req.NamespacedName)

	dying.Store(true)
	untilDeath(func() {
		for range 3 {
			if _, err := reconcilerOn(c, clock.RealClock{}).Reconcile(ctx, req); err != nil {
				t.Fatal(err)
			}
		}
		t.Fatalf("the manager never moved traffic; status %+v", get().Status.Policies)
	})
	a := get()
	if len(a.Status.History) != 1 || a.Status.History[0].Result != v1alpha1.ResultPending {
		t.Fatalf("after the death the ledger holds %+v; want one Pending intent", a.Status.History)
	}
	intent := a.Status.History[0]

	dying.Store(false)
	if _, err := reconcilerOn(c, clock.RealClock{}).Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "web"}, svc); err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Selector["app"] != "web-standby" {
		t.Fatalf("the Service selects %v after the restart, want app=web-standby", svc.Spec.Selector)
	}
	if len(writes) == 0 {
		t.Fatal("the restarted manager wrote no status")
	}
	for i, w := range writes {
		var rec *v1alpha1.ActionRecord
		for j := range w.History {
			if w.History[j].ID == intent.ID {
				rec = &w.History[j]
			}
		}
		if rec == nil || rec.Result != v1alpha1.ResultSucceeded {
			continue
		}
		var p v1alpha1.PolicyStatus
		for _, ps := range w.Policies {
			if ps.Name == "web-failover" {
				p = ps
			}
		}
		if p.Primary != "web-standby" || p.LastAction != intent.ID {
			t.Fatalf("status write %d says move %s Succeeded but names primary %q, last action %q; want web-standby, %s",
				i, intent.ID, p.Primary, p.LastAction, intent.ID)
		}
	}
	if n := len(get().Status.History); n != 1 {
		t.Fatalf("the ledger holds %d records, want the one move: %+v", n, get().Status.History)
	}
}
