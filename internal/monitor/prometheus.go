package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/types"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/egress"
)

// promClient is a Prometheus API client shared by every sensor that queries one
// address, counted so that it goes when the last of them does.
type promClient struct {
	api  promv1.API
	refs int
}

// prometheusProbe runs an instant query. The query is evaluated at the server's own
// time, so a skew between the operator's clock and Prometheus' does not matter.
type prometheusProbe struct {
	p        *Poller
	address  string // as declared: the key of the client cache
	shown    string // the address with any password redacted, for messages
	query    string
	client   *promClient
	released bool
}

// newPrometheusProbe takes the cached client of the address, or makes it. It is called
// with p.mu held.
func (p *Poller) newPrometheusProbe(spec *v1alpha1.PrometheusSensor) probe {
	shown := spec.Address
	if u, err := url.Parse(spec.Address); err == nil {
		shown = u.Redacted()
	}
	c := p.prometheus[spec.Address]
	if c == nil {
		cl, err := api.NewClient(api.Config{Address: spec.Address, Client: p.httpClient})
		if err != nil {
			return failingProbe{fmt.Errorf("prometheus address %s is not usable: %w", shown, err)}
		}
		c = &promClient{api: promv1.NewAPI(noRedirects{cl})}
		p.prometheus[spec.Address] = c
	}
	c.refs++
	return &prometheusProbe{p: p, address: spec.Address, shown: shown, query: spec.Query, client: c}
}

// release is called with p.mu held.
func (pp *prometheusProbe) release() {
	if pp.released {
		return
	}
	pp.released = true
	pp.client.refs--
	if pp.client.refs <= 0 && pp.p.prometheus[pp.address] == pp.client {
		delete(pp.p.prometheus, pp.address)
	}
}

func (pp *prometheusProbe) read(ctx context.Context, _ types.NamespacedName, timeout time.Duration) (float64, *PodCounts, error) {
	// The timeout is also sent to Prometheus, so it stops evaluating a query nobody
	// waits for any more.
	v, _, _, err := pp.client.api.Query(ctx, pp.query, time.Time{}, promv1.WithTimeout(timeout))
	if err != nil {
		var perr *promv1.Error
		switch {
		case timedOut(ctx, err):
			return 0, nil, fmt.Errorf("prometheus at %s did not answer within %s", pp.shown, timeout)
		case errors.As(err, &perr) && perr.Type == promv1.ErrBadResponse:
			return 0, nil, fmt.Errorf("prometheus at %s sent an answer the sensor cannot read: %s", pp.shown, perr.Msg)
		case errors.As(err, &perr):
			return 0, nil, fmt.Errorf("prometheus at %s answered %s", pp.shown, promErrorText(perr))
		}
		if perr := egress.Reason(err); perr != nil {
			err = perr // the refusal names the address; the transport's text repeats it
		}
		return 0, nil, fmt.Errorf("querying prometheus at %s: %w", pp.shown, err)
	}
	value, err := PrometheusValue(v)
	return value, nil, err
}

// noRedirects says so when Prometheus answers with a redirect, which the egress client
// never follows, instead of the API client's "bad response code 302".
type noRedirects struct{ api.Client }

func (c noRedirects) Do(ctx context.Context, req *http.Request) (*http.Response, []byte, error) {
	resp, body, err := c.Client.Do(ctx, req)
	if err == nil && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return resp, nil, fmt.Errorf("it answered %s, a redirect, which the egress policy never follows: "+
			"set the address to the server that answers", resp.Status)
	}
	return resp, body, err
}

// PrometheusValue is the number a sensor reads from a query's result: a scalar, or the
// value of a vector of exactly one sample. Anything else is an error that says what came
// back and how to fix the query, and so is a value that is not finite (NaN, ±Inf).
func PrometheusValue(v model.Value) (float64, error) {
	const need = "a sensor needs a scalar or one sample"
	var f model.SampleValue
	switch v := v.(type) {
	case *model.Scalar:
		f = v.Value
	case model.Vector:
		switch {
		case len(v) == 0:
			return 0, fmt.Errorf("query returned an empty vector; %s (no series matched: check the metric name and labels)", need)
		case len(v) > 1:
			return 0, fmt.Errorf("query returned a vector of %d samples; %s (aggregate with sum() or max())", len(v), need)
		case v[0].Histogram != nil:
			return 0, fmt.Errorf("query returned a native histogram sample; %s (use histogram_quantile(), histogram_sum() or histogram_count())", need)
		}
		f = v[0].Value
	case model.Matrix:
		return 0, fmt.Errorf("query returned a range vector (matrix) of %d series; %s (drop the [range] selector or wrap it in a function such as rate())", len(v), need)
	case *model.String:
		return 0, fmt.Errorf("query returned the string %q; %s", v.Value, need)
	case nil:
		return 0, fmt.Errorf("query returned no result; %s", need)
	default:
		return 0, fmt.Errorf("query returned a %s; %s", v.Type(), need)
	}
	x := float64(f)
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, fmt.Errorf("query returned %s; a sensor needs a finite number", strconv.FormatFloat(x, 'g', -1, 64))
	}
	return x, nil
}

// promErrorText is "<type>: <message>" of a Prometheus API error. The client decodes
// the error of a 400 or 422 answer only; for others (a 503 when a query times out in
// Prometheus, a 502 from a proxy in front of it) it keeps the body as the detail, which
// is decoded here when it is Prometheus' JSON and quoted briefly when it is not.
func promErrorText(e *promv1.Error) string {
	var body struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}
	if e.Detail != "" && json.Unmarshal([]byte(e.Detail), &body) == nil && body.Status == "error" && body.Error != "" {
		return body.ErrorType + ": " + body.Error
	}
	msg := e.Error()
	if d := oneLine(e.Detail, 200); d != "" {
		msg += ": " + d
	}
	return msg
}

// oneLine squeezes s onto one line of at most n bytes, for an error message.
func oneLine(s string, n int) string {
	return truncate(strings.Join(strings.Fields(s), " "), n)
}
