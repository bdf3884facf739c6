package demo

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/devcluster"
	"github.com/homeostat-dev/homeostat/internal/devcluster/metricsapi"
	"github.com/homeostat-dev/homeostat/internal/monitor"
)

// Options say how Start runs the demo.
type Options struct {
	// PrometheusAddress is where Prometheus listens, on loopback. Default
	// DefaultPrometheusAddress, where the samples look; see PointSamplesAt for another.
	PrometheusAddress string
	// Prometheus is the prometheus binary. Default: FindPrometheus's.
	Prometheus string
	// ManagerMetrics is the manager's metrics endpoint, host:port on loopback, plain
	// HTTP, which Prometheus scrapes as job homeostat; empty: none (see ManagerMetrics).
	ManagerMetrics string
	// Samples are the objects applied to the cluster. Start returns once the sensors of
	// their AutonomicApps that the demo serves answer: their Prometheus queries return a
	// number and metrics.k8s.io has the usage of their resource sensors' pods.
	Samples []*unstructured.Unstructured
	// SensorTimeout bounds that wait. Default 30s; a sensor that does not answer by then
	// is logged, and Start returns all the same: the manager says the rest.
	SensorTimeout time.Duration
	// Logger receives progress messages and every change of the load.
	Logger logr.Logger
}

// Demo is a running demo; Stop ends it.
type Demo struct {
	log     logr.Logger
	cancel  context.CancelFunc
	metrics *metricsapi.Running
	exp     *exporter
	driver  *driver
	url     string
}

// Start serves the demo for the cluster c, whose samples are applied: metrics.k8s.io
// (an aggregated API of internal/devcluster/metricsapi), the ConfigMap of the load and
// the driver that spreads it over the pods, the exporter on 127.0.0.1, and Prometheus,
// as a process of the cluster, scraping the exporter and the manager. It returns once
// Prometheus is ready and the samples' sensors answer (or SensorTimeout has passed).
//
// Everything it starts ends with Stop or with the cluster: the servers and informers are
// goroutines of this process, and Prometheus stops, and dies, with the cluster.
func Start(ctx context.Context, c *devcluster.Cluster, opts Options) (*Demo, error) {
	began := time.Now()
	log := opts.Logger
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	addr := cmp.Or(opts.PrometheusAddress, DefaultPrometheusAddress)
	binary := opts.Prometheus
	if binary == "" {
		var err error
		if binary, err = FindPrometheus(); err != nil {
			return nil, err
		}
	}
	cfg := c.RESTConfig()
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d := &Demo{log: log, cancel: cancel, exp: newExporter(time.Now), url: PrometheusURL(addr)}
	fail := func(err error) (*Demo, error) {
		d.Stop(context.WithoutCancel(ctx))
		return nil, err
	}

	log.Info("Starting the demo: metrics.k8s.io, the load exporter and Prometheus", "prometheus", d.url)
	if d.metrics, err = metricsapi.Start(ctx, cfg, metricsapi.Options{Logger: log.WithName("metricsapi")}); err != nil {
		return fail(fmt.Errorf("serving metrics.k8s.io: %w", err))
	}
	if err := ensureNamespace(ctx, client); err != nil {
		return fail(err)
	}
	d.driver = newDriver(client, d.metrics.Server, d.exp, log)
	if err := d.driver.start(runCtx); err != nil {
		return fail(err)
	}
	if err := d.exp.serve(); err != nil {
		return fail(fmt.Errorf("serving the load exporter: %w", err))
	}
	if err := startPrometheus(ctx, c, binary, addr, d.exp.addr, opts.ManagerMetrics); err != nil {
		return fail(err)
	}
	d.waitForSensors(ctx, cfg, opts)
	log.Info("The demo is ready", "prometheus", d.url, "exporter", d.exp.addr, "managerMetrics", opts.ManagerMetrics,
		"loadConfigMap", Namespace+"/"+LoadConfigMap, "took", time.Since(began).Round(time.Millisecond).String())
	return d, nil
}

// Stop stops the driver, unregisters and stops metrics.k8s.io and stops the exporter.
// Prometheus stops with the cluster.
func (d *Demo) Stop(ctx context.Context) {
	d.cancel()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if d.metrics != nil {
		if err := d.metrics.Stop(ctx); err != nil {
			d.log.Info("Unregistering metrics.k8s.io failed; the cluster goes anyway", "err", err.Error())
		}
	}
	d.exp.stop(ctx)
}

