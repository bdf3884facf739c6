package plan

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func TestCheckForbiddenAsksAgainOnlyAfterTheRetryDelay(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	refused := &v1alpha1.ActionRecord{ID: "scale-web-1", Time: metav1.NewTime(t0), Action: "scale", Component: "web",
		Result: v1alpha1.ResultForbidden, Message: "Refused by the tenant's rights, nothing was done: ServiceAccount shop/healer may not patch deployments.apps/scale."}
	with := func(f func(r *v1alpha1.ActionRecord)) *v1alpha1.ActionRecord {
		r := refused.DeepCopy()
		f(r)
		return r
	}
	cases := []struct {
		name       string
		last       *v1alpha1.ActionRecord
		action     string
		step       int32
		components []string
		since      time.Duration
		held       bool
	}{
		{name: "the same scale a moment later waits", last: refused, action: "scale", components: []string{"web"}, since: time.Second, held: true},
		{name: "until the delay has passed", last: refused, action: "scale", components: []string{"web"}, since: ForbiddenRetryDelay},
		{name: "another action is asked at once", last: refused, action: "rolloutRestart", components: []string{"web"}, since: time.Second},
		{name: "another component is asked at once", last: refused, action: "scale", components: []string{"api"}, since: time.Second},
		{name: "one of the targets of a \"*\" action", last: refused, action: "scale", components: []string{"api", "web"}, since: time.Second, held: true},
		{name: "a ladder's next step is never held", last: with(func(r *v1alpha1.ActionRecord) { r.Step = 1 }), action: "scale", step: 2,
			components: []string{"web"}, since: time.Second},
		{name: "a failure is not a refusal", last: with(func(r *v1alpha1.ActionRecord) { r.Result = v1alpha1.ResultFailed }), action: "scale",
			components: []string{"web"}, since: time.Second},
		{name: "no record", action: "scale", components: []string{"web"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := CheckForbidden(tc.last, tc.action, tc.step, tc.components, t0.Add(tc.since))
			if v.Held != tc.held {
				t.Fatalf("Held = %v (%+v), want %v", v.Held, v, tc.held)
			}
			if !v.Held {
				return
			}
			want := "the tenant's rights refused it at 2026-12-04T10:00:00Z (action scale-web-1: Refused by the tenant's rights, nothing was done: " +
				"ServiceAccount shop/healer may not patch deployments.apps/scale); they are asked again at 2026-12-04T10:01:00Z."
			if v.Reason != ReasonForbidden || v.Message != want || !v.Until.Equal(t0.Add(ForbiddenRetryDelay)) {
				t.Errorf("verdict %+v; want reason Forbidden until %s with\n  %s", v, t0.Add(ForbiddenRetryDelay), want)
			}
		})
	}
}
