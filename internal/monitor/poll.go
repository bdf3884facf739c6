package monitor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	metricsv1beta1 "k8s.io/metrics/pkg/client/clientset/versioned/typed/metrics/v1beta1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/egress"
	"github.com/homeostat-dev/homeostat/internal/fair"
	"github.com/homeostat-dev/homeostat/internal/leader"
)

// Defaults of a sensor's schedule, as the API documents them.
const (
	// DefaultInterval is how often a sensor without an interval is polled.
	DefaultInterval = 15 * time.Second
	// MaxDefaultTimeout caps the default timeout of a poll, which is the interval.
	MaxDefaultTimeout = 10 * time.Second
	// DefaultHTTPTimeout bounds an http sensor's request when it sets no timeout.
	DefaultHTTPTimeout = time.Second
	// DefaultWorkers is how many polls run at once when Workers is not set.
	DefaultWorkers = 8
)

// Interval is how often the sensor is polled: its interval, default DefaultInterval.
func Interval(s *v1alpha1.Sensor) time.Duration {
	if s.Interval != nil && s.Interval.Duration > 0 {
		return s.Interval.Duration
	}
	return DefaultInterval
}

// Timeout bounds one poll of the sensor: its timeout, default the interval but at most
// MaxDefaultTimeout.
func Timeout(s *v1alpha1.Sensor) time.Duration {
	if s.Timeout != nil && s.Timeout.Duration > 0 {
		return s.Timeout.Duration
	}
	return min(Interval(s), MaxDefaultTimeout)
}

// egressBound says whether the sensor sends requests out, under the egress policy.
func egressBound(s *v1alpha1.Sensor) bool { return s.HTTP != nil || s.Prometheus != nil }

// timeout bounds one poll of the sensor: Timeout, and for a sensor that sends requests
// out, at most the egress policy's maximum.
func (p *Poller) timeout(s *v1alpha1.Sensor) time.Duration {
	d := Timeout(s)
	if egressBound(s) {
		d, _ = p.Egress.Cap(d)
	}
	return d
}

// askedTimeout is the longest timeout the sensor sets: its poll's, or its http
// request's; 0 when it sets none (a default cut by the cap is not worth a word).
func askedTimeout(s *v1alpha1.Sensor) time.Duration {
	var d time.Duration
	if s.Timeout != nil {
		d = s.Timeout.Duration
	}
	if s.HTTP != nil && s.HTTP.Timeout != nil {
		d = max(d, s.HTTP.Timeout.Duration)
	}
	return d
}

// capNote says that the egress policy cuts the sensor's timeout, or is "".
func (p *Poller) capNote(s *v1alpha1.Sensor) string {
	if !egressBound(s) {
		return ""
	}
	return p.Egress.CapNote(askedTimeout(s))
}

// TimeoutCap is a sensor whose timeout the egress policy cuts.
type TimeoutCap struct {
	// Sensor is the sensor's name.
	Sensor string
	// Asked is the longest timeout the sensor asks for; Cap is what it gets.
	Asked, Cap time.Duration
}

// TimeoutCaps lists the sensors whose timeouts the egress policy cuts, in spec order, so
// that status says so.
func (p *Poller) TimeoutCaps(sensors []v1alpha1.Sensor) []TimeoutCap {
	p.init()
	var out []TimeoutCap
	for i := range sensors {
		s := &sensors[i]
		if !egressBound(s) {
			continue
		}
		if asked := askedTimeout(s); asked > p.Egress.MaxTimeout() {
			out = append(out, TimeoutCap{Sensor: s.Name, Asked: asked, Cap: p.Egress.MaxTimeout()})
		}
	}
	return out
}

