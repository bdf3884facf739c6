package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
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
