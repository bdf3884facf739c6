package monitor

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	testingclock "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// probeServer is an HTTP server on 127.0.0.1 that records when each path was requested
// and how many requests were in flight at most. A path answers after its delay, or when
// the client gives up.
type probeServer struct {
	*httptest.Server
	mu          sync.Mutex
	hits        map[string][]time.Time
	delays      map[string]time.Duration
	inFlight    int
	maxInFlight int
}

func newProbeServer(t *testing.T, delays map[string]time.Duration) *probeServer {
	s := &probeServer{hits: map[string][]time.Time{}, delays: delays}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path] = append(s.hits[r.URL.Path], time.Now())
		s.inFlight++
		s.maxInFlight = max(s.maxInFlight, s.inFlight)
		d := s.delays[r.URL.Path]
		s.mu.Unlock()
		if d > 0 {
			sleepOrCancel(r, d)
		}
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *probeServer) times(path string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hits[path])
}

func (s *probeServer) count(path string) int { return len(s.times(path)) }

func (s *probeServer) max() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInFlight
}

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func httpSensor(name, url string, interval, timeout time.Duration) v1alpha1.Sensor {
	s := v1alpha1.Sensor{Name: name, Interval: dur(interval), HTTP: &v1alpha1.HTTPSensor{URL: url}}
	if timeout > 0 {
		s.Timeout = dur(timeout)
	}
	return s
}

func testApp(name string) *v1alpha1.AutonomicApp {
	return &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}}
}

func key(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: "shop", Name: name}
}

// run starts the poller and stops it when the test ends.
func run(t *testing.T, p *Poller) {
	t.Helper()
	ctx, cancel := context.WithCancel(logf.IntoContext(context.Background(), logr.Discard()))
	done := make(chan error)
	go func() { done <- p.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("the poller did not stop within 5s")
		}
	})
}

// eventually waits up to 3s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting until %s", what)
}

func gaps(ts []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(ts); i++ {
		out = append(out, ts[i].Sub(ts[i-1]))
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// countingReader counts the gets of object sensors.
func countingReader(c client.WithWatch) (client.Reader, *atomic.Int32) {
	var n atomic.Int32
	return interceptor.NewClient(c, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, k client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			n.Add(1)
			return c.Get(ctx, k, obj, opts...)
		},
	}), &n
}

func objectSensor(name string, interval time.Duration, expr string) v1alpha1.Sensor {
	return v1alpha1.Sensor{Name: name, Interval: dur(interval), Object: &v1alpha1.ObjectSensor{
		Ref: v1alpha1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Name: "q"}, Expression: expr}}
}

func TestPollerPollsEachSensorAtItsOwnInterval(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c := fake.NewClientBuilder().WithObjects(configMap("shop", "q", map[string]string{"depth": "5"})).Build()
	p := &Poller{Readings: NewReadings(), RESTMapper: testMapper(), APIReader: c, Clock: clk}
	p.Sync(testApp("web"), []v1alpha1.Sensor{
		objectSensor("fast", 10*time.Second, "double(object.data.depth)"),
		objectSensor("slow", 30*time.Second, "double(object.data.depth)"),
	})
	p.Sync(testApp("api"), []v1alpha1.Sensor{objectSensor("other", 7*time.Second, "double(object.data.depth)")})
	run(t, p)
	// A poll is in the history once its next poll is scheduled.
	polls := func(app, sensor string) int { return len(p.Readings.History(key(app), sensor)) }
	for sec := 0; sec <= 90; sec++ {
		if sec > 0 {
			clk.Step(time.Second)
		}
		fast, slow, other := sec/10+1, sec/30+1, sec/7+1
		eventually(t, fmt.Sprintf("at %ds the sensors were polled %d, %d and %d times", sec, fast, slow, other), func() bool {
			return polls("web", "fast") == fast && polls("web", "slow") == slow && polls("api", "other") == other
		})
	}
	for sensor, interval := range map[string]time.Duration{"fast": 10 * time.Second, "slow": 30 * time.Second} {
		h := p.Readings.History(key("web"), sensor)
		for i := 1; i < len(h); i++ {
			if g := h[i].At.Sub(h[i-1].At); g != interval {
				t.Fatalf("sensor %s was polled %s apart, want %s", sensor, g, interval)
			}
		}
	}
}