// Poller polls every declared sensor of every app at the sensor's interval and writes
// the outcome to Readings. It is a manager.Runnable that runs only on the leader.
//
// Polls are scheduled through one delaying work queue keyed by app and sensor: each key
// is added back at the time its sensor is next due. When a key comes due it moves to a
// fair queue (internal/fair) with one list per namespace, and a fixed number of workers
// (Workers) take keys from it, a namespace at a time in turn, whatever the number of
// apps; there is no goroutine or ticker per app or sensor. Each poll runs under its
// sensor's timeout; one namespace never has more than PerNamespace polls in flight and
// one app never more than PerApp. So the apps of a namespace whose sensors hang hold at
// most PerNamespace workers, for at most their timeout, and the other namespaces keep
// the rest; and a namespace with many sensors due at once delays another namespace's
// sensor by at most a turn.
//
//	reconcile ──Sync(app, sensors)──> state (spec, version, due) ──Add──> delaying queue
//	delaying queue ──due──> fair queue (a list per namespace, taken in turn, PerNamespace)
//	fair queue ──Get──> worker: still declared? due? app under PerApp? ──> probe.read(ctx)
//	      <──AddAfter(interval)── worker ──record──> Readings ──Notify(app)──> reconcile
//
// Sync keeps a copy of each sensor's spec and a version that changes with its probe. A
// key whose sensor is no longer declared is dropped when popped, and the result of a
// poll that ran under a version replaced meanwhile is thrown away.
type Poller struct {
	// Readings receives the outcome of every poll.
	Readings *Readings
	// Reader reads apps and, through PodsOf by default, pods: the manager's cache.
	Reader client.Reader
	// APIReader reads the objects of object sensors with a direct get, never the cache,
	// so no informer is started for arbitrary kinds (mgr.GetAPIReader()).
	APIReader client.Reader
	// RESTMapper says whether an object sensor's kind is namespaced or cluster-scoped,
	// and which resource it is (mgr.GetRESTMapper()). Default: APIReader's, if it has one.
	RESTMapper meta.RESTMapper
	// ClusterKinds lists the cluster-scoped kinds object sensors may read, as the cluster
	// admin allows them (--object-sensor-cluster-kinds); default none. A namespaced kind
	// is always read in the app's own namespace, and a Secret never.
	ClusterKinds []schema.GroupKind
	// Metrics reads pod metrics from metrics.k8s.io for resource sensors.
	Metrics metricsv1beta1.MetricsV1beta1Interface
	// Egress is the admin's policy for the requests of http and prometheus sensors: the
	// addresses they may reach, the most of a body they read, and the longest a poll of
	// theirs may take. Default egress.Default(), which refuses loopback among others.
	// Its client never follows redirects: a 3xx is an http sensor's answer.
	Egress *egress.Policy
	// Workers is how many polls run at once across all apps. Default DefaultWorkers.
	Workers int
	// PerApp is how many polls of one app run at once. Default Workers/4, at least 1.
	PerApp int
	// PerNamespace is how many polls of the apps of one namespace run at once, so that
	// one namespace's slow endpoints never take every worker. Default Workers/2, at
	// least PerApp.
	PerNamespace int
	// Clock is the one clock of the poller and its queue. Default the real one.
	Clock clock.WithTicker
	// Notify is called, outside any lock, when a sensor of the app became available or
	// unavailable, changed its value, or failed again (see Readings), so the controller
	// reconciles the app. It must not block.
	Notify func(app types.NamespacedName)
	// PodsOf returns the pods of an app's component, for resource sensors. Default:
	// Gatherer{Reader}.PodsOf.
	PodsOf func(ctx context.Context, app *v1alpha1.AutonomicApp, component string) ([]corev1.Pod, error)
	// Rights, when set, authorizes what object sensors read as the app's ServiceAccount
	// (a get of the object) before they read it; a refusal is the sensor's error. An app
	// that names no ServiceAccount is not checked. Nil checks nothing.
	Rights TenantRights
	// Leader lets polls through only while this replica leads; nil always polls.
	Leader *leader.Gate

	initOnce   sync.Once
	queue      workqueue.TypedDelayingInterface[sensorKey] // keys wait here until due
	ready      *fair.Queue[sensorKey]                      // due keys, by namespace
	httpClient *http.Client                                // built by Egress, shared by every http and prometheus sensor
	mu         sync.Mutex
	apps       map[types.NamespacedName]*appState
	prometheus map[string]*promClient // by address, shared by the sensors that use it
	versions   uint64
}

