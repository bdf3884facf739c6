package execute

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/egress"
	"github.com/homeostat-dev/homeostat/internal/egress/egresstest"
	"github.com/homeostat-dev/homeostat/internal/leader"
)

// hookServer is a webhook receiver on 127.0.0.1 (never any other address) that answers
// with the statuses it is given in turn, the last one repeatedly, and keeps what it got.
type hookServer struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	delay    time.Duration
	got      []*http.Request
	bodies   [][]byte
}

// tb is what newHookServer needs of a *testing.T or GinkgoT().
type tb interface {
	Fatal(args ...any)
	Cleanup(func())
}

func newHookServer(t tb, tlsOn bool, statuses ...int) *hookServer {
	h := &hookServer{statuses: statuses}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.Server = httptest.NewUnstartedServer(http.HandlerFunc(h.serve))
	_ = h.Listener.Close()
	h.Listener = l
	// A client that refuses the certificate ends the handshake; that is the test's point.
	h.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tlsOn {
		h.StartTLS()
	} else {
		h.Start()
	}
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.got = append(h.got, r.Clone(context.Background()))
	h.bodies = append(h.bodies, body)
	status := h.statuses[min(len(h.got), len(h.statuses))-1]
	delay := h.delay
	h.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if status == http.StatusFound {
		http.Redirect(w, r, "/elsewhere", status)
		return
	}
	w.WriteHeader(status)
	if status >= 400 {
		_, _ = io.WriteString(w, `{"error":"no such incident"}`+"\n")
	}
}

func (h *hookServer) requests() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

// caBundle is the PEM of the server's certificate.
func (h *hookServer) caBundle() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.Certificate().Raw}))
}

func hookApp() *v1alpha1.AutonomicApp {
	return &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "shop", UID: "app-uid"}}
}

func hookRecord() *v1alpha1.ActionRecord {
	return &v1alpha1.ActionRecord{
		ID: "heal-web-m5x8k2ab-3fa9c1", Time: metav1.NewTime(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)),
		Policy: "heal-web", Step: 2, Action: KindWebhook, Target: "https://127.0.0.1/hook",
		Reason: "CrashLooping is still active after runJob.", Result: v1alpha1.ResultPending,
	}
}

// hookEffectors are effectors whose client holds the given Secrets, under an egress
// policy that allows loopback, where hookServer listens.
func hookEffectors(t *testing.T, secrets ...*corev1.Secret) (*Effectors, *events.FakeRecorder) {
	b := fake.NewClientBuilder().WithScheme(scheme)
	for _, s := range secrets {
		b = b.WithObjects(s)
	}
	rec := events.NewFakeRecorder(10)
	return &Effectors{Client: b.Build(), Recorder: rec, Egress: egresstest.AllowLoopback(t)}, rec
}

func hookSecret() *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "pager", Namespace: "shop"},
		Data:       map[string][]byte{"Authorization": []byte("Bearer s3cret\n"), "X-Team": []byte("sre")},
	}
}

func webhookAction(url string, mutate ...func(*v1alpha1.WebhookAction)) v1alpha1.Action {
	a := &v1alpha1.WebhookAction{URL: url, Retries: 2}
	for _, m := range mutate {
		m(a)
	}
	return v1alpha1.Action{Webhook: a}
}

func withCA(h *hookServer) func(*v1alpha1.WebhookAction) {
	return func(a *v1alpha1.WebhookAction) { a.CABundle = h.caBundle() }
}

// runHook prepares and executes a webhook action as the controller does: while the
// outcome is Pending it writes the progress into the record and executes it again, and
// it returns the first outcome that is not Pending.
func runHook(t *testing.T, e *Effectors, action v1alpha1.Action) Outcome {
	t.Helper()
	req := Request{App: hookApp(), Action: action}
	p, err := e.Prepare(req)
	if err != nil {
		t.Fatalf("Prepare() error = %v", err)
	}
	rec := hookRecord()
	rec.Target = p.Target
	req.Record = rec
	return untilDone(t, e, req)
}

// untilDone executes req until its outcome is not Pending, keeping the progress in the
// record as the controller does.
func untilDone(t tb, e *Effectors, req Request) Outcome {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		out := e.Execute(context.Background(), req)
		if out.Result != v1alpha1.ResultPending {
			return out
		}
		req.Record.Message = out.Message
	}
	t.Fatal("the webhook was still Pending after 20s")
	return Outcome{}
}

