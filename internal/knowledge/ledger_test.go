package knowledge

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func rec(id string, d time.Duration, r v1alpha1.ActionResult) v1alpha1.ActionRecord {
	return v1alpha1.ActionRecord{ID: id, Time: metav1.NewTime(t0.Add(d)), Action: "restartPods", Result: r}
}

func TestRecordKeepsHistoryBoundedAndNewestFirst(t *testing.T) {
	st := &v1alpha1.AutonomicAppStatus{}
	for i := range HistoryLimit + 10 {
		Record(st, rec(fmt.Sprint(i), time.Duration(i)*time.Second, v1alpha1.ResultSucceeded))
	}
	if len(st.History) != HistoryLimit {
		t.Fatalf("history has %d records, want %d", len(st.History), HistoryLimit)
	}
	if st.History[0].ID != fmt.Sprint(HistoryLimit+9) || st.LastAction.ID != st.History[0].ID {
		t.Fatalf("newest first: got %s, last action %s", st.History[0].ID, st.LastAction.ID)
	}
}

func TestRecordNeverDropsAPendingIntent(t *testing.T) {
	st := &v1alpha1.AutonomicAppStatus{}
	Record(st, rec("intent", 0, v1alpha1.ResultPending))
	for i := range HistoryLimit + 5 {
		Record(st, rec(fmt.Sprint(i), time.Duration(i+1)*time.Second, v1alpha1.ResultSucceeded))
	}
	if Find(st, "intent") == nil {
		t.Fatal("a pending intent was dropped from the ledger")
	}
	if len(st.History) != HistoryLimit {
		t.Fatalf("history has %d records, want %d", len(st.History), HistoryLimit)
	}
	if p := Pending(st); len(p) != 1 || p[0].ID != "intent" {
		t.Fatalf("pending = %+v", p)
	}
}

func TestCompleteRecordsTheResult(t *testing.T) {
	st := &v1alpha1.AutonomicAppStatus{}
	Record(st, rec("a", 0, v1alpha1.ResultPending))
	Complete(st, "a", v1alpha1.ResultFailed, strings.Repeat("x", 2000), t0.Add(time.Second))
	r := Find(st, "a")
	if r.Result != v1alpha1.ResultFailed || r.FinishedAt == nil || len(r.Message) != 1024 {
		t.Fatalf("record = %+v", r)
	}
	if st.LastAction.Result != v1alpha1.ResultFailed {
		t.Fatal("lastAction must follow the record's result")
	}
	if len(Pending(st)) != 0 {
		t.Fatal("a completed intent is not pending")
	}
	Complete(st, "missing", v1alpha1.ResultSucceeded, "", t0) // no panic
}

func TestActionTimesAndLastActionAt(t *testing.T) {
	st := &v1alpha1.AutonomicAppStatus{}
	if !LastActionAt(st).IsZero() {
		t.Fatal("no action yet")
	}
	Record(st, rec("a", time.Minute, v1alpha1.ResultSucceeded))
	Record(st, rec("b", 3*time.Minute, v1alpha1.ResultSkipped))
	if got := LastActionAt(st); !got.Equal(t0.Add(3 * time.Minute)) {
		t.Fatalf("last = %s", got)
	}
	if n := len(ActionTimes(st)); n != 2 {
		t.Fatalf("times = %d", n)
	}
}

func TestNewIDIsUniqueAndBounded(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID(strings.Repeat("p", 63), t0)
		if len(id) > 64 {
			t.Fatalf("id %q longer than 64", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}