var (
	_ manager.Runnable               = &Poller{}
	_ manager.LeaderElectionRunnable = &Poller{}
)

// sensorKey names one sensor of one app in the queue.
type sensorKey struct {
	app    types.NamespacedName
	sensor string
}

// appState is what Sync declared for one app, and the app's polls in flight.
type appState struct {
	sensors  map[string]*sensorState
	inFlight int
	// parked are sensors that came due while the app had PerApp polls in flight, in
	// the order they came due; each finished poll of the app releases one.
	parked []string
}

// sensorState is one declared sensor.
type sensorState struct {
	spec    v1alpha1.Sensor // a copy of the declared spec
	version uint64          // changes whenever the probe is rebuilt
	probe   probe
	// interval and timeout are the spec's, with defaults.
	interval, timeout time.Duration
	// due is when the sensor is next polled; lastStart is when its last poll started
	// (zero until one finished under the current version).
	due, lastStart time.Time
	// queued is true while the key waits in the fair queue, polling while a worker
	// polls it, parked while it waits for its app to be under PerApp: in each of these
	// the key is where it will be taken from, and a copy that comes due is dropped.
	queued, polling, parked bool
}

// probe reads one sensor once, under ctx, whose deadline is timeout from now: its
// value and, for a resource sensor alone, the pods behind it (nil for other kinds).
// Sync builds it when the sensor's spec changes; the workers never run two reads of
// one probe at once.
type probe interface {
	read(ctx context.Context, app types.NamespacedName, timeout time.Duration) (float64, *PodCounts, error)
	// release frees what the probe shares with others (a cached Prometheus client).
	release()
}

// NeedLeaderElection says that only the leader polls: readings drive actions. Under
// the manager's own elector (leader.Elector) the poller runs on every replica and
// Leader stops its polls while the replica stands by.
func (p *Poller) NeedLeaderElection() bool { return true }

// Apps are the apps with sensors declared.
func (p *Poller) Apps() []types.NamespacedName {
	p.init()
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Collect(maps.Keys(p.apps))
}

// SuspendedReason is the error of every reading while the replica does not hold the
// Lease: its values are not read, so nothing acts on them until a poll reads them again.
const SuspendedReason = "not polled: this replica of the manager does not hold the leader election Lease"

// Kick polls every declared sensor at once that is not already waiting or polling: the
// replica has just become the leader again and its readings are suspended.
func (p *Poller) Kick() {
	p.init()
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.Clock.Now()
	for app, as := range p.apps {
		for name, st := range as.sensors {
			if st.queued || st.polling || st.parked {
				continue
			}
			st.due = now
			st.queued = true
			p.ready.Add(app.Namespace, sensorKey{app: app, sensor: name})
		}
	}
}

// Suspend marks every reading unavailable (SuspendedReason) when the replica stops
// leading.
func (p *Poller) Suspend() {
	p.init()
	p.Readings.Suspend(SuspendedReason)
}

func (p *Poller) init() {
	p.initOnce.Do(func() {
		if p.Clock == nil {
			p.Clock = clock.RealClock{}
		}
		if p.Readings == nil {
			p.Readings = NewReadings()
		}
		if p.Egress == nil {
			p.Egress = egress.Default()
		}
		p.httpClient = p.Egress.Client(nil)
		if p.PodsOf == nil {
			p.PodsOf = func(ctx context.Context, app *v1alpha1.AutonomicApp, component string) ([]corev1.Pod, error) {
				return Gatherer{Reader: p.Reader}.PodsOf(ctx, app, component)
			}
		}
		p.apps = map[types.NamespacedName]*appState{}
		p.prometheus = map[string]*promClient{}
		p.queue = workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[sensorKey]{
			Name:  "sensor-poller",
			Clock: p.Clock,
		})
		p.ready = fair.New[sensorKey](p.perNamespace())
	})
}

