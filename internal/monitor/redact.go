package monitor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptrace"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/google/cel-go/common/types/ref"

	"github.com/homeostat-dev/homeostat/internal/egress"
)

// A sensor's error is written to the app's status, where anyone who can read the app
// reads it, and to the operator's log. It says what kind of thing went wrong and never
// quotes what the sensor read: a field of an object, a response's body, its status line.
// Those may be someone else's secrets, and libraries quote them freely (cel-go quotes the
// string it failed to convert, net/http the status line it failed to parse, Prometheus'
// client the body of an error). The helpers here turn such errors into messages that name
// the kind of value or failure instead.

// celTypeNoun names the type of a CEL value for a message; never its value.
func celTypeNoun(v ref.Val) string {
	switch name := v.Type().TypeName(); name {
	case "string":
		return "a string"
	case "bool":
		return "a bool"
	case "bytes":
		return "bytes"
	case "list":
		return "a list"
	case "map":
		return "a map"
	case "null_type":
		return "null"
	case "google.protobuf.Timestamp":
		return "a timestamp"
	case "google.protobuf.Duration":
		return "a duration"
	case "optional_type":
		return "an optional value"
	default:
		return "a value of type " + name
	}
}

// noSuchKey finds the key in cel-go's "no such key: <key>" error.
var noSuchKey = regexp.MustCompile(`no such key: (.*)$`)

// celEvalErrorText says why evaluating expr over an object failed, without what cel-go
// may quote of the object: a key looked up by a value (`object.data[object.data.k]`), a
// string it could not convert (`int(object.data.password)`). A missing key is named only
// when the expression itself spells it, so the message repeats nothing but the spec.
func celEvalErrorText(expr string, err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "no such key"):
		if m := noSuchKey.FindStringSubmatch(msg); m != nil && m[1] != "" && strings.Contains(expr, m[1]) {
			return fmt.Sprintf("the object has no key %s (guard the read with has() or the ? operator)", strconv.Quote(m[1]))
		}
		return "the object lacks a key the expression reads (guard the read with has() or the ? operator)"
	case strings.Contains(msg, "no such attribute"), strings.Contains(msg, "no such field"):
		return "the object lacks a field the expression reads (guard the read with has() or the ? operator)"
	case strings.Contains(msg, "cost limit exceeded"):
		return fmt.Sprintf("the expression exceeded its cost limit of %d (it walks too much of the object)", ObjectCostLimit)
	case strings.Contains(msg, "interrupted"), strings.Contains(msg, "cancelled"):
		return "the evaluation was interrupted: the poll ran out of time"
	case strings.Contains(msg, "no such overload"), strings.Contains(msg, "no matching overload"):
		return "a function or operator of the expression does not take the types it was given (convert with double(), int() or string())"
	case strings.Contains(msg, "division by zero"), strings.Contains(msg, "modulus by zero"):
		return "the expression divides by zero"
	case strings.Contains(msg, "overflow"):
		return "a number overflowed"
	case strings.Contains(msg, "regexp"):
		return "a regular expression given to matches() is not valid"
	case strings.Contains(msg, "conver"), strings.Contains(msg, "pars"), strings.Contains(msg, "range error"):
		return "a value of the object could not be converted to the type the expression asks for"
	default:
		return "the expression failed at run time (CEL's message is not shown: it may quote the object)"
	}
}

// answer is what a sensor may say of an HTTP answer: whether one began to arrive, its
// status code and its media type; never its status line, headers or body.
type answer struct {
	began       atomic.Bool
	code        atomic.Int32
	contentType atomic.Pointer[string]
}

type answerKey struct{}

// withAnswer returns ctx with a record of the answer to the request sent under it: an
// httptrace that notes the answer's first byte, and a place for its status and media
// type (recordAnswer fills it).
func withAnswer(ctx context.Context) (context.Context, *answer) {
	a := &answer{}
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotFirstResponseByte: func() { a.began.Store(true) }})
	return context.WithValue(ctx, answerKey{}, a), a
}

// recordAnswer notes the status and media type of resp in the answer of ctx, if any.
func recordAnswer(ctx context.Context, resp *http.Response) {
	a, ok := ctx.Value(answerKey{}).(*answer)
	if !ok || resp == nil {
		return
	}
	a.code.Store(int32(resp.StatusCode))
	mt := mediaType(resp.Header.Get("Content-Type"))
	a.contentType.Store(&mt)
}

// status is "503 Service Unavailable (text/html)": the code, the standard text of the
// code (not the server's reason phrase), and the media type without its parameters.
func (a *answer) status() string {
	s := statusText(int(a.code.Load()))
	mt := "no content type"
	if p := a.contentType.Load(); p != nil && *p != "" {
		mt = *p
	}
	return s + " (" + mt + ")"
}

// statusText is a status code with its standard text, "307 Temporary Redirect", never
// the server's own reason phrase.
func statusText(code int) string {
	s := strconv.Itoa(code)
	if t := http.StatusText(code); t != "" {
		s += " " + t
	}
	return s
}

// mediaType is a Content-Type header's media type ("text/html") without its parameters,
// or "" when it has none or it is not a well-formed one: a header is not a place for free
// text.
func mediaType(header string) string {
	mt, _, err := mime.ParseMediaType(header)
	if (err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter)) || len(mt) > 64 || !strings.Contains(mt, "/") {
		return ""
	}
	return mt
}

// ownError is an error whose text this package wrote from nothing the server sent but
// its status code: requestErrorText shows it as it is.
type ownError struct{ msg string }

func (e *ownError) Error() string { return e.msg }

// requestErrorText says why a request got no usable answer. Errors that arise before
// the answer (dialing, a refused address, TLS) are the operator's or the network's and
// are shown; so are the egress policy's own (a body longer than it reads) and this
// package's (ownError). Once the answer has begun to arrive, any other error comes from
// reading it, and net/http quotes what it read (a malformed status line, a header), so
// it is named, not shown. Certificate errors list the names in the server's certificate:
// they are named too, and so is HTTP/2's GOAWAY, whose debug data the server chooses.
func requestErrorText(err error, a *answer) string {
	var own *ownError
	if errors.As(err, &own) {
		return own.Error()
	}
	if perr := egress.Reason(err); perr != nil {
		return perr.Error()
	}
	var (
		hostErr    x509.HostnameError
		authErr    x509.UnknownAuthorityError
		invalidErr x509.CertificateInvalidError
		verifyErr  *tls.CertificateVerificationError
		recordErr  tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &hostErr):
		return "the server's certificate is not valid for this host"
	case errors.As(err, &authErr):
		return "the server's certificate is signed by an unknown authority"
	case errors.As(err, &invalidErr):
		return "the server's certificate is not valid (expired, not yet valid, or not for serving)"
	case errors.As(err, &verifyErr):
		return "the server's certificate could not be verified"
	case errors.As(err, &recordErr):
		return "the server does not speak TLS"
	case strings.Contains(err.Error(), "GOAWAY"):
		return "the server closed the HTTP/2 connection (GOAWAY)"
	case a != nil && a.began.Load():
		return "the answer could not be read (a malformed or cut-short HTTP answer)"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the server closed the connection without answering"
	}
	return err.Error()
}
