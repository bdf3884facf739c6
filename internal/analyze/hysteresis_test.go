package analyze

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) *metav1.Time { return &metav1.Time{Time: t0.Add(d)} }

var (
	holds    = Evaluation{Holding: true}
	notHolds = Evaluation{}
	failed   = Evaluation{Err: errors.New("no such key: latency_p95")}
)

func TestStep(t *testing.T) {
	const forDur, clearFor = 2 * time.Minute, time.Minute
	tests := []struct {
		name          string
		prev          v1alpha1.SymptomStatus
		ev            Evaluation
		forDur        time.Duration
		clearFor      time.Duration
		now           time.Duration // after t0
		want          v1alpha1.SymptomStatus
		wantNextCheck *metav1.Time // nil for none
	}{
		{
			name: "inactive and not holding stays inactive with nothing pending",
			prev: v1alpha1.SymptomStatus{Name: "S"}, ev: notHolds, forDur: forDur, clearFor: clearFor,
			want: v1alpha1.SymptomStatus{Name: "S"},
		},
		{
			name: "inactive and starting to hold starts the for",
			prev: v1alpha1.SymptomStatus{Name: "S"}, ev: holds, forDur: forDur, clearFor: clearFor,
			want:          v1alpha1.SymptomStatus{Name: "S", Holding: true, PendingSince: at(0)},
			wantNextCheck: at(forDur),
		},
		{
			name: "inactive and still holding before the for keeps pendingSince",
			prev: v1alpha1.SymptomStatus{Name: "S", Holding: true, PendingSince: at(0)}, ev: holds, forDur: forDur, clearFor: clearFor,
			now:           90 * time.Second,
			want:          v1alpha1.SymptomStatus{Name: "S", Holding: true, PendingSince: at(0)},
			wantNextCheck: at(forDur),
		},
		{
			name: "inactive and holding for the whole for activates",
			prev: v1alpha1.SymptomStatus{Name: "S", Holding: true, PendingSince: at(0)}, ev: holds, forDur: forDur, clearFor: clearFor,
			now:  forDur,
			want: v1alpha1.SymptomStatus{Name: "S", Active: true, Since: at(forDur), Holding: true},
		},
		{
			name: "inactive and holding past the for activates",
			prev: v1alpha1.SymptomStatus{Name: "S", Holding: true, PendingSince: at(0)}, ev: holds, forDur: forDur, clearFor: clearFor,
			now:  10 * time.Minute,
			want: v1alpha1.SymptomStatus{Name: "S", Active: true, Since: at(10 * time.Minute), Holding: true},
		},
		{
			name: "inactive and no longer holding cancels the for",
			prev: v1alpha1.SymptomStatus{Name: "S", Holding: true, PendingSince: at(0)}, ev: notHolds, forDur: forDur, clearFor: clearFor,
			now:  time.Minute,
			want: v1alpha1.SymptomStatus{Name: "S"},
		},
		{
			name: "for 0 activates at once",
			prev: v1alpha1.SymptomStatus{Name: "S", Since: at(-time.Hour)}, ev: holds, forDur: 0, clearFor: clearFor,
			now:  time.Second,
			want: v1alpha1.SymptomStatus{Name: "S", Active: true, Since: at(time.Second), Holding: true},
		},
		{
			name: "negative for counts as 0",
			prev: v1alpha1.SymptomStatus{Name: "S"}, ev: holds, forDur: -time.Minute, clearFor: clearFor,
			want: v1alpha1.SymptomStatus{Name: "S", Active: true, Since: at(0), Holding: true},
		},
		{
			name: "active and holding stays active with nothing pending",
			prev: v1alpha1.SymptomStatus{Name: "S", Active: true, Since: at(0), Holding: true}, ev: holds, forDur: forDur, clearFor: clearFor,
			now:  time.Hour,
			want: v1alpha1.SymptomStatus{Name: "S", Active: true, Since: at(0), Holding: true},
		},
		{
			name: "active and holding again cancels the clearFor",
			prev: v1alpha1.SymptomStatus{Name: "S", Active: true, Since: at(0), PendingSince: at(time.Minute)}, ev: holds, forDur: forDur, clearFor: clearFor,
			now:  90 * time.Second,
			want: v1alpha1.SymptomStatus{Name: "S", Active: true, Since: at(0), Holding: true},
		},
		{
			name: "active and no longer holding starts the clearFor",
			prev: v1alpha1.SymptomStatus{Name: "S", Active: true, Since: at(0), Holding: true}, ev: notHolds, forDur: forDur, clearFor: clearFor,
			now:           time.Hour,
			want:          v1alpha1.SymptomStatus{Name: "S", Active: true, Since: at(0), PendingSince: at(time.Hour)},
			wantNextCheck: at(time.Hour + clearFor),
		},
		{
			name: "active and not holding before the clearFor stays active",
			prev: v1alpha1.SymptomStatus{Name: "S", Active: true, Since: at(0), PendingSince: at(time.Hour)}, ev: notHolds, forDur: forDur, clearFor: clearFor,
			now:           time.Hour + 59*time.Second,
			want:          v1alpha1.SymptomStatus{Name: "S", Active: true, Since: at(0), PendingSince: at(time.Hour)},
			wantNextCheck: at(time.Hour + clearFor),
		},
		{
			name: "active and not holding for the whole clearFor clears",
			prev: v1alpha1.SymptomStatus{Name: "S", Active: true, Since: at(0), PendingSince: at(time.Hour)}, ev: notHolds, forDur: forDur, clearFor: clearFor,
			now:  time.Hour + clearFor,
			want: v1alpha1.SymptomStatus{Name: "S", Since: at(time.Hour + clearFor)},
		},
		{
			name: "clearFor 0 clears at once",
			prev: v1alpha1.SymptomStatus{Name: "S", Active: true, Since: at(0), Holding: true}, ev: notHolds, forDur: forDur, clearFor: 0,
			now:  time.Hour,
			want: v1alpha1.SymptomStatus{Name: "S", Since: at(time.Hour)},
		},
		{
			name: "an evaluation error does not activate and is kept as the message",
			prev: v1alpha1.SymptomStatus{Name: "S"}, ev: failed, forDur: 0, clearFor: 0,
			want: v1alpha1.SymptomStatus{Name: "S", Message: "no such key: latency_p95"},
		},
		{
			name: "an evaluation error counts as not holding and starts the clearFor",
			prev: v1alpha1.SymptomStatus{Name: "S", Active: true, Since: at(0), Holding: true}, ev: failed, forDur: forDur, clearFor: clearFor,
			now:           time.Hour,
			want:          v1alpha1.SymptomStatus{Name: "S", Active: true, Since: at(0), PendingSince: at(time.Hour), Message: "no such key: latency_p95"},
			wantNextCheck: at(time.Hour + clearFor),
		},
		{
			name: "a holding value with an error counts as not holding",
			prev: v1alpha1.SymptomStatus{Name: "S"}, ev: Evaluation{Holding: true, Err: errors.New("x")}, forDur: 0, clearFor: 0,
			want: v1alpha1.SymptomStatus{Name: "S", Message: "x"},
		},
		{
			name: "the message of a previous error is cleared",
			prev: v1alpha1.SymptomStatus{Name: "S", Message: "no such key: latency_p95"}, ev: notHolds, forDur: forDur, clearFor: clearFor,
			want: v1alpha1.SymptomStatus{Name: "S"},
		},
		{
			name: "now is kept at whole seconds, as the API server stores it",
			prev: v1alpha1.SymptomStatus{Name: "S"}, ev: holds, forDur: forDur, clearFor: clearFor,
			now:           1500 * time.Millisecond,
			want:          v1alpha1.SymptomStatus{Name: "S", Holding: true, PendingSince: at(time.Second)},
			wantNextCheck: at(time.Second + forDur),
		},
		{
			name: "a sub-second pendingSince is read at whole seconds",
			prev: v1alpha1.SymptomStatus{Name: "S", Holding: true, PendingSince: at(700 * time.Millisecond)}, ev: holds, forDur: forDur, clearFor: clearFor,
			now:  forDur + 100*time.Millisecond,
			want: v1alpha1.SymptomStatus{Name: "S", Active: true, Since: at(forDur), Holding: true},
		},
		{
			name: "a pendingSince in the future (clock skew) restarts the for now",
			prev: v1alpha1.SymptomStatus{Name: "S", Holding: true, PendingSince: at(time.Hour)}, ev: holds, forDur: forDur, clearFor: clearFor,
			now:           time.Minute,
			want:          v1alpha1.SymptomStatus{Name: "S", Holding: true, PendingSince: at(time.Minute)},
			wantNextCheck: at(time.Minute + forDur),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, next := Step(tt.prev, tt.ev, tt.forDur, tt.clearFor, t0.Add(tt.now))
			if !statusEqual(got, tt.want) {
				t.Errorf("status = %s\nwant     %s", fmtStatus(got), fmtStatus(tt.want))
			}
			switch {
			case tt.wantNextCheck == nil && !next.IsZero():
				t.Errorf("nextCheck = %v, want none", next)
			case tt.wantNextCheck != nil && !next.Equal(tt.wantNextCheck.Time):
				t.Errorf("nextCheck = %v, want %v", next, tt.wantNextCheck.Time)
			}
		})
	}
}