// restMapper is RESTMapper, else the API reader's, else nil.
func (p *Poller) restMapper() meta.RESTMapper {
	if p.RESTMapper != nil {
		return p.RESTMapper
	}
	if m, ok := p.APIReader.(interface{ RESTMapper() meta.RESTMapper }); ok {
		return m.RESTMapper()
	}
	return nil
}

func (p *Poller) workers() int {
	if p.Workers > 0 {
		return p.Workers
	}
	return DefaultWorkers
}

func (p *Poller) perApp() int {
	if p.PerApp > 0 {
		return p.PerApp
	}
	return max(1, p.workers()/4)
}

func (p *Poller) perNamespace() int {
	if p.PerNamespace > 0 {
		return p.PerNamespace
	}
	return max(p.perApp(), p.workers()/2)
}

// Start runs Workers workers, and one goroutine that moves keys that came due to the
// fair queue, until ctx is done; then it waits for the polls in flight (each is bounded
// by its timeout, and cancelled with ctx).
func (p *Poller) Start(ctx context.Context) error {
	p.init()
	log := logf.FromContext(ctx).WithName("sensor-poller")
	ctx = logf.IntoContext(ctx, log)
	log.Info("Starting the sensor poller", "workers", p.workers(), "perNamespace", p.perNamespace(), "perApp", p.perApp())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			key, shutdown := p.queue.Get()
			if shutdown {
				return
			}
			p.queue.Done(key)
			p.due(key)
		}
	})
	for range p.workers() {
		wg.Go(func() {
			for {
				ns, key, ok := p.ready.Get()
				if !ok {
					return
				}
				p.process(ctx, key)
				p.ready.Done(ns)
			}
		})
	}
	<-ctx.Done()
	p.queue.ShutDown()
	p.ready.ShutDown()
	wg.Wait()
	log.Info("Stopped the sensor poller")
	return nil
}

// due moves a key that came due to its namespace's list in the fair queue, unless its
// sensor is gone, is not due after all (its schedule changed), or is already queued,
// polling or parked.
func (p *Poller) due(key sensorKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.sensor(key)
	if st == nil || st.queued || st.polling || st.parked {
		return
	}
	if now := p.Clock.Now(); now.Before(st.due) {
		p.queue.AddAfter(key, st.due.Sub(now))
		return
	}
	st.queued = true
	p.ready.Add(key.app.Namespace, key)
}

// sensor is the declared state of a key's sensor, or nil. Call it under mu.
func (p *Poller) sensor(key sensorKey) *sensorState {
	if as := p.apps[key.app]; as != nil {
		return as.sensors[key.sensor]
	}
	return nil
}

