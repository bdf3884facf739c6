package controllers

import (
	"context"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// autoscale plans and runs one autoscale policy.
func (r *AppReconciler) autoscale(_ context.Context, _ *session, pol v1alpha1.Policy, _ v1alpha1.PolicyStatus) (v1alpha1.PolicyStatus, error) {
	return v1alpha1.PolicyStatus{Name: pol.Name, State: v1alpha1.PolicyIdle, Reason: "NotYetSupported",
		Message: "This version of Homeostat does not run autoscale policies yet; nothing is done."}, nil
}
