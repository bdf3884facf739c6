package monitor

import (
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

	gate.Gain()
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
	gate.Gain()
	eventually(t, "the replica leading again polled at once", func() bool { return p.Readings.Get(key("web"))["depth"].Available() })
	if n := len(p.Readings.History(key("web"), "depth")); n != 2 {
		t.Fatalf("history holds %d samples, want both polls", n)
	}
}
