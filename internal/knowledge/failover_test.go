package knowledge

import (
	"testing"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func TestFailoverOfReadsTheTypedFieldAndThePreviousForm(t *testing.T) {
	typed := v1alpha1.FailoverRecord{Phase: v1alpha1.FailoverMoveTraffic, Policy: "fo", Component: "web-eu", From: "web", Service: "web"}
	tests := []struct {
		name   string
		rec    v1alpha1.ActionRecord
		want   v1alpha1.FailoverRecord
		wantOK bool
	}{
		{"the typed field is what the record changes",
			v1alpha1.ActionRecord{Action: "failover", Policy: "fo", Objects: []string{"Service/web"}, Failover: &typed},
			typed, true},
		{"the typed field wins over key=value objects",
			v1alpha1.ActionRecord{Action: "failover", Policy: "fo", Failover: &typed,
				Objects: []string{"Service/other", "failover=ScaleUpStandby", "component=web"}},
			typed, true},
		{"a traffic move of the previous version: its Service from the objects, its policy the record's",
			v1alpha1.ActionRecord{Action: "failover", Policy: "fo",
				Objects: []string{"Service/web", "failover=MoveTraffic", "component=web-eu", "from=web"}},
			typed, true},
		{"a scale of the previous version",
			v1alpha1.ActionRecord{Action: "failover", Policy: "fo",
				Objects: []string{"Deployment/web-eu", "failover=ScaleUpStandby", "component=web-eu"}},
			v1alpha1.FailoverRecord{Phase: v1alpha1.FailoverScaleUpStandby, Policy: "fo", Component: "web-eu"}, true},
		{"a ladder's demotion of the previous version names the failover policy",
			v1alpha1.ActionRecord{Action: "failover", Policy: "heal",
				Objects: []string{"failover=Demote", "policy=fo", "component=web"}},
			v1alpha1.FailoverRecord{Phase: v1alpha1.FailoverDemote, Policy: "fo", Component: "web"}, true},
		{"a record of another action, even with failover entries",
			v1alpha1.ActionRecord{Action: "scale", Objects: []string{"failover=ScaleUpStandby", "component=web"}, Failover: &typed},
			v1alpha1.FailoverRecord{}, false},
		{"a failover record that says nothing", v1alpha1.ActionRecord{Action: "failover"}, v1alpha1.FailoverRecord{}, false},
		{"a previous-version record without a phase",
			v1alpha1.ActionRecord{Action: "failover", Objects: []string{"Service/web", "component=web"}}, v1alpha1.FailoverRecord{}, false},
		{"a previous-version record without a component",
			v1alpha1.ActionRecord{Action: "failover", Objects: []string{"failover=MoveTraffic"}}, v1alpha1.FailoverRecord{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := FailoverOf(tt.rec)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("FailoverOf() = %+v, %v; want %+v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