// TestStepFlappingShorterThanForNeverActivates runs a fake clock through a symptom that
// holds for 90s, fails for 10s, and again, with for 2m: it must never become active.
func TestStepFlappingShorterThanForNeverActivates(t *testing.T) {
	st := v1alpha1.SymptomStatus{Name: "Flappy"}
	now := t0
	for cycle := range 20 {
		for range 9 { // hold 90s, observed every 10s
			var next time.Time
			st, next = Step(st, holds, 2*time.Minute, time.Minute, now)
			if st.Active {
				t.Fatalf("cycle %d at %v: active after holding for less than for", cycle, now.Sub(t0))
			}
			if next.IsZero() || next.Sub(now) > 2*time.Minute {
				t.Fatalf("nextCheck = %v at %v, want a pending deadline within for", next, now)
			}
			now = now.Add(10 * time.Second)
		}
		st, _ = Step(st, notHolds, 2*time.Minute, time.Minute, now) // a 10s dip
		if st.PendingSince != nil {
			t.Fatalf("pendingSince = %v after the expression stopped holding, want nil", st.PendingSince)
		}
		now = now.Add(10 * time.Second)
	}
}

// TestStepThroughAnAPIServerRoundTrip replays the controller: each reconcile reads the
// status as the API server returns it (whole seconds, local time zone) and requeues at
// nextCheck; the symptom must activate exactly at the first reconcile on or after its
// deadline, and a reconcile that changes nothing must produce an equal status.
func TestStepThroughAnAPIServerRoundTrip(t *testing.T) {
	roundTrip := func(s v1alpha1.SymptomStatus) v1alpha1.SymptomStatus {
		rt := func(mt *metav1.Time) *metav1.Time {
			if mt == nil {
				return nil
			}
			b, err := mt.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			var out metav1.Time
			if err := out.UnmarshalJSON(b); err != nil {
				t.Fatal(err)
			}
			return &out
		}
		s.Since, s.PendingSince = rt(s.Since), rt(s.PendingSince)
		return s
	}
	start := t0.Add(400 * time.Millisecond)
	st, next := Step(v1alpha1.SymptomStatus{Name: "S"}, holds, 30*time.Second, 0, start)
	stored := roundTrip(st)
	if !statusEqual(stored, st) {
		t.Fatalf("status changed through the API server: %s -> %s", fmtStatus(st), fmtStatus(stored))
	}
	// An event a little later changes nothing.
	again, next2 := Step(stored, holds, 30*time.Second, 0, start.Add(3*time.Second+200*time.Millisecond))
	if !statusEqual(again, stored) || !next2.Equal(next) {
		t.Fatalf("a reconcile with nothing new changed the status: %s -> %s (%v -> %v)", fmtStatus(stored), fmtStatus(again), next, next2)
	}
	// The requeue at nextCheck activates.
	final, _ := Step(roundTrip(again), holds, 30*time.Second, 0, next)
	if !final.Active || !final.Since.Equal(&metav1.Time{Time: t0.Add(30 * time.Second)}) {
		t.Fatalf("at nextCheck: %s, want active since t0+30s", fmtStatus(final))
	}
}

