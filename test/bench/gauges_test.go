package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/devcluster"
	"github.com/homeostat-dev/homeostat/test/bench/harness"
)

// The sensor gauges benchmark's knobs and names.
const (
	// gaugeEnvApps is the app count, default gaugeDefaultApps.
	gaugeEnvApps     = "HOMEOSTAT_BENCH_GAUGE_APPS"
	gaugeDefaultApps = 10000
	// gaugeSection is its report section.
	gaugeSection = "sensor-gauges"
	// gaugeConfigMap is the ConfigMap of each namespace whose depth every app's sensor reads.
	gaugeConfigMap = "queue"
	// gaugeSensorInterval is the sensors' interval: long, so each is polled once while
	// measured and the polls' GETs do not load the API server the memory is compared on.
	gaugeSensorInterval = 10 * time.Minute
)

// The gauge families and how many series each app has of them: one sensor, one
// workload component of 12 built-in sensors, no child app.
var gaugeFamilies = []struct {
	name   string
	perApp int
	why    string
}{
	{"homeostat_sensor_value", 1, "its one sensor, available"},
	{"homeostat_component_sensor", 12, "the 12 built-in sensors of its one workload component"},
	{"homeostat_component_phase", 0, "no app has a child app"},
}

// TestBenchSensorGauges measures what the sensor gauges (--sensor-gauges, on by
// default) cost at 10,000 apps (HOMEOSTAT_BENCH_GAUGE_APPS): their series, the size of a
// scrape of /metrics, and the manager's memory, beside the same manager with
// --sensor-gauges=false on the same apps.
//
// On a local control plane of its own with the rate limits lifted and one kwok node: N
// apps in namespaces of 500, each with one component, a Deployment of 0 replicas, one
// object sensor reading the depth in its namespace's ConfigMap queue (every 10 minutes),
// and one symptom over it. The gauges do not depend on pods (a component's 12 sensors are
// series whatever their values), so no pod is made: 30,000 of them would take 10 minutes
// and a third of the API server's memory, and weigh the same in both runs.
//
// For each variant, gauges on and then off: the manager starts (its process, built from
// main.go) on apps whose status is empty, and the test waits until every app's status is
// of its generation, Ready, and shows its sensor read. When the manager has fallen quiet,
// it samples VmRSS every 5 s over a minute while scraping /metrics every 15 s, as a
// Prometheus would, then reads the live heap after a forced collection three times, and
// scrapes five more times for the series, the bytes and the time of a scrape.
func TestBenchSensorGauges(t *testing.T) {
	Require(t)
	ctx := t.Context()
	n := gaugeDefaultApps
	if v := os.Getenv(gaugeEnvApps); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("%s=%q: want an app count", gaugeEnvApps, v)
		}
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "manager")
	if err := harness.BuildManager(ctx, root, bin); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	cluster := devcluster.StartForTest(t, devcluster.Options{Nodes: 1, DisableQPSLimits: true})
	if err := cluster.InstallCRDs(ctx, filepath.Join(root, "config", "crd", "bases")); err != nil {
		t.Fatal(err)
	}
	cfg := cluster.RESTConfig()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scaleScheme})
	if err != nil {
		t.Fatal(err)
	}
	w, err := harness.StartWatcher(ctx, cfg, scaleScheme)
	if err != nil {
		t.Fatal(err)
	}
	r := &scaleRun{t: t, ctx: ctx, root: root, cluster: cluster, cs: cs, c: c, w: w, n: n}
	created := time.Now()
	gaugeFleet(r)
	t.Logf("Cluster up and %d apps created in %s (the apps alone in %s)", n, time.Since(began).Round(time.Second),
		time.Since(created).Round(time.Second))

	on := r.measureGauges(bin, true)
	r.clearStatuses()
	off := r.measureGauges(bin, false)
	recordGauges(n, on, off)
}

