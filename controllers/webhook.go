package controllers

import (
	"context"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/analyze"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// The webhook checks the spec, so the API server calls it only on a create and on an
// update that changes the spec (matchConditions). With
// failurePolicy=fail every call fails while the manager is down; because metadata-only
// updates are never sent, a person can still pause an app (`kubectl annotate` the
// paused annotation), label it or remove a finalizer when the operator is the problem.
// CEL compares maps and lists by value, deeply, so any change inside spec is caught.
//
// +kubebuilder:webhook:path=/validate-autonomic-homeostat-dev-v1alpha1-autonomicapp,mutating=false,failurePolicy=fail,sideEffects=None,groups=autonomic.homeostat.dev,resources=autonomicapps,verbs=create;update,versions=v1alpha1,name=vautonomicapp.homeostat.dev,admissionReviewVersions=v1,patch=`{"matchConditions":[{"name":"create-or-spec-change","expression":"request.operation != 'UPDATE' || object.spec != oldObject.spec"}]}`

// AppValidator rejects apps whose symptoms do not compile or name unknown components or
// sensors, and whose policies name unknown symptoms or components: the checks CEL
// validation in the CRD cannot make. The reconciler makes the same checks and reports
// them in the Ready condition when the webhook is not installed.
type AppValidator struct {
	// Reader reads the HealingPolicies and ClusterHealingPolicies that select the app, so
	// an app may name their symptoms and sensors. Nil validates the app alone.
	Reader client.Reader
}

var _ admission.Validator[*v1alpha1.AutonomicApp] = &AppValidator{}

// ValidateCreate validates a new app. It warns of what enforced ClusterHealingPolicies
// replace or tighten of the app's spec.
func (v *AppValidator) ValidateCreate(ctx context.Context, app *v1alpha1.AutonomicApp) (admission.Warnings, error) {
	return v.validate(ctx, app)
}

// ValidateUpdate validates a changed app, and allows an update that leaves the spec as
// it was (labels, annotations such as the pause annotation, finalizers): the same rule as
// the webhook's matchConditions, for an API server that sends such updates anyway. A
// label change can bring in other shared policies; the reconciler validates the merged
// result and reports it in the Ready condition, as it does when a policy changes.
func (v *AppValidator) ValidateUpdate(ctx context.Context, old, app *v1alpha1.AutonomicApp) (admission.Warnings, error) {
	if equality.Semantic.DeepEqual(old.Spec, app.Spec) {
		return nil, nil
	}
	return v.validate(ctx, app)
}

// ValidateDelete allows every delete.
func (v *AppValidator) ValidateDelete(context.Context, *v1alpha1.AutonomicApp) (admission.Warnings, error) {
	return nil, nil
}

// validate checks the app merged with the shared policies that select it, and warns of
// each entry or guard of the app that an enforced ClusterHealingPolicy replaces or
// tightens: the app is admitted, and runs the enforced ones.
func (v *AppValidator) validate(ctx context.Context, app *v1alpha1.AutonomicApp) (admission.Warnings, error) {
	var shared []plan.SharedPolicy
	if v.Reader != nil {
		var err error
		if shared, err = monitor.SharedPolicies(ctx, v.Reader, app); err != nil {
			return nil, apierrors.NewInternalError(err)
		}
	}
	view, merged := plan.MergedView(app, shared)
	var warnings admission.Warnings
	for _, o := range merged.Overrides {
		if o.FromApp() {
			warnings = append(warnings, o.Message())
		}
	}
	errs := analyze.ValidateMerged(view, merged.PolicyFromShared)
	if len(errs) == 0 {
		return warnings, nil
	}
	var list field.ErrorList
	for _, e := range errs {
		list = append(list, field.Invalid(fieldPath(e.Field), "", e.Message))
	}
	return warnings, apierrors.NewInvalid(v1alpha1.GroupVersion.WithKind("AutonomicApp").GroupKind(), app.Name, list)
}

func fieldPath(p string) *field.Path {
	parts := strings.SplitN(p, ".", 2)
	fp := field.NewPath(parts[0])
	if len(parts) == 2 {
		fp = fp.Child(parts[1])
	}
	return fp
}

// validationMessage joins the validation errors into one message for a condition.
func validationMessage(errs []analyze.FieldError) string {
	msgs := make([]string, 0, len(errs))
	for _, e := range errs {
		msgs = append(msgs, e.Field+": "+e.Message)
	}
	return strings.Join(msgs, "; ")
}