// Sync declares the sensors of an app: the app's own and those merged in from the
// healing policies that select it. Call it on every reconcile; it is idempotent and
// cheap when nothing changed. A new sensor is polled at once. A sensor whose schedule
// alone changed (interval, timeout) keeps its readings and is rescheduled from its last
// poll. A sensor whose probe changed (anything else) measures something else now: its
// readings and history are dropped and it is polled at once. A sensor no longer declared
// stops being polled and its readings are dropped. Sync(app, nil) stops polling the app.
func (p *Poller) Sync(app *v1alpha1.AutonomicApp, sensors []v1alpha1.Sensor) {
	p.init()
	appKey := types.NamespacedName{Namespace: app.Namespace, Name: app.Name}
	p.mu.Lock()
	defer p.mu.Unlock()
	as := p.apps[appKey]
	if as == nil {
		if len(sensors) == 0 {
			return
		}
		as = &appState{sensors: map[string]*sensorState{}}
		p.apps[appKey] = as
	}
	now := p.Clock.Now()
	declared := make(map[string]bool, len(sensors))
	for i := range sensors {
		s := &sensors[i]
		if declared[s.Name] {
			continue // names are unique in a valid spec; the first wins
		}
		declared[s.Name] = true
		key := sensorKey{app: appKey, sensor: s.Name}
		st := as.sensors[s.Name]
		switch {
		case st != nil && equality.Semantic.DeepEqual(&st.spec, s):
			continue
		case st != nil && sameProbe(&st.spec, s):
			st.spec = *s.DeepCopy()
			st.interval, st.timeout = Interval(s), p.timeout(s)
			if !st.lastStart.IsZero() {
				// A shorter interval brings the next poll forward; a longer one is
				// honoured when the queued key pops early and is not yet due.
				st.due = st.lastStart.Add(st.interval)
				p.queue.AddAfter(key, st.due.Sub(now))
			}
			continue
		case st != nil:
			st.probe.release()
			p.Readings.forgetSensor(appKey, s.Name)
		default:
			st = &sensorState{}
			as.sensors[s.Name] = st
		}
		p.versions++
		st.spec = *s.DeepCopy()
		st.version = p.versions
		st.probe = p.newProbe(appKey.Namespace, &st.spec)
		st.interval, st.timeout = Interval(s), p.timeout(s)
		st.due, st.lastStart = now, time.Time{}
		p.queue.Add(key)
	}
	for name, st := range as.sensors {
		if !declared[name] {
			st.probe.release()
			delete(as.sensors, name)
			p.Readings.forgetSensor(appKey, name)
		}
	}
	if len(as.sensors) == 0 {
		delete(p.apps, appKey)
		p.Readings.Forget(appKey)
	}
}

// Forget stops polling the app and drops its readings: call it when the app is gone.
func (p *Poller) Forget(app types.NamespacedName) {
	p.init()
	p.mu.Lock()
	defer p.mu.Unlock()
	if as := p.apps[app]; as != nil {
		for _, st := range as.sensors {
			st.probe.release()
		}
		delete(p.apps, app)
	}
	p.Readings.Forget(app)
}

// sameProbe says whether two specs of a sensor measure the same thing, differing at
// most in their schedule: the interval and the timeout.
func sameProbe(a, b *v1alpha1.Sensor) bool {
	x, y := *a, *b
	x.Interval, y.Interval = nil, nil
	x.Timeout, y.Timeout = nil, nil
	return equality.Semantic.DeepEqual(&x, &y)
}

