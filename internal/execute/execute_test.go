package execute

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"k8s.io/client-go/tools/events"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/monitor"
)

func TestKindAndComponentNameEveryMember(t *testing.T) {
	tests := []struct {
		action    v1alpha1.Action
		kind      string
		component string
	}{
		{v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "a"}}, KindRestartPods, "a"},
		{v1alpha1.Action{RolloutRestart: &v1alpha1.ComponentAction{Component: "b"}}, KindRolloutRestart, "b"},
		{v1alpha1.Action{Rollback: &v1alpha1.ComponentAction{Component: "c"}}, KindRollback, "c"},
		{v1alpha1.Action{Scale: &v1alpha1.ScaleAction{Component: "d"}}, KindScale, "d"},
		{v1alpha1.Action{Failover: &v1alpha1.FailoverAction{Policy: "p"}}, KindFailover, ""},
		{v1alpha1.Action{CordonNode: &v1alpha1.NodeAction{Component: "e"}}, KindCordonNode, "e"},
		{v1alpha1.Action{DrainNode: &v1alpha1.NodeAction{Component: "f"}}, KindDrainNode, "f"},
		{v1alpha1.Action{RunJob: &v1alpha1.RunJobAction{}}, KindRunJob, ""},
		{v1alpha1.Action{Webhook: &v1alpha1.WebhookAction{}}, KindWebhook, ""},
		{v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "m"}}, KindNotify, ""},
		{v1alpha1.Action{}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			if got := Kind(tt.action); got != tt.kind {
				t.Errorf("Kind() = %q, want %q", got, tt.kind)
			}
			if got := tt.action.Component(); got != tt.component {
				t.Errorf("Component() = %q, want %q", got, tt.component)
			}
		})
	}
}

// withoutEffector unregisters the effector of a kind until the test ends, to test what
// happens to an action no effector carries out.
func withoutEffector(t *testing.T, kind string) {
	f := registry[kind]
	delete(registry, kind)
	t.Cleanup(func() { registry[kind] = f })
}

func TestPrepareRefusesActionsNotSupportedYet(t *testing.T) {
	withoutEffector(t, KindWebhook)
	e := &Effectors{}
	for _, a := range []v1alpha1.Action{
		{Webhook: &v1alpha1.WebhookAction{}},
	} {
		kind := Kind(a)
		p, err := e.Prepare(Request{Action: a})
		if err == nil || err.Error() != "action "+kind+" is not supported yet" {
			t.Errorf("Prepare(%s) error = %v", kind, err)
		}
		if p.Kind != kind {
			t.Errorf("Prepare(%s).Kind = %q", kind, p.Kind)
		}
	}
	if _, err := e.Prepare(Request{}); err == nil {
		t.Error("Prepare() of an empty action succeeded")
	}
}

func TestExecuteFailsWithAnEventWhenItCannotAct(t *testing.T) {
	withoutEffector(t, KindWebhook)
	app := &v1alpha1.AutonomicApp{}
	app.Name, app.Namespace = "shop", "shop"
	tests := []struct {
		name      string
		req       Request
		wantMsg   string
		wantEvent string
	}{
		{"an action not supported yet",
			Request{App: app, Action: v1alpha1.Action{Webhook: &v1alpha1.WebhookAction{}},
				Record: &v1alpha1.ActionRecord{ID: "x1"}},
			"Action webhook is not supported yet",
			"Warning ActionFailed Action webhook is not supported yet (webhook, action x1)"},
		{"a request without a ledger record",
			Request{App: app, Action: v1alpha1.Action{Rollback: &v1alpha1.ComponentAction{Component: "web"}}},
			"Action rollback has no ledger record with an id, so it was not carried out",
			"Warning ActionFailed Action rollback has no ledger record with an id, so it was not carried out (rollback, action )"},
		{"a component that was not found",
			Request{App: app, Action: v1alpha1.Action{Rollback: &v1alpha1.ComponentAction{Component: "web"}},
				Record: &v1alpha1.ActionRecord{ID: "x2", Target: "Deployment/web"},
				Target: (&fakeDeployment{}).componentWithout()},
			"Deployment/web of component web was not found",
			"Warning ActionFailed Deployment/web of component web was not found (rollback on Deployment/web, action x2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := events.NewFakeRecorder(10)
			out := (&Effectors{Recorder: rec}).Execute(context.Background(), tt.req)
			if out.Result != v1alpha1.ResultFailed || out.Message != tt.wantMsg {
				t.Errorf("Execute() = %+v, want Failed %q", out, tt.wantMsg)
			}
			if got := <-rec.Events; got != tt.wantEvent {
				t.Errorf("event = %q, want %q", got, tt.wantEvent)
			}
		})
	}
}

func (f *fakeDeployment) componentWithout() *monitor.Component {
	c := f.component()
	c.Workload = nil
	return c
}

func TestSentence(t *testing.T) {
	if got := sentence("no pod qualifies"); got != "No pod qualifies" {
		t.Errorf("sentence() = %q", got)
	}
}

// A notify message the API accepts (1024 characters) can be 2048 bytes; the Events API
// refuses a note over 1024 bytes, and the ledger's message must fit too.
func TestExecuteBoundsTheMessageAndEveryEventNoteInBytes(t *testing.T) {
	rec := events.NewFakeRecorder(10)
	msg := strings.Repeat("é", 1024)
	req := Request{App: failoverApp(""), Action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: msg}},
		Record: &v1alpha1.ActionRecord{ID: "heal-1", Action: KindNotify}}
	out := (&Effectors{Recorder: rec}).Execute(context.Background(), req)
	if out.Result != v1alpha1.ResultSucceeded || len(out.Message) > maxMessage || !utf8.ValidString(out.Message) {
		t.Fatalf("Execute() = %s with a message of %d bytes", out.Result, len(out.Message))
	}
	close(rec.Events)
	n := 0
	for e := range rec.Events {
		// The fake recorder writes "<type> <reason> <note>".
		note := strings.SplitN(e, " ", 3)[2]
		if len(note) > 1024 || !utf8.ValidString(note) {
			t.Errorf("an Event note of %d bytes: %.40q...", len(note), note)
		}
		n++
	}
	if n != 2 {
		t.Errorf("%d Events, want NeedsAttention and ActionSucceeded", n)
	}
}
