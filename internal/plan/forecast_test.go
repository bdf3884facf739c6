package plan

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func predictAhead(d time.Duration) v1alpha1.PredictiveScaling {
	return v1alpha1.PredictiveScaling{Lookahead: metav1.Duration{Duration: d}}
}

// series samples f every 15s (give or take jitter seconds) for n samples from asNow.
func sampleSeries(r *rand.Rand, n int, jitter int, f func(t time.Time) float64) []Sample {
	var s []Sample
	for i := 0; i < n; i++ {
		t := asNow.Add(time.Duration(i) * 15 * time.Second)
		if jitter > 0 {
			t = t.Add(time.Duration(r.IntN(2*jitter+1)-jitter) * time.Second)
		}
		s = append(s, Sample{Time: t, Value: f(t)})
	}
	return s
}

func rampLoad(t time.Time) float64 { return 100 + 0.5*t.Sub(asNow).Seconds() }

func TestForecastMeetsALinearRampBeforeItArrives(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	// Irregular intervals (15s ± 3s) and ±1% noise on a rampLoad of 0.5 per second.
	s := sampleSeries(r, 40, 3, func(t time.Time) float64 { return rampLoad(t) * (1 + 0.01*(2*r.Float64()-1)) })
	for k := 10; k <= len(s); k++ {
		now := s[k-1].Time.Add(5 * time.Second)
		got, ok := Forecast(predictAhead(2*time.Minute), s[:k], now)
		if !ok {
			t.Fatalf("no forecast from %d samples", k)
		}
		want := rampLoad(now.Add(2 * time.Minute))
		if math.Abs(got-want)/want > 0.03 {
			t.Fatalf("from %d samples: forecast %.1f, the rampLoad reaches %.1f", k, got, want)
		}
		if got <= s[k-1].Value {
			t.Fatalf("from %d samples: forecast %.1f is not ahead of the last value %.1f", k, got, s[k-1].Value)
		}
	}
}

func TestForecastOfWhiteNoiseStaysNearTheMean(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	s := sampleSeries(r, 40, 0, func(time.Time) float64 { return 500 * (1 + 0.03*(2*r.Float64()-1)) })
	for k := MinForecastSamples; k <= len(s); k++ {
		got, ok := Forecast(predictAhead(2*time.Minute), s[:k], s[k-1].Time)
		if ok && math.Abs(got-500) > 50 {
			t.Fatalf("from %d samples: forecast %.1f, more than 10%% from the mean 500", k, got)
		}
	}
}

func TestForecastDoesNotOvershootAStepWildly(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	stepAt := asNow.Add(5 * time.Minute)
	s := sampleSeries(r, 80, 0, func(t time.Time) float64 {
		v := 20.0
		if !t.Before(stepAt) {
			v = 60
		}
		return v * (1 + 0.01*(2*r.Float64()-1))
	})
	var peak float64
	for k := MinForecastSamples; k <= len(s); k++ {
		got, ok := Forecast(predictAhead(2*time.Minute), s[:k], s[k-1].Time)
		if !ok {
			continue
		}
		peak = math.Max(peak, got)
		if got > 60+0.5*40 {
			t.Fatalf("at %s: forecast %.1f overshoots the scalerTick from 20 to 60 by more than half", s[k-1].Time.Sub(asNow), got)
		}
	}
	if peak < 60 {
		t.Fatalf("the forecast never followed the scalerTick: peak %.1f", peak)
	}
	// Once the scalerTick has left the history window, the forecast is the new level.
	last := s[len(s)-1].Time
	if got, _ := Forecast(predictAhead(2*time.Minute), s, last); math.Abs(got-60) > 3 {
		t.Fatalf("ten minutes after the scalerTick the forecast is %.1f, not about 60", got)
	}
}

func TestForecastGuards(t *testing.T) {
	flat := func(n int, every time.Duration) []Sample {
		var s []Sample
		for i := 0; i < n; i++ {
			s = append(s, Sample{Time: asNow.Add(time.Duration(i) * every), Value: 10 + float64(i)})
		}
		return s
	}
	cases := []struct {
		name    string
		p       v1alpha1.PredictiveScaling
		samples []Sample
		now     time.Time
		ok      bool
		want    float64
	}{
		{name: "fewer than MinForecastSamples: no forecast", p: predictAhead(time.Minute),
			samples: flat(MinForecastSamples-1, time.Minute), now: asNow.Add(10 * time.Minute)},
		{name: "MinForecastSamples spanning the lookahead: a forecast", p: predictAhead(time.Minute),
			samples: flat(MinForecastSamples, time.Minute), now: asNow.Add(5 * time.Minute), ok: true, want: 16},
		{name: "samples spanning less than the lookahead: no forecast", p: predictAhead(10 * time.Minute),
			samples: flat(8, 15*time.Second), now: asNow.Add(2 * time.Minute)},
		{name: "a lookahead beyond half the history needs half the history", p: v1alpha1.PredictiveScaling{
			Lookahead: metav1.Duration{Duration: time.Hour}, History: &metav1.Duration{Duration: 10 * time.Minute}},
			samples: flat(8, time.Minute), now: asNow.Add(7 * time.Minute), ok: true, want: 77},
		{name: "samples older than the history window are dropped", p: v1alpha1.PredictiveScaling{
			Lookahead: metav1.Duration{Duration: time.Minute}, History: &metav1.Duration{Duration: 3 * time.Minute}},
			samples: flat(8, time.Minute), now: asNow.Add(7 * time.Minute)},
		{name: "samples after now are ignored", p: predictAhead(time.Minute),
			samples: flat(10, time.Minute), now: asNow.Add(5 * time.Minute), ok: true, want: 16},
		{name: "values that are not numbers are ignored", p: predictAhead(time.Minute),
			samples: append(flat(6, time.Minute), Sample{Time: asNow.Add(5 * time.Minute), Value: math.NaN()}),
			now:     asNow.Add(5 * time.Minute), ok: true, want: 16},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := Forecast(c.p, c.samples, c.now)
			if ok != c.ok || (ok && math.Abs(got-c.want) > 1e-6) {
				t.Fatalf("got %v (%v), want %v (%v)", got, ok, c.want, c.ok)
			}
		})
	}
}