// gaugeFleet creates the namespaces, each with its ConfigMap queue, and n Deployments of
// 0 replicas and n apps on them.
func gaugeFleet(r *scaleRun) {
	t, ctx := r.t, r.ctx
	for _, ns := range r.fleet.Namespaces(r.n) {
		if err := harness.IgnoreExists(r.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})); err != nil {
			t.Fatal(err)
		}
		queue := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: gaugeConfigMap},
			Data: map[string]string{"depth": "42.5"}}
		if err := harness.IgnoreExists(r.c.Create(ctx, queue)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := harness.ForEach(ctx, r.n, 16, nil, func(ctx context.Context, i int) error {
		d := r.fleet.Deployment(i)
		d.Spec.Replicas = ptr.To(int32(0))
		_, err := r.cs.AppsV1().Deployments(d.Namespace).Create(ctx, d, metav1.CreateOptions{})
		return harness.IgnoreExists(err)
	}); err != nil {
		t.Fatalf("Creating Deployments: %v", err)
	}
	if _, err := harness.ForEach(ctx, r.n, 16, nil, func(ctx context.Context, i int) error {
		return harness.IgnoreExists(r.c.Create(ctx, gaugeApp(r.fleet, i)))
	}); err != nil {
		t.Fatalf("Creating apps: %v", err)
	}
}

// gaugeApp is app i: one component web, its Deployment; one sensor depth, the depth in
// the namespace's ConfigMap queue; a symptom Backlog over it.
func gaugeApp(f harness.Fleet, i int) *v1alpha1.AutonomicApp {
	name := f.Name(i)
	return &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.Namespace(i), Name: name},
		Spec: v1alpha1.AutonomicAppSpec{
			Components: []v1alpha1.Component{{Name: "web", WorkloadRef: &v1alpha1.WorkloadReference{
				APIVersion: appsv1.SchemeGroupVersion.String(), Kind: "Deployment", Name: name}}},
			Healing: v1alpha1.Healing{
				Sensors: []v1alpha1.Sensor{{Name: "depth", Interval: &metav1.Duration{Duration: gaugeSensorInterval},
					Object: &v1alpha1.ObjectSensor{Ref: v1alpha1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Name: gaugeConfigMap},
						Expression: "double(object.data.depth)"}}},
				Symptoms: []v1alpha1.Symptom{{Name: "Backlog", Expression: "has(sensors.depth) && sensors.depth > 1000.0"}},
			},
		},
	}
}

// gaugeFigures is what one manager measured.
type gaugeFigures struct {
	coldStart    float64   // s, to every app's sensor read
	series       []float64 // per gaugeFamilies
	allSeries    float64   // every series of a scrape
	scrapeBytes  []float64
	scrapeGzip   []float64
	scrapeMillis []float64
	rss          []float64 // MiB
	heapAlloc    []float64 // MiB
	heapInuse    []float64 // MiB
}

