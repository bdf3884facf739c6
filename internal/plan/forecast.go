package plan

import (
	"math"
	"slices"
	"time"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

const (
	// MinForecastSamples is the fewest distinct samples a forecast is made from; with
	// fewer, there is no forecast and the autoscaler acts on current values only.
	MinForecastSamples = 6
	// DefaultForecastHistory is predictive.history when unset.
	DefaultForecastHistory = 10 * time.Minute
)

// Sample is one reading of a sensor.
type Sample struct {
	// Time is when the value was read.
	Time time.Time
	// Value is the reading.
	Value float64
}

// Holt's linear trend (double exponential smoothing) keeps a level L and a trend T and,
// for each new sample y after dt, predicts L + T*dt, then corrects:
//
//	L' = a*y + (1-a)*(L + T*dt)
//	T' = b*(L' - L)/dt + (1-b)*T
//
// Samples may come at irregular intervals, so the trend is per second and the smoothing
// constants are per typical interval (the median spacing, tau): a sample after dt gets
// a = 1-(1-alpha)^(dt/tau), b = 1-(1-beta)^(dt/tau), so a long gap weighs the new sample
// more, as if the missed samples had been seen. The level and trend start from a
// least-squares line through all the samples: a single noisy pair, or the first few
// samples, would start a trend that white noise or a step then carries far ahead.
// alpha and beta are fitted: of the grid below, the pair with the least one-step-ahead
// squared error over the samples wins (ties go to the smaller constants). beta stays at
// or below 0.1 so that a step in the load is followed, not extrapolated into a runaway:
// over a lookahead many intervals long, a trend fitted to the step's edge would be
// multiplied by the lookahead.
//
// A forecast reaches no further ahead than the samples reach back: the samples must span
// at least the lookahead (or half the history window, when the lookahead is longer), or
// there is no forecast.
var (
	holtAlphas = []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}
	holtBetas  = []float64{0.01, 0.02, 0.05, 0.1}
)

// HoltFit is Holt's linear trend fitted to a series of samples.
type HoltFit struct {
	// Alpha and Beta are the fitted smoothing constants, per typical interval.
	Alpha, Beta float64
	// Level is the smoothed value at Time, the last sample's time.
	Level float64
	// Trend is the smoothed slope, per second.
	Trend float64
	// Time is the last sample's time.
	Time time.Time
	// Samples is how many distinct samples the fit used.
	Samples int
	// Span is the time from the first sample to the last.
	Span time.Duration
	// RMSE is the root mean squared one-step-ahead error of the fit.
	RMSE float64
}

// At is the fit's forecast for time t: the level plus the trend over t - Time.
func (h HoltFit) At(t time.Time) float64 {
	return h.Level + h.Trend*t.Sub(h.Time).Seconds()
}

// FitHolt fits Holt's linear trend to samples in any order. Samples with the same time
// are averaged and samples that are not finite numbers are ignored. ok is false with
// fewer than MinForecastSamples distinct samples.
func FitHolt(samples []Sample) (HoltFit, bool) {
	s := cleanSamples(samples)
	if len(s) < MinForecastSamples {
		return HoltFit{}, false
	}
	t0 := s[0].Time
	x := make([]float64, len(s))
	gaps := make([]float64, 0, len(s)-1)
	for i := range s {
		x[i] = s[i].Time.Sub(t0).Seconds()
		if i > 0 {
			gaps = append(gaps, x[i]-x[i-1])
		}
	}
	slices.Sort(gaps)
	tau := gaps[len(gaps)/2]
	level0, trend0 := leastSquares(x, s)

	best := HoltFit{RMSE: math.Inf(1)}
	for _, alpha := range holtAlphas {
		for _, beta := range holtBetas {
			level, trend, sse := level0, trend0, 0.0
			for i := 1; i < len(s); i++ {
				dt := x[i] - x[i-1]
				pred := level + trend*dt
				e := s[i].Value - pred
				sse += e * e
				a := 1 - math.Pow(1-alpha, dt/tau)
				b := 1 - math.Pow(1-beta, dt/tau)
				next := pred + a*e
				trend = b*(next-level)/dt + (1-b)*trend
				level = next
			}
			if rmse := math.Sqrt(sse / float64(len(s)-1)); rmse < best.RMSE {
				best = HoltFit{Alpha: alpha, Beta: beta, Level: level, Trend: trend, Time: s[len(s)-1].Time, Samples: len(s), Span: s[len(s)-1].Time.Sub(t0), RMSE: rmse}
			}
		}
	}
	if math.IsNaN(best.Level) || math.IsInf(best.Level, 0) || math.IsNaN(best.Trend) || math.IsInf(best.Trend, 0) {
		return HoltFit{}, false
	}
	return best, true
}

// Forecast predicts a sensor's value at now + predictive.lookahead from its samples
// within predictive.history (default 10m) before now, with Holt's linear trend. ok is
// false when there are too few samples (MinForecastSamples), when they span less than
// the lookahead (or half the history, if that is shorter), or when the fit is unusable.
func Forecast(p v1alpha1.PredictiveScaling, samples []Sample, now time.Time) (float64, bool) {
	history := DefaultForecastHistory
	if p.History != nil && p.History.Duration > 0 {
		history = p.History.Duration
	}
	lookahead := max(p.Lookahead.Duration, 0)
	cutoff := now.Add(-history)
	var recent []Sample
	for _, s := range samples {
		if s.Time.After(cutoff) && !s.Time.After(now) {
			recent = append(recent, s)
		}
	}
	fit, ok := FitHolt(recent)
	if !ok || fit.Span < min(lookahead, history/2) {
		return 0, false
	}
	v := fit.At(now.Add(lookahead))
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

// cleanSamples sorts samples by time, drops values that are not finite, and averages
// samples that share a time.
func cleanSamples(samples []Sample) []Sample {
	var s []Sample
	for _, x := range samples {
		if !math.IsNaN(x.Value) && !math.IsInf(x.Value, 0) {
			s = append(s, x)
		}
	}
	slices.SortStableFunc(s, func(a, b Sample) int { return a.Time.Compare(b.Time) })
	out := s[:0]
	for i := 0; i < len(s); {
		j, sum := i, 0.0
		for ; j < len(s) && s[j].Time.Equal(s[i].Time); j++ {
			sum += s[j].Value
		}
		out = append(out, Sample{Time: s[i].Time, Value: sum / float64(j-i)})
		i = j
	}
	return out
}

// leastSquares fits value = level + trend*x and returns the line's value at x[0] and its
// slope.
func leastSquares(x []float64, s []Sample) (float64, float64) {
	n := float64(len(x))
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += s[i].Value
	}
	mx, my = mx/n, my/n
	var sxy, sxx float64
	for i := range x {
		sxy += (x[i] - mx) * (s[i].Value - my)
		sxx += (x[i] - mx) * (x[i] - mx)
	}
	if sxx == 0 {
		return my, 0
	}
	slope := sxy / sxx
	return my + slope*(x[0]-mx), slope
}
