package cli

import (
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
)

// Exit codes a script can tell apart.
const (
	// ExitOK: the command did what it was asked.
	ExitOK = 0
	// ExitError: any other failure (the API server unreachable, a bad kubeconfig, ...).
	ExitError = 1
	// ExitUsage: the arguments or flags are wrong.
	ExitUsage = 2
	// ExitNotFound: the app, or Homeostat's CRDs, are missing.
	ExitNotFound = 3
	// ExitForbidden: the user may not read or change what the command needs.
	ExitForbidden = 4
	// ExitPrometheus: Prometheus is not given, cannot be reached, or failed a query.
	ExitPrometheus = 5
)

// codedError is an error with the exit code it ends the plugin with.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

func withCode(code int, err error) error { return &codedError{code: code, err: err} }

func usageError(msg string) error { return withCode(ExitUsage, errors.New(msg)) }

// exitCode is the exit code an error ends the plugin with.
func exitCode(err error) int {
	var c *codedError
	if errors.As(err, &c) {
		return c.code
	}
	return ExitError
}

// apiError turns an error of the API server, met while doing what (a phrase: "reading
// AutonomicApp shop/shop"), into a message that says what is missing and how to fix it,
// with its exit code.
func apiError(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case meta.IsNoMatchError(err) || isMissingKind(err):
		return withCode(ExitNotFound, fmt.Errorf("%s: Homeostat's CRDs are not installed in this cluster "+
			"(install them with `make install`, or the Helm chart): %w", what, err))
	case apierrors.IsNotFound(err):
		return withCode(ExitNotFound, fmt.Errorf("%s: not found; `kubectl get autonomicapps -A` lists the apps", what))
	case apierrors.IsForbidden(err):
		return withCode(ExitForbidden, fmt.Errorf("%s: %w; ask your cluster admin for the permission "+
			"(`kubectl auth can-i --list -n NAMESPACE` shows what you may do)", what, err))
	case apierrors.IsUnauthorized(err):
		return withCode(ExitForbidden, fmt.Errorf("%s: the API server does not accept your credentials; log in again: %w", what, err))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// isMissingKind is true for the discovery error of a group the API server does not serve.
func isMissingKind(err error) bool {
	var d *meta.NoResourceMatchError
	return errors.As(err, &d)
}