func TestWebhookPostsTheRecordOverVerifiedTLSWithHeadersFromASecret(t *testing.T) {
	h := newHookServer(t, true, http.StatusAccepted)
	e, events := hookEffectors(t, hookSecret())
	out := runHook(t, e, webhookAction(h.URL+"/hook", withCA(h), func(a *v1alpha1.WebhookAction) {
		a.HeadersFrom = &v1alpha1.SecretReference{Name: "pager"}
	}))

	want := Outcome{Result: v1alpha1.ResultSucceeded, Message: "POST " + h.URL + "/hook returned 202 Accepted"}
	if out != want {
		t.Fatalf("Execute() = %+v, want %+v", out, want)
	}
	if n := h.requests(); n != 1 {
		t.Fatalf("the server got %d requests, want 1", n)
	}
	r := h.got[0]
	for k, v := range map[string]string{
		"Authorization":   "Bearer s3cret",
		"X-Team":          "sre",
		"Idempotency-Key": "heal-web-m5x8k2ab-3fa9c1",
		"Content-Type":    "application/json",
	} {
		if got := r.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if r.Method != http.MethodPost || r.URL.Path != "/hook" || r.TLS == nil {
		t.Errorf("request = %s %s (TLS %v), want a POST to /hook over TLS", r.Method, r.URL.Path, r.TLS != nil)
	}
	var body WebhookPayload
	if err := json.Unmarshal(h.bodies[0], &body); err != nil {
		t.Fatalf("body %s: %v", h.bodies[0], err)
	}
	if body.App != (WebhookApp{Namespace: "shop", Name: "shop", UID: "app-uid"}) || body.Record.ID != "heal-web-m5x8k2ab-3fa9c1" ||
		body.Record.Policy != "heal-web" || body.Record.Step != 2 || body.Reason != "CrashLooping is still active after runJob." {
		t.Errorf("body = %s", h.bodies[0])
	}
	var last string
	for len(events.Events) > 0 {
		if last = <-events.Events; strings.Contains(last, "s3cret") {
			t.Errorf("event = %q", last)
		}
	}
	if !strings.HasPrefix(last, "Normal ActionSucceeded POST "+h.URL+"/hook returned 202") {
		t.Errorf("last event = %q", last)
	}
}

func TestWebhookRetriesAServerErrorThenSucceeds(t *testing.T) {
	h := newHookServer(t, true, http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusOK)
	e, _ := hookEffectors(t)
	start := time.Now()
	out := runHook(t, e, webhookAction(h.URL+"/hook", withCA(h)))
	if out.Result != v1alpha1.ResultSucceeded || out.Message !=
		"POST "+h.URL+"/hook returned 200 OK on attempt 3 of 3 (earlier: 503 Service Unavailable; 429 Too Many Requests)" {
		t.Fatalf("Execute() = %+v", out)
	}
	if n := h.requests(); n != 3 {
		t.Errorf("the server got %d requests, want 3", n)
	}
	for i, r := range h.got {
		if r.Header.Get(IdempotencyKeyHeader) != "heal-web-m5x8k2ab-3fa9c1" {
			t.Errorf("attempt %d has Idempotency-Key %q", i+1, r.Header.Get(IdempotencyKeyHeader))
		}
	}
	if d := time.Since(start); d < 600*time.Millisecond {
		t.Errorf("3 attempts took %s; the backoff is 200ms then 400ms", d)
	}
}

func TestWebhookGivesUpAfterItsRetries(t *testing.T) {
	h := newHookServer(t, true, http.StatusBadGateway)
	e, _ := hookEffectors(t)
	out := runHook(t, e, webhookAction(h.URL+"/hook", withCA(h), func(a *v1alpha1.WebhookAction) { a.Retries = 1 }))
	want := Outcome{Result: v1alpha1.ResultFailed,
		Message: "POST " + h.URL + "/hook failed after 2 attempts: 502 Bad Gateway; 502 Bad Gateway"}
	if out != want {
		t.Errorf("Execute() = %+v, want %+v", out, want)
	}
	if n := h.requests(); n != 2 {
		t.Errorf("the server got %d requests, want 2", n)
	}
}

func TestWebhookDoesNotRetryAClientError(t *testing.T) {
	h := newHookServer(t, true, http.StatusBadRequest, http.StatusOK)
	e, _ := hookEffectors(t)
	out := runHook(t, e, webhookAction(h.URL+"/hook", withCA(h)))
	// The answer's body is the receiver's; the message never quotes it.
	want := Outcome{Result: v1alpha1.ResultFailed,
		Message: `POST ` + h.URL + `/hook returned 400 Bad Request; it is not retried`}
	if out != want {
		t.Errorf("Execute() = %+v, want %+v", out, want)
	}
	if strings.Contains(out.Message, "no such incident") {
		t.Errorf("the message quotes the response body: %q", out.Message)
	}
	if n := h.requests(); n != 1 {
		t.Errorf("the server got %d requests, want 1", n)
	}
}

func TestWebhookDoesNotFollowARedirect(t *testing.T) {
	h := newHookServer(t, true, http.StatusFound)
	e, _ := hookEffectors(t)
	out := runHook(t, e, webhookAction(h.URL+"/hook", withCA(h)))
	if out.Result != v1alpha1.ResultFailed || !strings.HasPrefix(out.Message, "POST "+h.URL+"/hook returned 302 Found") {
		t.Errorf("Execute() = %+v", out)
	}
	if n := h.requests(); n != 1 {
		t.Errorf("the server got %d requests, want 1: the redirect is not followed", n)
	}
}

func TestWebhookTimesOutEachAttempt(t *testing.T) {
	h := newHookServer(t, true, http.StatusOK)
	h.delay = 5 * time.Second
	e, _ := hookEffectors(t)
	start := time.Now()
	out := runHook(t, e, webhookAction(h.URL+"/hook", withCA(h), func(a *v1alpha1.WebhookAction) {
		a.Timeout = &metav1.Duration{Duration: 150 * time.Millisecond}
		a.Retries = 1
	}))
	want := Outcome{Result: v1alpha1.ResultFailed,
		Message: "POST " + h.URL + "/hook failed after 2 attempts: no response within 150ms; no response within 150ms"}
	if out != want {
		t.Errorf("Execute() = %+v, want %+v", out, want)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("two attempts of 150ms took %s", d)
	}
}

func TestWebhookVerifiesTheServerCertificate(t *testing.T) {
	h := newHookServer(t, true, http.StatusOK)
	e, _ := hookEffectors(t)
	out := runHook(t, e, webhookAction(h.URL+"/hook"))
	if out.Result != v1alpha1.ResultFailed || !strings.Contains(out.Message, "certificate") {
		t.Errorf("Execute() without caBundle = %+v, want a certificate failure", out)
	}
	if !strings.Contains(out.Message, "failed after 1 attempt:") || !strings.Contains(out.Message, "webhook.caBundle") {
		t.Errorf("Execute() = %+v: an untrusted certificate is not retried", out)
	}
	if n := h.requests(); n != 0 {
		t.Errorf("the server got %d requests over an unverified connection", n)
	}
}

func TestWebhookRefusesHTTPUnlessAllowed(t *testing.T) {
	h := newHookServer(t, false, http.StatusNoContent)
	e, _ := hookEffectors(t)
	action := webhookAction(h.URL + "/hook")
	_, err := e.Prepare(Request{App: hookApp(), Action: action})
	if err == nil || !strings.Contains(err.Error(), "allowInsecure") {
		t.Errorf("Prepare(http URL) error = %v, want one naming allowInsecure", err)
	}
	out := untilDone(t, e, Request{App: hookApp(), Action: action, Record: hookRecord()})
	if out.Result != v1alpha1.ResultFailed || !strings.Contains(out.Message, "uses http") {
		t.Errorf("Execute(http URL) = %+v", out)
	}
	if n := h.requests(); n != 0 {
		t.Errorf("the server got %d requests", n)
	}

	out = runHook(t, e, webhookAction(h.URL+"/hook", func(a *v1alpha1.WebhookAction) { a.AllowInsecure = true }))
	if out != (Outcome{Result: v1alpha1.ResultSucceeded, Message: "POST " + h.URL + "/hook returned 204 No Content"}) {
		t.Errorf("Execute(http URL, allowInsecure) = %+v", out)
	}
}

func TestWebhookPrepare(t *testing.T) {
	e := &Effectors{}
	tests := []struct {
		name, url, ca string
		target, err   string
	}{
		{name: "the target leaves out credentials", url: "https://user:pw@hooks.example/v1/hook?token=abc#x", target: "https://hooks.example/v1/hook"},
		{name: "a URL without a host", url: "https:///hook", err: "webhook.url has no host"},
		{name: "another scheme", url: "ftp://hooks.example/x", err: "webhook.url must be an https URL, not ftp"},
		{name: "not a URL", url: "https://[::1", err: "webhook.url is not a URL"},
		{name: "a caBundle without a certificate", url: "https://hooks.example/", ca: "not PEM", err: "webhook.caBundle holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := e.Prepare(Request{App: hookApp(), Action: webhookAction(tt.url, func(a *v1alpha1.WebhookAction) { a.CABundle = tt.ca })})
			switch {
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("Prepare() error = %v, want %q", err, tt.err)
			case tt.err == "" && (err != nil || p.Target != tt.target || p.Kind != KindWebhook || p.Disruptive):
				t.Errorf("Prepare() = %+v, %v; want target %q", p, err, tt.target)
			}
		})
	}
}

