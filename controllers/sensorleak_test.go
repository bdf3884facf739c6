package controllers

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/egress/egresstest"
	"github.com/homeostat-dev/homeostat/internal/monitor"
)

// TestSensorErrorsNeverShowWhatTheSensorRead proves, through the reconciler, that what
// an object sensor reads of an object and what an http sensor reads of an answer reach
// neither the app's status (sensors[].error, the SensorsAvailable condition, anything
// else) nor its Events, while the errors still say what went wrong.
func TestSensorErrorsNeverShowWhatTheSensorRead(t *testing.T) {
	const secret = "aHVudGVyMi1zM2NyM3Q="
	ctx := t.Context()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("password=" + secret))
	}))
	t.Cleanup(srv.Close)

	objs := unreadyWeb("web:1", v1alpha1.RemediationStep{Action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "web is unready"}}})
	app := objs[2].(*v1alpha1.AutonomicApp)
	object := func(name, expr string) v1alpha1.Sensor {
		return v1alpha1.Sensor{Name: name, Object: &v1alpha1.ObjectSensor{
			Ref: v1alpha1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Name: "db"}, Expression: expr}}
	}
	app.Spec.Sensors = []v1alpha1.Sensor{
		object("as_string", "object.data.password"),
		object("by_value", "double(object.data[object.data.password])"),
		object("as_pattern", "object.data.password.matches(object.data.password + '[') ? 1.0 : 0.0"),
		{Name: "probe", HTTP: &v1alpha1.HTTPSensor{URL: srv.URL + "/healthz"}},
	}
	want := map[string]string{
		"as_string":  `ConfigMap "db": the expression returned a string, not a number (convert it with double() or int())`,
		"by_value":   `ConfigMap "db": evaluating the expression failed: the object lacks a key the expression reads (guard the read with has() or the ? operator)`,
		"as_pattern": `ConfigMap "db": evaluating the expression failed: a regular expression given to matches() is not valid`,
		"probe":      "GET " + srv.URL + "/healthz answered 500 Internal Server Error (text/plain); expected 200-399",
	}
	objs = append(objs, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db"},
		Data: map[string]string{"password": secret}})

	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))
	c, r := newFakeReconciler(t, clk, objs...)
	rec := events.NewFakeRecorder(100)
	r.Recorder, r.Effectors.Recorder = rec, rec
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(corev1.SchemeGroupVersion.WithKind("ConfigMap"), meta.RESTScopeNamespace)
	r.Readings = monitor.NewReadings()
	// The http sensor's server is on loopback, which only an egress policy that allows
	// it lets the poller reach.
	r.Poller = &monitor.Poller{Readings: r.Readings, Reader: c, APIReader: c, RESTMapper: mapper, Egress: egresstest.AllowLoopback(t)}
	pollCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Poller.Start(pollCtx) }()
	t.Cleanup(func() { stop(); <-done })

	key := types.NamespacedName{Namespace: "shop", Name: "shop"}
	req := ctrl.Request{NamespacedName: key}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(r.Readings.Get(key)) < len(want) {
		if time.Now().After(deadline) {
			t.Fatalf("the sensors were not polled: %+v", r.Readings.Get(key))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}

	got := &v1alpha1.AutonomicApp{}
	if err := c.Get(ctx, key, got); err != nil {
		t.Fatal(err)
	}
	for _, s := range got.Status.Sensors {
		if s.Error != want[s.Name] {
			t.Errorf("sensor %s: error %q, want %q", s.Name, s.Error, want[s.Name])
		}
	}
	status, err := json.Marshal(got.Status)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(status), secret[:8]) {
		t.Errorf("the status shows what a sensor read: %s", status)
	}
	if !strings.Contains(string(status), `"reason":"`+v1alpha1.ReasonSensorsUnavailable+`"`) {
		t.Errorf("the status does not say the sensors are unavailable: %s", status)
	}
	close(rec.Events)
	n := 0
	for e := range rec.Events {
		n++
		if strings.Contains(e, secret[:8]) {
			t.Errorf("an Event shows what a sensor read: %s", e)
		}
	}
	if n == 0 {
		t.Error("no Event was recorded; the test proves nothing of Events")
	}
}