func TestFitHoltTakesSamplesInAnyOrderAndAveragesDuplicates(t *testing.T) {
	var s []Sample
	for i := 9; i >= 0; i-- {
		at := asNow.Add(time.Duration(i) * time.Minute)
		// Two readings at the same time average to the line 10 + i.
		s = append(s, Sample{Time: at, Value: 9 + float64(i)}, Sample{Time: at, Value: 11 + float64(i)})
	}
	fit, ok := FitHolt(s)
	if !ok || fit.Samples != 10 || fit.Span != 9*time.Minute {
		t.Fatalf("fit %+v ok %v", fit, ok)
	}
	if got := fit.At(asNow.Add(12 * time.Minute)); math.Abs(got-22) > 1e-6 {
		t.Fatalf("forecast %v, want 22", got)
	}
	if fit.Alpha < 0.1 || fit.Alpha > 0.9 || fit.Beta < 0.01 || fit.Beta > 0.1 {
		t.Fatalf("constants outside the grid: %+v", fit)
	}
}

// runPredictive runs two autoscalers on the same load, one predictive, reconciling every
// 15s, and returns their replicas at each tick.
func runPredictive(t *testing.T, ticks int, start int32, load func(t time.Time) float64) (plain, ahead []int32) {
	t.Helper()
	base := webScaler(1, 50, averageMetric("rps", "100"))
	pred := base
	pred.Predictive = &v1alpha1.PredictiveScaling{Lookahead: metav1.Duration{Duration: 2 * time.Minute}}
	type state struct {
		cur     int32
		history []Recommendation
		events  []ScaleEvent
	}
	b := ResolveBehavior(nil)
	ps, as := state{cur: start, history: settled}, state{cur: start, history: settled}
	var samples []Sample
	for i := 0; i < ticks; i++ {
		now := asNow.Add(time.Duration(i) * 15 * time.Second)
		v := load(now)
		samples = append(samples, Sample{Time: now, Value: v})
		var forecasts map[string]float64
		if f, ok := Forecast(*pred.Predictive, samples, now); ok {
			forecasts = map[string]float64{"rps": f}
		}
		for _, run := range []struct {
			p   v1alpha1.AutoscalePolicy
			s   *state
			out *[]int32
		}{{base, &ps, &plain}, {pred, &as, &ahead}} {
			d := Autoscale(AutoscaleInput{Now: now, Policy: run.p, CurrentReplicas: run.s.cur, History: run.s.history,
				ScaleEvents: run.s.events, Metrics: []MetricInput{metricReading("rps", v)}, Forecasts: forecasts})
			run.s.history = d.History
			run.s.events = RecordScaleEvent(b, run.s.events, now, run.s.cur, d.Desired)
			run.s.cur = d.Desired
			*run.out = append(*run.out, d.Desired)
		}
	}
	return plain, ahead
}

func TestPredictiveScalesAheadOfARamp(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	// 200 requests per second, growing by 1 each second; each replica takes 100.
	plain, ahead := runPredictive(t, 80, 2, func(t time.Time) float64 {
		return (200 + t.Sub(asNow).Seconds()) * (1 + 0.01*(2*r.Float64()-1))
	})
	first := func(series []int32, n int32) int {
		for i, v := range series {
			if v >= n {
				return i
			}
		}
		return len(series)
	}
	for i := range plain {
		if ahead[i] < plain[i] {
			t.Fatalf("tick %d: the predictive autoscaler has %d replicas, fewer than the plain one's %d", i, ahead[i], plain[i])
		}
	}
	for n := int32(5); n <= 12; n++ {
		p, a := first(plain, n), first(ahead, n)
		if p-a < 4 { // 4 ticks of 15s: at least a minute ahead
			t.Fatalf("%d replicas: the plain autoscaler got there at tick %d, the predictive one at tick %d", n, p, a)
		}
	}
}

func TestPredictiveIgnoresWhiteNoise(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	// 500 requests per second ± 3%, on 5 replicas that take 100 each: within tolerance.
	plain, ahead := runPredictive(t, 80, 5, func(time.Time) float64 { return 500 * (1 + 0.03*(2*r.Float64()-1)) })
	for i := range plain {
		if plain[i] != 5 || ahead[i] != 5 {
			t.Fatalf("tick %d: noise moved the replicas: plain %d, predictive %d", i, plain[i], ahead[i])
		}
	}
}

func TestPredictiveFollowsAStepWithoutRunningAway(t *testing.T) {
	stepAt := asNow.Add(5 * time.Minute)
	plain, ahead := runPredictive(t, 80, 2, func(t time.Time) float64 {
		if t.Before(stepAt) {
			return 200
		}
		return 600
	})
	if plain[len(plain)-1] != 6 || ahead[len(ahead)-1] != 6 {
		t.Fatalf("after the scalerTick settles: plain %d, predictive %d, want 6 and 6", plain[len(plain)-1], ahead[len(ahead)-1])
	}
	for i := range ahead {
		if ahead[i] > 8 {
			t.Fatalf("tick %d: the predictive autoscaler ran to %d replicas on a scalerTick to 6", i, ahead[i])
		}
	}
}
