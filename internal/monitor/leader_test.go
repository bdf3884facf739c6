package monitor

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/leader"
)

// A replica that does not hold the Lease polls nothing; when it leads again it polls
// every sensor at once rather than at its next interval, and when it stops leading its
// readings are unavailable until a poll reads them again.
func TestPollerPollsOnlyWhileItLeads(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c, gets := countingReader(fake.NewClientBuilder().WithObjects(configMap("shop", "q", map[string]string{"depth": "5"})).Build())
	gate := leader.NewGate()
	p := &Poller{Readings: NewReadings(), RESTMapper: testMapper(), APIReader: c, Clock: clk, Leader: gate}
	gate.OnGained(p.Kick)
	gate.OnLost(p.Suspend)
	p.Sync(testApp("web"), []v1alpha1.Sensor{objectSensor("depth", time.Minute, "double(object.data.depth)")})
	run(t, p)
	time.Sleep(100 * time.Millisecond)
	if n := gets.Load(); n != 0 {
		t.Fatalf("a standby polled %d times", n)
	}

	gate.Gain(context.Background())
	eventually(t, "the new leader polled at once", func() bool { return p.Readings.Values(key("web"))["depth"] == 5 })
	if n := gets.Load(); n != 1 {
		t.Fatalf("%d polls, want 1", n)
	}

	gate.Lose()
	rd := p.Readings.Get(key("web"))["depth"]
	if rd.Available() || rd.Err != SuspendedReason || rd.Value != 5 || rd.ConsecutiveFailures != 0 {
		t.Fatalf("after the Lease was lost the reading is %+v; want unavailable (%q), its value kept, no failure counted", rd, SuspendedReason)
	}
	clk.Step(2 * time.Minute) // two intervals pass while it stands by
	time.Sleep(100 * time.Millisecond)
	if n := gets.Load(); n != 1 {
		t.Fatalf("a replica that lost the Lease polled again (%d polls)", n)
	}
	gate.Gain(context.Background())
	eventually(t, "the replica leading again polled at once", func() bool { return p.Readings.Get(key("web"))["depth"].Available() })
	if n := len(p.Readings.History(key("web"), "depth")); n != 2 {
		t.Fatalf("history holds %d samples, want both polls", n)
	}
}

// A poll in flight when the replica stops leading is cancelled, and Lose returns only once
// it has: what the endpoint answers after that is not kept as a fresh reading.
func TestPollInFlightWhenTheLeaseIsLostIsNotKept(t *testing.T) {
	release := make(chan struct{})
	var started atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		_, _ = w.Write([]byte("42"))
	}))
	t.Cleanup(srv.Close)
	gate := leader.NewGate()
	p := &Poller{Readings: NewReadings(), Leader: gate, Egress: loopbackEgress(t)}
	gate.OnLost(p.Suspend)
	p.Sync(testApp("web"), []v1alpha1.Sensor{httpSensor("slow", srv.URL, time.Minute, 10*time.Second)})
	gate.Gain(context.Background())
	run(t, p)
	eventually(t, "the poll started", func() bool { return started.Load() == 1 })
	gate.Lose()
	close(release) // the endpoint answers now
	time.Sleep(300 * time.Millisecond)
	if rd, ok := p.Readings.Get(key("web"))["slow"]; ok && (rd.Available() || (rd.Err != "" && rd.Err != SuspendedReason)) {
		t.Fatalf("a poll cut short by the lost Lease was recorded: %+v", rd)
	}
}
