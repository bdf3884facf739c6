// Command homeostat is the Homeostat manager: it runs the AutonomicApp, HealingPolicy and
// ClusterHealingPolicy controllers.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	autonomicv1alpha1 "github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/controllers"
	"github.com/homeostat-dev/homeostat/internal/egress"
	"github.com/homeostat-dev/homeostat/internal/execute"
	"github.com/homeostat-dev/homeostat/internal/leader"
	"github.com/homeostat-dev/homeostat/internal/plan"
	"github.com/homeostat-dev/homeostat/internal/rights"
)

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(autonomicv1alpha1.AddToScheme(scheme))
}

func main() {
	var (
		metricsAddr          string
		probeAddr            string
		pprofAddr            string
		secureMetrics        bool
		enableHTTP2          bool
		leaderElect          bool
		leaderElectionNS     string
		watchNamespaces      string
		webhookPort          int
		enableWebhooks       bool
		webhookCertDir       string
		gracefulShutdown     time.Duration
		maxConcurrentRecon   int
		stormThresholdString string
		stormMinUnhealthy    int
		stormMinNamespaces   int
		objectClusterKinds   string
		sensorWorkers        int
		sensorsPerNamespace  int
		webhookWorkers       int
		webhooksPerNamespace int
		egressAllow          string
		egressDeny           string
		egressMaxBody        int64
		egressMaxTimeout     time.Duration
		nodeNamespaces       string
		maxNodesPerAction    int
		maxUnavailableNodes  string
		nodeUncordonAfter    time.Duration
		sensorGauges         bool
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", "0", "The address the metrics endpoint binds to, "+
		"for example :8443 (HTTPS) or :8080 (HTTP); 0 disables it.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "The address the health and readiness probes bind to.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "", "The address Go's pprof endpoints (/debug/pprof/) bind to, "+
		"for example 127.0.0.1:6060; empty (the default) disables them. They are unauthenticated: bind to loopback.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true, "Serve metrics over HTTPS, with authentication and authorization "+
		"through TokenReview and SubjectAccessReview. Set false to serve plain HTTP.")
	flag.BoolVar(&enableHTTP2, "enable-http2", false, "Enable HTTP/2 for the metrics and webhook servers "+
		"(off by default: HTTP/2 Rapid Reset and Stream Cancellation).")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader so that only one replica of the manager acts.")
	flag.StringVar(&leaderElectionNS, "leader-election-namespace", "", "The namespace of the leader election Lease; "+
		"default: the manager's own namespace.")
	leaseDuration := flag.Duration("leader-elect-lease-duration", leader.DefaultLeaseDuration, "How long the other "+
		"replicas wait after the Lease was last renewed before they take it over: a leader that dies unannounced is "+
		"replaced this long after its last renewal. Shorter replaces it sooner; it must exceed --leader-elect-renew-deadline.")
	renewDeadline := flag.Duration("leader-elect-renew-deadline", leader.DefaultRenewDeadline, "How long the leader "+
		"keeps trying to renew the Lease before it stops acting and stands by. Shorter stops a cut-off leader sooner "+
		"but makes it give up the Lease in a shorter API server hiccup (it takes the Lease back when the API server "+
		"answers, unless another replica took it).")
	retryPeriod := flag.Duration("leader-elect-retry-period", leader.DefaultRetryPeriod, "How often the leader renews "+
		"the Lease and the other replicas try to take it (each try is one API request). A Lease released by a leader "+
		"that shut down is taken at once by a replica that may watch it, without waiting for a retry.")
	flag.StringVar(&watchNamespaces, "watch-namespaces", "", "Comma-separated namespaces to watch; empty watches all.")
	defaultServiceAccount := flag.String("default-service-account", "", "The ServiceAccount, in each app's own namespace, "+
		"whose rights bound what Homeostat reads and does for an app that sets no spec.serviceAccountName, as Flux's flag "+
		"of the same name does for its controllers. Empty (the default): such apps act with the manager's rights.")
	authorizationCacheTTL := flag.Duration("authorization-cache-ttl", rights.DefaultCacheTTL, "How long an answer about "+
		"an app's ServiceAccount (a SubjectAccessReview, whether it exists) is kept: a Role granted or revoked counts "+
		"after at most this long.")
	managerNamespace := flag.String("manager-namespace", os.Getenv("POD_NAMESPACE"), "The manager's namespace, where the "+
		"webhooks of ClusterHealingPolicies read the Secret of their headers; default the POD_NAMESPACE environment variable.")
	flag.BoolVar(&enableWebhooks, "enable-webhooks", os.Getenv("ENABLE_WEBHOOKS") != "false", "Serve the validating webhook.")
	flag.IntVar(&webhookPort, "webhook-port", 9443, "The port the validating webhook listens on.")
	flag.StringVar(&webhookCertDir, "webhook-cert-dir", "", "The directory of the webhook's tls.crt and tls.key; "+
		"default: controller-runtime's.")
	flag.DurationVar(&gracefulShutdown, "graceful-shutdown-timeout", 30*time.Second, "How long to wait for running "+
		"reconciles and effectors to finish on shutdown.")
	flag.IntVar(&maxConcurrentRecon, "max-concurrent-reconciles", 4, "How many apps are reconciled at once.")
	flag.StringVar(&stormThresholdString, "storm-threshold", "50%", "The storm breaker's share: a namespace is in a storm "+
		"when more than this share of its judged apps is unhealthy, and when more than this share of the namespaces is, "+
		"disruptive actions stop cluster-wide. Apps whose health cannot be judged (an invalid spec, a missing component) count nowhere.")
	flag.IntVar(&sensorWorkers, "sensor-workers", 8, "How many sensor polls run at once, across all apps.")
	flag.IntVar(&sensorsPerNamespace, "sensor-workers-per-namespace", 0, "How many sensor polls of the apps of one "+
		"namespace run at once, so that one namespace's slow endpoints never hold every worker; 0 is half of --sensor-workers.")
	flag.IntVar(&webhookWorkers, "webhook-action-workers", execute.DefaultWebhookWorkers, "How many POSTs of webhook "+
		"actions are in flight at once, across all apps; they run in the background, never in a reconcile.")
	flag.IntVar(&webhooksPerNamespace, "webhook-action-workers-per-namespace", 0, "How many POSTs of webhook actions "+
		"of the apps of one namespace are in flight at once; 0 is half of --webhook-action-workers.")
	flag.IntVar(&stormMinUnhealthy, "storm-min-unhealthy", controllers.DefaultStormMinUnhealthy, "The storm breaker "+
		"engages only when at least this many apps are unhealthy, besides --storm-threshold.")
	flag.IntVar(&stormMinNamespaces, "storm-min-namespaces", controllers.DefaultStormMinNamespaces, "The storm breaker "+
		"engages only when at least this many namespaces are in a storm, besides --storm-threshold: one namespace, "+
		"whatever its apps, is one vote, so with 2 or more no single namespace can stop healing cluster-wide. "+
		"Set 1 where one team owns the whole cluster.")
	flag.StringVar(&objectClusterKinds, "object-sensor-cluster-kinds", "", "Comma-separated cluster-scoped kinds, "+
		"as Kind.group (Node, StorageClass.storage.k8s.io), that object sensors may read; default none. A namespaced "+
		"kind is always read in the app's own namespace, and a Secret never.")
	flag.StringVar(&egressAllow, egress.FlagAllowCIDRs[2:], "", "Comma-separated CIDRs that http and Prometheus sensors "+
		"and webhook actions may reach although the built-in egress deny list refuses them (loopback, link-local, "+
		"unspecified, multicast, cloud metadata addresses). It opens nothing else: never --egress-deny-cidrs, "+
		"the API server or the manager's own ports.")
	flag.StringVar(&egressDeny, egress.FlagDenyCIDRs[2:], "", "Comma-separated CIDRs that http and Prometheus sensors "+
		"and webhook actions may never reach, whatever --egress-allow-cidrs says.")
	flag.Int64Var(&egressMaxBody, egress.FlagMaxResponseBytes[2:], egress.DefaultMaxResponseBytes, "The most of a "+
		"response body a sensor or webhook reads; a longer body fails the request.")
	flag.DurationVar(&egressMaxTimeout, egress.FlagMaxTimeout[2:], egress.DefaultMaxTimeout, "The longest a sensor's "+
		"poll or a webhook attempt may take; a longer timeout asked for is cut to this, and status says so.")
	flag.StringVar(&nodeNamespaces, plan.FlagNodeActionsNamespaces[2:], plan.AnyNamespace, "Comma-separated namespaces "+
		"whose apps and HealingPolicies may run cordonNode and drainNode; ClusterHealingPolicies always may. "+
		"* (the default) admits every namespace; empty admits none, so node actions run only from ClusterHealingPolicies. "+
		"Nodes are shared: set it.")
	flag.IntVar(&maxNodesPerAction, plan.FlagMaxNodesPerAction[2:], 100, "The ceiling of a node action's "+
		"maxNodes: at most this many nodes are cordoned or drained by one app at once, whatever the app asks (1 to 100). "+
		"The default, 100, is maxNodes' own bound and lowers nothing: set it, 1 for shared nodes.")
	flag.StringVar(&maxUnavailableNodes, plan.FlagMaxUnavailableNodes[2:], "100%", "The ceiling "+
		"of a node action's maxUnavailableNodes, a count or a percentage of all nodes: no node action runs when more nodes "+
		"would be NotReady or cordoned, whatever the app asks. The default, 100%, lowers nothing: set it, 10% for shared nodes.")
	flag.DurationVar(&nodeUncordonAfter, "node-uncordon-after", 5*time.Minute, "How long a node that a cordonNode or "+
		"drainNode action cordoned, and nobody else, must be Ready, with the app's pods on it gone or healthy, "+
		"before Homeostat uncordons it; 0 leaves every cordon to a person.")
	flag.BoolVar(&sensorGauges, "sensor-gauges", true, "Export every app's polled sensors and component sensors as "+
		"gauges (homeostat_sensor_value, homeostat_component_sensor, homeostat_component_phase), so Prometheus keeps their "+
		"history. Up to sensors + 12 x workload components + 3 x child components series per app; false exports none.")
	opts := zap.Options{Development: false}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")

	stormThreshold, err := controllers.ParsePercent(stormThresholdString)
	if err != nil {
		log.Error(err, "Invalid --storm-threshold")
		os.Exit(2)
	}
	nodeAdmin, err := controllers.ParseNodeAdmin(nodeNamespaces, maxNodesPerAction, maxUnavailableNodes)
	if err != nil {
		log.Error(err, "Invalid node action flags")
		os.Exit(2)
	}
	if nodeUncordonAfter < 0 {
		log.Error(fmt.Errorf("--node-uncordon-after must be 0 or more, not %s", nodeUncordonAfter), "Invalid node action flags")
		os.Exit(2)
	}
	clusterKinds, err := controllers.ParseClusterKinds(objectClusterKinds)
	if err != nil {
		log.Error(err, "Invalid --object-sensor-cluster-kinds")
		os.Exit(2)
	}
	if sa := *defaultServiceAccount; sa != "" {
		if errs := validation.IsDNS1123Subdomain(sa); len(errs) > 0 {
			log.Error(fmt.Errorf("%q is not a ServiceAccount name: %s", sa, strings.Join(errs, "; ")), "Invalid --default-service-account")
			os.Exit(2)
		}
	}
	if *authorizationCacheTTL <= 0 {
		log.Error(fmt.Errorf("%s is not positive", *authorizationCacheTTL), "Invalid --authorization-cache-ttl")
		os.Exit(2)
	}

	var tlsOpts []func(*tls.Config)
	if !enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}

	metricsOpts := metricsserver.Options{BindAddress: metricsAddr, SecureServing: secureMetrics, TLSOpts: tlsOpts}
	if secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	cacheOpts := cache.Options{DefaultTransform: controllers.TrimManagedFields}
	if ns := splitList(watchNamespaces); len(ns) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, n := range ns {
			cacheOpts.DefaultNamespaces[n] = cache.Config{}
		}
	}
	controllers.ConfigureCache(&cacheOpts)

	mgrOpts := ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsOpts,
		HealthProbeBindAddress: probeAddr,
		PprofBindAddress:       pprofAddr,
		// Leader election is the manager's own (internal/leader): every replica runs
		// its caches and controllers, and acts only while it holds the Lease.
		LeaderElection:          false,
		GracefulShutdownTimeout: &gracefulShutdown,
		Cache:                   cacheOpts,
		Client:                  controllers.ClientOptions(),
	}
	if enableWebhooks {
		mgrOpts.WebhookServer = webhook.NewServer(webhook.Options{Port: webhookPort, CertDir: webhookCertDir, TLSOpts: tlsOpts})
	}

	restConfig := ctrl.GetConfigOrDie()
	egressPolicy, err := egressPolicy(restConfig.Host, egressAllow, egressDeny, egressMaxBody, egressMaxTimeout, []egress.Listener{
		{Name: "metrics", Flag: "--metrics-bind-address", Address: metricsAddr},
		{Name: "health probe", Flag: "--health-probe-bind-address", Address: probeAddr},
		{Name: "pprof", Flag: "--pprof-bind-address", Address: pprofAddr},
		{Name: "webhook", Flag: "--webhook-port", Address: webhookListen(enableWebhooks, webhookPort)},
	})
	if err != nil {
		log.Error(err, "Invalid egress policy")
		os.Exit(2)
	}

	mgr, err := ctrl.NewManager(restConfig, mgrOpts)
	if err != nil {
		log.Error(err, "Unable to create the manager")
		os.Exit(1)
	}
	var gate *leader.Gate
	if leaderElect {
		elector, err := newElector(restConfig, leaderElectionNS, *leaseDuration, *renewDeadline, *retryPeriod)
		if err != nil {
			log.Error(err, "Invalid leader election")
			os.Exit(2)
		}
		gate = elector.Gate
		if err := mgr.Add(elector); err != nil {
			log.Error(err, "Unable to add the leader elector")
			os.Exit(1)
		}
	}

	if err := controllers.Setup(mgr, controllers.Options{
		MaxConcurrentReconciles: maxConcurrentRecon,
		StormThreshold:          stormThreshold,
		StormMinUnhealthy:       stormMinUnhealthy,
		StormMinNamespaces:      stormMinNamespaces,
		ObjectClusterKinds:      clusterKinds,
		SensorWorkers:           sensorWorkers,
		SensorsPerNamespace:     sensorsPerNamespace,
		WebhookWorkers:          webhookWorkers,
		WebhooksPerNamespace:    webhooksPerNamespace,
		EnableWebhooks:          enableWebhooks,
		Egress:                  egressPolicy,
		DefaultServiceAccount:   *defaultServiceAccount,
		AuthorizationCacheTTL:   *authorizationCacheTTL,
		ManagerNamespace:        *managerNamespace,
		NodeAdmin:               nodeAdmin,
		NodeUncordonAfter:       nodeUncordonAfter,
		WatchNamespaces:         splitList(watchNamespaces),
		SensorGauges:            sensorGauges,
		Leader:                  gate,
	}); err != nil {
		log.Error(err, "Unable to set up the controllers")
		os.Exit(1)
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "Unable to add the health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		log.Error(err, "Unable to add the readiness check")
		os.Exit(1)
	}

	log.Info("Starting the manager", "watchNamespaces", watchNamespaces, "leaderElect", leaderElect,
		"defaultServiceAccount", *defaultServiceAccount, "managerNamespace", *managerNamespace,
		"nodeActionsNamespaces", nodeNamespaces, "maxNodesPerAction", maxNodesPerAction,
		"maxUnavailableNodes", maxUnavailableNodes, "nodeUncordonAfter", nodeUncordonAfter, "sensorGauges", sensorGauges,
		"version", fmt.Sprint(controllers.Version))
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "The manager stopped with an error")
		os.Exit(1)
	}
}

