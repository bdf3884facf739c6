package execute

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/egress"
	"github.com/homeostat-dev/homeostat/internal/rights"
	"github.com/homeostat-dev/homeostat/internal/text"
)

func init() { register(KindWebhook, webhook{}) }

// Webhook defaults and bounds.
const (
	// DefaultWebhookTimeout bounds one attempt when the action sets no timeout.
	DefaultWebhookTimeout = 5 * time.Second
	// IdempotencyKeyHeader carries the action id, so a receiver can recognise the repeat
	// of a POST that a crash made the operator send again.
	IdempotencyKeyHeader = "Idempotency-Key"
	// maxWebhookRetries is the CRD's maximum of webhook.retries.
	maxWebhookRetries = 5
)

// webhookBackoff is the pause before retry n (1-based): 200ms, 400ms, 800ms... With the
// CRD's bounds (at most 5 retries) the pauses add up to 6.2 s, so a POST takes at most
// (retries+1) × timeout + 6.2 s: 15.6 s with the defaults.
var webhookBackoff = func(n int) time.Duration { return 200 * time.Millisecond << (n - 1) }

// webhook POSTs the action record as JSON. The URL is https unless allowInsecure; TLS is
// always verified, against the system roots and the action's caBundle. Headers come from
// a Secret read with get only. Each attempt has a timeout (default 5s, at most the egress
// policy's maximum, 30s by default). A network error, a timeout, 408, 429 and 5xx are
// retried after a short backoff, up to webhook.retries times; any other status is final,
// and so is an address the egress policy refuses. The request goes through the egress
// policy's client: redirects are not followed, so neither the body nor the Secret's
// headers go anywhere but the URL, and no proxy is used. Every attempt carries the action
// id in the Idempotency-Key header, so the receiver can deduplicate a retry.
//
// It never waits in a reconcile. Execute checks the URL, reads the Secret and builds the
// request, hands the POST with its retries to the WebhookRunner and reports Pending; a
// later Execute of the same record, when the runner wakes the app, reports the attempt
// it is on or the outcome. A record the runner does not know (the manager restarted)
// whose message says its POST had started is sent again with the same Idempotency-Key,
// and its messages say so.
type webhook struct{}

// webhookPending starts the message of every Pending webhook, so a resumed record shows
// that an earlier manager started its POST.
const webhookPending = "Background POST to "

// WebhookPayload is the JSON body of a webhook action.
type WebhookPayload struct {
	// App names the app that acted.
	App WebhookApp `json:"app"`
	// Record is the action's ledger record, as written with the intent.
	Record v1alpha1.ActionRecord `json:"record"`
	// Reason says why the action was taken, in a sentence (the record's reason).
	Reason string `json:"reason,omitempty"`
}

// WebhookApp names an app in a webhook payload.
type WebhookApp struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	UID       types.UID `json:"uid,omitempty"`
}

func (webhook) prepare(req Request) (Prepared, error) {
	if req.App == nil {
		return Prepared{}, errors.New("the webhook action has no app to report on")
	}
	a := req.Action.Webhook
	u, err := webhookURL(a)
	if err != nil {
		return Prepared{}, err
	}
	if _, err := webhookRoots(a.CABundle); err != nil {
		return Prepared{}, err
	}
	return Prepared{Target: text.Truncate(displayURL(u), 512)}, nil
}

