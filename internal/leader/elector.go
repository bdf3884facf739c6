package leader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// Defaults of the lease timings: controller-runtime's and kube-controller-manager's.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// kickSettle is how long a kick waits before it restarts the campaign.
const kickSettle = 50 * time.Millisecond

// leaseWatchRetry is how soon the watch of the Lease is opened again after it failed.
const leaseWatchRetry = 500 * time.Millisecond

// Config is what an Elector campaigns with.
type Config struct {
	// Namespace and Name of the Lease.
	Namespace, Name string
	// Identity names this replica in the Lease; empty: the host name and a random
	// suffix, drawn once, so that the replica keeps it across terms.
	Identity string
	// LeaseDuration is how long the other replicas wait, after they last saw the Lease
	// renewed, before they take it over: a replica that dies unannounced is replaced
	// this long after its last renewal.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps trying to renew before it stops
	// acting; shorter than LeaseDuration, so that it stops before anyone else may start.
	RenewDeadline time.Duration
	// RetryPeriod is how often the leader renews and the others try to acquire.
	RetryPeriod time.Duration
}

// Validate says what is wrong with the timings, naming the flags that set them.
func (c Config) Validate() error {
	switch {
	case c.LeaseDuration <= 0 || c.RenewDeadline <= 0 || c.RetryPeriod <= 0:
		return errors.New("--leader-elect-lease-duration, --leader-elect-renew-deadline and --leader-elect-retry-period must be positive")
	case c.LeaseDuration.Truncate(time.Second) <= c.RenewDeadline:
		// The Lease records whole seconds, and the other replicas go by what it records.
		return fmt.Errorf("--leader-elect-lease-duration (%s, recorded in the Lease as %s) must be longer than --leader-elect-renew-deadline (%s): "+
			"a leader that cannot renew must stop acting before another replica may take the Lease", c.LeaseDuration, c.LeaseDuration.Truncate(time.Second), c.RenewDeadline)
	case float64(c.RenewDeadline) <= leaderelection.JitterFactor*float64(c.RetryPeriod):
		return fmt.Errorf("--leader-elect-renew-deadline (%s) must be longer than %.1f × --leader-elect-retry-period (%s), "+
			"so that the leader tries to renew more than once before it gives up", c.RenewDeadline, leaderelection.JitterFactor, c.RetryPeriod)
	}
	return nil
}

// Elector campaigns for the Lease for as long as the manager runs, and opens and closes
// the Gate as it wins and loses it. It is a manager runnable that runs on every replica.
//
// After losing the Lease (its renewals failed for RenewDeadline, as in an API server
// outage) it stands by and campaigns again in the same process, with the same identity:
// if no other replica took the Lease meanwhile, it takes it back as soon as the API
// server answers, without waiting for it to expire. It also watches the Lease, so that
// a Lease released by a leader that shut down, or still held in its own name, is taken
// at once rather than at the next retry.
type Elector struct {
	Config Config
	Gate   *Gate
	Client kubernetes.Interface

	kick chan struct{}
}

// NeedLeaderElection is false: the elector is what elects.
func (e *Elector) NeedLeaderElection() bool { return false }

