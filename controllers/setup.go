package controllers

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	metricsv "k8s.io/metrics/pkg/client/clientset/versioned"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/execute"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/rights"
)

// Version is the manager's version, set at build time with -ldflags -X.
var Version = "dev"

// Options configure the controllers.
type Options struct {
	// MaxConcurrentReconciles is how many apps are reconciled at once.
	MaxConcurrentReconciles int
	// StormThreshold is the share (0..1) of unhealthy apps above which disruptive
	// actions stop cluster-wide.
	StormThreshold float64
	// StormMinUnhealthy is how many apps must be unhealthy, besides the share, before
	// the storm breaker engages.
	StormMinUnhealthy int
	// SensorWorkers bounds how many sensor polls run at once.
	SensorWorkers int
	// EnableWebhooks registers the validating webhook.
	EnableWebhooks bool
	// DefaultServiceAccount is the ServiceAccount, in each app's namespace, of the apps
	// that name none (--default-service-account); "" lets those act as the manager.
	DefaultServiceAccount string
	// AuthorizationCacheTTL is how long an answer about the tenant's rights is kept
	// (--authorization-cache-ttl); default rights.DefaultCacheTTL.
	AuthorizationCacheTTL time.Duration
	// ManagerNamespace is the manager's namespace (--manager-namespace, or POD_NAMESPACE),
	// where ClusterHealingPolicies' webhooks read their header Secrets.
	ManagerNamespace string
	// Clock is the controllers' one clock; default the real one.
	Clock clock.Clock
}

// ConfigureCache trims cached objects and keeps Secrets out of the cache: the operator
// reads a Secret only with get, when a webhook action names it.
func ConfigureCache(o *cache.Options) {
	o.DefaultTransform = monitor.Trim
	// An informer whose list or watch fails is stale until one succeeds again; the
	// guards hold every action meanwhile.
	o.NewInformer = defaultCacheHealth.newInformer
	// Only the Jobs of runJob actions are cached, not every Job of the cluster.
	if o.ByObject == nil {
		o.ByObject = map[client.Object]cache.ByObject{}
	}
	o.ByObject[&batchv1.Job{}] = cache.ByObject{Label: jobSelector}
}

// jobSelector selects the Jobs runJob actions create: those with the app label.
var jobSelector = func() labels.Selector {
	req, err := labels.NewRequirement(execute.AppLabel, selection.Exists, nil)
	if err != nil {
		panic(err)
	}
	return labels.NewSelector().Add(*req)
}()

// ClientOptions keeps Secrets out of the cache, so reading one never lists or watches.
func ClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}}
}

// TrimManagedFields is the cache transform; see monitor.Trim.
var TrimManagedFields = monitor.Trim

// Setup registers indexes, controllers and webhooks with the manager.
func Setup(mgr ctrl.Manager, opts Options) error {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.StormThreshold == 0 {
		opts.StormThreshold = 0.5
	}
	if opts.StormMinUnhealthy <= 0 {
		opts.StormMinUnhealthy = DefaultStormMinUnhealthy
	}
	if opts.MaxConcurrentReconciles <= 0 {
		opts.MaxConcurrentReconciles = 4
	}
	if err := monitor.SetupIndexes(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	rec := mgr.GetEventRecorder("homeostat")
	r := &AppReconciler{
		Client:   mgr.GetClient(),
		Recorder: rec,
		Clock:    opts.Clock,
		Gatherer: monitor.Gatherer{Reader: mgr.GetClient()},
		Effectors: &execute.Effectors{
			Client:   mgr.GetClient(),
			Recorder: rec,
			Clock:    opts.Clock,
		},
		Metrics: DefaultMetrics,
		Storm: newStormBreaker(opts.StormThreshold, opts.StormMinUnhealthy, countApps(mgr.GetClient()),
			DefaultMetrics.StormActive),
		triggers:    newTriggers(),
		cacheHealth: defaultCacheHealth,
	}
	r.notify = newNotifier(func(k types.NamespacedName) { r.triggers.mark(k, opts.Clock.Now()) })
	metricsClient, err := metricsv.NewForConfig(mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("creating the metrics.k8s.io client: %w", err)
	}
	r.Readings = monitor.NewReadings()
	r.Poller = &monitor.Poller{
		Readings:  r.Readings,
		Reader:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Metrics:   metricsClient.MetricsV1beta1(),
		Workers:   opts.SensorWorkers,
		Notify:    r.notify.Notify,
	}
	if c, ok := opts.Clock.(clock.WithTicker); ok {
		// One clock: the sensor history the forecasts read is stamped by the loop's clock.
		r.Poller.Clock = c
	}
	// The tenant's rights: one checker for the act path and the poller. Its reviews are
	// created through the manager's client; ServiceAccounts are read past the cache.
	r.Rights = &rights.Checker{
		DefaultServiceAccount: opts.DefaultServiceAccount,
		Authorizer: &rights.Reviewer{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Clock: opts.Clock,
			TTL: opts.AuthorizationCacheTTL},
	}
	r.Poller.Rights = r.Rights
	r.Effectors.ManagerNamespace = opts.ManagerNamespace
	if err := mgr.Add(r.Poller); err != nil {
		return fmt.Errorf("adding the sensor poller: %w", err)
	}
	if err := r.SetupWithManager(mgr, opts.MaxConcurrentReconciles); err != nil {
		return fmt.Errorf("setting up the AutonomicApp controller: %w", err)
	}
	for _, cluster := range []bool{false, true} {
		if err := (&SharedPolicyReconciler{Client: mgr.GetClient(), Cluster: cluster}).SetupWithManager(mgr); err != nil {
			return fmt.Errorf("setting up the shared policy controller: %w", err)
		}
	}
	if opts.EnableWebhooks {
		if err := ctrl.NewWebhookManagedBy(mgr, &v1alpha1.AutonomicApp{}).WithValidator(&AppValidator{Reader: mgr.GetClient()}).Complete(); err != nil {
			return fmt.Errorf("setting up the AutonomicApp webhook: %w", err)
		}
	}
	return nil
}

// ParsePercent parses "50%" or "0.5" into a share from 0 to 1.
func ParsePercent(s string) (float64, error) {
	s = strings.TrimSpace(s)
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a percentage like 50%%: %w", s, err)
	}
	if pct {
		v /= 100
	}
	if v < 0 || v > 1 {
		return 0, fmt.Errorf("%q is outside 0%%..100%%", s)
	}
	return v, nil
}
