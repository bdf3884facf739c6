package execute

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/homeostat-dev/homeostat/internal/fair"
	"github.com/homeostat-dev/homeostat/internal/leader"
)

// Webhook runner defaults.
const (
	// DefaultWebhookWorkers is how many webhook POSTs are in flight at once when
	// WebhookRunner.Workers is not set.
	DefaultWebhookWorkers = 4
	// keepWebhookOutcome is how long the outcome of a finished POST waits to be
	// collected. A status write that failed is retried well within it, so the outcome is
	// recorded once; after it, a record still Pending is sent again, as after a restart.
	keepWebhookOutcome = 10 * time.Minute
	// webhookRecheck is how soon the controller looks at a Pending webhook again when
	// nothing woke the app: a safety net, since the runner wakes the app on each change.
	webhookRecheck = 30 * time.Second
)

// WebhookRunner sends the POSTs of webhook actions in the background, so that no
// reconcile waits on a receiver: a slow or silent receiver holds one of the runner's
// workers, never a reconcile worker.
//
// Execute hands the POST (with its retries) to the runner and reports Pending; each
// later Execute of the same record reports the progress (queued, the attempt it is on)
// and, once the POST finished, its outcome. The runner calls Notify when a POST starts
// an attempt and when it finishes, so the controller reconciles the app and records the
// progress or the outcome at once.
//
// At most Workers POSTs are in flight, and at most PerNamespace of the apps of one
// namespace; waiting POSTs are taken a namespace at a time in turn (internal/fair), so
// one namespace's slow receivers never hold every worker. Outcomes are kept in memory
// for ten minutes after the POST ended, by the app and the action id, until the
// controller has recorded them.
//
// A manager that stops loses what the runner holds. The record it left Pending is
// resumed by the next manager, whose Execute finds no POST for it and sends it again,
// with the same action id in the Idempotency-Key header: a receiver that keeps the keys
// it has seen treats the repeat as the same request.
//
// It is a manager.Runnable: Start ties the POSTs in flight to the manager's lifetime.
// It works before Start is called, and without it.
type WebhookRunner struct {
	// Workers is how many POSTs are in flight at once, across all apps. Default
	// DefaultWebhookWorkers.
	Workers int
	// PerNamespace is how many POSTs of the apps of one namespace are in flight at once.
	// Default Workers/2, at least 1.
	PerNamespace int
	// Notify is called, outside any lock, when a POST of the app starts an attempt or
	// ends, so the controller reconciles the app. It must not block. Nil wakes nobody:
	// the controller's recheck collects the outcome.
	Notify func(app types.NamespacedName)
	// Clock times how long a finished outcome is kept. Default the real one.
	Clock clock.PassiveClock
	// Leader lets POSTs out only while this replica holds the Lease: a replica that
	// stops leading cancels those in flight, and forgets them and those that wait, so
	// that the next leader, finding their intents pending, owns them. Nil always sends.
	Leader *leader.Gate

	initOnce sync.Once
	base     context.Context // the parent of every POST's context
	stop     context.CancelFunc
	queue    *fair.Queue[*webhookJob]
	workers  sync.WaitGroup
	mu       sync.Mutex
	jobs     map[string]*webhookJob // by webhookKey
}

var (
	_ manager.Runnable               = &WebhookRunner{}
	_ manager.LeaderElectionRunnable = &WebhookRunner{}
)

// webhookJob is one POST with its retries.
type webhookJob struct {
	key string
	app types.NamespacedName
	// send carries out the POST under ctx, reporting the progress of each attempt.
	send func(ctx context.Context, progress func(string)) Outcome

	// Under WebhookRunner.mu.
	state    jobState
	progress string
	out      Outcome
	finished time.Time
	cancel   context.CancelFunc
}

type jobState int

const (
	jobQueued jobState = iota
	jobRunning
	jobDone
)

// webhookView is what Execute reads of a job.
type webhookView struct {
	state    jobState
	progress string
	out      Outcome
}

func (w *WebhookRunner) init() {
	w.initOnce.Do(func() {
		if w.Workers <= 0 {
			w.Workers = DefaultWebhookWorkers
		}
		if w.PerNamespace <= 0 {
			w.PerNamespace = max(1, w.Workers/2)
		}
		if w.Clock == nil {
			w.Clock = clock.RealClock{}
		}
		w.base, w.stop = context.WithCancel(context.Background())
		w.queue = fair.New[*webhookJob](w.PerNamespace)
		w.jobs = map[string]*webhookJob{}
		for range w.Workers {
			w.workers.Go(w.work)
		}
	})
}

