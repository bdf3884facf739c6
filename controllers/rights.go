package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/plan"
	"github.com/homeostat-dev/homeostat/internal/rights"
)

// The tenant's rights: an app that names a ServiceAccount (spec.serviceAccountName, or
// the manager's --default-service-account) acts with its rights. The act path asks them
// of every action (act, authorize; resumePending, authorizeResumed), the poller of every
// object an object sensor reads, and a webhook's header Secret is one of its action's
// accesses. A SubjectAccessReview answers, and creating one grants the manager nothing.

// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get

// serviceAccountRecheck is how soon an app whose ServiceAccount does not exist looks for
// it again. ServiceAccounts are not watched (that would cache every ServiceAccount of the
// cluster for the sake of a misconfigured app); the answer is cached as long.
const serviceAccountRecheck = rights.DefaultCacheTTL

// checkServiceAccount holds an app whose ServiceAccount does not exist: its Ready
// condition says so and how to fix it, and nothing acts this pass (no intent is resumed,
// no policy decides). An app that acts as the manager is never held. An error is the
// API server's: the pass is retried.
func (r *AppReconciler) checkServiceAccount(ctx context.Context, s *session) (held bool, err error) {
	if s.subject == nil {
		return false, nil
	}
	err = r.Rights.Check(ctx, *s.subject)
	if err == nil {
		return false, nil
	}
	if f, ok := rights.IsForbidden(err); ok && f.Missing {
		// Ready was set from the components a moment ago; the time it turned False is
		// kept from the last write, so a pass that finds the same writes nothing.
		since := s.now
		if c := meta.FindStatusCondition(s.base.Status.Conditions, v1alpha1.ConditionReady); c != nil &&
			c.Status == metav1.ConditionFalse && c.Reason == v1alpha1.ReasonServiceAccountNotFound {
			since = c.LastTransitionTime.Time
		}
		copyCondition(s.app, plan.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: v1alpha1.ReasonServiceAccountNotFound, Since: since,
			Message: fmt.Sprintf("%s. Nothing acts for the app until it exists; Homeostat looks for it again every %s.", f.Error(), serviceAccountRecheck)})
		s.requeueAt(s.now.Add(serviceAccountRecheck))
		return true, nil
	}
	return true, fmt.Errorf("checking %s, which the app acts as: %w", s.subject, err)
}
