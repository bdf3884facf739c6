package plan

import (
	"math/rand/v2"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func TestExplore(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(1, 2))
	p := v1alpha1.PredictiveScaling{Lookahead: metav1.Duration{Duration: 2 * time.Minute}}
	// ramp
	var s []Sample
	for i := 0; i < 40; i++ {
		tt := base.Add(time.Duration(i*15)*time.Second + time.Duration(r.IntN(7)-3)*time.Second)
		v := 100 + 0.5*tt.Sub(base).Seconds()
		s = append(s, Sample{tt, v * (1 + 0.01*(r.Float64()*2-1))})
	}
	now := base.Add(40 * 15 * time.Second)
	f, _ := Forecast(p, s, now)
	fit, _ := FitHolt(s)
	t.Logf("ramp forecast %v true %v fit %+v", f, 100+0.5*now.Add(2*time.Minute).Sub(base).Seconds(), fit)
	// noise
	s = nil
	for i := 0; i < 40; i++ {
		s = append(s, Sample{base.Add(time.Duration(i*15) * time.Second), 500 + r.NormFloat64()*10})
	}
	for k := 6; k <= 40; k++ {
		f, _ := Forecast(p, s[:k], base.Add(time.Duration((k-1)*15)*time.Second))
		if f > 520 || f < 480 {
			t.Logf("noise k=%d forecast %v", k, f)
		}
	}
	// step
	s = nil
	for i := 0; i < 40; i++ {
		v := 20.0
		if i >= 20 {
			v = 60
		}
		s = append(s, Sample{base.Add(time.Duration(i*15) * time.Second), v})
	}
	for k := 6; k <= 40; k++ {
		f, _ := Forecast(p, s[:k], base.Add(time.Duration((k-1)*15)*time.Second))
		fit, _ := FitHolt(s[:k])
		t.Logf("step k=%d forecast %.1f a=%v b=%v", k, f, fit.Alpha, fit.Beta)
	}
}