func TestASlowSensorNeverDelaysAnotherAppsFastSensor(t *testing.T) {
	srv := newProbeServer(t, map[string]time.Duration{"/hang": 5 * time.Second})
	// Four workers, two for the namespace, one per app; the slow app has three sensors
	// that never answer within their 500ms timeout and are due again at once. Were they
	// to take the namespace's workers, the fast sensor would wait about 500ms between
	// polls.
	p := &Poller{Readings: NewReadings(), Workers: 4, Egress: loopbackEgress(t)}
	var slow []v1alpha1.Sensor
	for _, n := range []string{"a", "b", "c"} {
		slow = append(slow, httpSensor(n, srv.URL+"/hang", 100*time.Millisecond, 500*time.Millisecond))
	}
	p.Sync(testApp("slow"), slow)
	p.Sync(testApp("fast"), []v1alpha1.Sensor{httpSensor("probe", srv.URL+"/fast", 100*time.Millisecond, 0)})
	run(t, p)
	time.Sleep(1500 * time.Millisecond)

	fast := srv.times("/fast")
	if len(fast) < 10 {
		t.Fatalf("the fast sensor was polled %d times in 1.5s at an interval of 100ms", len(fast))
	}
	if g := slices.Max(gaps(fast)); g > 300*time.Millisecond {
		t.Errorf("the fast sensor waited %s between two polls (gaps %v)", g, gaps(fast))
	}
	if m := median(gaps(fast)); m < 90*time.Millisecond || m > 150*time.Millisecond {
		t.Errorf("the fast sensor was polled every %s, want 100ms", m)
	}
	if n := srv.count("/hang"); n < 2 {
		t.Errorf("the slow sensors were polled only %d times", n)
	}
	want := "GET " + srv.URL + "/hang: no answer within 500ms"
	for name, r := range p.Readings.Get(key("slow")) {
		if r.Err != want {
			t.Errorf("slow sensor %s: error %q, want %q", name, r.Err, want)
		}
	}
	if vals := p.Readings.Values(key("slow")); len(vals) != 0 {
		t.Errorf("failing sensors are in the values handed to CEL: %v", vals)
	}
}

func TestPollsInFlightNeverExceedWorkers(t *testing.T) {
	srv := newProbeServer(t, map[string]time.Duration{"/work": 40 * time.Millisecond})
	p := &Poller{Readings: NewReadings(), Workers: 3, PerNamespace: 3, PerApp: 1, Egress: loopbackEgress(t)}
	for i := range 10 {
		// A long timeout: a poll the client gave up on could still be counted by the
		// server for a moment after its worker took the next one.
		p.Sync(testApp("app"+string(rune('a'+i))), []v1alpha1.Sensor{httpSensor("s", srv.URL+"/work", 100*time.Millisecond, 5*time.Second)})
	}
	run(t, p)
	eventually(t, "every sensor was polled three times", func() bool { return srv.count("/work") >= 30 })
	if m := srv.max(); m != 3 {
		t.Fatalf("at most %d polls were in flight, want exactly Workers = 3", m)
	}
}

func TestPollsOfOneAppNeverExceedPerApp(t *testing.T) {
	srv := newProbeServer(t, map[string]time.Duration{"/work": 40 * time.Millisecond})
	p := &Poller{Readings: NewReadings(), Workers: 4, PerNamespace: 4, PerApp: 2, Egress: loopbackEgress(t)}
	var sensors []v1alpha1.Sensor
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		sensors = append(sensors, httpSensor(n, srv.URL+"/work", 100*time.Millisecond, 5*time.Second))
	}
	p.Sync(testApp("web"), sensors)
	run(t, p)
	eventually(t, "every sensor was polled three times", func() bool { return srv.count("/work") >= 18 })
	if m := srv.max(); m != 2 {
		t.Fatalf("at most %d polls of one app were in flight, want PerApp = 2", m)
	}
	if got := len(p.Readings.Values(key("web"))); got != 6 {
		t.Fatalf("%d of 6 sensors were read", got)
	}
}

