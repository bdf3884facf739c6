package egress

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// These tests send requests only to servers on 127.0.0.1, and resolve names only through
// pipeResolver, which answers in this process: nothing leaves the machine's loopback.

// pipeResolver is a resolver whose DNS server runs in this process over a pipe, so no
// query goes to the system's name servers. It answers every A and AAAA question with the
// addresses of that family in answers (none: the name does not exist). Names in
// /etc/hosts (localhost) are answered from there first, as by the system.
func pipeResolver(t *testing.T, answers []netip.Addr) *net.Resolver {
	t.Helper()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		client, server := net.Pipe()
		go serveDNS(server, answers)
		return client, nil
	}}
}

// serveDNS answers one query in the stream framing (a net.Pipe is not a PacketConn).
func serveDNS(c net.Conn, answers []netip.Addr) {
	defer func() { _ = c.Close() }()
	var size [2]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return
	}
	query := make([]byte, binary.BigEndian.Uint16(size[:]))
	if _, err := io.ReadFull(c, query); err != nil {
		return
	}
	var m dnsmessage.Message
	if err := m.Unpack(query); err != nil || len(m.Questions) != 1 {
		return
	}
	q := m.Questions[0]
	m.Header = dnsmessage.Header{ID: m.ID, Response: true, Authoritative: true, RecursionDesired: m.RecursionDesired, RecursionAvailable: true}
	m.Answers = nil
	for _, a := range answers {
		h := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}
		switch {
		case q.Type == dnsmessage.TypeA && a.Is4():
			h.Type = dnsmessage.TypeA
			m.Answers = append(m.Answers, dnsmessage.Resource{Header: h, Body: &dnsmessage.AResource{A: a.As4()}})
		case q.Type == dnsmessage.TypeAAAA && a.Is6():
			h.Type = dnsmessage.TypeAAAA
			m.Answers = append(m.Answers, dnsmessage.Resource{Header: h, Body: &dnsmessage.AAAAResource{AAAA: a.As16()}})
		}
	}
	if len(answers) == 0 {
		m.RCode = dnsmessage.RCodeNameError
	}
	out, err := m.Pack()
	if err != nil {
		return
	}
	binary.BigEndian.PutUint16(size[:], uint16(len(out)))
	_, _ = c.Write(append(size[:], out...))
}

// loopbackServer is an HTTP server on 127.0.0.1 that counts the requests it got.
type loopbackServer struct {
	*httptest.Server
	hits atomic.Int64
}

func newLoopbackServer(t *testing.T, h http.HandlerFunc) *loopbackServer {
	t.Helper()
	s := &loopbackServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *loopbackServer) port() string { return strconv.Itoa(s.Listener.Addr().(*net.TCPAddr).Port) }

// loopbackPolicy allows loopback, as the test suites' managers do.
func loopbackPolicy(t *testing.T, mutate ...func(*Config)) *Policy {
	t.Helper()
	cfg := Config{Allow: cidrs(t, "127.0.0.0/8,::1/128"), Resolver: pipeResolver(t, nil), LocalAddrs: []netip.Addr{}}
	for _, m := range mutate {
		m(&cfg)
	}
	p, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, []byte, error) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func TestClientDoesNotFollowARedirect(t *testing.T) {
	var landed atomic.Int64
	srv := newLoopbackServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			landed.Add(1)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	resp, _, err := get(t, loopbackPolicy(t).Client(nil), srv.URL+"/start")
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("GET = %v, %v; want the 302 itself", resp, err)
	}
	if landed.Load() != 0 || srv.hits.Load() != 1 {
		t.Errorf("the redirect was followed: %d requests, %d to its target", srv.hits.Load(), landed.Load())
	}
}

