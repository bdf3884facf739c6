package controllers

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// TestAppValidatorUpdateValidatesOnlySpecChanges proves that the webhook's validator
// lets metadata-only updates through, even of an app whose spec it would refuse (one
// let in while the webhook was not installed, or broken by a shared policy since), so a
// person can always pause it; and that every spec change is still validated.
func TestAppValidatorUpdateValidatesOnlySpecChanges(t *testing.T) {
	const invalid = `unknown component "api"`
	// stored is the app as the API server holds it: its symptom names a component the
	// app does not have, which the validator refuses.
	stored := appWithSymptom("shop", "shop", "components.api.restarts > 0")
	stored.Labels = map[string]string{"team": "web"}
	stored.Finalizers = []string{"example.com/hold"}
	v := &AppValidator{}
	if _, err := v.ValidateCreate(context.Background(), stored.DeepCopy()); err == nil || !strings.Contains(err.Error(), invalid) {
		t.Fatalf("ValidateCreate of the stored app = %v, want an error containing %q: the fixture must be invalid", err, invalid)
	}

	for _, tc := range []struct {
		name   string
		old    *v1alpha1.AutonomicApp
		change func(*v1alpha1.AutonomicApp)
		want   string // a substring of the error; empty to allow the update
	}{
		{
			name:   "setting the pause annotation on an invalid app is allowed",
			old:    stored,
			change: func(a *v1alpha1.AutonomicApp) { a.Annotations = map[string]string{v1alpha1.PausedAnnotation: "true"} },
		},
		{
			name:   "changing a label of an invalid app is allowed",
			old:    stored,
			change: func(a *v1alpha1.AutonomicApp) { a.Labels["team"] = "payments" },
		},
		{
			name:   "removing a finalizer of an invalid app is allowed",
			old:    stored,
			change: func(a *v1alpha1.AutonomicApp) { a.Finalizers = nil },
		},
		{
			name: "a status change of an invalid app is allowed",
			old:  stored,
			change: func(a *v1alpha1.AutonomicApp) {
				a.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse}}
			},
		},
		{
			name:   "a spec change of an invalid app is validated: changing the mode does not fix the symptom",
			old:    stored,
			change: func(a *v1alpha1.AutonomicApp) { a.Spec.Mode = v1alpha1.ModeDryRun },
			want:   invalid,
		},
		{
			name: "a spec change together with the pause annotation is validated",
			old:  stored,
			change: func(a *v1alpha1.AutonomicApp) {
				a.Annotations = map[string]string{v1alpha1.PausedAnnotation: "true"}
				a.Spec.Symptoms[0].Expression = "components.db.restarts > 0"
			},
			want: `unknown component "db"`,
		},
		{
			name:   "a spec change that fixes an invalid app is allowed",
			old:    stored,
			change: func(a *v1alpha1.AutonomicApp) { a.Spec.Symptoms[0].Expression = "components.web.restarts > 0" },
		},
		{
			name: "a spec change that breaks a valid app is refused",
			old:  appWithSymptom("shop", "shop", "components.web.restarts > 0"),
			change: func(a *v1alpha1.AutonomicApp) {
				a.Spec.Symptoms = append(a.Spec.Symptoms, v1alpha1.Symptom{Name: "Slow", Expression: "sensors.latency > 0.3"})
			},
			want: `unknown sensor "latency"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			updated := tc.old.DeepCopy()
			tc.change(updated)
			_, err := v.ValidateUpdate(context.Background(), tc.old.DeepCopy(), updated)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("ValidateUpdate = %v, want the update allowed", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("ValidateUpdate = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
