package execute

import (
	"context"
	"testing"

	"k8s.io/client-go/tools/events"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func TestNotifyEmitsNeedsAttentionAndTheActionEvent(t *testing.T) {
	app := &v1alpha1.AutonomicApp{}
	app.Name, app.Namespace = "shop", "shop"
	rec := events.NewFakeRecorder(10)
	e := &Effectors{Recorder: rec}
	action := v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "web keeps crashing after restart and rollback"}}

	p, err := e.Prepare(Request{App: app, Action: action})
	if err != nil || p.Kind != KindNotify || p.Disruptive || p.Target != "" {
		t.Fatalf("Prepare() = %+v, %v", p, err)
	}
	out := e.Execute(context.Background(), Request{App: app, Action: action, Record: &v1alpha1.ActionRecord{ID: "n1"}})
	want := Outcome{Result: v1alpha1.ResultSucceeded, Message: "Asked for attention: web keeps crashing after restart and rollback"}
	if out != want {
		t.Errorf("Execute() = %+v, want %+v", out, want)
	}
	for _, wantEvent := range []string{
		"Warning NeedsAttention web keeps crashing after restart and rollback",
		"Normal ActionSucceeded Asked for attention: web keeps crashing after restart and rollback (notify, action n1)",
	} {
		if got := <-rec.Events; got != wantEvent {
			t.Errorf("event = %q, want %q", got, wantEvent)
		}
	}
}