// PrometheusURL is the URL of the demo's Prometheus.
func (d *Demo) PrometheusURL() string { return d.url }

// ensureNamespace creates the demo's namespace when the samples did not.
func ensureNamespace(ctx context.Context, client kubernetes.Interface) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}
	_, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", Namespace, err)
	}
	return nil
}

// sampleSensor is a sensor of an applied AutonomicApp that the demo serves.
type sampleSensor struct {
	app    *v1alpha1.AutonomicApp
	sensor v1alpha1.Sensor
}

// waitForSensors waits until the sensors of the samples that the demo serves answer, as
// the manager will read them, so that it starts on sensors that work. A sensor that does
// not answer within the timeout is logged with what it read.
func (d *Demo) waitForSensors(ctx context.Context, cfg *rest.Config, opts Options) {
	timeout := opts.SensorTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	prom, err := api.NewClient(api.Config{Address: d.url})
	if err != nil {
		d.log.Info("Cannot query the demo's Prometheus", "err", err.Error())
		return
	}
	pq := promv1.NewAPI(prom)
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		d.log.Info("Cannot read the samples' workloads", "err", err.Error())
		return
	}
	mc, err := metricsclient.NewForConfig(cfg)
	if err != nil {
		d.log.Info("Cannot read metrics.k8s.io", "err", err.Error())
		return
	}
	for _, s := range d.sensorsOf(opts.Samples) {
		check := func(ctx context.Context) error { return podsMeasured(ctx, kc, mc, s.app, s.sensor.Resource.Component) }
		if p := s.sensor.Prometheus; p != nil {
			check = func(ctx context.Context) error {
				v, _, _, err := pq.Query(ctx, p.Query, time.Time{})
				if err != nil {
					return err
				}
				_, err = monitor.PrometheusValue(v)
				return err
			}
		}
		if err := poll(ctx, check); err != nil {
			d.log.Info("A sample's sensor does not answer yet; going on all the same", "app", klog.KObj(s.app),
				"sensor", s.sensor.Name, "waited", timeout.String(), "last", err.Error())
			continue
		}
		d.log.V(1).Info("A sample's sensor answers", "app", klog.KObj(s.app), "sensor", s.sensor.Name)
	}
}

// poll calls check every 200ms, with 2s for each call, until it succeeds or ctx ends,
// and then returns its last error.
func poll(ctx context.Context, check func(context.Context) error) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := check(cctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// sensorsOf lists the Prometheus sensors that query the demo's Prometheus and the
// resource sensors of the AutonomicApps among objs.
func (d *Demo) sensorsOf(objs []*unstructured.Unstructured) []sampleSensor {
	var out []sampleSensor
	for _, o := range objs {
		if o.GetKind() != "AutonomicApp" {
			continue
		}
		app := &v1alpha1.AutonomicApp{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, app); err != nil {
			continue
		}
		for _, s := range app.Spec.Sensors {
			switch {
			case s.Prometheus != nil && strings.TrimSuffix(s.Prometheus.Address, "/") == d.url:
			case s.Resource != nil:
			default:
				continue
			}
			out = append(out, sampleSensor{app: app, sensor: s})
		}
	}
	return out
}

// podsMeasured checks that metrics.k8s.io, through the apiserver, has the usage of a
// ready pod of the component's Deployment, as a resource sensor reads it.
func podsMeasured(ctx context.Context, kc kubernetes.Interface, mc metricsclient.Interface, app *v1alpha1.AutonomicApp, component string) error {
	i := slices.IndexFunc(app.Spec.Components, func(c v1alpha1.Component) bool { return c.Name == component })
	if i < 0 || app.Spec.Components[i].WorkloadRef == nil || app.Spec.Components[i].WorkloadRef.Kind != "Deployment" {
		return nil // not a Deployment: the manager will say
	}
	dep, err := kc.AppsV1().Deployments(app.Namespace).Get(ctx, app.Spec.Components[i].WorkloadRef.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	if err != nil {
		return err
	}
	list, err := mc.MetricsV1beta1().PodMetricses(app.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return err
	}
	if len(list.Items) == 0 {
		return fmt.Errorf("metrics.k8s.io has no pod of Deployment %s yet", dep.Name)
	}
	return nil
}
