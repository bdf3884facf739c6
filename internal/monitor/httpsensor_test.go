package monitor

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// sleepOrCancel waits d, or less if the client went away.
func sleepOrCancel(r *http.Request, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-r.Context().Done():
		return false
	}
}

func TestHTTPSensorReadsLatencyAndFailsOnStatusOrTimeout(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/fast", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { sleepOrCancel(r, 80*time.Millisecond) })
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) { sleepOrCancel(r, 2*time.Second) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/down", http.StatusFound) })
	mux.HandleFunc("/stall", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		sleepOrCancel(r, 2*time.Second)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/"
	_ = l.Close()

	ms := func(d int) *metav1.Duration { return &metav1.Duration{Duration: time.Duration(d) * time.Millisecond} }
	cases := []struct {
		name     string
		spec     v1alpha1.HTTPSensor
		min, max time.Duration // bounds of the latency when it succeeds
		wantErr  string
	}{
		{name: "a fast answer reads a small latency", spec: v1alpha1.HTTPSensor{URL: srv.URL + "/fast"}, max: 500 * time.Millisecond},
		{name: "the latency is the response time in seconds", spec: v1alpha1.HTTPSensor{URL: srv.URL + "/slow"}, min: 80 * time.Millisecond, max: 800 * time.Millisecond},
		{name: "a 503 is unavailable with the status",
			spec:    v1alpha1.HTTPSensor{URL: srv.URL + "/down"},
			wantErr: "GET " + srv.URL + "/down answered 503 Service Unavailable (no content type); expected 200-399"},
		{name: "a status outside expectedStatus is unavailable",
			spec:    v1alpha1.HTTPSensor{URL: srv.URL + "/fast", ExpectedStatus: []int32{204, 202}},
			wantErr: "GET " + srv.URL + "/fast answered 200 OK (no content type); expected one of 202, 204"},
		{name: "an expected 503 is a success", spec: v1alpha1.HTTPSensor{URL: srv.URL + "/down", ExpectedStatus: []int32{503}}, max: 500 * time.Millisecond},
		{name: "a redirect is the answer and is not followed", spec: v1alpha1.HTTPSensor{URL: srv.URL + "/moved"}, max: 500 * time.Millisecond},
		{name: "a redirect outside expectedStatus names its status",
			spec:    v1alpha1.HTTPSensor{URL: srv.URL + "/moved", ExpectedStatus: []int32{200}},
			wantErr: "GET " + srv.URL + "/moved answered 302 Found (text/html); expected 200"},
		{name: "no answer within the sensor's timeout",
			spec:    v1alpha1.HTTPSensor{URL: srv.URL + "/hang", Timeout: ms(150)},
			wantErr: "GET " + srv.URL + "/hang: no answer within 150ms"},
		{name: "a body that stalls counts against the timeout",
			spec:    v1alpha1.HTTPSensor{URL: srv.URL + "/stall", Timeout: ms(150)},
			wantErr: "GET " + srv.URL + "/stall: no answer within 150ms"},
		{name: "the default request timeout is 1s",
			spec:    v1alpha1.HTTPSensor{URL: srv.URL + "/hang"},
			wantErr: "GET " + srv.URL + "/hang: no answer within 1s"},
		{name: "a transport error is unavailable with the error",
			spec:    v1alpha1.HTTPSensor{URL: closed},
			wantErr: "GET " + closed + ": dial tcp " + strings.TrimPrefix(strings.TrimSuffix(closed, "/"), "http://") + ": connect: connection refused"},
	}
	p := &Poller{Egress: loopbackEgress(t)}
	p.init()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pr := newHTTPProbe(p, &tc.spec)
			// The poll's own timeout is longer than the request's.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got, _, err := pr.read(ctx, types.NamespacedName{}, 5*time.Second)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("got %v, %v\nwant error %s", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Duration(got * float64(time.Second)); d < tc.min || d > tc.max {
				t.Fatalf("latency %s, want within [%s, %s]", d, tc.min, tc.max)
			}
		})
	}
}

func TestHTTPSensorRequestIsBoundedByThePollTimeoutToo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sleepOrCancel(r, 2*time.Second) }))
	t.Cleanup(srv.Close)
	p := &Poller{Egress: loopbackEgress(t)}
	p.init()
	pr := newHTTPProbe(p, &v1alpha1.HTTPSensor{URL: srv.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, _, err := pr.read(ctx, types.NamespacedName{}, 100*time.Millisecond)
	if want := "GET " + srv.URL + ": no answer within 100ms"; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestHTTPSensorErrorsRedactTheURLPassword(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) }))
	t.Cleanup(srv.Close)
	p := &Poller{Egress: loopbackEgress(t)}
	p.init()
	u := strings.Replace(srv.URL, "http://", "http://probe:secret@", 1)
	_, _, err := newHTTPProbe(p, &v1alpha1.HTTPSensor{URL: u}).read(context.Background(), types.NamespacedName{}, time.Second)
	if err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "probe:xxxxx@") {
		t.Fatalf("got %v", err)
	}
}

// rawServer answers every connection on 127.0.0.1 with the bytes of answer, whatever
// they are, once it has read the request's headers; it returns its URL.
func rawServer(t *testing.T, answer string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = conn.Close() }()
				r := bufio.NewReader(conn)
				for {
					line, err := r.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				_, _ = conn.Write([]byte(answer))
			}()
		}
	}()
	return "http://" + l.Addr().String()
}

func TestHTTPSensorErrorsNeverQuoteTheAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset="+secretValue)
		w.Header().Set("X-Token", secretValue)
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("<html>" + secretValue + "</html>"))
	}))
	t.Cleanup(srv.Close)
	p := &Poller{Egress: loopbackEgress(t)}
	p.init()
	for _, tc := range []struct {
		name, url, want string
	}{
		{name: "a body, a header and a media type's parameters", url: srv.URL,
			want: "answered 500 Internal Server Error (text/html); expected 200-399"},
		{name: "the server's reason phrase", url: rawServer(t, "HTTP/1.1 503 "+secretValue+"\r\nContent-Length: 0\r\n\r\n"),
			want: "answered 503 Service Unavailable (no content type); expected 200-399"},
		{name: "a media type that is not one", url: rawServer(t, "HTTP/1.1 500 Oops\r\nContent-Type: "+secretValue+"\r\nContent-Length: 0\r\n\r\n"),
			want: "answered 500 Internal Server Error (no content type); expected 200-399"},
		{name: "a server that does not speak HTTP", url: rawServer(t, "SSH-2.0-"+secretValue+"\r\n"),
			want: ": the answer could not be read (a malformed or cut-short HTTP answer)"},
		{name: "a malformed status code", url: rawServer(t, "HTTP/1.1 "+secretValue+" OK\r\n\r\n"),
			want: ": the answer could not be read (a malformed or cut-short HTTP answer)"},
		{name: "a malformed header", url: rawServer(t, "HTTP/1.1 200 OK\r\n"+secretValue+"\r\n\r\n"),
			want: ": the answer could not be read (a malformed or cut-short HTTP answer)"},
		{name: "a malformed Content-Length", url: rawServer(t, "HTTP/1.1 200 OK\r\nContent-Length: "+secretValue+"\r\n\r\n"),
			want: ": the answer could not be read (a malformed or cut-short HTTP answer)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := newHTTPProbe(p, &v1alpha1.HTTPSensor{URL: tc.url}).read(context.Background(), types.NamespacedName{}, time.Second)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secretValue[:8]) {
				t.Fatalf("the error quotes the answer: %v", err)
			}
		})
	}
}
