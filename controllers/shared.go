package controllers

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/monitor"
)

// +kubebuilder:rbac:groups=autonomic.homeostat.dev,resources=healingpolicies;clusterhealingpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=autonomic.homeostat.dev,resources=healingpolicies/status;clusterhealingpolicies/status,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// clusterPolicyKind is the kind of a ClusterHealingPolicy, as sources name it.
const clusterPolicyKind = monitor.ClusterPolicyKind

// selects says whether a label selector matches; an invalid selector matches nothing.
func selects(sel *metav1.LabelSelector, l map[string]string) bool { return monitor.Selects(sel, l) }

// appsSelectedBy lists the apps a shared policy selects.
func appsSelectedBy(ctx context.Context, r client.Reader, o client.Object) []types.NamespacedName {
	var apps v1alpha1.AutonomicAppList
	var match func(*v1alpha1.AutonomicApp) bool
	switch p := o.(type) {
	case *v1alpha1.HealingPolicy:
		if err := r.List(ctx, &apps, client.InNamespace(p.Namespace)); err != nil {
			logf.FromContext(ctx).Error(err, "Listing the apps of a HealingPolicy failed")
			return nil
		}
		match = func(a *v1alpha1.AutonomicApp) bool { return selects(&p.Spec.AppSelector, a.Labels) }
	case *v1alpha1.ClusterHealingPolicy:
		if err := r.List(ctx, &apps); err != nil {
			logf.FromContext(ctx).Error(err, "Listing the apps of a ClusterHealingPolicy failed")
			return nil
		}
		nsLabels := map[string]map[string]string{}
		match = func(a *v1alpha1.AutonomicApp) bool {
			if !selects(&p.Spec.AppSelector, a.Labels) {
				return false
			}
			if p.Spec.NamespaceSelector == nil {
				return true
			}
			l, ok := nsLabels[a.Namespace]
			if !ok {
				ns := &corev1.Namespace{}
				if err := r.Get(ctx, types.NamespacedName{Name: a.Namespace}, ns); err == nil {
					l = ns.Labels
				}
				nsLabels[a.Namespace] = l
			}
			return selects(p.Spec.NamespaceSelector, l)
		}
	default:
		return nil
	}
	var out []types.NamespacedName
	for i := range apps.Items {
		if match(&apps.Items[i]) {
			out = append(out, types.NamespacedName{Namespace: apps.Items[i].Namespace, Name: apps.Items[i].Name})
		}
	}
	return out
}

// sharedPolicyHandler enqueues the apps a shared policy selects, before and after a
// change, so an edit reaches every app it selects or stops selecting.
func (r *AppReconciler) sharedPolicyHandler() handler.TypedEventHandler[client.Object, reconcile.Request] {
	add := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], objs ...client.Object) {
		for _, o := range objs {
			for _, req := range r.enqueue(appsSelectedBy(ctx, r.Client, o)) {
				q.Add(req)
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, q, e.Object)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, q, e.ObjectOld, e.ObjectNew)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, q, e.Object)
		},
	}
}