func (webhook) execute(ctx context.Context, e *Effectors, req Request) Outcome {
	a := req.Action.Webhook
	if req.App == nil {
		return failed("The webhook action has no app to report on")
	}
	u, err := webhookURL(a)
	if err != nil {
		return failed("Did not POST the action record: %v", err)
	}
	target := displayURL(u)
	runner, key := e.webhooks(), webhookKey(req)
	if v, ok := runner.lookup(key); ok {
		if v.state == jobDone {
			return v.out
		}
		return Outcome{Result: v1alpha1.ResultPending, Message: v.progress}
	}

	roots, err := webhookRoots(a.CABundle)
	if err != nil {
		return failed("Did not POST to %s: %v", target, err)
	}
	ns, err := e.headersNamespace(req)
	if err != nil {
		return failed("Did not POST to %s: %v", target, err)
	}
	header, err := e.webhookHeaders(ctx, ns, a.HeadersFrom)
	if err != nil {
		return failed("Did not POST to %s: %v", target, err)
	}
	// The record as written with the intent: a POST sent again after a restart has the
	// same body, whatever progress the earlier manager recorded.
	rec := *req.Record
	if resent(&rec) {
		rec.Message = ""
	}
	body, err := json.Marshal(WebhookPayload{
		App:    WebhookApp{Namespace: req.App.Namespace, Name: req.App.Name, UID: req.App.UID},
		Record: rec, Reason: req.Record.Reason,
	})
	if err != nil {
		return failed("Did not POST to %s: encoding the action record failed: %v", target, err)
	}
	header.Set("Content-Type", "application/json")
	header.Set("User-Agent", "homeostat")
	header.Set(IdempotencyKeyHeader, req.Record.ID)

	p := &post{
		url: u, target: target, id: req.Record.ID, header: header, body: body,
		policy: e.egress(), roots: roots, resent: resent(req.Record),
		timeout: DefaultWebhookTimeout, attempts: 1 + int(min(max(a.Retries, 0), maxWebhookRetries)),
	}
	if a.Timeout != nil && a.Timeout.Duration > 0 {
		p.timeout, p.note = a.Timeout.Duration, p.policy.CapNote(a.Timeout.Duration)
		p.timeout, _ = p.policy.Cap(p.timeout)
	}
	logger := log.FromContext(ctx).WithValues("url", target, "actionID", req.Record.ID)
	if p.resent {
		logger.Info("Sending a webhook again: an earlier manager started it and did not record its answer")
	}
	queued := queuedMessage(runner, target, p.resent)
	runner.submit(key, types.NamespacedName{Namespace: req.App.Namespace, Name: req.App.Name}, queued,
		func(ctx context.Context, progress func(string)) Outcome {
			return p.send(log.IntoContext(ctx, logger), progress)
		})
	return Outcome{Result: v1alpha1.ResultPending, Message: queued}
}

// webhookKey names a record's POST in the runner: the app and the action id.
func webhookKey(req Request) string {
	return req.App.Namespace + "/" + req.App.Name + "/" + req.Record.ID
}

// resent says whether an earlier manager started the record's POST: the controller
// writes the message of a Pending outcome into the record, and only a webhook's starts
// with webhookPending.
func resent(rec *v1alpha1.ActionRecord) bool { return strings.HasPrefix(rec.Message, webhookPending) }

// restartNote says that a POST is sent again after a restart.
const restartNote = "sent again after a manager restart, with the same Idempotency-Key"

// queuedMessage is the progress of a POST waiting for a free worker of the runner.
func queuedMessage(w *WebhookRunner, target string, again bool) string {
	msg := fmt.Sprintf("%s%s: waiting for a free sender (at most %d webhooks are sent at once, %d per namespace)",
		webhookPending, target, w.Workers, w.PerNamespace)
	if again {
		msg += "; " + restartNote
	}
	return msg + "."
}

// post is one webhook's request, ready to send with its retries.
type post struct {
	url      *url.URL
	target   string // the URL as messages show it
	id       string
	header   http.Header
	body     []byte
	policy   *egress.Policy
	roots    *x509.CertPool
	timeout  time.Duration
	note     string // why timeout is shorter than the action asks, or ""
	attempts int
	resent   bool // an earlier manager started it
}

// send POSTs up to attempts times, reporting each attempt as progress, and returns the
// outcome.
func (p *post) send(ctx context.Context, progress func(string)) Outcome {
	hc := p.policy.Client(&tls.Config{RootCAs: p.roots, MinVersion: tls.VersionTLS12})
	defer hc.CloseIdleConnections()
	logger := log.FromContext(ctx)
	var tries []string
	var stopped error
	untrustedSeen := false
	for n := 1; n <= p.attempts; n++ {
		if n > 1 {
			if stopped = sleepCtx(ctx, webhookBackoff(n-1)); stopped != nil {
				break
			}
		}
		progress(p.progress(n, tries))
		res := postOnce(ctx, hc, p.url, p.header, p.body, p.timeout, p.note)
		logger.V(1).Info("Webhook attempt", "attempt", n, "result", res.summary)
		switch {
		case res.err == nil && res.code >= 200 && res.code < 300:
			return succeeded("%s", p.answered(n, res, tries))
		case res.err == nil && !retriable(res.code):
			return failed("%s; it is not retried", p.answered(n, res, tries))
		}
		tries = append(tries, res.summary)
		untrustedSeen = untrustedSeen || res.untrusted
		if res.final || ctx.Err() != nil {
			break
		}
	}
	msg := fmt.Sprintf("POST %s failed after %d %s: %s", p.target, len(tries), plural(len(tries), "attempt"), strings.Join(tries, "; "))
	if untrustedSeen {
		msg += "; it is not retried: the server's certificate is not trusted (set webhook.caBundle to the CA that signed it)"
	}
	if stopped != nil {
		msg += fmt.Sprintf("; stopped before attempt %d: %v", len(tries)+1, stopped)
	}
	if p.resent {
		msg += "; " + restartNote
	}
	return failed("%s", msg)
}

