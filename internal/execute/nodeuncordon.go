package execute

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// Uncordoning is not an action of an app's ladder: the node controller lifts the cordon
// of a cordonNode or drainNode action once plan.DecideUncordon says the node is healthy
// again. It has no ledger record; its file is the effector's all the same, beside the
// cordon it undoes.

// UncordonNode lifts the cordon a node action made on node, as read for the decision:
// spec.unschedulable and the three stamps (the action id, the app, the cordon's time)
// go, in one merge patch as the homeostat field manager. On a node someone else
// uncordoned the same patch removes only the stamps. The patch carries the node's
// resourceVersion, so a change made since the decision (a person cordoned the node again,
// another action stamped it) makes it fail with a conflict instead of being undone; the
// caller decides again on a fresh read. A node already uncordoned and unstamped is not
// written, and a node that is gone is not an error: done is false for both.
func (e *Effectors) UncordonNode(ctx context.Context, node *corev1.Node) (done bool, err error) {
	a := node.Annotations
	if !node.Spec.Unschedulable && a[v1alpha1.ActionIDAnnotation] == "" && a[plan.NodeAppAnnotation] == "" && a[plan.CordonedAtAnnotation] == "" {
		return false, nil
	}
	log.FromContext(ctx).Info("Uncordoning node", "node", klog.KObj(node), "actionID", a[v1alpha1.ActionIDAnnotation],
		"app", a[plan.NodeAppAnnotation])
	if err := e.patch(ctx, node.DeepCopy(), types.MergePatchType, uncordonPatch(node.ResourceVersion)); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// uncordonPatch is the merge patch that lifts a cordon and removes its stamps, valid
// only on the node at resourceVersion.
func uncordonPatch(resourceVersion string) []byte {
	return mustJSON(map[string]any{
		"metadata": map[string]any{
			"resourceVersion": resourceVersion,
			"annotations": map[string]any{
				v1alpha1.ActionIDAnnotation: nil, plan.NodeAppAnnotation: nil, plan.CordonedAtAnnotation: nil,
			},
		},
		"spec": map[string]any{"unschedulable": nil},
	})
}
