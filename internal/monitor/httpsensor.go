package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// maxProbeBody is how much of a response an http sensor reads: the latency includes
// reading the body, up to this much, so a server that answers its headers at once and
// then stalls is seen as slow.
const maxProbeBody = 1 << 20

// newHTTPClient is the default client of http and prometheus sensors: every phase of a
// connection is bounded, idle connections are kept for reuse but not forever, and
// proxies come from the environment as for any Go program. Each request is further
// bounded by its sensor's timeout.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}}
}

// httpProbe sends a GET and reads the latency, in seconds, of the whole response. A
// status outside the expected ones, or no response at all, makes the sensor
// unavailable with the status or the transport's error. Redirects are not followed.
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
	resp, err := hp.p.httpProbe.Do(req)
	if err == nil {
		recordAnswer(ctx, resp)
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxProbeBody))
		_ = resp.Body.Close()
	}
	latency := hp.p.Clock.Since(start)
	if err != nil {
		if timedOut(ctx, err) {
			return 0, nil, fmt.Errorf("GET %s: no answer within %s", hp.shown, timeout)
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
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