// progress is the message of a POST on attempt n, after the attempts tried.
func (p *post) progress(n int, tries []string) string {
	msg := fmt.Sprintf("%s%s: attempt %d of %d", webhookPending, p.target, n, p.attempts)
	if len(tries) > 0 {
		msg += fmt.Sprintf(" (earlier: %s)", strings.Join(tries, "; "))
	}
	if p.resent {
		msg += "; " + restartNote
	}
	return msg + "."
}

// answered is the message of a final answer on attempt n.
func (p *post) answered(n int, res attempt, tries []string) string {
	msg := fmt.Sprintf("POST %s returned %s", p.target, res.summary)
	if n > 1 {
		msg += fmt.Sprintf(" on attempt %d of %d (earlier: %s)", n, p.attempts, strings.Join(tries, "; "))
	}
	if p.resent {
		msg += " (" + restartNote + ")"
	}
	return msg
}

// observe reports a webhook as done when this manager's runner holds the outcome of its
// POST: the real outcome is recorded instead of Cancelled. Otherwise an HTTP call leaves
// no trace in the cluster to read back.
func (webhook) observe(_ context.Context, e *Effectors, req Request) (Outcome, bool) {
	if req.App == nil {
		return Outcome{}, false
	}
	v, ok := e.webhooks().lookup(webhookKey(req))
	if !ok || v.state != jobDone {
		return Outcome{}, false
	}
	return v.out, true
}

// WebhookRecheckAt is when the controller looks again at a Pending webhook that nothing
// woke before: the runner wakes the app on every attempt and when the POST ends, so this
// is a safety net. It is zero for other actions.
func WebhookRecheckAt(req Request, now time.Time) time.Time {
	if req.Action.Webhook == nil {
		return time.Time{}
	}
	return now.Add(webhookRecheck)
}

// accesses are the get of the Secret of the headers, when the app's namespace holds it.
// A ClusterHealingPolicy's webhook reads its Secret from the manager's namespace, with
// the manager's rights: the cluster admin wrote both, and the tenant may read neither.
func (webhook) accesses(req Request) ([]rights.Access, error) {
	a := req.Action.Webhook
	if a == nil || a.HeadersFrom == nil || req.ClusterPolicy || req.App == nil {
		return nil, nil
	}
	return []rights.Access{{Verb: "get", Resource: "secrets", Namespace: req.App.Namespace, Name: a.HeadersFrom.Name}}, nil
}

// headersNamespace is where the request's webhook reads its header Secret: the app's
// namespace, or the manager's for a ClusterHealingPolicy's webhook that has headers.
func (e *Effectors) headersNamespace(req Request) (string, error) {
	if a := req.Action.Webhook; !req.ClusterPolicy || a == nil || a.HeadersFrom == nil {
		return req.App.Namespace, nil
	}
	if e.ManagerNamespace == "" {
		return "", errors.New("the webhook of a ClusterHealingPolicy reads webhook.headersFrom from the manager's namespace, " +
			"which the manager does not know: set --manager-namespace or the POD_NAMESPACE environment variable")
	}
	return e.ManagerNamespace, nil
}

// attempt is the result of one POST: a status code, or an error.
type attempt struct {
	code int
	err  error
	// summary is "503 Service Unavailable" or what went wrong, for messages. It never
	// quotes the response: not its body, not the server's own reason phrase.
	summary string
	// final marks an error another attempt cannot mend: the server's certificate is not
	// trusted, the egress policy refused the address, or the request cannot be built.
	final bool
	// untrusted marks a certificate that failed verification.
	untrusted bool
}

