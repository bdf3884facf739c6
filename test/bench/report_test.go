package bench

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestQuantileUsesMiddleValuesForTheMedianAndNearestRankForP99(t *testing.T) {
	for _, tc := range []struct {
		samples     []float64
		median, p99 float64
	}{
		{[]float64{3}, 3, 3},
		{[]float64{4, 1}, 2.5, 4},
		{[]float64{5, 1, 3}, 3, 5},
		{seq(100), 50.5, 99},
		{seq(200), 100.5, 198},
	} {
		s := Summarize(tc.samples)
		if s.Median != tc.median || s.P99 != tc.p99 || s.N != len(tc.samples) {
			t.Errorf("Summarize(%d samples) = median %v p99 %v, want %v %v", len(tc.samples), s.Median, s.P99, tc.median, tc.p99)
		}
	}
	if Summarize(nil) != nil {
		t.Error("Summarize(nil) is not nil")
	}
}

func TestFigureRatioIsMedianOverBaselineMedian(t *testing.T) {
	f := Figure{Name: "x", Unit: "ms", Samples: []float64{10, 20, 30}, Baseline: &Figure{Name: "floor", Unit: "ms", Samples: []float64{4, 5, 6}}}
	f.complete()
	if f.Ratio == nil || math.Abs(*f.Ratio-4) > 1e-9 {
		t.Fatalf("ratio = %v, want 4", f.Ratio)
	}
	zero := Figure{Name: "y", Samples: []float64{1}, Baseline: &Figure{Samples: []float64{0}}}
	zero.complete()
	if zero.Ratio != nil {
		t.Errorf("a zero baseline gave ratio %v, want none", *zero.Ratio)
	}
	md := Markdown(Report{Sections: []Section{{Name: "s", Figures: []Figure{f}, Notes: []string{"a | b"}}}})
	for _, want := range []string{"| x | ms | 3 | 20 | 30 | floor | 5 | 6 | 4.00× |", "- a | b"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func seq(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(i + 1)
	}
	return out
}

func TestSectionsFollowTheIssueThenTheComparisonsThenTheirNames(t *testing.T) {
	names := []string{"profile", "hpa", "faults", "shared-policy", "detect-to-act", "alpha"}
	slices.SortStableFunc(names, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	if want := []string{"detect-to-act", "faults", "shared-policy", "hpa", "alpha", "profile"}; !slices.Equal(names, want) {
		t.Fatalf("order %v, want %v", names, want)
	}
}

// A burst that reconciled nothing yields a NaN sample; JSON cannot hold it, and before
// this the whole section's file stopped being written from then on.
func TestAFigureWithANaNSampleStillEncodesWithoutIt(t *testing.T) {
	f := Figure{Name: "x", Unit: "requests", Samples: []float64{math.NaN(), 1, 1, math.Inf(1)},
		Baseline: &Figure{Name: "floor", Samples: []float64{math.NaN(), 2}}}
	f.complete()
	if f.Stats == nil || f.Stats.N != 2 || f.Stats.Median != 1 {
		t.Fatalf("stats = %+v, want the 2 finite samples, median 1", f.Stats)
	}
	if _, err := json.Marshal(Section{Name: "s", Figures: []Figure{f}}); err != nil {
		t.Fatalf("the section does not encode: %v", err)
	}
	if f.Ratio == nil || *f.Ratio != 0.5 {
		t.Errorf("ratio = %v, want 0.5", f.Ratio)
	}
}

func TestTheReportNamesTheComparisonsOlderThanItsRuns(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	sections := []Section{
		{Name: "scale", RecordedAt: at("2026-12-06T06:00:41Z")},
		{Name: "faults", RecordedAt: at("2026-12-06T06:33:00Z")},
		{Name: "before and after 5b36cb7", RecordedAt: at("2026-12-06T06:00:39Z")},
		{Name: "before and after a9de0fe", RecordedAt: at("2026-12-06T03:19:04Z")},
		{Name: "improvements", RecordedAt: at("2026-12-05T21:45:33Z")},
	}
	got := olderSections(sections)
	for _, want := range []string{`"before and after a9de0fe" (2026-12-06)`, `"improvements" (2026-12-05)`, "the oldest recorded 2026-12-06T06:00:41Z"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q does not say %s", got, want)
		}
	}
	if strings.Contains(got, "5b36cb7") {
		t.Errorf("%q names a comparison of the latest runs", got)
	}
	if got := olderSections(sections[:3]); got != "" {
		t.Errorf("every section recent, and still: %q", got)
	}
	if !strings.Contains(Markdown(Report{Sections: sections}), got) {
		t.Error("the report does not carry the sentence")
	}
}
