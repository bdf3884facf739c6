package knowledge

import (
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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

// foRec is a record of a failover change of policy fo, or of a ladder's demotion, at t0+d.
func foRec(id, policy string, d time.Duration, result v1alpha1.ActionResult, fo v1alpha1.FailoverRecord) v1alpha1.ActionRecord {
	return v1alpha1.ActionRecord{ID: id, Time: metav1.NewTime(t0.Add(d)), Policy: policy, Action: "failover",
		Reason: "because " + id, Result: result, Failover: &fo}
}

var (
	scaleUp  = v1alpha1.FailoverRecord{Phase: v1alpha1.FailoverScaleUpStandby, Policy: "fo", Component: "web-eu", Service: "web"}
	move     = v1alpha1.FailoverRecord{Phase: v1alpha1.FailoverMoveTraffic, Policy: "fo", Component: "web-eu", From: "web", Service: "web"}
	scaleOld = v1alpha1.FailoverRecord{Phase: v1alpha1.FailoverScaleDownOldPrimary, Policy: "fo", Component: "web", Service: "web"}
	demote   = v1alpha1.FailoverRecord{Phase: v1alpha1.FailoverDemote, Policy: "fo", Component: "web", Service: "web"}
)

// history is newest first, as in status.
func history(recs ...v1alpha1.ActionRecord) *v1alpha1.AutonomicAppStatus {
	return &v1alpha1.AutonomicAppStatus{History: recs}
}

func change(id string, d time.Duration, fo v1alpha1.FailoverRecord) *FailoverChange {
	return &FailoverChange{FailoverRecord: fo, At: t0.Add(d), Reason: "because " + id}
}

func TestFailoverHistory(t *testing.T) {
	tests := []struct {
		name           string
		st             *v1alpha1.AutonomicAppStatus
		last, lastMove *FailoverChange
	}{
		{"an empty ledger", history(), nil, nil},
		{"the latest change after the latest move",
			history(foRec("c", "fo", 3*time.Minute, v1alpha1.ResultSucceeded, scaleOld),
				foRec("b", "fo", 2*time.Minute, v1alpha1.ResultSucceeded, move),
				foRec("a", "fo", time.Minute, v1alpha1.ResultSucceeded, scaleUp)),
			change("c", 3*time.Minute, scaleOld), change("b", 2*time.Minute, move)},
		{"a move that is the latest change is both",
			history(foRec("b", "fo", 2*time.Minute, v1alpha1.ResultSucceeded, move),
				foRec("a", "fo", time.Minute, v1alpha1.ResultSucceeded, scaleUp)),
			change("b", 2*time.Minute, move), change("b", 2*time.Minute, move)},
		{"no move yet",
			history(foRec("a", "fo", time.Minute, v1alpha1.ResultSucceeded, scaleUp)),
			change("a", time.Minute, scaleUp), nil},
		{"changes that failed, were skipped or are pending did not take effect",
			history(foRec("d", "fo", 4*time.Minute, v1alpha1.ResultPending, scaleOld),
				foRec("c", "fo", 3*time.Minute, v1alpha1.ResultFailed, move),
				foRec("b", "fo", 2*time.Minute, v1alpha1.ResultSkipped, move),
				foRec("a", "fo", time.Minute, v1alpha1.ResultSucceeded, scaleUp)),
			change("a", time.Minute, scaleUp), nil},
		{"another policy's changes and a ladder's demotion are not the policy's changes",
			history(foRec("c", "heal", 3*time.Minute, v1alpha1.ResultSucceeded, demote),
				foRec("b", "other", 2*time.Minute, v1alpha1.ResultSucceeded, move),
				rec("x", 90*time.Second, v1alpha1.ResultSucceeded),
				foRec("a", "fo", time.Minute, v1alpha1.ResultSucceeded, scaleUp)),
			change("a", time.Minute, scaleUp), nil},
		{"a move of the previous version is read",
			history(v1alpha1.ActionRecord{ID: "a", Time: metav1.NewTime(t0), Policy: "fo", Action: "failover", Reason: "because a",
				Result: v1alpha1.ResultSucceeded, Objects: []string{"Service/web", "failover=MoveTraffic", "component=web-eu", "from=web"}}),
			change("a", 0, move), change("a", 0, move)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			last, lastMove := FailoverHistory(tt.st, "fo")
			if !reflect.DeepEqual(last, tt.last) || !reflect.DeepEqual(lastMove, tt.lastMove) {
				t.Errorf("FailoverHistory() = %+v, %+v; want %+v, %+v", last, lastMove, tt.last, tt.lastMove)
			}
		})
	}
}

func TestLastFailoverRecord(t *testing.T) {
	tests := []struct {
		name   string
		st     *v1alpha1.AutonomicAppStatus
		wantID string
	}{
		{"an empty ledger", history(), ""},
		{"the newest own record, whatever its result",
			history(rec("x", 3*time.Minute, v1alpha1.ResultSucceeded),
				foRec("c", "heal", 2*time.Minute, v1alpha1.ResultSucceeded, demote),
				foRec("b", "fo", time.Minute, v1alpha1.ResultFailed, move),
				foRec("a", "fo", 0, v1alpha1.ResultSucceeded, scaleUp)),
			"b"},
		{"another policy's records only", history(foRec("a", "other", 0, v1alpha1.ResultSucceeded, move)), ""},
		{"a record of the policy that is not a failover",
			history(v1alpha1.ActionRecord{ID: "a", Policy: "fo", Action: "scale", Result: v1alpha1.ResultSucceeded}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := LastFailoverRecord(tt.st, "fo")
			switch {
			case tt.wantID == "" && got != nil:
				t.Errorf("LastFailoverRecord() = %s, want none", got.ID)
			case tt.wantID != "" && (got == nil || got.ID != tt.wantID):
				t.Errorf("LastFailoverRecord() = %+v, want %s", got, tt.wantID)
			case got != nil && got != &tt.st.History[slices.IndexFunc(tt.st.History, func(r v1alpha1.ActionRecord) bool { return r.ID == tt.wantID })]:
				t.Error("LastFailoverRecord() must point into the ledger")
			}
		})
	}
}