// TestSlowEndpointsOfOneNamespaceNeverStopAnotherNamespacesPolling gives one namespace
// four apps whose sensors all hang: with the default eight workers and two polls per
// app they would hold every worker. They hold PerNamespace (four), and the sensor of an
// app in another namespace keeps its interval. The hanging reads are a blocked get of a
// fake client: no network.
func TestSlowEndpointsOfOneNamespaceNeverStopAnotherNamespacesPolling(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(
		configMap("tenant-a", "q", map[string]string{"depth": "5"}),
		configMap("tenant-b", "q", map[string]string{"depth": "7"}),
	).Build()
	var mu sync.Mutex
	inFlight, most, fastPolls := 0, 0, []time.Time{}
	reader := interceptor.NewClient(c, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, k client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			mu.Lock()
			if k.Namespace == "tenant-b" {
				fastPolls = append(fastPolls, time.Now())
				mu.Unlock()
				return c.Get(ctx, k, obj, opts...)
			}
			inFlight++
			most = max(most, inFlight)
			mu.Unlock()
			<-ctx.Done() // the slow endpoint: no answer before the poll's timeout
			mu.Lock()
			inFlight--
			mu.Unlock()
			return ctx.Err()
		},
	})
	p := &Poller{Readings: NewReadings(), RESTMapper: testMapper(), APIReader: reader}
	if p.workers() != 8 || p.perApp() != 2 || p.perNamespace() != 4 {
		t.Fatalf("defaults: %d workers, %d per app, %d per namespace; want 8, 2, 4", p.workers(), p.perApp(), p.perNamespace())
	}
	for _, name := range []string{"a1", "a2", "a3", "a4"} {
		app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-a", Name: name}}
		hang := func(n string) v1alpha1.Sensor {
			s := objectSensor(n, 50*time.Millisecond, "double(object.data.depth)")
			s.Timeout = dur(5 * time.Second)
			return s
		}
		p.Sync(app, []v1alpha1.Sensor{hang("x"), hang("y"), hang("z")})
	}
	p.Sync(&v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-b", Name: "b"}},
		[]v1alpha1.Sensor{objectSensor("depth", 50*time.Millisecond, "double(object.data.depth)")})
	run(t, p)
	time.Sleep(time.Second)

	mu.Lock()
	defer mu.Unlock()
	if most != 4 {
		t.Errorf("tenant-a had %d polls in flight at most, want PerNamespace = 4", most)
	}
	if len(fastPolls) < 10 {
		t.Fatalf("tenant-b's sensor was polled %d times in 1s at an interval of 50ms", len(fastPolls))
	}
	if g := slices.Max(gaps(fastPolls)); g > 250*time.Millisecond {
		t.Errorf("tenant-b's sensor waited %s between two polls (gaps %v)", g, gaps(fastPolls))
	}
	if v := p.Readings.Values(types.NamespacedName{Namespace: "tenant-b", Name: "b"})["depth"]; v != 7 {
		t.Errorf("tenant-b's sensor reads %v, want 7", v)
	}
}

func TestSyncRemovingASensorStopsItsPolling(t *testing.T) {
	srv := newProbeServer(t, nil)
	p := &Poller{Readings: NewReadings(), Egress: loopbackEgress(t)}
	a := httpSensor("a", srv.URL+"/a", 50*time.Millisecond, 0)
	b := httpSensor("b", srv.URL+"/b", 50*time.Millisecond, 0)
	p.Sync(testApp("web"), []v1alpha1.Sensor{a, b})
	run(t, p)
	eventually(t, "both sensors were polled twice", func() bool { return srv.count("/a") >= 2 && srv.count("/b") >= 2 })

	p.Sync(testApp("web"), []v1alpha1.Sensor{a})
	removedAt, keptAt := srv.count("/b"), srv.count("/a")
	if _, ok := p.Readings.Get(key("web"))["b"]; ok {
		t.Error("the removed sensor's reading is still there")
	}
	eventually(t, "the kept sensor was polled 6 more times", func() bool { return srv.count("/a") >= keptAt+6 })
	if n := srv.count("/b"); n > removedAt+1 {
		t.Errorf("the removed sensor was polled %d more times", n-removedAt)
	}
	if _, ok := p.Readings.Get(key("web"))["b"]; ok {
		t.Error("the removed sensor's reading came back")
	}

	p.Forget(key("web"))
	forgotAt := srv.count("/a")
	time.Sleep(200 * time.Millisecond)
	if n := srv.count("/a"); n > forgotAt+1 {
		t.Errorf("a forgotten app's sensor was polled %d more times", n-forgotAt)
	}
	if got := p.Readings.Get(key("web")); len(got) != 0 {
		t.Errorf("a forgotten app still has readings %v", got)
	}
}