// process handles one key taken from the fair queue: it drops the key if its sensor is
// no longer declared, puts it back if it is not due yet, parks it if its app already
// has PerApp polls in flight, and otherwise polls the sensor, records the outcome and
// schedules the next poll.
func (p *Poller) process(ctx context.Context, key sensorKey) {
	p.mu.Lock()
	as := p.apps[key.app]
	st := p.sensor(key)
	if st == nil || !st.queued {
		p.mu.Unlock()
		return
	}
	st.queued = false
	now := p.Clock.Now()
	if now.Before(st.due) {
		p.queue.AddAfter(key, st.due.Sub(now))
		p.mu.Unlock()
		return
	}
	if !p.Leader.Leading() {
		// A replica that does not hold the Lease does not poll: readings drive actions.
		// It looks again an interval later, or at once when it leads again (Kick).
		st.due = now.Add(st.interval)
		p.queue.AddAfter(key, st.interval)
		p.mu.Unlock()
		return
	}
	if as.inFlight >= p.perApp() {
		st.parked = true
		as.parked = append(as.parked, key.sensor)
		p.mu.Unlock()
		return
	}
	// The poll runs inside the leader's gate: a replica that stops leading cancels it
	// and waits for it before it suspends its readings, and keeps none of it.
	term, leaveGate, leads := p.Leader.Enter(ctx)
	if !leads {
		st.due = now.Add(st.interval)
		p.queue.AddAfter(key, st.interval)
		p.mu.Unlock()
		return
	}
	defer leaveGate()
	as.inFlight++
	st.polling = true
	pr, version, timeout := st.probe, st.version, st.timeout
	capped := p.capNote(&st.spec)
	p.mu.Unlock()

	start := p.Clock.Now()
	pctx, cancel := context.WithTimeout(term, timeout)
	value, pods, err := pr.read(pctx, key.app, timeout)
	cancel()
	end := p.Clock.Now()
	if err != nil && capped != "" && end.Sub(start) >= timeout && ctx.Err() == nil {
		// The poll used all the time the admin allows, less than the sensor asks for.
		err = fmt.Errorf("%w (%s)", err, capped)
	}

	p.mu.Lock()
	as.inFlight--
	st.polling = false
	current := p.apps[key.app] == as && as.sensors[key.sensor] == st
	if p.apps[key.app] == as {
		p.releaseParked(key.app, as)
	}
	changed := false
	switch {
	case !current || ctx.Err() != nil:
	case term.Err() != nil:
		// The replica stopped leading during the poll: what it read is not kept; it is
		// polled again when the replica leads (Kick).
		st.due = end.Add(st.interval)
		p.queue.AddAfter(key, st.interval)
	case st.version == version:
		st.lastStart = start
		st.due = start.Add(st.interval)
		p.queue.AddAfter(key, st.due.Sub(end))
		changed = p.Readings.record(key.app, key.sensor, value, pods, err, end)
	default:
		// Sync replaced the probe while it was polled: the new one is due (Sync's key
		// came while this poll ran, and was dropped).
		p.queue.AddAfter(key, st.due.Sub(end))
	}
	p.mu.Unlock()

	if !changed {
		return
	}
	if err != nil {
		logf.FromContext(ctx).V(1).Info("Sensor is unavailable", "app", key.app.String(), "sensor", key.sensor, "error", err.Error())
	}
	if p.Notify != nil {
		p.Notify(key.app)
	}
}

// releaseParked puts the first parked sensor of the app that is still declared back in
// the fair queue.
func (p *Poller) releaseParked(app types.NamespacedName, as *appState) {
	for len(as.parked) > 0 {
		name := as.parked[0]
		as.parked = as.parked[1:]
		if st := as.sensors[name]; st != nil && st.parked {
			st.parked, st.queued = false, true
			p.ready.Add(app.Namespace, sensorKey{app: app, sensor: name})
			return
		}
	}
}

// newProbe builds the probe of a sensor of an app in namespace ns. A spec that cannot
// be probed (an object sensor whose expression does not compile) gives a probe that
// fails with the reason, so the reason shows in status.
func (p *Poller) newProbe(ns string, s *v1alpha1.Sensor) probe {
	switch {
	case s.Prometheus != nil:
		return p.newPrometheusProbe(s.Prometheus)
	case s.Resource != nil:
		return &resourceProbe{p: p, spec: *s.Resource}
	case s.HTTP != nil:
		return newHTTPProbe(p, s.HTTP)
	case s.Object != nil:
		return p.authorized(newObjectProbe(p, ns, s.Object), ns, s.Object)
	}
	return failingProbe{errors.New("the sensor sets none of prometheus, resource, http, object")}
}

// failingProbe always fails with err.
type failingProbe struct{ err error }

func (f failingProbe) read(context.Context, types.NamespacedName, time.Duration) (float64, *PodCounts, error) {
	return 0, nil, f.err
}
func (failingProbe) release() {}

// timedOut says whether err is ctx running out of time rather than a failure of its own,
// or the egress client's own bound on a request, which is the same time when the egress
// policy caps the poll's timeout.
func timedOut(ctx context.Context, err error) bool {
	var ne net.Error
	return errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}
