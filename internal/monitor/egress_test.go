package monitor

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/egress"
	"github.com/homeostat-dev/homeostat/internal/egress/egresstest"
)

// loopbackEgress is the egress policy of these tests, whose servers are all on
// 127.0.0.1: loopback allowed, as the test suites' managers run.
var loopbackEgress = egresstest.AllowLoopback

// The tests below send requests only to servers on 127.0.0.1.

// countingServer is a server on 127.0.0.1 that counts its requests.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func readOnce(t *testing.T, p *Poller, s v1alpha1.Sensor) error {
	t.Helper()
	p.init()
	pr := p.newProbe("shop", &s)
	defer pr.release()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := pr.read(ctx, key("app"), 5*time.Second)
	return err
}

func TestSensorsRefuseWhatTheEgressPolicyRefusesWithoutSendingIt(t *testing.T) {
	srv, hits := countingServer(t, func(w http.ResponseWriter, r *http.Request) {})
	hostPort := strings.TrimPrefix(srv.URL, "http://")
	loopbackRefused := "the egress policy refused " + hostPort + ": it is a loopback address (127.0.0.0/8), denied by default; " +
		"--egress-allow-cidrs=127.0.0.0/8 would allow it"
	ownPort := "the egress policy refused " + hostPort + ": it is the manager's own metrics listener (--metrics-bind-address); no flag allows it"
	asMetrics := func(c *egress.Config) {
		c.Listeners = []egress.Listener{{Name: "metrics", Flag: "--metrics-bind-address", Address: hostPort}}
	}
	tests := []struct {
		name   string
		policy *egress.Policy
		sensor v1alpha1.Sensor
		want   string
	}{
		{name: "an http sensor on loopback, by default", sensor: v1alpha1.Sensor{Name: "probe", HTTP: &v1alpha1.HTTPSensor{URL: srv.URL + "/healthz"}},
			want: "GET " + srv.URL + "/healthz: " + loopbackRefused},
		{name: "a prometheus sensor on loopback, by default", sensor: v1alpha1.Sensor{Name: "p", Prometheus: &v1alpha1.PrometheusSensor{Address: srv.URL, Query: "up"}},
			want: "querying prometheus at " + srv.URL + ": " + loopbackRefused},
		{name: "an http sensor on the manager's metrics port, with loopback allowed", policy: loopbackEgress(t, asMetrics),
			sensor: v1alpha1.Sensor{Name: "probe", HTTP: &v1alpha1.HTTPSensor{URL: srv.URL + "/metrics"}},
			want:   "GET " + srv.URL + "/metrics: " + ownPort},
		{name: "a prometheus sensor on the manager's metrics port, with loopback allowed", policy: loopbackEgress(t, asMetrics),
			sensor: v1alpha1.Sensor{Name: "p", Prometheus: &v1alpha1.PrometheusSensor{Address: srv.URL, Query: "up"}},
			want:   "querying prometheus at " + srv.URL + ": " + ownPort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A poller given no policy has the built-in one.
			err := readOnce(t, &Poller{Egress: tt.policy}, tt.sensor)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("read() = %v\nwant %s", err, tt.want)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server got %d requests", n)
	}
}

func TestSensorsFailOnABodyLongerThanTheEgressMaximum(t *testing.T) {
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		// A valid answer, padded past the maximum: it must not be cut and parsed.
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}`+strings.Repeat(" ", 4096))
	})
	tooLarge := "the response body is larger than 1 KiB, the most the egress policy reads (--egress-max-response-bytes)"
	p := &Poller{Egress: loopbackEgress(t, func(c *egress.Config) { c.MaxResponseBytes = 1024 })}
	if err := readOnce(t, p, v1alpha1.Sensor{Name: "probe", HTTP: &v1alpha1.HTTPSensor{URL: srv.URL}}); err == nil ||
		err.Error() != "GET "+srv.URL+": "+tooLarge {
		t.Errorf("http sensor: %v", err)
	}
	if err := readOnce(t, p, v1alpha1.Sensor{Name: "p", Prometheus: &v1alpha1.PrometheusSensor{Address: srv.URL, Query: "up"}}); err == nil ||
		err.Error() != "querying prometheus at "+srv.URL+": "+tooLarge {
		t.Errorf("prometheus sensor: %v", err)
	}
}

func TestPrometheusSensorSaysARedirectIsNotFollowed(t *testing.T) {
	var landed atomic.Int32
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/elsewhere") {
			landed.Add(1)
			return
		}
		http.Redirect(w, r, "/elsewhere"+r.URL.Path, http.StatusTemporaryRedirect)
	})
	err := readOnce(t, &Poller{Egress: loopbackEgress(t)}, v1alpha1.Sensor{Name: "p", Prometheus: &v1alpha1.PrometheusSensor{Address: srv.URL, Query: "up"}})
	want := "querying prometheus at " + srv.URL + ": it answered 307 Temporary Redirect, a redirect, which the egress policy never follows: " +
		"set the address to the server that answers"
	if err == nil || err.Error() != want {
		t.Errorf("read() = %v\nwant %s", err, want)
	}
	if n := landed.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
}

func TestSensorTimeoutsAreCappedByTheEgressMaximumAndTheErrorSaysSo(t *testing.T) {
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) { sleepOrCancel(r, 10*time.Second) })
	p := &Poller{Readings: NewReadings(), Egress: loopbackEgress(t, func(c *egress.Config) { c.MaxTimeout = 200 * time.Millisecond })}
	sensors := []v1alpha1.Sensor{
		// Asks for a minute, twice: its poll and its request.
		{Name: "slow", Interval: dur(time.Minute), Timeout: dur(time.Minute), HTTP: &v1alpha1.HTTPSensor{URL: srv.URL, Timeout: dur(time.Minute)}},
		{Name: "quick", Interval: dur(time.Minute), HTTP: &v1alpha1.HTTPSensor{URL: srv.URL, Timeout: dur(100 * time.Millisecond)}},
		{Name: "object", Timeout: dur(time.Minute), Object: &v1alpha1.ObjectSensor{Expression: "1.0"}},
	}
	if got, want := p.TimeoutCaps(sensors), []TimeoutCap{{Sensor: "slow", Asked: time.Minute, Cap: 200 * time.Millisecond}}; !slices.Equal(got, want) {
		t.Errorf("TimeoutCaps() = %v, want %v", got, want)
	}
	p.Sync(testApp("shop"), sensors[:2])
	start := time.Now()
	run(t, p)
	eventually(t, "both sensors failed", func() bool {
		rs := p.Readings.Get(key("shop"))
		return rs["slow"].Err != "" && rs["quick"].Err != ""
	})
	rs := p.Readings.Get(key("shop"))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the polls took %s, beyond the 200ms cap", d)
	}
	if want := "GET " + srv.URL + ": no answer within 200ms (the timeout asked for, 1m0s, is capped at 200ms by --egress-max-timeout)"; rs["slow"].Err != want {
		t.Errorf("slow: %q\nwant %q", rs["slow"].Err, want)
	}
	if want := "GET " + srv.URL + ": no answer within 100ms"; rs["quick"].Err != want {
		t.Errorf("quick: %q\nwant %q", rs["quick"].Err, want)
	}
}
