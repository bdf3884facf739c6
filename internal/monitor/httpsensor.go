package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/egress"
)

// httpProbe sends a GET and reads the latency, in seconds, of the whole response. A
// status outside the expected ones, or no response at all, makes the sensor
// unavailable with the status or the transport's error. It sends through the poller's
// egress client: redirects are not followed, an address the policy refuses is an error
// that says why, and so is a body longer than the policy reads.
type httpProbe struct {
	p        *Poller
	url      string
	shown    string // the URL with any password redacted, for messages
	timeout  time.Duration
	expected []int32 // sorted; empty means 200-399
}

func newHTTPProbe(p *Poller, spec *v1alpha1.HTTPSensor) probe {
	shown := spec.URL
	if u, err := url.Parse(spec.URL); err == nil {
		shown = u.Redacted()
	}
	timeout := DefaultHTTPTimeout
	if spec.Timeout != nil && spec.Timeout.Duration > 0 {
		timeout = spec.Timeout.Duration
	}
	timeout, _ = p.Egress.Cap(timeout)
	expected := slices.Clone(spec.ExpectedStatus)
	slices.Sort(expected)
	return &httpProbe{p: p, url: spec.URL, shown: shown, timeout: timeout, expected: expected}
}

func (*httpProbe) release() {}

func (hp *httpProbe) read(ctx context.Context, _ types.NamespacedName, timeout time.Duration) (float64, *PodCounts, error) {
	// The request's own timeout, within the poll's.
	timeout = min(timeout, hp.timeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ctx, ans := withAnswer(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, hp.url, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("GET %s: %w", hp.shown, err)
	}
	req.Header.Set("User-Agent", "homeostat-sensor")
	start := hp.p.Clock.Now()
	resp, err := hp.p.httpClient.Do(req)
	if err == nil {
		recordAnswer(ctx, resp)
		// The egress client fails a body longer than the policy reads.
		_, err = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	latency := hp.p.Clock.Since(start)
	if err != nil {
		if timedOut(ctx, err) {
			return 0, nil, fmt.Errorf("GET %s: no answer within %s", hp.shown, timeout)
		}
		var uerr *url.Error
		if perr := egress.Reason(err); perr != nil {
			err = perr // the refusal names the address; the transport's text repeats it
		} else if errors.As(err, &uerr) {
			err = uerr.Err // its text repeats the method and the unredacted URL
		}
		return 0, nil, fmt.Errorf("GET %s: %s", hp.shown, requestErrorText(err, ans))
	}
	if !hp.accepts(resp.StatusCode) {
		// The status code and media type, never the server's status line or body.
		return 0, nil, fmt.Errorf("GET %s answered %s; expected %s", hp.shown, ans.status(), hp.expectedText())
	}
	return latency.Seconds(), nil, nil
}

func (hp *httpProbe) accepts(code int) bool {
	if len(hp.expected) == 0 {
		return code >= 200 && code <= 399
	}
	return slices.Contains(hp.expected, int32(code))
}

func (hp *httpProbe) expectedText() string {
	if len(hp.expected) == 0 {
		return "200-399"
	}
	codes := make([]string, len(hp.expected))
	for i, c := range hp.expected {
		codes[i] = strconv.Itoa(int(c))
	}
	if len(codes) == 1 {
		return codes[0]
	}
	return "one of " + strings.Join(codes, ", ")
}
