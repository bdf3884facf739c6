package demo

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/homeostat-dev/homeostat/internal/devcluster/metricsapi"
)

// The objects of the demo: the namespace of the samples, the ConfigMap that holds the
// load, and the label of the api Deployment's pods (config/samples/autonomicapp_autoscale.yaml).
const (
	Namespace = "homeostat-demo"
	// LoadConfigMap is the ConfigMap whose data.rps is the load.
	LoadConfigMap = "demo-load"
	// RPSKey is the key of the load in the ConfigMap's data.
	RPSKey = "rps"
	// appLabel and appName select the pods that serve the load.
	appLabel = "app.kubernetes.io/name"
	appName  = "api"
)

// describeAnnotation explains the ConfigMap to whoever reads it with kubectl.
const describeAnnotation = "homeostat.dev/demo-load"

const loadDescription = "make run's demo load: data.rps is the requests a second the api Deployment receives, " +
	"spread over its ready pods. It sets their CPU usage in metrics.k8s.io (10m + 1m per request a second) and the " +
	"latency of http_request_duration_seconds{job=\"api\"} in make run's Prometheus (p95 50ms / (1 - per pod / 500)). " +
	"Change it with: kubectl -n homeostat-demo patch configmap demo-load --type merge -p '{\"data\":{\"rps\":\"900\"}}'"

// usageSetter is what the driver needs of the metrics API: *metricsapi.Server.
type usageSetter interface {
	SetPodsUsage(u metricsapi.Usage, pods ...types.NamespacedName)
	DeletePodUsage(pods ...types.NamespacedName)
}

// driver keeps the metrics API and the exporter in step with the load in the ConfigMap
// and the api Deployment's pods: on every change of either, it spreads the load over
// the serving pods (running, ready, not terminating) and sets their usage and the
// exporter's load; every other running pod of the namespace gets an idle usage, so
// kubectl top shows the whole demo. It never writes to the cluster but to create the
// ConfigMap.
type driver struct {
	log     logr.Logger
	client  kubernetes.Interface
	metrics usageSetter
	exp     *exporter

	factory informers.SharedInformerFactory
	pods    corelisters.PodLister
	cms     corelisters.ConfigMapLister
	kick    chan struct{}

	mu       sync.Mutex
	rps      float64
	badRPS   string                        // the last value of data.rps that was refused
	measured map[types.NamespacedName]bool // the pods whose usage is set
	serving  int
	logged   string // the last state logged, to log changes only
}

func newDriver(client kubernetes.Interface, metrics usageSetter, exp *exporter, log logr.Logger) *driver {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(Namespace))
	d := &driver{
		log: log, client: client, metrics: metrics, exp: exp, factory: factory,
		pods: factory.Core().V1().Pods().Lister(), cms: factory.Core().V1().ConfigMaps().Lister(),
		kick: make(chan struct{}, 1), rps: DefaultRPS, measured: map[types.NamespacedName]bool{},
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { d.poke() },
		UpdateFunc: func(any, any) { d.poke() },
		DeleteFunc: func(any) { d.poke() },
	}
	_, _ = factory.Core().V1().Pods().Informer().AddEventHandler(handler)
	_, _ = factory.Core().V1().ConfigMaps().Informer().AddEventHandler(handler)
	return d
}

// start creates the ConfigMap unless it exists, syncs the informers, sets the usage once
// and keeps it up to date until ctx ends.
func (d *driver) start(ctx context.Context) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: LoadConfigMap,
			Annotations: map[string]string{describeAnnotation: loadDescription}},
		Data: map[string]string{RPSKey: strconv.Itoa(DefaultRPS)},
	}
	_, err := d.client.CoreV1().ConfigMaps(Namespace).Create(ctx, cm, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating ConfigMap %s/%s: %w", Namespace, LoadConfigMap, err)
	}
	d.factory.Start(ctx.Done())
	for typ, ok := range d.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("syncing the %v informer: %w", typ, ctx.Err())
		}
	}
	d.sync()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-d.kick:
				d.sync()
			}
		}
	}()
	return nil
}

// poke asks for a sync; a sync already asked for covers this one too.
func (d *driver) poke() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// sync reads the load and the pods from the cache and sets the usage and the exporter.
func (d *driver) sync() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.readLoad()
	pods, err := d.pods.Pods(Namespace).List(labels.Everything())
	if err != nil {
		d.log.Error(err, "Listing the demo's pods failed")
		return
	}
	var serving, idle []types.NamespacedName
	for _, p := range pods {
		key := types.NamespacedName{Namespace: p.Namespace, Name: p.Name}
		switch {
		case p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning:
		case p.Labels[appLabel] == appName && podReady(p):
			serving = append(serving, key)
		default:
			idle = append(idle, key)
		}
	}
	l := Spread(d.rps, len(serving))
	d.exp.set(d.rps, l)
	cpu, mem := l.usage()
	d.metrics.SetPodsUsage(metricsapi.Usage{CPU: cpu, Memory: mem}, serving...)
	idleCPU, idleMem := idleUsage()
	d.metrics.SetPodsUsage(metricsapi.Usage{CPU: idleCPU, Memory: idleMem}, idle...)
	now := map[types.NamespacedName]bool{}
	for _, k := range slices.Concat(serving, idle) {
		now[k] = true
	}
	var gone []types.NamespacedName
	for k := range d.measured {
		if !now[k] {
			gone = append(gone, k)
		}
	}
	d.metrics.DeletePodUsage(gone...)
	d.measured, d.serving = now, len(serving)

	state := fmt.Sprintf("%g/%d", d.rps, len(serving))
	if state != d.logged {
		d.logged = state
		d.log.Info("Demo load", "rps", d.rps, "servingPods", len(serving), "perPod", math.Round(l.RPS),
			"p95", strconv.FormatFloat(l.P95, 'f', 3, 64)+"s", "cpuPerPod", cpu.String())
	}
}

// readLoad takes data.rps from the ConfigMap; a value that is not a number of requests a
// second, or a missing ConfigMap, keeps the load as it was, and says so once. d.mu is held.
func (d *driver) readLoad() {
	cm, err := d.cms.ConfigMaps(Namespace).Get(LoadConfigMap)
	if err != nil {
		if d.badRPS != "<deleted>" {
			d.badRPS = "<deleted>"
			d.log.Info("The demo load's ConfigMap is gone: keeping the load; create it again to change it",
				"configMap", Namespace+"/"+LoadConfigMap, "rps", d.rps)
		}
		return
	}
	raw := strings.TrimSpace(cm.Data[RPSKey])
	rps, err := ParseRPS(raw)
	if err != nil {
		if d.badRPS != raw {
			d.badRPS = raw
			d.log.Info("Ignoring the demo load: "+err.Error()+"; keeping the load",
				"configMap", Namespace+"/"+LoadConfigMap, "rps", d.rps)
		}
		return
	}
	d.rps, d.badRPS = rps, ""
}

// ParseRPS reads data.rps: a number of requests a second, 0 or more.
func ParseRPS(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 1e7 {
		return 0, fmt.Errorf("data.%s is %q, not a number of requests a second from 0 to 10000000", RPSKey, s)
	}
	return v, nil
}

// servingPods is how many pods served the load at the last sync.
func (d *driver) servingPods() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.serving
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