func TestWebhookHeadersFromASecret(t *testing.T) {
	h := newHookServer(t, true, http.StatusOK)
	bad := hookSecret()
	bad.Data["X-Bad"] = []byte("two\nlines")

	tests := []struct {
		name    string
		secrets []*corev1.Secret
		want    string
	}{
		{"a missing Secret", nil, "Did not POST to " + h.URL + "/hook: the Secret pager named by webhook.headersFrom was not found"},
		{"a value that is not a header value", []*corev1.Secret{bad}, `the value of key "X-Bad" of Secret pager is not a valid header value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := hookEffectors(t, tt.secrets...)
			out := runHook(t, e, webhookAction(h.URL+"/hook", withCA(h), func(a *v1alpha1.WebhookAction) {
				a.HeadersFrom = &v1alpha1.SecretReference{Name: "pager"}
			}))
			if out.Result != v1alpha1.ResultFailed || !strings.Contains(out.Message, tt.want) || strings.Contains(out.Message, "two") {
				t.Errorf("Execute() = %+v, want Failed with %q", out, tt.want)
			}
		})
	}
	if n := h.requests(); n != 0 {
		t.Errorf("the server got %d requests", n)
	}
}

var _ = Describe("webhook", func() {
	It("reads its headers from a Secret with a get and POSTs to a TLS server on 127.0.0.1", func() {
		f := newFixture()
		f.app.Namespace = f.ns
		Expect(k8s.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "pager", Namespace: f.ns},
			StringData: map[string]string{"Authorization": "Bearer s3cret"},
		})).To(Succeed())
		h := newHookServer(GinkgoT(), true, http.StatusAccepted)

		req := Request{App: f.app, Action: webhookAction(h.URL+"/hook", withCA(h), func(a *v1alpha1.WebhookAction) {
			a.HeadersFrom = &v1alpha1.SecretReference{Name: "pager"}
		})}
		p, err := f.eff.Prepare(req)
		Expect(err).NotTo(HaveOccurred())
		req.Record = &v1alpha1.ActionRecord{ID: "page-1", Time: metav1.NewTime(f.clock.Now()), Action: p.Kind, Target: p.Target,
			Result: v1alpha1.ResultPending}
		Expect(untilDone(GinkgoT(), f.eff, req)).To(Equal(Outcome{Result: v1alpha1.ResultSucceeded,
			Message: "POST " + h.URL + "/hook returned 202 Accepted"}))
		Expect(h.requests()).To(Equal(1))
		Expect(h.got[0].Header.Get("Authorization")).To(Equal("Bearer s3cret"))
		Expect(h.got[0].Header.Get(IdempotencyKeyHeader)).To(Equal("page-1"))
		Expect(f.drainEvents()).To(ContainElement(HavePrefix("Normal ActionSucceeded POST " + h.URL + "/hook returned 202 Accepted")))
	})

	It("refuses to POST to the API server, though loopback, where it listens here, is allowed", func() {
		f := newFixture()
		u, err := url.Parse(apiServer)
		Expect(err).NotTo(HaveOccurred())
		hook := "https://" + u.Host + "/api/v1/namespaces/" + f.ns + "/pods"
		req := Request{App: f.app, Action: webhookAction(hook, func(a *v1alpha1.WebhookAction) { a.Retries = 0 })}
		p, err := f.eff.Prepare(req)
		Expect(err).NotTo(HaveOccurred())
		req.Record = &v1alpha1.ActionRecord{ID: "page-2", Time: metav1.NewTime(f.clock.Now()), Action: p.Kind, Target: p.Target,
			Result: v1alpha1.ResultPending}
		Expect(untilDone(GinkgoT(), f.eff, req)).To(Equal(Outcome{Result: v1alpha1.ResultFailed,
			Message: "POST " + hook + " failed after 1 attempt: the egress policy refused " + u.Host +
				": it is the Kubernetes API server; no flag allows it"}))
	})
})

func TestWebhookRefusedByTheEgressPolicyFailsWithTheRuleAndSendsNothing(t *testing.T) {
	h := newHookServer(t, true, http.StatusOK)
	hostPort := strings.TrimPrefix(h.URL, "https://")
	withAllowLoopback, _ := hookEffectors(t)
	asMetrics := &Effectors{Client: withAllowLoopback.Client, Egress: egresstest.AllowLoopback(t, func(c *egress.Config) {
		c.Listeners = []egress.Listener{{Name: "metrics", Flag: "--metrics-bind-address", Address: hostPort}}
	})}
	tests := []struct {
		name string
		e    *Effectors
		want string
	}{
		{name: "loopback under the built-in policy", e: &Effectors{Client: withAllowLoopback.Client},
			want: "POST " + h.URL + "/hook failed after 1 attempt: the egress policy refused " + hostPort +
				": it is a loopback address (127.0.0.0/8), denied by default; --egress-allow-cidrs=127.0.0.0/8 would allow it"},
		{name: "the manager's own port with loopback allowed", e: asMetrics,
			want: "POST " + h.URL + "/hook failed after 1 attempt: the egress policy refused " + hostPort +
				": it is the manager's own metrics listener (--metrics-bind-address); no flag allows it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Retries would not change the policy's answer: there is one attempt.
			out := runHook(t, tt.e, webhookAction(h.URL+"/hook", withCA(h), func(a *v1alpha1.WebhookAction) { a.Retries = 3 }))
			if out != (Outcome{Result: v1alpha1.ResultFailed, Message: tt.want}) {
				t.Errorf("Execute() = %+v\nwant Failed: %s", out, tt.want)
			}
		})
	}
	if n := h.requests(); n != 0 {
		t.Errorf("the server got %d requests", n)
	}
}

func TestWebhookTimeoutIsCappedByTheEgressMaximumAndTheMessageSaysSo(t *testing.T) {
	h := newHookServer(t, true, http.StatusOK)
	h.delay = 5 * time.Second
	e, _ := hookEffectors(t)
	e.Egress = egresstest.AllowLoopback(t, func(c *egress.Config) { c.MaxTimeout = 150 * time.Millisecond })
	start := time.Now()
	out := runHook(t, e, webhookAction(h.URL+"/hook", withCA(h), func(a *v1alpha1.WebhookAction) {
		a.Timeout = &metav1.Duration{Duration: time.Minute}
		a.Retries = 0
	}))
	want := Outcome{Result: v1alpha1.ResultFailed, Message: "POST " + h.URL + "/hook failed after 1 attempt: no response within 150ms " +
		"(the timeout asked for, 1m0s, is capped at 150ms by --egress-max-timeout)"}
	if out != want {
		t.Errorf("Execute() = %+v\nwant %+v", out, want)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the attempt took %s, beyond the 150ms cap", d)
	}
}

// notified is a WebhookRunner's Notify that counts the wake-ups of each app.
type notified struct {
	mu    sync.Mutex
	count map[string]int
}

func (n *notified) notify(app types.NamespacedName) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.count == nil {
		n.count = map[string]int{}
	}
	n.count[app.String()]++
}

func (n *notified) of(app string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.count[app]
}

func TestWebhookToASlowReceiverIsPendingAtOnceAndCompletesLaterOnce(t *testing.T) {
	h := newHookServer(t, true, http.StatusAccepted)
	h.delay = 700 * time.Millisecond
	e, _ := hookEffectors(t)
	var woken notified
	e.Webhooks = &WebhookRunner{Notify: woken.notify}
	req := Request{App: hookApp(), Action: webhookAction(h.URL+"/hook", withCA(h)), Record: hookRecord()}

	start := time.Now()
	out := e.Execute(context.Background(), req)
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("Execute took %s with a receiver that answers after 700ms; it must not wait", d)
	}
	if out.Result != v1alpha1.ResultPending || !strings.HasPrefix(out.Message, "Background POST to "+h.URL+"/hook: ") {
		t.Fatalf("Execute() = %+v, want Pending with the POST's progress", out)
	}
	req.Record.Message = out.Message

	// The runner wakes the app when the attempt starts and when the POST ends.
	deadline := time.Now().Add(5 * time.Second)
	for woken.of("shop/shop") < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := woken.of("shop/shop"); n != 2 {
		t.Fatalf("the app was woken %d times, want 2: when the attempt started and when the POST ended", n)
	}
	want := Outcome{Result: v1alpha1.ResultSucceeded, Message: "POST " + h.URL + "/hook returned 202 Accepted"}
	// A status write that failed makes the controller execute the record again: the same
	// outcome, and no second POST.
	for range 3 {
		if out := e.Execute(context.Background(), req); out != want {
			t.Fatalf("Execute() after the POST ended = %+v, want %+v", out, want)
		}
	}
	if n := h.requests(); n != 1 {
		t.Fatalf("the receiver got %d requests, want 1", n)
	}
}

func TestWebhookReportsEachAttemptAsProgress(t *testing.T) {
	h := newHookServer(t, true, http.StatusServiceUnavailable, http.StatusOK)
	h.delay = 300 * time.Millisecond
	e, _ := hookEffectors(t)
	req := Request{App: hookApp(), Action: webhookAction(h.URL+"/hook", withCA(h)), Record: hookRecord()}
	seen := map[string]bool{}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		out := e.Execute(context.Background(), req)
		if out.Result != v1alpha1.ResultPending {
			break
		}
		seen[out.Message] = true
		req.Record.Message = out.Message
	}
	for _, m := range []string{
		"Background POST to " + h.URL + "/hook: attempt 1 of 3.",
		"Background POST to " + h.URL + "/hook: attempt 2 of 3 (earlier: 503 Service Unavailable).",
	} {
		if !seen[m] {
			t.Errorf("progress %q was never reported; saw %v", m, seen)
		}
	}
}

func TestWebhookLeftPendingByAnEarlierManagerIsSentAgainWithTheSameIdempotencyKey(t *testing.T) {
	h := newHookServer(t, true, http.StatusOK)
	e, _ := hookEffectors(t) // a new manager: its runner knows nothing of the record
	rec := hookRecord()
	rec.Message = "Background POST to " + h.URL + "/hook: attempt 1 of 3."
	out := untilDone(t, e, Request{App: hookApp(), Action: webhookAction(h.URL+"/hook", withCA(h)), Record: rec})
	want := Outcome{Result: v1alpha1.ResultSucceeded, Message: "POST " + h.URL +
		"/hook returned 200 OK (sent again after a manager restart, with the same Idempotency-Key)"}
	if out != want {
		t.Fatalf("Execute() = %+v, want %+v", out, want)
	}
	if n := h.requests(); n != 1 || h.got[0].Header.Get(IdempotencyKeyHeader) != rec.ID {
		t.Fatalf("the receiver got %d requests (Idempotency-Key %q), want 1 with %q", n, h.got[0].Header.Get(IdempotencyKeyHeader), rec.ID)
	}
	// The body is the record as written with the intent, as the first manager sent it.
	var body WebhookPayload
	if err := json.Unmarshal(h.bodies[0], &body); err != nil || body.Record.ID != rec.ID || body.Record.Message != "" {
		t.Errorf("body %s (%v): want the record as written with the intent, without the earlier progress", h.bodies[0], err)
	}
}

func TestWebhookSlowReceiversOfOneNamespaceDoNotHoldEverySender(t *testing.T) {
	slow := newHookServer(t, true, http.StatusOK)
	slow.delay = 3 * time.Second
	fast := newHookServer(t, true, http.StatusOK)
	e, _ := hookEffectors(t)
	e.Webhooks = &WebhookRunner{Workers: 2} // one per namespace
	for _, name := range []string{"a", "b", "c"} {
		app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-a", Name: name}}
		out := e.Execute(context.Background(), Request{App: app, Action: webhookAction(slow.URL+"/hook", withCA(slow)), Record: hookRecord()})
		if out.Result != v1alpha1.ResultPending {
			t.Fatalf("Execute() = %+v", out)
		}
	}
	other := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-b", Name: "b"}}
	start := time.Now()
	out := untilDone(t, e, Request{App: other, Action: webhookAction(fast.URL+"/hook", withCA(fast)), Record: hookRecord()})
	if out.Result != v1alpha1.ResultSucceeded {
		t.Fatalf("Execute() = %+v", out)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("tenant-b's webhook took %s behind tenant-a's slow receivers", d)
	}
	// The first slow POST may reach its receiver after tenant-b's is done (the machine may
	// be busy); a second could only start once the first ends, 3s after it began.
	deadline := time.Now().Add(2 * time.Second)
	for slow.requests() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := slow.requests(); n != 1 {
		t.Errorf("tenant-a's slow receiver got %d requests at once, want 1: its share of 2 senders", n)
	}
}

func TestWebhookStopCancelsThePostAndItsRetries(t *testing.T) {
	h := newHookServer(t, true, http.StatusOK)
	h.delay = 5 * time.Second
	e, _ := hookEffectors(t)
	req := Request{App: hookApp(), Action: webhookAction(h.URL+"/hook", withCA(h)), Record: hookRecord()}
	if out := e.Execute(context.Background(), req); out.Result != v1alpha1.ResultPending {
		t.Fatalf("Execute() = %+v", out)
	}
	for deadline := time.Now().Add(3 * time.Second); h.requests() == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	e.Stop(req)
	if _, done := e.Observe(context.Background(), req); done {
		t.Error("Observe reports a stopped webhook as done")
	}
	time.Sleep(time.Second) // the first backoff is 200ms: a retry would have come
	if n := h.requests(); n != 1 {
		t.Errorf("the receiver got %d requests, want 1: Stop ends the retries", n)
	}
}

func TestWebhookObserveReportsAFinishedPost(t *testing.T) {
	h := newHookServer(t, true, http.StatusNoContent)
	e, _ := hookEffectors(t)
	req := Request{App: hookApp(), Action: webhookAction(h.URL+"/hook", withCA(h)), Record: hookRecord()}
	if _, done := e.Observe(context.Background(), req); done {
		t.Fatal("Observe reports a webhook never sent as done")
	}
	want := untilDone(t, e, req)
	if out, done := e.Observe(context.Background(), req); !done || out != want {
		t.Fatalf("Observe() = %+v, %v; want %+v, true", out, done, want)
	}
}

// A replica that does not hold the Lease sends nothing; one that loses it cancels the
// POST in flight, sends no retry, and forgets it, so that the next leader owns the intent.
func TestWebhookRunsOnlyWhileTheReplicaLeads(t *testing.T) {
	h := newHookServer(t, true, http.StatusOK)
	h.delay = 5 * time.Second
	e, _ := hookEffectors(t)
	gate := leader.NewGate()
	e.Webhooks = &WebhookRunner{Leader: gate}
	gate.OnLost(e.Webhooks.Forget)
	req := Request{App: hookApp(), Action: webhookAction(h.URL+"/hook", withCA(h)), Record: hookRecord()}
	if out := e.Execute(context.Background(), req); out.Result != v1alpha1.ResultPending {
		t.Fatalf("Execute() = %+v", out)
	}
	time.Sleep(300 * time.Millisecond)
	if n := h.requests(); n != 0 {
		t.Fatalf("a standby sent %d requests", n)
	}
	if _, done := e.Observe(context.Background(), req); done {
		t.Fatal("a standby reports a webhook it never sent as done")
	}

	gate.Gain(context.Background())
	if out := e.Execute(context.Background(), req); out.Result != v1alpha1.ResultPending {
		t.Fatalf("Execute() = %+v", out)
	}
	for deadline := time.Now().Add(3 * time.Second); h.requests() == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	gate.Lose() // returns once the POST in flight has been cancelled and has returned
	if _, done := e.Observe(context.Background(), req); done {
		t.Error("the replica that lost the Lease reports the cancelled POST as done")
	}
	time.Sleep(time.Second) // the first backoff is 200ms: a retry would have come
	if n := h.requests(); n != 1 {
		t.Errorf("the receiver got %d requests, want 1", n)
	}
}
