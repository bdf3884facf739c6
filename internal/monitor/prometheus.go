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
		c = &promClient{api: promv1.NewAPI(answerRecorder{noRedirects{cl}})}
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
	ctx, ans := withAnswer(ctx)
	// The timeout is also sent to Prometheus, so it stops evaluating a query nobody
	// waits for any more.
	v, _, _, err := pp.client.api.Query(ctx, pp.query, time.Time{}, promv1.WithTimeout(timeout))
	if err != nil {
		var perr *promv1.Error
		switch {
		case timedOut(ctx, err):
			return 0, nil, fmt.Errorf("prometheus at %s did not answer within %s", pp.shown, timeout)
		case errors.As(err, &perr):
			return 0, nil, fmt.Errorf("prometheus at %s answered %s", pp.shown, promErrorText(perr, ans))
		}
		if perr := egress.Reason(err); perr != nil {
			// The refusal names the address and the rule, never what was read.
			return 0, nil, fmt.Errorf("querying prometheus at %s: %w", pp.shown, perr)
		}
		return 0, nil, fmt.Errorf("querying prometheus at %s: %s", pp.shown, requestErrorText(err, ans))
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
		return resp, nil, &ownError{fmt.Sprintf("it answered %s, a redirect, which the egress policy never follows: "+
			"set the address to the server that answers", statusText(resp.StatusCode))}
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
		return 0, fmt.Errorf("query returned a string; %s", need)
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

// promErrorText says what Prometheus answered to a query that failed: the status code and
// media type, and the error type when it is one Prometheus' API defines. Never the error's
// message nor the body: the address may name a server that is not Prometheus, which
// answers with content of its own, and Prometheus' own messages quote label values.
func promErrorText(e *promv1.Error, a *answer) string {
	typ := e.Type
	if !promErrorTypes[typ] && e.Detail != "" {
		// The client decodes the error of a 400 or 422 only; for other codes (a 503 when
		// a query times out in Prometheus) the body is the detail: its type is read.
		var body struct {
			ErrorType promv1.ErrorType `json:"errorType"`
		}
		if json.Unmarshal([]byte(e.Detail), &body) == nil {
			typ = body.ErrorType
		}
	}
	s := a.status()
	switch {
	case e.Type == promv1.ErrBadResponse:
		s += ", which the sensor cannot read as a query's result"
	case promErrorTypes[typ]:
		s += " with error type " + string(typ)
	}
	if typ == promv1.ErrBadData {
		s += " (run the query in Prometheus to see what is wrong with it)"
	}
	return s
}

// promErrorTypes are the error types of Prometheus' HTTP API.
var promErrorTypes = map[promv1.ErrorType]bool{
	promv1.ErrBadData: true, promv1.ErrTimeout: true, promv1.ErrCanceled: true, promv1.ErrExec: true,
	"internal": true, "unavailable": true, "not_found": true, "not_acceptable": true,
}

// answerRecorder notes the status and media type of each answer in the request's
// context (see withAnswer), for promErrorText: the client keeps only the body.
type answerRecorder struct{ api.Client }

func (c answerRecorder) Do(ctx context.Context, req *http.Request) (*http.Response, []byte, error) {
	resp, body, err := c.Client.Do(ctx, req)
	recordAnswer(ctx, resp)
	return resp, body, err
}