func TestClientFailsOnABodyAboveTheMaximum(t *testing.T) {
	const limit = 1000
	srv := newLoopbackServer(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if r.URL.Query().Has("length") {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		}
		if r.URL.Query().Has("endless") {
			// Endless for the client; 64 MiB at most, so a client without the limit
			// fails the test rather than the machine.
			chunk := []byte(strings.Repeat("x", 512))
			for i := 0; i < 128<<10 && r.Context().Err() == nil; i++ {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			return
		}
		_, _ = w.Write([]byte(strings.Repeat("x", n)))
	})
	c := loopbackPolicy(t, func(c *Config) { c.MaxResponseBytes = limit }).Client(nil)
	tooLarge := "the response body is larger than 1000 bytes, the most the egress policy reads (--egress-max-response-bytes)"
	tests := []struct {
		name, query string
		wantErr     bool
	}{
		{"a body of exactly the maximum is read", "n=1000", false},
		{"a body one byte above the maximum fails", "n=1001", true},
		{"a body declared above the maximum fails at once", "n=5000&length", true},
		{"a body that never ends fails at the maximum", "endless", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, body, err := get(t, c, srv.URL+"/?"+tt.query)
			if !tt.wantErr {
				if err != nil || len(body) != limit {
					t.Fatalf("read %d bytes, %v; want %d", len(body), err, limit)
				}
				return
			}
			var tl *TooLargeError
			if !errors.As(err, &tl) || err.Error() != tooLarge {
				t.Fatalf("read %d bytes, %v; want %q", len(body), err, tooLarge)
			}
			if len(body) > limit {
				t.Errorf("read %d bytes, beyond the maximum", len(body))
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

func TestClientCutsASlowServerAtTheMaximumTimeout(t *testing.T) {
	srv := newLoopbackServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stall" {
			// The headers at once, then a body that never comes.
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("a"))
			w.(http.Flusher).Flush()
		}
		select {
		case <-time.After(10 * time.Second):
		case <-r.Context().Done():
		}
	})
	p := loopbackPolicy(t, func(c *Config) { c.MaxTimeout = 200 * time.Millisecond })
	// The caller asks for a minute; the policy gives it 200ms.
	if d, capped := p.Cap(time.Minute); d != 200*time.Millisecond || !capped {
		t.Fatalf("Cap(1m) = %s, %v", d, capped)
	}
	for _, path := range []string{"/silent", "/stall"} {
		t.Run(path, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
			start := time.Now()
			resp, err := p.Client(nil).Do(req)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				_ = resp.Body.Close()
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("error %v is not a timeout", err)
			}
			if d := time.Since(start); d < 200*time.Millisecond || d > 3*time.Second {
				t.Errorf("the request ended after %s, want about 200ms", d)
			}
		})
	}
}

func TestClientRefusesAHostNameThatResolvesToLoopback(t *testing.T) {
	srv := newLoopbackServer(t, func(w http.ResponseWriter, r *http.Request) {})
	loop := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	for _, host := range []string{"tenant-service.example", "localhost"} {
		t.Run(host, func(t *testing.T) {
			p, err := New(context.Background(), Config{Resolver: pipeResolver(t, loop), LocalAddrs: []netip.Addr{}})
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = get(t, p.Client(nil), "http://"+net.JoinHostPort(host, srv.port())+"/")
			var re *RefusedError
			if !errors.As(err, &re) || re.Addr.Addr().Unmap() != loop[0] {
				t.Fatalf("GET %s = %v, want refused at 127.0.0.1", host, err)
			}
			want := "the egress policy refused 127.0.0.1:" + srv.port() + ": it is a loopback address (127.0.0.0/8), denied by default; " +
				"--egress-allow-cidrs=127.0.0.0/8 would allow it"
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q\nwant it to say %q", err, want)
			}
			if n := srv.hits.Load(); n != 0 {
				t.Errorf("the server got %d requests", n)
			}
		})
	}
	// The same name is reached once loopback is allowed: the check is on the address.
	p := loopbackPolicy(t, func(c *Config) { c.Resolver = pipeResolver(t, loop) })
	if resp, _, err := get(t, p.Client(nil), "http://tenant-service.example:"+srv.port()+"/"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET with loopback allowed = %v, %v", resp, err)
	}
}

func TestClientRefusesTheManagersOwnPortOnLoopbackWhenLoopbackIsAllowed(t *testing.T) {
	srv := newLoopbackServer(t, func(w http.ResponseWriter, r *http.Request) {})
	p := loopbackPolicy(t, func(c *Config) {
		c.Listeners = []Listener{{Name: "metrics", Flag: "--metrics-bind-address", Address: srv.Listener.Addr().String()}}
	})
	_, _, err := get(t, p.Client(nil), srv.URL+"/metrics")
	var re *RefusedError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "the manager's own metrics listener (--metrics-bind-address); no flag allows it") {
		t.Fatalf("GET the manager's metrics = %v", err)
	}
	if n := srv.hits.Load(); n != 0 {
		t.Errorf("the server got %d requests", n)
	}
}

func TestClientUsesNoProxy(t *testing.T) {
	proxy := newLoopbackServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	target := newLoopbackServer(t, func(w http.ResponseWriter, r *http.Request) {})
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	t.Setenv("NO_PROXY", "")
	c := loopbackPolicy(t).Client(nil)
	if tr := c.Transport.(*limitTransport).base; tr.Proxy != nil {
		t.Fatal("the transport has a proxy function")
	}
	resp, _, err := get(t, c, target.URL)
	if err != nil || resp.StatusCode != http.StatusOK || proxy.hits.Load() != 0 || target.hits.Load() != 1 {
		t.Fatalf("GET = %v, %v; proxy got %d, target %d", resp, err, proxy.hits.Load(), target.hits.Load())
	}
}
