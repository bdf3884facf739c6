package execute

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"

	"github.com/homeostat-dev/homeostat/internal/text"
)

func init() { register(KindNotify, notify{}) }

// notify asks for a human: a Warning Event with reason NeedsAttention on the app. The
// controller sets the NeedsAttention condition from the outcome.
type notify struct{}

func (notify) prepare(req Request) (Prepared, error) {
	if req.App == nil {
		return Prepared{}, errors.New("the notify action has no app to record an Event on")
	}
	return Prepared{}, nil
}

func (notify) execute(_ context.Context, e *Effectors, req Request) Outcome {
	msg := req.Action.Notify.Message
	if req.App == nil {
		return failed("Could not ask for attention (%s): the request names no app", msg)
	}
	if e.Recorder == nil {
		return failed("Could not ask for attention (%s): no Event recorder is configured", msg)
	}
	e.Recorder.Eventf(req.App, nil, corev1.EventTypeWarning, ReasonNeedsAttention, KindNotify, "%s", text.Truncate(msg, maxMessage))
	return succeeded("Asked for attention: %s", msg)
}

// observe never reports a notify as done: its effect is an Event, which expires and is
// not an effect on the cluster to read back, so a held notify is cancelled rather than
// claimed as sent.
func (notify) observe(context.Context, *Effectors, Request) (Outcome, bool) { return Outcome{}, false }
