package controllers

import (
	"context"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// failover elects the primary of one failover policy and points its Service at it.
func (r *AppReconciler) failover(_ context.Context, _ *session, pol v1alpha1.Policy, _ v1alpha1.PolicyStatus) (v1alpha1.PolicyStatus, error) {
	return v1alpha1.PolicyStatus{Name: pol.Name, State: v1alpha1.PolicyIdle, Reason: "NotYetSupported",
		Message: "This version of Homeostat does not run failover policies yet; nothing is done."}, nil
}