// Start campaigns until ctx ends. Then it closes the gate, waits for the work inside to
// leave, and releases the Lease if it holds it.
func (e *Elector) Start(ctx context.Context) error {
	if err := e.Config.Validate(); err != nil {
		return err
	}
	if e.Config.Identity == "" {
		id, err := Identity()
		if err != nil {
			return err
		}
		e.Config.Identity = id
	}
	log := logf.FromContext(ctx).WithName("leader-election").WithValues("lease", e.Config.Namespace+"/"+e.Config.Name, "identity", e.Config.Identity)
	e.kick = make(chan struct{}, 1)
	go e.watchLease(ctx, log)

	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, e.Config.Namespace, e.Config.Name,
		e.Client.CoreV1(), e.Client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: e.Config.Identity})
	if err != nil {
		return fmt.Errorf("building the Lease lock: %w", err)
	}
	for {
		// The term runs under its own context: on shutdown the gate closes, and the
		// work inside leaves, before the Lease is released.
		run, stop := context.WithCancel(logr.NewContext(context.Background(), log))
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:          lock,
			LeaseDuration: e.Config.LeaseDuration,
			RenewDeadline: e.Config.RenewDeadline,
			RetryPeriod:   e.Config.RetryPeriod,
			// Released here, on shutdown, after the work inside the gate has left; a
			// term cancelled by a kick keeps the Lease for the next.
			ReleaseOnCancel: false,
			Name:            e.Config.Name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(term context.Context) {
					log.Info("Acquired the Lease; acting")
					e.Gate.Gain(term)
				},
				OnStoppedLeading: e.Gate.Lose,
			},
		})
		if err != nil {
			stop()
			return err
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			le.Run(run)
		}()
	wait:
		select {
		case <-ctx.Done():
			e.Gate.Lose()
			stop()
			<-done
			if err := release(lock, e.Config.RenewDeadline); err != nil {
				log.Error(err, "Releasing the Lease; another replica takes it when it expires")
			} else {
				log.Info("Stopped campaigning")
			}
			return nil
		case <-done:
			stop()
			log.Info("Lost the Lease; standing by with warm caches and campaigning again")
		case <-e.kick:
			// A kick can race this elector's own acquisition: its Lease write is seen
			// before it has noted the write. Look again a moment later.
			select {
			case <-ctx.Done():
				goto wait
			case <-time.After(kickSettle):
			}
			if e.Gate.Leading() || le.IsLeader() {
				goto wait
			}
			// A new elector tries at once; the one it replaces would wait for its
			// next retry.
			stop()
			<-done
		}
	}
}

// release gives the Lease up if this replica holds it, as client-go's elector does: no
// holder, and a duration of one second, so that replicas that watch it take it at once
// and those that do not at their next retry.
func release(lock resourcelock.Interface, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	rec, _, err := lock.Get(ctx)
	if err != nil {
		return err
	}
	if rec.HolderIdentity != lock.Identity() {
		return nil
	}
	now := metav1.NewTime(time.Now())
	return lock.Update(ctx, resourcelock.LeaderElectionRecord{
		LeaderTransitions: rec.LeaderTransitions, LeaseDurationSeconds: 1, RenewTime: now, AcquireTime: now,
	})
}

// watchLease watches the Lease and kicks the campaign when this replica may take it at
// once: released (no holder), or held in this replica's name while it does not lead.
// Without the right to watch the Lease, the campaign goes on at its retry period.
func (e *Elector) watchLease(ctx context.Context, log logr.Logger) {
	sel := fields.OneTermEqualSelector("metadata.name", e.Config.Name).String()
	warned := false
	for ctx.Err() == nil {
		w, err := e.Client.CoordinationV1().Leases(e.Config.Namespace).Watch(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			if !warned && ctx.Err() == nil {
				log.Info("Cannot watch the Lease; a released Lease is taken at the next retry", "err", err.Error())
				warned = true
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(leaseWatchRetry):
			}
			continue
		}
		warned = false
		opened := time.Now()
		for ev := range w.ResultChan() {
			l, ok := ev.Object.(*coordinationv1.Lease)
			if !ok || ev.Type == watch.Error || ev.Type == watch.Bookmark {
				continue
			}
			holder := ""
			if l.Spec.HolderIdentity != nil {
				holder = *l.Spec.HolderIdentity
			}
			if ev.Type == watch.Deleted || holder == "" || holder == e.Config.Identity {
				select {
				case e.kick <- struct{}{}:
				default:
				}
			}
		}
		w.Stop()
		if time.Since(opened) < leaseWatchRetry {
			select { // a stream the server ends at once is not opened again at once
			case <-ctx.Done():
				return
			case <-time.After(leaseWatchRetry):
			}
		}
	}
}

// Identity is this replica's name in the Lease: the host name (the pod's name) and a
// random suffix.
func Identity() (string, error) {
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("reading the host name for the leader election identity: %w", err)
	}
	return h + "_" + string(uuid.NewUUID()), nil
}

// inClusterNamespace is where a pod's ServiceAccount namespace is mounted.
const inClusterNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// Namespace is the namespace of the Lease: flag, else the pod's own namespace.
func Namespace(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	b, err := os.ReadFile(inClusterNamespace)
	if err != nil {
		return "", fmt.Errorf("--leader-election-namespace is not set and the manager runs outside a pod (%w); "+
			"set it to the namespace of the leader election Lease", err)
	}
	return strings.TrimSpace(string(b)), nil
}