func TestNotifyIsCalledOnChangeAndNotOnAnUnchangedValue(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(configMap("shop", "q", map[string]string{"depth": "5"})).Build()
	reader, gets := countingReader(c)
	var notified atomic.Int32
	p := &Poller{Readings: NewReadings(), RESTMapper: testMapper(), APIReader: reader, Notify: func(app types.NamespacedName) {
		if app == key("web") {
			notified.Add(1)
		}
	}}
	p.Sync(testApp("web"), []v1alpha1.Sensor{objectSensor("backlog", 50*time.Millisecond, "double(object.data.depth)")})
	run(t, p)
	eventually(t, "the first value was heard of", func() bool { return notified.Load() == 1 })

	// Polls that read the same value stay quiet.
	polled := gets.Load()
	eventually(t, "the unchanged value was polled 5 more times", func() bool { return gets.Load() >= polled+5 })
	if n := notified.Load(); n != 1 {
		t.Fatalf("notified %d times; want 1", n)
	}

	// A new value is heard of.
	ctx := context.Background()
	if err := c.Update(ctx, configMap("shop", "q", map[string]string{"depth": "7"})); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new value was heard of", func() bool { return notified.Load() == 2 })
	if v := p.Readings.Values(key("web"))["backlog"]; v != 7 {
		t.Fatalf("value %v, want 7", v)
	}

	// Becoming unavailable is heard of, and the sensor leaves the values.
	if err := c.Delete(ctx, configMap("shop", "q", nil)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the failure was heard of", func() bool { return notified.Load() >= 3 })
	r := p.Readings.Get(key("web"))["backlog"]
	if r.Err != `ConfigMap "q" not found in namespace shop` || r.Value != 7 || r.ConsecutiveFailures < 1 {
		t.Fatalf("got %+v", r)
	}
	if _, ok := p.Readings.Values(key("web"))["backlog"]; ok {
		t.Fatal("an unavailable sensor is in the values")
	}

	// Available again with the same value as before the failure: heard of, then quiet.
	if err := c.Create(ctx, configMap("shop", "q", map[string]string{"depth": "7"})); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the sensor was available again", func() bool { return p.Readings.Get(key("web"))["backlog"].Available() })
	// The Notify of that poll runs just after the reading is stored: wait for the next.
	polled = gets.Load()
	eventually(t, "the sensor was polled again", func() bool { return gets.Load() >= polled+2 })
	settled := notified.Load()
	polled = gets.Load()
	eventually(t, "the unchanged value was polled 5 more times", func() bool { return gets.Load() >= polled+5 })
	if n := notified.Load(); n != settled {
		t.Fatalf("notified %d more times for an unchanged value", n-settled)
	}
}

func TestSchedulingFollowsTheInjectedClock(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c := fake.NewClientBuilder().WithObjects(configMap("shop", "q", map[string]string{"depth": "5", "other": "9"})).Build()
	reader, gets := countingReader(c)
	p := &Poller{Readings: NewReadings(), RESTMapper: testMapper(), APIReader: reader, Clock: clk}
	sensor := objectSensor("backlog", time.Minute, "double(object.data.depth)")
	p.Sync(testApp("web"), []v1alpha1.Sensor{sensor})
	run(t, p)

	history := func() int { return len(p.Readings.History(key("web"), "backlog")) }
	eventually(t, "a new sensor was polled at once", func() bool { return history() == 1 })
	if r := p.Readings.Get(key("web"))["backlog"]; r.Value != 5 || !r.At.Equal(clk.Now()) {
		t.Fatalf("got %+v", r)
	}
	clk.Step(59 * time.Second)
	time.Sleep(100 * time.Millisecond)
	if n := gets.Load(); n != 1 {
		t.Fatalf("polled %d times before the interval passed", n)
	}
	clk.Step(time.Second)
	eventually(t, "the sensor was polled when its interval passed", func() bool { return history() == 2 })

	// A shorter interval brings the next poll forward, counted from the last poll.
	sensor.Interval = dur(10 * time.Second)
	p.Sync(testApp("web"), []v1alpha1.Sensor{sensor})
	clk.Step(9 * time.Second)
	time.Sleep(100 * time.Millisecond)
	if n := gets.Load(); n != 2 {
		t.Fatalf("polled %d times before the new interval passed", n)
	}
	clk.Step(time.Second)
	// An interval change keeps the history.
	eventually(t, "the sensor was polled at its new interval", func() bool { return history() == 3 })

	// So does a timeout change, which polls no sooner.
	sensor.Timeout = dur(3 * time.Second)
	p.Sync(testApp("web"), []v1alpha1.Sensor{sensor})
	time.Sleep(100 * time.Millisecond)
	if n, h := gets.Load(), history(); n != 3 || h != 3 {
		t.Fatalf("a timeout change caused a poll (%d gets) or dropped the history (%d samples)", n, h)
	}

	// A changed probe is polled at once, and the old readings go.
	sensor.Object.Expression = "double(object.data.other)"
	p.Sync(testApp("web"), []v1alpha1.Sensor{sensor})
	eventually(t, "the changed sensor was polled at once", func() bool { return gets.Load() == 4 })
	eventually(t, "the changed sensor has its new value", func() bool { return p.Readings.Values(key("web"))["backlog"] == 9 })
	if h := p.Readings.History(key("web"), "backlog"); len(h) != 1 || h[0].Value != 9 {
		t.Fatalf("the history of the old probe was kept: %v", h)
	}

	// Syncing the same spec again changes nothing.
	for range 100 {
		p.Sync(testApp("web"), []v1alpha1.Sensor{sensor})
	}
	time.Sleep(100 * time.Millisecond)
	if n := gets.Load(); n != 4 {
		t.Fatalf("an unchanged Sync caused %d more polls", n-4)
	}
}

func TestAPollThatRanWithAReplacedSpecIsThrownAway(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(configMap("shop", "q", map[string]string{"old": "1", "new": "2"})).Build()
	entered, release := make(chan struct{}), make(chan struct{})
	var first sync.Once
	reader := interceptor.NewClient(c, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, k client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			first.Do(func() { close(entered); <-release })
			return c.Get(ctx, k, obj, opts...)
		},
	})
	p := &Poller{Readings: NewReadings(), RESTMapper: testMapper(), APIReader: reader}
	sensor := func(expr string) []v1alpha1.Sensor { return []v1alpha1.Sensor{objectSensor("x", time.Hour, expr)} }
	p.Sync(testApp("web"), sensor("double(object.data.old)"))
	run(t, p)
	<-entered
	p.Sync(testApp("web"), sensor("double(object.data.new)"))
	close(release)
	eventually(t, "the new spec was read", func() bool { return p.Readings.Values(key("web"))["x"] == 2 })
	if h := p.Readings.History(key("web"), "x"); len(h) != 1 {
		t.Fatalf("history %v holds the old spec's value", h)
	}
}

