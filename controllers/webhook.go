package controllers

import (
	"context"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/analyze"
)

// +kubebuilder:webhook:path=/validate-autonomic-homeostat-dev-v1alpha1-autonomicapp,mutating=false,failurePolicy=fail,sideEffects=None,groups=autonomic.homeostat.dev,resources=autonomicapps,verbs=create;update,versions=v1alpha1,name=vautonomicapp.homeostat.dev,admissionReviewVersions=v1

// AppValidator rejects apps whose symptoms do not compile or name unknown components or
// sensors, and whose policies name unknown symptoms or components: the checks CEL
// validation in the CRD cannot make. The reconciler makes the same checks and reports
// them in the Ready condition when the webhook is not installed.
type AppValidator struct{}

var _ admission.Validator[*v1alpha1.AutonomicApp] = &AppValidator{}

// ValidateCreate validates a new app.
func (v *AppValidator) ValidateCreate(_ context.Context, app *v1alpha1.AutonomicApp) (admission.Warnings, error) {
	return nil, validationError(app)
}

// ValidateUpdate validates a changed app.
func (v *AppValidator) ValidateUpdate(_ context.Context, _, app *v1alpha1.AutonomicApp) (admission.Warnings, error) {
	return nil, validationError(app)
}

// ValidateDelete allows every delete.
func (v *AppValidator) ValidateDelete(context.Context, *v1alpha1.AutonomicApp) (admission.Warnings, error) {
	return nil, nil
}

func validationError(app *v1alpha1.AutonomicApp) error {
	errs := analyze.ValidateApp(app)
	if len(errs) == 0 {
		return nil
	}
	var list field.ErrorList
	for _, e := range errs {
		list = append(list, field.Invalid(fieldPath(e.Field), "", e.Message))
	}
	return apierrors.NewInvalid(v1alpha1.GroupVersion.WithKind("AutonomicApp").GroupKind(), app.Name, list)
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