func TestStepTruncatesLongMessages(t *testing.T) {
	long := strings.Repeat("é", 1000) // 2000 bytes
	got, _ := Step(v1alpha1.SymptomStatus{Name: "S"}, Evaluation{Err: errors.New(long)}, 0, 0, t0)
	if len(got.Message) > maxMessageLength || !strings.HasSuffix(got.Message, "…") || !strings.HasPrefix(got.Message, "éé") {
		t.Errorf("message of %d bytes, want at most %d ending in …", len(got.Message), maxMessageLength)
	}
	if strings.ContainsRune(got.Message, '\uFFFD') {
		t.Error("message split a character")
	}
}

func TestAdvance(t *testing.T) {
	symptoms := []v1alpha1.Symptom{
		{Name: "Fast", Expression: "true"},
		{Name: "Slow", Expression: "true", For: &metav1.Duration{Duration: 2 * time.Minute}},
		{Name: "Sooner", Expression: "true", For: &metav1.Duration{Duration: time.Minute}},
		{Name: "Invalid", Expression: "nope"},
	}
	prev := []v1alpha1.SymptomStatus{
		{Name: "Gone", Active: true},
		{Name: "Slow", Holding: true, PendingSince: at(-30 * time.Second)},
	}
	evals := map[string]Evaluation{"Fast": holds, "Slow": holds, "Sooner": holds}
	got, next := Advance(prev, symptoms, evals, t0)
	want := []v1alpha1.SymptomStatus{
		{Name: "Fast", Active: true, Since: at(0), Holding: true},
		{Name: "Slow", Holding: true, PendingSince: at(-30 * time.Second)},
		{Name: "Sooner", Holding: true, PendingSince: at(0)},
		{Name: "Invalid", Message: errNotEvaluated.Error()},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d statuses, want %d", len(got), len(want))
	}
	for i := range want {
		if !statusEqual(got[i], want[i]) {
			t.Errorf("[%d] = %s\nwant  %s", i, fmtStatus(got[i]), fmtStatus(want[i]))
		}
	}
	if wantNext := t0.Add(time.Minute); !next.Equal(wantNext) {
		t.Errorf("nextCheck = %v, want the earliest deadline %v", next, wantNext)
	}
	if _, next := Advance(nil, symptoms[:1], evals, t0); !next.IsZero() {
		t.Errorf("nextCheck = %v with nothing pending, want zero", next)
	}
}

func statusEqual(a, b v1alpha1.SymptomStatus) bool {
	return a.Name == b.Name && a.Active == b.Active && a.Holding == b.Holding && a.Message == b.Message &&
		timeEqual(a.Since, b.Since) && timeEqual(a.PendingSince, b.PendingSince)
}

func timeEqual(a, b *metav1.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b)
}

func fmtStatus(s v1alpha1.SymptomStatus) string {
	f := func(mt *metav1.Time) string {
		if mt == nil {
			return "nil"
		}
		return "t0+" + mt.Sub(t0).String()
	}
	return "{" + s.Name + " active=" + boolStr(s.Active) + " holding=" + boolStr(s.Holding) +
		" since=" + f(s.Since) + " pendingSince=" + f(s.PendingSince) + " message=" + s.Message + "}"
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