// NeedLeaderElection says that the runner runs on the leader, which alone acts.
func (w *WebhookRunner) NeedLeaderElection() bool { return true }

// Start returns when ctx ends, after it has cancelled the POSTs in flight and waited for
// them to return.
func (w *WebhookRunner) Start(ctx context.Context) error {
	w.init()
	<-ctx.Done()
	w.stop()
	w.queue.ShutDown()
	w.workers.Wait()
	return nil
}

// work sends POSTs until the queue shuts down.
func (w *WebhookRunner) work() {
	for {
		ns, job, ok := w.queue.Get()
		if !ok {
			return
		}
		w.run(job)
		w.queue.Done(ns)
	}
}

func (w *WebhookRunner) run(job *webhookJob) {
	w.mu.Lock()
	if job.state != jobQueued || w.jobs[job.key] != job {
		w.mu.Unlock()
		return // cancelled while it waited
	}
	term, done, leads := w.Leader.Enter(w.base)
	if !leads {
		delete(w.jobs, job.key)
		w.mu.Unlock()
		return
	}
	defer done()
	ctx, cancel := context.WithCancel(term)
	job.state, job.cancel = jobRunning, cancel
	w.mu.Unlock()

	out := job.send(ctx, func(msg string) {
		w.mu.Lock()
		job.progress = msg
		w.mu.Unlock()
		w.notify(job.app)
	})
	cancel()

	w.mu.Lock()
	if term.Err() != nil && w.base.Err() == nil {
		// The term ended under it: its outcome is not this replica's to report.
		if w.jobs[job.key] == job {
			delete(w.jobs, job.key)
		}
		w.mu.Unlock()
		return
	}
	job.state, job.out, job.finished, job.cancel = jobDone, out, w.Clock.Now(), nil
	w.mu.Unlock()
	w.notify(job.app)
}

func (w *WebhookRunner) notify(app types.NamespacedName) {
	if w.Notify != nil {
		w.Notify(app)
	}
}

// lookup reports the job of key, if the runner has it.
func (w *WebhookRunner) lookup(key string) (webhookView, bool) {
	w.init()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sweep()
	j := w.jobs[key]
	if j == nil {
		return webhookView{}, false
	}
	return webhookView{state: j.state, progress: j.progress, out: j.out}, true
}

// Forget drops every POST that waits and every outcome kept, when the replica stops
// leading: the next leader owns their intents. Those in flight are cancelled by the end
// of the term and drop themselves.
func (w *WebhookRunner) Forget() {
	w.init()
	w.mu.Lock()
	defer w.mu.Unlock()
	for key, j := range w.jobs {
		if j.state != jobRunning {
			delete(w.jobs, key)
		}
	}
}

// submit queues a POST under key, with its progress while it waits, unless the runner
// already has one.
func (w *WebhookRunner) submit(key string, app types.NamespacedName, queued string, send func(context.Context, func(string)) Outcome) {
	w.init()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sweep()
	if w.jobs[key] != nil {
		return
	}
	j := &webhookJob{key: key, app: app, send: send, progress: queued}
	w.jobs[key] = j
	w.queue.Add(app.Namespace, j)
}

// cancel drops the POST of key: one that waits is never sent, one in flight is
// cancelled with its retries. Its outcome is forgotten.
func (w *WebhookRunner) cancel(key string) {
	w.init()
	w.mu.Lock()
	defer w.mu.Unlock()
	j := w.jobs[key]
	if j == nil {
		return
	}
	delete(w.jobs, key)
	switch j.state {
	case jobQueued:
		w.queue.Remove(j.app.Namespace, func(x *webhookJob) bool { return x == j })
	case jobRunning:
		j.cancel()
	}
}

// sweep forgets outcomes kept longer than keepWebhookOutcome. Call it under mu.
func (w *WebhookRunner) sweep() {
	now := w.Clock.Now()
	for k, j := range w.jobs {
		if j.state == jobDone && now.Sub(j.finished) > keepWebhookOutcome {
			delete(w.jobs, k)
		}
	}
}
