package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// oneApp is the argument check of the commands that take one app by name.
func oneApp(_ *cobra.Command, args []string) error {
	switch len(args) {
	case 1:
		return nil
	case 0:
		return usageError("name the AutonomicApp, for example `kubectl homeostat why shop -n shop`")
	}
	return usageError(fmt.Sprintf("expected one AutonomicApp name, got %d arguments: %q", len(args), args))
}

// getApp reads the named app of the namespace -n (or the kubeconfig's) says.
func (o *Options) getApp(ctx context.Context, name string) (*v1alpha1.AutonomicApp, error) {
	c, err := o.kube()
	if err != nil {
		return nil, err
	}
	ns, err := o.namespace()
	if err != nil {
		return nil, err
	}
	app := &v1alpha1.AutonomicApp{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, app); err != nil {
		return nil, apiError(err, fmt.Sprintf("reading AutonomicApp %s/%s", ns, name))
	}
	return app, nil
}

// sharedPolicies are the HealingPolicies and ClusterHealingPolicies that select the app,
// as the manager finds them (monitor.SharedPolicies), and the labels of the app's
// namespace when they could be read. What the user may not read is left out and said in
// a warning: without the ClusterHealingPolicies (or the namespace) the HealingPolicies of
// the app's namespace still count.
func (o *Options) sharedPolicies(ctx context.Context, app *v1alpha1.AutonomicApp) ([]plan.SharedPolicy, map[string]string, []string, error) {
	c, err := o.kube()
	if err != nil {
		return nil, nil, nil, err
	}
	var nsLabels map[string]string
	ns := &corev1.Namespace{}
	if err := c.Get(ctx, types.NamespacedName{Name: app.Namespace}, ns); err == nil {
		nsLabels = ns.Labels
	}
	shared, err := monitor.SharedPolicies(ctx, c, app)
	if err == nil {
		return shared, nsLabels, nil, nil
	}
	if !apierrors.IsForbidden(err) {
		return nil, nil, nil, apiError(err, "reading the shared policies that select "+app.Namespace+"/"+app.Name)
	}
	warnings := []string{"You may not read the ClusterHealingPolicies or the app's namespace (" + err.Error() +
		"): what they add to the app is left out."}
	shared, err = monitor.NamespacedPolicies(ctx, c, app)
	if err != nil {
		warnings = []string{"You may not read the HealingPolicies or ClusterHealingPolicies that may select the app (" + err.Error() +
			"): only the app's own spec is used."}
	}
	return shared, nsLabels, warnings, nil
}

// mergedView is the app with the shared policies that select it merged into its spec,
// as the manager runs it (plan.MergedView), and what could not be read.
func (o *Options) mergedView(ctx context.Context, app *v1alpha1.AutonomicApp) (*v1alpha1.AutonomicApp, []string, error) {
	shared, _, warnings, err := o.sharedPolicies(ctx, app)
	if err != nil {
		return nil, nil, err
	}
	view, _ := plan.MergedView(app, shared)
	return view, warnings, nil
}
