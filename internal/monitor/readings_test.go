package monitor

import (
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

func TestReadingsRecordSaysWhatTheControllerShouldHearOf(t *testing.T) {
	r := NewReadings()
	app := types.NamespacedName{Namespace: "shop", Name: "web"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	down := errors.New("GET http://web/healthz answered 503 Service Unavailable; expected 200-399")
	steps := []struct {
		name    string
		value   float64
		err     error
		changed bool
		want    Reading
	}{
		{name: "the first value", value: 1, changed: true, want: Reading{Value: 1, At: t0}},
		{name: "the same value again", value: 1, changed: false, want: Reading{Value: 1, At: t0.Add(time.Second)}},
		{name: "a new value", value: 2, changed: true, want: Reading{Value: 2, At: t0.Add(2 * time.Second)}},
		{name: "a failure keeps the last good value", err: down, changed: true,
			want: Reading{Value: 2, At: t0.Add(2 * time.Second), Err: down.Error(), ConsecutiveFailures: 1}},
		{name: "the same failure again is counted and heard of", err: down, changed: true,
			want: Reading{Value: 2, At: t0.Add(2 * time.Second), Err: down.Error(), ConsecutiveFailures: 2}},
		{name: "a success after failures", value: 2, changed: true, want: Reading{Value: 2, At: t0.Add(5 * time.Second)}},
	}
	for i, s := range steps {
		if got := r.record(app, "probe", s.value, nil, s.err, t0.Add(time.Duration(i)*time.Second)); got != s.changed {
			t.Errorf("%s: changed = %v, want %v", s.name, got, s.changed)
		}
		if got := r.Get(app)["probe"]; got != s.want {
			t.Errorf("%s: reading %+v, want %+v", s.name, got, s.want)
		}
		_, available := r.Values(app)["probe"]
		if available != (s.err == nil) {
			t.Errorf("%s: in Values = %v, want %v", s.name, available, s.err == nil)
		}
	}
}

func TestReadingsKeepThePodsBehindAValueAndHearOfTheirChange(t *testing.T) {
	r := NewReadings()
	app := types.NamespacedName{Namespace: "shop", Name: "web"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		name    string
		pods    *PodCounts
		err     error
		changed bool
		want    *PodCounts
	}{
		{name: "the first reading", pods: &PodCounts{Ready: 2, Missing: 1}, changed: true, want: &PodCounts{Ready: 2, Missing: 1}},
		{name: "the same value over the same pods", pods: &PodCounts{Ready: 2, Missing: 1}, changed: false, want: &PodCounts{Ready: 2, Missing: 1}},
		{name: "the same value, but the missing pod reported", pods: &PodCounts{Ready: 3}, changed: true, want: &PodCounts{Ready: 3}},
		{name: "a failure keeps the last good pods", err: errors.New("down"), changed: true, want: &PodCounts{Ready: 3}},
		{name: "a sensor of another kind has no pods", changed: true},
	}
	for i, s := range steps {
		if got := r.record(app, "cpu", 150, s.pods, s.err, t0.Add(time.Duration(i)*time.Second)); got != s.changed {
			t.Errorf("%s: changed = %v, want %v", s.name, got, s.changed)
		}
		got := r.Get(app)["cpu"].Pods
		if (got == nil) != (s.want == nil) || (got != nil && *got != *s.want) {
			t.Errorf("%s: pods %+v, want %+v", s.name, got, s.want)
		}
		if s.pods != nil && got == s.pods {
			t.Errorf("%s: the store keeps the probe's pointer", s.name)
		}
	}
	// Get returns copies: changing one changes nothing stored.
	r.record(app, "cpu", 150, &PodCounts{Ready: 1}, nil, t0.Add(time.Minute))
	r.Get(app)["cpu"].Pods.Ready = 99
	if got := r.Get(app)["cpu"].Pods; got.Ready != 1 {
		t.Fatalf("a caller changed the stored pods: %+v", got)
	}
}

func TestReadingsAFailingSensorFallsQuietAfterTheLargestFailureThreshold(t *testing.T) {
	r := NewReadings()
	app := types.NamespacedName{Namespace: "shop", Name: "web"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	heard := 0
	for i := range 150 {
		if r.record(app, "probe", 0, nil, errors.New("refused"), t0.Add(time.Duration(i)*time.Second)) {
			heard++
		}
	}
	if heard != maxNotifiedFailures {
		t.Fatalf("heard of %d of 150 failures, want %d", heard, maxNotifiedFailures)
	}
	if !r.record(app, "probe", 0, nil, errors.New("timed out"), t0) {
		t.Fatal("a different error was not heard of")
	}
	if got := r.Get(app)["probe"]; got.ConsecutiveFailures != 151 || !got.At.IsZero() || got.Available() {
		t.Fatalf("got %+v", got)
	}
	if _, ok := r.Values(app)["probe"]; ok {
		t.Fatal("a sensor that never read a value is in Values")
	}
}

func TestReadingsHistoryIsBoundedByCountAndAge(t *testing.T) {
	r := NewReadings()
	app := types.NamespacedName{Namespace: "shop", Name: "web"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Every second for 10 minutes: 600 samples, more than HistoryLimit.
	for i := range 600 {
		r.record(app, "fast", float64(i), nil, nil, t0.Add(time.Duration(i)*time.Second))
	}
	h := r.History(app, "fast")
	if len(h) != HistoryLimit || h[0].Value != 600-HistoryLimit || h[len(h)-1].Value != 599 {
		t.Fatalf("kept %d samples from %v to %v", len(h), h[0], h[len(h)-1])
	}
	// Every 10 seconds for 30 minutes: only the last 15 minutes are kept.
	for i := range 181 {
		r.record(app, "slow", float64(i), nil, nil, t0.Add(time.Duration(i)*10*time.Second))
	}
	h = r.History(app, "slow")
	if len(h) != 91 || !h[0].At.Equal(t0.Add(15*time.Minute)) || !h[90].At.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("kept %d samples from %v to %v", len(h), h[0].At, h[len(h)-1].At)
	}
	// Failures add nothing to the history.
	r.record(app, "slow", 0, nil, errors.New("down"), t0.Add(31*time.Minute))
	if got := len(r.History(app, "slow")); got != 91 {
		t.Fatalf("a failure changed the history to %d samples", got)
	}
	// History is a copy.
	h[0].Value = -1
	if r.History(app, "slow")[0].Value == -1 {
		t.Fatal("History returned the store's own slice")
	}
	r.Forget(app)
	if len(r.Get(app)) != 0 || r.History(app, "slow") != nil {
		t.Fatal("Forget left readings behind")
	}
}

func TestReadingStatus(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tenth := 0.1
	s := Reading{Value: tenth + 0.2, At: at}.Status("latency") // the float64 sum, not the constant 0.3
	if s.Name != "latency" || s.Value != "0.30000000000000004" || !s.ObservedAt.Time.Equal(at) || s.Error != "" {
		t.Fatalf("got %+v", s)
	}
	s = Reading{Err: strings.Repeat("é", 1000), ConsecutiveFailures: 3}.Status("probe")
	if s.Value != "" || s.ObservedAt != nil || len(s.Error) > maxStatusError || !strings.HasSuffix(s.Error, "é…") || s.ConsecutiveFailures != 3 {
		t.Fatalf("got value %q, observedAt %v, error of %d bytes ending %q", s.Value, s.ObservedAt, len(s.Error), s.Error[len(s.Error)-8:])
	}
}