func TestLatestFailoverChange(t *testing.T) {
	tests := []struct {
		name string
		st   *v1alpha1.AutonomicAppStatus
		want *FailoverChange
	}{
		{"an empty ledger", history(), nil},
		{"the app's newest action is the policy's change",
			history(foRec("b", "fo", time.Minute, v1alpha1.ResultSucceeded, scaleUp),
				foRec("a", "fo", 0, v1alpha1.ResultSucceeded, move)),
			change("b", time.Minute, scaleUp)},
		{"a ladder's demotion of the policy's primary continues its failover",
			history(foRec("a", "heal", 0, v1alpha1.ResultSucceeded, demote)),
			change("a", 0, demote)},
		{"an older change under a newer action of another kind does not count",
			history(rec("b", time.Minute, v1alpha1.ResultSucceeded), foRec("a", "fo", 0, v1alpha1.ResultSucceeded, scaleUp)),
			nil},
		{"another failover policy's change",
			history(foRec("a", "other", 0, v1alpha1.ResultSucceeded,
				v1alpha1.FailoverRecord{Phase: v1alpha1.FailoverScaleUpStandby, Policy: "other", Component: "db"})),
			nil},
		{"a change that did not take effect",
			history(foRec("a", "fo", 0, v1alpha1.ResultFailed, scaleUp)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LatestFailoverChange(tt.st, "fo"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("LatestFailoverChange() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDemotedPrimaries(t *testing.T) {
	start := metav1.NewTime(t0.Add(time.Minute))
	open := func(name string) v1alpha1.PolicyStatus {
		return v1alpha1.PolicyStatus{Name: name, Step: 2, EpisodeStart: &start}
	}
	demoteOf := func(component string) v1alpha1.FailoverRecord {
		d := demote
		d.Component = component
		return d
	}
	ladders := []string{"heal", "heal-db"}
	tests := []struct {
		name     string
		policies []v1alpha1.PolicyStatus
		history  []v1alpha1.ActionRecord
		want     map[string]string
	}{
		{"no ladder has an open episode", []v1alpha1.PolicyStatus{{Name: "heal"}},
			[]v1alpha1.ActionRecord{foRec("a", "heal", 2*time.Minute, v1alpha1.ResultSucceeded, demote)}, nil},
		{"a demotion in the ladder's open episode",
			[]v1alpha1.PolicyStatus{open("heal")},
			[]v1alpha1.ActionRecord{foRec("a", "heal", 2*time.Minute, v1alpha1.ResultSucceeded, demote)},
			map[string]string{"web": "heal"}},
		{"each ladder's demotions, of this policy only",
			[]v1alpha1.PolicyStatus{open("heal"), open("heal-db")},
			[]v1alpha1.ActionRecord{
				foRec("c", "heal-db", 3*time.Minute, v1alpha1.ResultSucceeded,
					v1alpha1.FailoverRecord{Phase: v1alpha1.FailoverDemote, Policy: "other", Component: "db"}),
				foRec("b", "heal-db", 3*time.Minute, v1alpha1.ResultSucceeded, demoteOf("web-eu")),
				foRec("a", "heal", 2*time.Minute, v1alpha1.ResultSucceeded, demote)},
			map[string]string{"web": "heal", "web-eu": "heal-db"}},
		{"a demotion before the episode began belongs to an earlier one",
			[]v1alpha1.PolicyStatus{open("heal")},
			[]v1alpha1.ActionRecord{foRec("a", "heal", 0, v1alpha1.ResultSucceeded, demote)}, nil},
		{"a demotion that did not take effect",
			[]v1alpha1.PolicyStatus{open("heal")},
			[]v1alpha1.ActionRecord{foRec("a", "heal", 2*time.Minute, v1alpha1.ResultFailed, demote)}, nil},
		{"a policy that is not a ladder demotes nothing",
			[]v1alpha1.PolicyStatus{open("scaler")},
			[]v1alpha1.ActionRecord{foRec("a", "scaler", 2*time.Minute, v1alpha1.ResultSucceeded, demote)}, nil},
		{"the policy's own changes are not demotions",
			[]v1alpha1.PolicyStatus{open("heal")},
			[]v1alpha1.ActionRecord{foRec("a", "fo", 2*time.Minute, v1alpha1.ResultSucceeded, move)}, nil},
		{"a demotion of the previous version",
			[]v1alpha1.PolicyStatus{open("heal")},
			[]v1alpha1.ActionRecord{{ID: "a", Time: metav1.NewTime(t0.Add(2 * time.Minute)), Policy: "heal", Action: "failover",
				Result: v1alpha1.ResultSucceeded, Objects: []string{"failover=Demote", "policy=fo", "component=web"}}},
			map[string]string{"web": "heal"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &v1alpha1.AutonomicAppStatus{Policies: tt.policies, History: tt.history}
			if got := DemotedPrimaries(st, "fo", ladders); !maps.Equal(got, tt.want) {
				t.Errorf("DemotedPrimaries() = %v, want %v", got, tt.want)
			}
		})
	}
}
