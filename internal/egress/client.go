package egress

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Client is an HTTP client that obeys the policy: every connection is checked at dial
// time on its resolved address, no proxy is used, a redirect is never followed (the 3xx
// is the response), a response body beyond MaxResponseBytes fails the read with a
// *TooLargeError, and no request outlives MaxTimeout. tlsConfig is the TLS configuration
// of https requests; nil means the system roots.
//
// Clients share nothing: a caller that builds one per request (to trust its own CA)
// closes its idle connections when done.
func (p *Policy) Client(tlsConfig *tls.Config) *http.Client {
	dialer := &net.Dialer{
		Timeout:   min(5*time.Second, p.maxTimeout),
		KeepAlive: 30 * time.Second,
		Resolver:  p.resolver,
		Control:   p.Control,
	}
	t := &http.Transport{
		Proxy:                 nil, // a proxy would dial the address instead, unchecked
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConfig,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   min(5*time.Second, p.maxTimeout),
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: p.maxTimeout,
	}
	return &http.Client{
		Transport:     &limitTransport{base: t, max: p.maxBody},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       p.maxTimeout,
	}
}

// TooLargeError is a response body longer than the policy reads.
type TooLargeError struct {
	// Limit is MaxResponseBytes.
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("the response body is larger than %s, the most the egress policy reads (%s)", bytesText(e.Limit), FlagMaxResponseBytes)
}

// limitTransport bounds the bodies of the responses of base.
type limitTransport struct {
	base *http.Transport
	max  int64
}

func (t *limitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{body: resp.Body, left: t.max, limit: t.max, tooLong: resp.ContentLength > t.max}
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the transport.
func (t *limitTransport) CloseIdleConnections() { t.base.CloseIdleConnections() }

// limitedBody reads at most limit bytes of body; reading beyond them is a *TooLargeError,
// never a silent end of the body. A body declared longer fails at its first read.
type limitedBody struct {
	body        io.ReadCloser
	left, limit int64
	tooLong     bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.tooLong {
		return 0, &TooLargeError{Limit: b.limit}
	}
	// Read one byte past the limit, to tell a body that ends there from a longer one.
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.body.Read(p)
	if int64(n) > b.left {
		b.tooLong = true
		n = int(b.left)
		b.left = 0
		return n, &TooLargeError{Limit: b.limit}
	}
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.body.Close() }

// bytesText is n in the largest binary unit that divides it: "1 MiB", "1500 bytes".
func bytesText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Reason is the policy's own error in err's chain (a *RefusedError or a *TooLargeError),
// or nil. Callers show it instead of the transport's wrapping, which repeats the URL.
func Reason(err error) error {
	var re *RefusedError
	if errors.As(err, &re) {
		return re
	}
	var tl *TooLargeError
	if errors.As(err, &tl) {
		return tl
	}
	return nil
}