// egressPolicy builds the policy of the --egress-* flags. It refuses the API server at
// the rest config's host and, in a pod, at the kubernetes Service's ClusterIP, and the
// manager's own listeners.
func egressPolicy(apiHost, allow, deny string, maxBody int64, maxTimeout time.Duration, listeners []egress.Listener) (*egress.Policy, error) {
	cfg := egress.Config{APIServers: []string{apiHost}, Listeners: listeners, MaxResponseBytes: maxBody, MaxTimeout: maxTimeout}
	var err error
	if cfg.Allow, err = egress.ParseCIDRs(allow); err != nil {
		return nil, fmt.Errorf("%s: %w", egress.FlagAllowCIDRs, err)
	}
	if cfg.Deny, err = egress.ParseCIDRs(deny); err != nil {
		return nil, fmt.Errorf("%s: %w", egress.FlagDenyCIDRs, err)
	}
	if maxBody <= 0 {
		return nil, fmt.Errorf("%s must be positive, not %d", egress.FlagMaxResponseBytes, maxBody)
	}
	if maxTimeout <= 0 {
		return nil, fmt.Errorf("%s must be positive, not %s", egress.FlagMaxTimeout, maxTimeout)
	}
	if h, p := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT"); h != "" && p != "" {
		cfg.APIServers = append(cfg.APIServers, net.JoinHostPort(h, p))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return egress.New(ctx, cfg)
}

// leaseName is the leader election Lease; config/rbac/leader_election_role.yaml names it.
const leaseName = "homeostat.autonomic.homeostat.dev"

// newElector builds the leader elector of the --leader-elect* flags.
func newElector(cfg *rest.Config, namespace string, lease, renew, retry time.Duration) (*leader.Elector, error) {
	c := leader.Config{Name: leaseName, LeaseDuration: lease, RenewDeadline: renew, RetryPeriod: retry}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	ns, err := leader.Namespace(namespace)
	if err != nil {
		return nil, err
	}
	c.Namespace = ns
	// Its own client, so that renewals are not queued behind the controllers' requests.
	cs, err := kubernetes.NewForConfig(rest.AddUserAgent(rest.CopyConfig(cfg), "leader-election"))
	if err != nil {
		return nil, err
	}
	return &leader.Elector{Config: c, Gate: leader.NewGate(), Client: cs}, nil
}

// webhookListen is the webhook server's listen address: every address, at its port.
func webhookListen(enabled bool, port int) string {
	if !enabled {
		return ""
	}
	return ":" + strconv.Itoa(port)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
