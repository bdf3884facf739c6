package monitor

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// ClusterPolicyKind is the kind of a ClusterHealingPolicy, as sources name it.
const ClusterPolicyKind = "ClusterHealingPolicy"

// SharedPolicies returns the HealingPolicies of the app's namespace and the
// ClusterHealingPolicies that select the app, read from the cache.
func SharedPolicies(ctx context.Context, r client.Reader, app *v1alpha1.AutonomicApp) ([]plan.SharedPolicy, error) {
	out, err := NamespacedPolicies(ctx, r, app)
	if err != nil {
		return nil, err
	}
	var chps v1alpha1.ClusterHealingPolicyList
	if err := r.List(ctx, &chps); err != nil {
		return nil, fmt.Errorf("listing ClusterHealingPolicies: %w", err)
	}
	if len(chps.Items) == 0 {
		return out, nil
	}
	ns := &corev1.Namespace{}
	if err := r.Get(ctx, types.NamespacedName{Name: app.Namespace}, ns); err != nil {
		return nil, fmt.Errorf("reading namespace %s: %w", app.Namespace, err)
	}
	for _, p := range chps.Items {
		if (p.Spec.NamespaceSelector == nil || Selects(p.Spec.NamespaceSelector, ns.Labels)) && Selects(&p.Spec.AppSelector, app.Labels) {
			out = append(out, plan.SharedPolicy{Kind: ClusterPolicyKind, Name: p.Name,
				Priority: p.Spec.Priority, Healing: p.Spec.Healing, Enforced: p.Spec.Enforced})
		}
	}
	return out, nil
}

// Selects says whether a label selector matches; an invalid selector matches nothing.
func Selects(sel *metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(l))
}

// NamespacedPolicies returns the HealingPolicies of the app's namespace that select it.
func NamespacedPolicies(ctx context.Context, r client.Reader, app *v1alpha1.AutonomicApp) ([]plan.SharedPolicy, error) {
	var hps v1alpha1.HealingPolicyList
	if err := r.List(ctx, &hps, client.InNamespace(app.Namespace)); err != nil {
		return nil, fmt.Errorf("listing HealingPolicies: %w", err)
	}
	var out []plan.SharedPolicy
	for _, p := range hps.Items {
		if Selects(&p.Spec.AppSelector, app.Labels) {
			out = append(out, plan.SharedPolicy{Kind: "HealingPolicy", Namespace: p.Namespace, Name: p.Name,
				Priority: p.Spec.Priority, Healing: p.Spec.Healing})
		}
	}
	return out, nil
}
