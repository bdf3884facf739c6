package controllers

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	metricsv "k8s.io/metrics/pkg/client/clientset/versioned"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/egress"
	"github.com/homeostat-dev/homeostat/internal/execute"
	"github.com/homeostat-dev/homeostat/internal/leader"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/plan"
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
	// StormMinNamespaces is how many namespaces must be in a storm of their own, besides
	// the share of namespaces, before the storm breaker engages.
	StormMinNamespaces int
	// ObjectClusterKinds lists the cluster-scoped kinds object sensors may read
	// (--object-sensor-cluster-kinds); default none.
	ObjectClusterKinds []schema.GroupKind
	// SensorWorkers bounds how many sensor polls run at once.
	SensorWorkers int
	// SensorsPerNamespace bounds how many of them the apps of one namespace hold.
	// Default half of SensorWorkers.
	SensorsPerNamespace int
	// WebhookWorkers bounds how many webhook actions' POSTs are in flight at once.
	// Default execute.DefaultWebhookWorkers.
	WebhookWorkers int
	// WebhooksPerNamespace bounds how many of them the apps of one namespace hold.
	// Default half of WebhookWorkers.
	WebhooksPerNamespace int
	// EnableWebhooks registers the validating webhook.
	EnableWebhooks bool
	// Egress is the admin's policy for the requests of http and Prometheus sensors and
	// webhook actions. Default: the built-in policy, which also refuses the manager's API
	// server but knows none of its listeners.
	Egress *egress.Policy
	// DefaultServiceAccount is the ServiceAccount, in each app's namespace, of the apps
	// that name none (--default-service-account); "" lets those act as the manager.
	DefaultServiceAccount string
	// AuthorizationCacheTTL is how long an answer about the tenant's rights is kept
	// (--authorization-cache-ttl); default rights.DefaultCacheTTL.
	AuthorizationCacheTTL time.Duration
	// ManagerNamespace is the manager's namespace (--manager-namespace, or POD_NAMESPACE),
	// where ClusterHealingPolicies' webhooks read their header Secrets.
	ManagerNamespace string
	// NodeAdmin is the cluster admin's policy on node actions: the namespaces whose own
	// policies may run them (--node-actions-namespaces) and the ceilings of an action's
	// maxNodes and maxUnavailableNodes (--max-nodes-per-action, --max-unavailable-nodes).
	// The zero value restricts nothing.
	NodeAdmin plan.NodeAdmin
	// NodeUncordonAfter is how long a node a node action cordoned must be Ready before
	// the node controller uncordons it (--node-uncordon-after); 0 leaves every cordon to
	// a person, and the node controller is not started.
	NodeUncordonAfter time.Duration
	// WatchNamespaces are the namespaces the manager watches (--watch-namespaces); empty
	// is all. The node controller decides only on the nodes their apps cordoned.
	WatchNamespaces []string
	// SensorGauges exports every app's polled and component sensors as gauges
	// (--sensor-gauges, on by default in main.go); off, none of their series exists.
	SensorGauges bool
	// Clock is the controllers' one clock; default the real one.
	Clock clock.Clock
	// Leader lets the controllers and the poller act only while this replica holds the
	// leader election Lease (--leader-elect); nil: this replica always acts.
	Leader *leader.Gate
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
	if opts.StormMinNamespaces <= 0 {
		opts.StormMinNamespaces = DefaultStormMinNamespaces
	}
	if opts.MaxConcurrentReconciles <= 0 {
		opts.MaxConcurrentReconciles = 4
	}
	if opts.Egress == nil {
		pol, err := egress.New(context.Background(), egress.Config{APIServers: []string{mgr.GetConfig().Host}})
		if err != nil {
			return fmt.Errorf("building the egress policy: %w", err)
		}
		opts.Egress = pol
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
			Egress:   opts.Egress,
			Webhooks: &execute.WebhookRunner{Workers: opts.WebhookWorkers, PerNamespace: opts.WebhooksPerNamespace, Leader: opts.Leader},
			// Prepare takes no more nodes than the admin's ceiling.
			MaxNodesPerAction: opts.NodeAdmin.MaxNodes,
		},
		Metrics:      DefaultMetrics,
		SensorGauges: opts.SensorGauges,
		NodeAdmin:    opts.NodeAdmin,
		Storm: newStormBreaker(opts.StormThreshold, opts.StormMinUnhealthy, opts.StormMinNamespaces,
			countApps(mgr.GetClient()), DefaultMetrics.StormActive),
		triggers:    newTriggers(),
		cacheHealth: defaultCacheHealth,
		Leader:      opts.Leader,
	}
	r.notify = newNotifier(func(k types.NamespacedName) { r.triggers.mark(k, opts.Clock.Now()) })
	// A webhook's POST runs in the background and brings its app back when it moves on.
	r.Effectors.Webhooks.Notify = r.notify.Wake
	if err := mgr.Add(r.Effectors.Webhooks); err != nil {
		return fmt.Errorf("adding the webhook runner: %w", err)
	}
	metricsClient, err := metricsv.NewForConfig(mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("creating the metrics.k8s.io client: %w", err)
	}
	r.Readings = monitor.NewReadings()
	r.Poller = &monitor.Poller{
		Readings:     r.Readings,
		Reader:       mgr.GetClient(),
		APIReader:    mgr.GetAPIReader(),
		RESTMapper:   mgr.GetRESTMapper(),
		ClusterKinds: opts.ObjectClusterKinds,
		Metrics:      metricsClient.MetricsV1beta1(),
		Workers:      opts.SensorWorkers,
		PerNamespace: opts.SensorsPerNamespace,
		Notify:       r.notify.Notify,
		Egress:       opts.Egress,
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
	r.Poller.Leader = opts.Leader
	// A replica that leads again polls at once; one that stops leading acts on none of
	// the values it read while it led.
	opts.Leader.OnGained(r.Poller.Kick)
	opts.Leader.OnLost(r.Poller.Suspend)
	opts.Leader.OnLost(r.Effectors.Webhooks.Forget)
	opts.Leader.OnLost(r.Metrics.forgetAllSeries)
	opts.Leader.OnGained(r.triggers.reset)
	r.Effectors.ManagerNamespace = opts.ManagerNamespace
	if err := mgr.Add(r.Poller); err != nil {
		return fmt.Errorf("adding the sensor poller: %w", err)
	}
	if err := r.SetupWithManager(mgr, opts.MaxConcurrentReconciles); err != nil {
		return fmt.Errorf("setting up the AutonomicApp controller: %w", err)
	}
	if opts.NodeUncordonAfter > 0 {
		nr := &NodeReconciler{
			Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: rec, Clock: opts.Clock,
			Effectors: r.Effectors, UncordonAfter: opts.NodeUncordonAfter, Metrics: DefaultMetrics,
			Namespaces: opts.WatchNamespaces, Leader: opts.Leader,
		}
		if err := nr.SetupWithManager(mgr); err != nil {
			return fmt.Errorf("setting up the node controller: %w", err)
		}
	}
	for _, cluster := range []bool{false, true} {
		if err := (&SharedPolicyReconciler{Client: mgr.GetClient(), Cluster: cluster, Leader: opts.Leader}).SetupWithManager(mgr); err != nil {
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

// ParseClusterKinds parses --object-sensor-cluster-kinds: comma-separated kinds as
// Kind.group (Node, StorageClass.storage.k8s.io), the form kubectl prints. A Secret is
// refused: object sensors never read one, and listing it says the admin expects otherwise.
func ParseClusterKinds(s string) ([]schema.GroupKind, error) {
	var out []schema.GroupKind
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		gk := schema.ParseGroupKind(item)
		switch {
		case gk.Kind == "" || strings.ContainsAny(item, "/ "):
			return nil, fmt.Errorf("%q is not a kind as Kind.group, for example Node or StorageClass.storage.k8s.io", item)
		case v1alpha1.IsSecretKind(gk):
			return nil, fmt.Errorf("%q: object sensors never read Secrets, and Secrets are not cluster-scoped", item)
		}
		if !slices.Contains(out, gk) {
			out = append(out, gk)
		}
	}
	return out, nil
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

// ParseNodeAdmin builds the admin's node policy from the manager's flags:
// --node-actions-namespaces (plan.AnyNamespace, or comma-separated namespaces, possibly
// none), --max-nodes-per-action (at least 1) and --max-unavailable-nodes (a count or a
// percentage, as maxUnavailableNodes).
func ParseNodeAdmin(namespaces string, maxNodes int, maxUnavailable string) (plan.NodeAdmin, error) {
	var a plan.NodeAdmin
	items := strings.Split(namespaces, ",")
	for i := range items {
		items[i] = strings.TrimSpace(items[i])
	}
	items = slices.DeleteFunc(items, func(s string) bool { return s == "" })
	switch {
	case slices.Equal(items, []string{plan.AnyNamespace}):
	case slices.Contains(items, plan.AnyNamespace):
		return a, fmt.Errorf("%s: %q stands alone, for any namespace; list namespaces without it", plan.FlagNodeActionsNamespaces, plan.AnyNamespace)
	default:
		a.RestrictNamespaces = true
		for _, ns := range items {
			if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
				return a, fmt.Errorf("%s: %q is not a namespace name: %s", plan.FlagNodeActionsNamespaces, ns, strings.Join(errs, "; "))
			}
			if !slices.Contains(a.Namespaces, ns) {
				a.Namespaces = append(a.Namespaces, ns)
			}
		}
	}
	if maxNodes < 1 || maxNodes > 100 {
		return a, fmt.Errorf("%s must be from 1 to 100 (maxNodes' own bounds), not %d", plan.FlagMaxNodesPerAction, maxNodes)
	}
	a.MaxNodes = int32(maxNodes)
	// Scaled against 100 nodes, a percentage reads as itself.
	mu := intstr.Parse(strings.TrimSpace(maxUnavailable))
	if v, err := intstr.GetScaledValueFromIntOrPercent(&mu, 100, true); err != nil || v < 0 || (mu.Type == intstr.String && v > 100) {
		return a, fmt.Errorf("%s must be a count >= 0 or a percentage from 0%% to 100%%, not %q", plan.FlagMaxUnavailableNodes, maxUnavailable)
	}
	a.MaxUnavailableNodes = &mu
	return a, nil
}