// postOnce sends one attempt under timeout; note, when set, says why the timeout is
// shorter than the action asks.
func postOnce(ctx context.Context, hc *http.Client, u *url.URL, header http.Header, body []byte, timeout time.Duration, note string) attempt {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r, err := http.NewRequestWithContext(actx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return attempt{err: err, summary: err.Error(), final: true}
	}
	r.Header = header.Clone()
	resp, err := hc.Do(r)
	if err != nil {
		bad := untrusted(err)
		var refused *egress.RefusedError
		return attempt{err: err, summary: describeHTTPError(ctx, err, timeout, note),
			final: bad || errors.As(err, &refused), untrusted: bad}
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return attempt{code: resp.StatusCode, summary: statusText(resp.StatusCode)}
}

// retriable reports whether a status is worth another attempt: a timeout, throttling, or
// a server error. Other statuses (a 4xx, a 3xx) are the receiver's answer.
func retriable(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// describeHTTPError says what went wrong with an attempt, without the URL (which may
// carry a token in its query): the client's errors repeat it. A refusal of the egress
// policy is its own message, which names the address, the rule and the flag.
func describeHTTPError(parent context.Context, err error, timeout time.Duration, note string) string {
	if parent.Err() != nil {
		return "stopped: " + parent.Err().Error()
	}
	if perr := egress.Reason(err); perr != nil {
		return perr.Error()
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		if note != "" {
			return fmt.Sprintf("no response within %s (%s)", timeout, note)
		}
		return fmt.Sprintf("no response within %s", timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// untrusted reports whether an error is the server's certificate failing verification:
// retrying cannot change that.
func untrusted(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid)
}

// webhookURL parses and checks webhook.url: an absolute http(s) URL with a host, https
// unless allowInsecure. The CRD checks the same; this also guards a stale or hand-made
// object.
func webhookURL(a *v1alpha1.WebhookAction) (*url.URL, error) {
	if a == nil || a.URL == "" {
		return nil, errors.New("webhook.url is empty")
	}
	u, err := url.Parse(a.URL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("webhook.url is not a URL: %w", err)
	}
	switch {
	case u.Host == "":
		return nil, errors.New("webhook.url has no host")
	case u.Scheme == "https":
	case u.Scheme == "http" && a.AllowInsecure:
	case u.Scheme == "http":
		return nil, fmt.Errorf("webhook.url %s uses http; use https, or set webhook.allowInsecure: true to send the record unencrypted", displayURL(u))
	default:
		return nil, fmt.Errorf("webhook.url must be an https URL, not %s", u.Scheme)
	}
	return u, nil
}

// displayURL is the URL as messages and the ledger show it: without user information,
// query or fragment, which may hold credentials.
func displayURL(u *url.URL) string {
	d := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return d.String()
}

// webhookRoots is the system roots plus the PEM certificates of webhook.caBundle.
func webhookRoots(caBundle string) (*x509.CertPool, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if strings.TrimSpace(caBundle) != "" && !roots.AppendCertsFromPEM([]byte(caBundle)) {
		return nil, errors.New("webhook.caBundle holds no PEM certificate")
	}
	return roots, nil
}

// webhookHeaders reads the Secret named by headersFrom with a single get, and returns its
// keys and values as headers. The manager's client keeps Secrets out of its cache (see
// controllers.ClientOptions), so the get goes to the API server and the operator never
// lists or watches Secrets. Values are trimmed of surrounding whitespace (a file made
// with echo ends in a newline). Messages name keys, never values.
func (e *Effectors) webhookHeaders(ctx context.Context, ns string, ref *v1alpha1.SecretReference) (http.Header, error) {
	h := http.Header{}
	if ref == nil {
		return h, nil
	}
	s := &corev1.Secret{}
	if err := e.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("the Secret %s named by webhook.headersFrom was not found", ref.Name)
		}
		return nil, fmt.Errorf("reading Secret %s named by webhook.headersFrom failed: %w", ref.Name, err)
	}
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := strings.TrimSpace(string(s.Data[k]))
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, fmt.Errorf("key %q of Secret %s is not a valid header name", k, ref.Name)
		}
		if !httpguts.ValidHeaderFieldValue(v) {
			return nil, fmt.Errorf("the value of key %q of Secret %s is not a valid header value (it holds a line break or a control character)", k, ref.Name)
		}
		h.Set(k, v)
	}
	return h, nil
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// sleepCtx pauses for d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// statusText is a status code with its standard text ("503 Service Unavailable").
func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return fmt.Sprintf("%d", code)
}