// measureGauges runs the manager with the gauges on or off until every app's sensor is
// read and it falls quiet, measures it, and stops it.
func (r *scaleRun) measureGauges(bin string, gauges bool) *gaugeFigures {
	t, ctx := r.t, r.ctx
	name := "gauges-on"
	if !gauges {
		name = "gauges-off"
	}
	m, err := harness.StartManager(r.cluster, bin, harness.ManagerOptions{Pprof: true,
		Args:    []string{"--sensor-gauges=" + strconv.FormatBool(gauges)},
		LogPath: filepath.Join(r.cluster.Dir(), "manager-"+name+".log")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	if err := m.WaitMetrics(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	gf := &gaugeFigures{}
	if err := harness.WaitFor(ctx, fmt.Sprintf("%d apps reconciled with their sensor read (%s)", r.n, name), 45*time.Minute, 5*time.Minute,
		r.w.SensedApps, func() bool { return r.w.SensedApps() >= r.n }); err != nil {
		t.Fatalf("%v\nmanager log:\n%s", err, harness.Tail(m.LogPath, 30))
	}
	gf.coldStart = time.Since(m.Started).Seconds()
	t.Logf("[%s] every app reconciled with its sensor read after %.1f s", name, gf.coldStart)
	r.waitQuiet(m, 10*time.Second)

	// Memory over a minute, scraped as a Prometheus would.
	for i := range 12 {
		if i%3 == 0 {
			if _, err := m.MetricsText(ctx); err != nil {
				t.Fatalf("Scraping the manager: %v", err)
			}
		}
		r.sleep(5 * time.Second)
		if rss, err := m.RSSMiB(); err == nil {
			gf.rss = append(gf.rss, rss)
		}
	}
	for range 3 {
		h, err := m.HeapAfterGC(ctx)
		if err != nil {
			t.Fatalf("Reading the manager's heap: %v", err)
		}
		gf.heapAlloc = append(gf.heapAlloc, h.Alloc/(1<<20))
		gf.heapInuse = append(gf.heapInuse, h.Inuse/(1<<20))
		r.sleep(time.Second)
	}

	// The scrapes themselves.
	var last harness.Metrics
	for range 5 {
		start := time.Now()
		text, err := m.MetricsText(ctx)
		if err != nil {
			t.Fatalf("Scraping the manager: %v", err)
		}
		gf.scrapeMillis = append(gf.scrapeMillis, float64(time.Since(start).Microseconds())/1000)
		gf.scrapeBytes = append(gf.scrapeBytes, float64(len(text))/1024)
		gf.scrapeGzip = append(gf.scrapeGzip, float64(gzipSize(text))/1024)
		last = harness.ParseMetrics(text)
		r.sleep(time.Second)
	}
	for _, f := range gaugeFamilies {
		got := len(last[f.name])
		gf.series = append(gf.series, float64(got))
		want := f.perApp * r.n
		if !gauges {
			want = 0
		}
		if got != want {
			t.Errorf("[%s] %s has %d series, want %d", name, f.name, got, want)
		}
	}
	for _, samples := range last {
		gf.allSeries += float64(len(samples))
	}
	t.Logf("[%s] series %v of %.0f in all; scrape %.0f KiB (gzip %.0f KiB) in %.0f ms; RSS %.1f MiB; live heap %.1f MiB",
		name, gf.series, gf.allSeries, medianOf(gf.scrapeBytes), medianOf(gf.scrapeGzip), medianOf(gf.scrapeMillis),
		medianOf(gf.rss), medianOf(gf.heapAlloc))
	return gf
}

// gzipSize is the size of text compressed as Prometheus receives a scrape.
func gzipSize(text string) int {
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	_, _ = z.Write([]byte(text))
	_ = z.Close()
	return b.Len()
}

// recordGauges writes the section: each figure with the gauges on, beside the same
// figure with them off.
func recordGauges(n int, on, off *gaugeFigures) {
	label := fmt.Sprintf("%d apps", n)
	offFig := func(name, unit string, samples []float64) *Figure {
		return &Figure{Name: name + ", --sensor-gauges=false", Unit: unit, Samples: samples}
	}
	var figs []Figure
	gaugeSeries := 0.0
	for i, f := range gaugeFamilies {
		gaugeSeries += on.series[i]
		figs = append(figs, Figure{Name: fmt.Sprintf("series of %s, %s", f.name, label), Unit: "series",
			Samples: one(on.series[i]), Baseline: offFig("series of "+f.name, "series", one(off.series[i])),
			Note: fmt.Sprintf("Expected %d per app: %s.", f.perApp, f.why)})
	}
	perSeries := (medianOf(on.heapAlloc) - medianOf(off.heapAlloc)) * (1 << 20) / gaugeSeries
	figs = append(figs,
		Figure{Name: "series in a scrape of /metrics, " + label, Unit: "series", Samples: one(on.allSeries),
			Baseline: offFig("series in a scrape of /metrics", "series", one(off.allSeries)),
			Note:     "Every family the manager serves: controller-runtime's, client-go's, the Go runtime's and Homeostat's."},
		Figure{Name: "/metrics response, " + label, Unit: "KiB", Samples: on.scrapeBytes,
			Baseline: offFig("/metrics response", "KiB", off.scrapeBytes),
			Note:     "The text exposition, uncompressed; five scrapes."},
		Figure{Name: "/metrics response gzip-compressed, " + label, Unit: "KiB", Samples: on.scrapeGzip,
			Baseline: offFig("/metrics response gzip-compressed", "KiB", off.scrapeGzip),
			Note:     "The same text compressed with gzip's default level, as a scraper that asks for gzip receives it."},
		Figure{Name: "scrape of /metrics, " + label, Unit: "ms", Samples: on.scrapeMillis,
			Baseline: offFig("scrape of /metrics", "ms", off.scrapeMillis),
			Note:     "GET /metrics on loopback, request to the whole body read (the manager gathers, encodes and compresses it)."},
		Figure{Name: "manager RSS after settling, " + label, Unit: "MiB", Samples: on.rss,
			Baseline: offFig("manager RSS after settling", "MiB", off.rss),
			Note:     "VmRSS every 5 s over a minute with nothing changing and a scrape every 15 s."},
		Figure{Name: "manager live heap after a forced GC, " + label, Unit: "MiB", Samples: on.heapAlloc,
			Baseline: offFig("manager live heap after a forced GC", "MiB", off.heapAlloc),
			Note:     "HeapAlloc of runtime.MemStats right after a collection (/debug/pprof/heap?debug=1&gc=1), three times."},
		Figure{Name: "manager heap in use after a forced GC, " + label, Unit: "MiB", Samples: on.heapInuse,
			Baseline: offFig("manager heap in use after a forced GC", "MiB", off.heapInuse)},
		Figure{Name: "live heap per gauge series, " + label, Unit: "bytes", Samples: one(perSeries),
			Note: "(median live heap with the gauges - median without) / the gauges' series."},
		Figure{Name: "manager RSS per app for the gauges, " + label, Unit: "KiB",
			Samples: one((medianOf(on.rss) - medianOf(off.rss)) * 1024 / float64(n)),
			Note:    "(median RSS with the gauges - median without) / apps."},
		Figure{Name: "cold start to every app's sensor read, " + label, Unit: "s", Samples: one(on.coldStart),
			Baseline: offFig("cold start to every app's sensor read", "s", one(off.coldStart)),
			Note:     "From the manager's process start to the last app's status of its generation, Ready, with its sensor's value."},
	)
	Record(gaugeSection, figs...)
	Note(gaugeSection, "A local control plane of its own with the rate limits lifted and one kwok node. Each app has one component, "+
		"a Deployment of 0 replicas, one object sensor reading a number from its namespace's ConfigMap every 10 minutes, and "+
		"one symptom over it; 500 apps a namespace. No pods: a component's 12 sensors are series whatever their values, and "+
		"the scale section's 3 pods an app would weigh the same in both runs while taking 10 minutes to make at 10,000 apps. The manager (main.go, as a process) "+
		"runs first with the gauges, then, after every app's status is cleared, with --sensor-gauges=false; the baseline "+
		"of each figure is the second run. Rerun: HOMEOSTAT_BENCH=1 go test ./test/bench/ -run TestBenchSensorGauges -v "+
		"-timeout 90m (HOMEOSTAT_BENCH_GAUGE_APPS sets the app count, default 10000).")
	Note(gaugeSection, fmt.Sprintf("At %s the gauges hold %.0f series (%.0f per app) and make %.0f%% of a scrape's series; "+
		"they add %s to the uncompressed /metrics response (%s gzip-compressed), %s of live heap "+
		"(%.0f bytes a series) and %s of RSS (%.1f KiB an app).",
		label, gaugeSeries, gaugeSeries/float64(n), 100*gaugeSeries/on.allSeries,
		kibString(medianOf(on.scrapeBytes)-medianOf(off.scrapeBytes)), kibString(medianOf(on.scrapeGzip)-medianOf(off.scrapeGzip)),
		kibString((medianOf(on.heapAlloc)-medianOf(off.heapAlloc))*1024), perSeries,
		kibString((medianOf(on.rss)-medianOf(off.rss))*1024), (medianOf(on.rss)-medianOf(off.rss))*1024/float64(n)))
}

// kibString says a size given in KiB in KiB or, from 1 MiB, in MiB.
func kibString(kib float64) string {
	if kib >= 1024 || kib <= -1024 {
		return fmt.Sprintf("%.1f MiB", kib/1024)
	}
	return fmt.Sprintf("%.0f KiB", kib)
}
