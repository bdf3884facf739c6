package monitor

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/types"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// promAnswer is what the fake Prometheus answers to /api/v1/query.
type promAnswer struct {
	status      int
	body        string
	delay       time.Duration
	contentType string // default application/json
}

// fakePrometheus serves /api/v1/query on 127.0.0.1 with the answer of the query it is
// sent (the `query` form value), and records the timeout it was given.
func fakePrometheus(t *testing.T, answers map[string]promAnswer) (addr string, timeouts chan string) {
	t.Helper()
	timeouts = make(chan string, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case timeouts <- r.Form.Get("timeout"):
		default:
		}
		a, ok := answers[r.Form.Get("query")]
		if !ok {
			http.Error(w, `{"status":"error","errorType":"bad_data","error":"unknown test query"}`, http.StatusBadRequest)
			return
		}
		if a.delay > 0 {
			select {
			case <-time.After(a.delay):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		if a.contentType != "" {
			w.Header().Set("Content-Type", a.contentType)
		}
		w.WriteHeader(a.status)
		_, _ = fmt.Fprint(w, a.body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, timeouts
}

func promOK(resultType, result string) promAnswer {
	return promAnswer{status: 200, body: `{"status":"success","data":{"resultType":"` + resultType + `","result":` + result + `}}`}
}

func TestPrometheusSensorReadsAScalarOrOneSampleAndExplainsAnythingElse(t *testing.T) {
	const ts = "1700000000.123"
	sample := func(job, v string) string {
		return `{"metric":{"__name__":"up","job":"` + job + `"},"value":[` + ts + `,"` + v + `"]}`
	}
	addr, timeouts := fakePrometheus(t, map[string]promAnswer{
		"scalar(x)":  promOK("scalar", `[`+ts+`,"0.25"]`),
		"one":        promOK("vector", `[`+sample("a", "42.5")+`]`),
		"three":      promOK("vector", `[`+sample("a", "1")+`,`+sample("b", "2")+`,`+sample("c", "3")+`]`),
		"none":       promOK("vector", `[]`),
		"up[5m]":     promOK("matrix", `[{"metric":{"job":"a"},"values":[[`+ts+`,"1"],[`+ts+`,"2"]]}]`),
		"nan":        promOK("vector", `[`+sample("a", "NaN")+`]`),
		"inf":        promOK("scalar", `[`+ts+`,"+Inf"]`),
		"string":     promOK("string", `[`+ts+`,"hello"]`),
		"bad syntax": {status: 400, body: `{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected identifier \"syntax\""}`},
		"overloaded": {status: 503, body: `{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}`},
		"proxy":      {status: 502, body: "<html>\n  Bad   Gateway\n</html>", contentType: "text/html; charset=utf-8"},
		"slow":       {status: 200, delay: 2 * time.Second, body: `{"status":"success","data":{"resultType":"scalar","result":[` + ts + `,"1"]}}`},
	})
	p := &Poller{Egress: loopbackEgress(t)}
	p.init()
	cases := []struct {
		query   string
		want    float64
		wantErr string
	}{
		{query: "scalar(x)", want: 0.25},
		{query: "one", want: 42.5},
		{query: "three", wantErr: "query returned a vector of 3 samples; a sensor needs a scalar or one sample (aggregate with sum() or max())"},
		{query: "none", wantErr: "query returned an empty vector; a sensor needs a scalar or one sample (no series matched: check the metric name and labels)"},
		{query: "up[5m]", wantErr: "query returned a range vector (matrix) of 1 series; a sensor needs a scalar or one sample (drop the [range] selector or wrap it in a function such as rate())"},
		{query: "nan", wantErr: "query returned NaN; a sensor needs a finite number"},
		{query: "inf", wantErr: "query returned +Inf; a sensor needs a finite number"},
		// client_golang does not decode a string result, so the query never gets that far.
		{query: "string", wantErr: "prometheus at " + addr + " answered 200 OK (application/json), which the sensor cannot read as a query's result"},
		{query: "bad syntax", wantErr: "prometheus at " + addr + " answered 400 Bad Request (application/json) with error type bad_data " +
			"(run the query in Prometheus to see what is wrong with it)"},
		{query: "overloaded", wantErr: "prometheus at " + addr + " answered 503 Service Unavailable (application/json) with error type timeout"},
		{query: "proxy", wantErr: "prometheus at " + addr + " answered 502 Bad Gateway (text/html)"},
		{query: "slow", wantErr: "prometheus at " + addr + " did not answer within 200ms"},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			pr := p.newPrometheusProbe(&v1alpha1.PrometheusSensor{Address: addr, Query: tc.query})
			defer pr.release()
			const timeout = 200 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			start := time.Now()
			got, _, err := pr.read(ctx, types.NamespacedName{}, timeout)
			if elapsed := time.Since(start); elapsed > time.Second {
				t.Errorf("the poll took %s, beyond its timeout", elapsed)
			}
			switch {
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
				t.Fatalf("got %v, %v\nwant error %s", got, err, tc.wantErr)
			case tc.wantErr == "" && (err != nil || got != tc.want):
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if got := <-timeouts; got != "200ms" {
		t.Errorf("the query's timeout sent to Prometheus is %q, want 200ms", got)
	}
}

func TestPrometheusClientsAreSharedPerAddressAndDroppedWithTheirLastSensor(t *testing.T) {
	p := &Poller{Egress: loopbackEgress(t)}
	p.init()
	a := p.newPrometheusProbe(&v1alpha1.PrometheusSensor{Address: "http://127.0.0.1:9", Query: "a"}).(*prometheusProbe)
	b := p.newPrometheusProbe(&v1alpha1.PrometheusSensor{Address: "http://127.0.0.1:9", Query: "b"}).(*prometheusProbe)
	c := p.newPrometheusProbe(&v1alpha1.PrometheusSensor{Address: "http://127.0.0.1:10", Query: "a"}).(*prometheusProbe)
	if a.client != b.client || a.client == c.client || len(p.prometheus) != 2 {
		t.Fatalf("clients are not shared per address: %d cached", len(p.prometheus))
	}
	a.release()
	a.release() // twice is harmless
	if len(p.prometheus) != 2 {
		t.Fatalf("a client still in use was dropped")
	}
	b.release()
	c.release()
	if len(p.prometheus) != 0 {
		t.Fatalf("%d clients left after every sensor released them", len(p.prometheus))
	}
}

func TestPrometheusErrorsRedactTheAddressPassword(t *testing.T) {
	p := &Poller{Egress: loopbackEgress(t)}
	p.init()
	pr := p.newPrometheusProbe(&v1alpha1.PrometheusSensor{Address: "http://user:secret@127.0.0.1:1", Query: "up"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _, err := pr.read(ctx, types.NamespacedName{}, time.Second)
	if err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "http://user:xxxxx@127.0.0.1:1") {
		t.Fatalf("got %v", err)
	}
}

func TestPrometheusErrorsNeverQuoteTheAnswer(t *testing.T) {
	addr, _ := fakePrometheus(t, map[string]promAnswer{
		"html":      {status: 502, body: "<html>" + secretValue + "</html>", contentType: "text/html"},
		"api error": {status: 422, body: `{"status":"error","errorType":"execution","error":"label value ` + secretValue + `"}`},
		"odd type":  {status: 400, body: `{"status":"error","errorType":"` + secretValue + `","error":"` + secretValue + `"}`},
		"in a 200":  {status: 200, body: `{"status":"error","errorType":"execution","error":"` + secretValue + `"}`},
		"in a 503":  {status: 503, body: `{"status":"error","errorType":"` + secretValue + `","error":"` + secretValue + `"}`},
		"not json":  {status: 200, body: secretValue, contentType: "text/plain"},
		"a string":  promOK("string", `[1700000000,"`+secretValue+`"]`),
	})
	p := &Poller{Egress: loopbackEgress(t)}
	p.init()
	for _, tc := range []struct{ query, want string }{
		{"html", "answered 502 Bad Gateway (text/html)"},
		{"api error", "answered 422 Unprocessable Entity (application/json) with error type execution"},
		{"odd type", "answered 400 Bad Request (application/json)"},
		{"in a 200", "answered 200 OK (application/json) with error type execution"},
		{"in a 503", "answered 503 Service Unavailable (application/json)"},
		{"not json", "answered 200 OK (text/plain), which the sensor cannot read as a query's result"},
		{"a string", "answered 200 OK (application/json), which the sensor cannot read as a query's result"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			pr := p.newPrometheusProbe(&v1alpha1.PrometheusSensor{Address: addr, Query: tc.query})
			defer pr.release()
			_, _, err := pr.read(context.Background(), types.NamespacedName{}, time.Second)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), secretValue[:8]) {
				t.Fatalf("got %v, want an error containing %q and nothing of the answer", err, tc.want)
			}
		})
	}
	// A string result, as PrometheusValue sees it once decoded.
	if _, err := PrometheusValue(&model.String{Value: secretValue}); err == nil || strings.Contains(err.Error(), secretValue[:8]) {
		t.Fatalf("PrometheusValue of a string: %v", err)
	}
}