func TestSensorDefaults(t *testing.T) {
	cases := []struct {
		interval, timeout  *metav1.Duration
		wantInt, wantTimeo time.Duration
	}{
		{nil, nil, 15 * time.Second, 10 * time.Second},
		{dur(5 * time.Second), nil, 5 * time.Second, 5 * time.Second},
		{dur(time.Minute), nil, time.Minute, 10 * time.Second},
		{dur(time.Minute), dur(30 * time.Second), time.Minute, 30 * time.Second},
	}
	for _, tc := range cases {
		s := &v1alpha1.Sensor{Interval: tc.interval, Timeout: tc.timeout}
		if Interval(s) != tc.wantInt || Timeout(s) != tc.wantTimeo {
			t.Errorf("interval %v timeout %v: got %s, %s; want %s, %s", tc.interval, tc.timeout, Interval(s), Timeout(s), tc.wantInt, tc.wantTimeo)
		}
	}
}

func TestASensorWithNoKindSaysSo(t *testing.T) {
	p := &Poller{Readings: NewReadings(), Egress: loopbackEgress(t)}
	p.Sync(testApp("web"), []v1alpha1.Sensor{{Name: "x", Interval: dur(time.Hour)}})
	run(t, p)
	eventually(t, "the sensor failed", func() bool {
		return strings.Contains(p.Readings.Get(key("web"))["x"].Err, "none of prometheus, resource, http, object")
	})
}
