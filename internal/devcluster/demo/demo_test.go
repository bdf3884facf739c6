package demo

import (
	"context"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/homeostat-dev/homeostat/internal/devcluster/metricsapi"
)

func TestSpreadSharesTheLoadAndSlowsAsAPodFills(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rps      float64
		pods     int
		per, p95 float64
		milliCPU int64
	}{
		{name: "the default load on the sample's 2 pods", rps: 300, pods: 2, per: 150, p95: 0.05 / 0.7, milliCPU: 160},
		{name: "the README's 900 on 2 pods: above the band and the CPU target", rps: 900, pods: 2, per: 450, p95: 0.5, milliCPU: 460},
		{name: "900 on 3 pods: within the band, near the target", rps: 900, pods: 3, per: 300, p95: 0.125, milliCPU: 310},
		{name: "900 on 4 pods: below the band", rps: 900, pods: 4, per: 225, p95: 0.05 / 0.55, milliCPU: 235},
		{name: "a pod at its capacity is saturated", rps: 1000, pods: 2, per: 500, p95: MaxP95, milliCPU: 510},
		{name: "past its capacity too", rps: 5000, pods: 2, per: 2500, p95: MaxP95, milliCPU: 2510},
		{name: "no load: idle pods", rps: 0, pods: 2, per: 0, p95: IdleP95, milliCPU: IdleMilliCPU},
		{name: "no serving pod serves nothing", rps: 900, pods: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := Spread(tc.rps, tc.pods)
			if l.RPS != tc.per || math.Abs(l.P95-tc.p95) > 1e-9 || l.MilliCPU != tc.milliCPU {
				t.Errorf("Spread(%v, %d) = %+v, want %v a second, p95 %.4fs, %dm", tc.rps, tc.pods, l, tc.per, tc.p95, tc.milliCPU)
			}
		})
	}
}

func TestParseRPSTakesANumberOfRequestsASecond(t *testing.T) {
	for in, want := range map[string]float64{"300": 300, " 900 ": 900, "0": 0, "12.5": 12.5, "1e3": 1000} {
		if got, err := ParseRPS(in); err != nil || got != want {
			t.Errorf("ParseRPS(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fast", "-1", "NaN", "+Inf", "1e9", "300rps"} {
		if _, err := ParseRPS(in); err == nil || !strings.Contains(err.Error(), "data.rps") {
			t.Errorf("ParseRPS(%q) = %v, want an error that names data.rps", in, err)
		}
	}
}

// usageTable records what the driver sets, as metricsapi.Server keeps it.
type usageTable struct {
	mu  sync.Mutex
	cpu map[string]int64 // pod name -> millicores
}

func (u *usageTable) SetPodsUsage(usage metricsapi.Usage, pods ...types.NamespacedName) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, p := range pods {
		u.cpu[p.Name] = usage.CPU.MilliValue()
	}
}

func (u *usageTable) DeletePodUsage(pods ...types.NamespacedName) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, p := range pods {
		delete(u.cpu, p.Name)
	}
}

func (u *usageTable) get() map[string]int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := map[string]int64{}
	for k, v := range u.cpu {
		out[k] = v
	}
	return out
}

func pod(name, app string, ready bool) *corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name, Labels: map[string]string{appLabel: app}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}},
	}
}

// TestDriverSpreadsTheConfigMapsLoadOverTheReadyAPIPods drives the driver through the
// demo's life on a fake clientset: the ConfigMap it creates, a change of the load, a
// value it refuses, a pod that turns unready and one that goes.
func TestDriverSpreadsTheConfigMapsLoadOverTheReadyAPIPods(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	client := fake.NewClientset(pod("api-1", "api", true), pod("api-2", "api", true), pod("web-1", "web", true))
	table := &usageTable{cpu: map[string]int64{}}
	e := newExporter(time.Now)
	d := newDriver(client, table, e, testr.New(t))
	if err := d.start(ctx); err != nil {
		t.Fatal(err)
	}
	cm, err := client.CoreV1().ConfigMaps(Namespace).Get(ctx, LoadConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("The driver did not create the ConfigMap: %v", err)
	}
	if cm.Data[RPSKey] != "300" || !strings.Contains(cm.Annotations[describeAnnotation], "kubectl -n homeostat-demo patch configmap demo-load") {
		t.Errorf("The ConfigMap holds %v and says %q; want rps 300 and how to change it", cm.Data, cm.Annotations[describeAnnotation])
	}
	eventually(t, "300 a second on 2 pods: 160m each, web idle", func() bool {
		u := table.get()
		return u["api-1"] == 160 && u["api-2"] == 160 && u["web-1"] == IdleMilliCPU
	}, table)

	cm.Data[RPSKey] = "900"
	if _, err := client.CoreV1().ConfigMaps(Namespace).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "900 a second on 2 pods: 460m each", func() bool { return table.get()["api-1"] == 460 }, table)
	e.mu.Lock()
	rps, p95 := e.rps, e.p95
	e.mu.Unlock()
	if rps != 900 || math.Abs(p95-0.5) > 1e-9 {
		t.Errorf("The exporter serves %v a second at p95 %v, want 900 at 0.5", rps, p95)
	}

	cm.Data[RPSKey] = "lots"
	if _, err := client.CoreV1().ConfigMaps(Namespace).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	unready := pod("api-2", "api", false)
	if _, err := client.CoreV1().Pods(Namespace).UpdateStatus(ctx, unready, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a refused value keeps 900, now all on api-1 (910m); unready api-2 idles", func() bool {
		u := table.get()
		return u["api-1"] == 910 && u["api-2"] == IdleMilliCPU
	}, table)

	if err := client.CoreV1().Pods(Namespace).Delete(ctx, "api-2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a deleted pod has no usage", func() bool {
		_, ok := table.get()["api-2"]
		return !ok
	}, table)
	if d.servingPods() != 1 {
		t.Errorf("%d serving pods, want 1", d.servingPods())
	}
}

func eventually(t *testing.T, what string, ok func() bool, table *usageTable) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("Not within 5s: %s; usage %v", what, table.get())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestManagerMetricsReadsTheManagersFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		addr string
		why  string
	}{
		{name: "make run's flags", args: []string{"--zap-devel", "--metrics-bind-address=127.0.0.1:8080", "--metrics-secure=false"}, addr: "127.0.0.1:8080"},
		{name: "a value after the flag, one dash", args: []string{"-metrics-bind-address", ":9000", "-metrics-secure=false"}, addr: "127.0.0.1:9000"},
		{name: "all addresses are dialled on loopback", args: []string{"--metrics-bind-address=0.0.0.0:8080", "--metrics-secure=false"}, addr: "127.0.0.1:8080"},
		{name: "no flag: main.go serves no metrics", args: nil, why: "serves no metrics"},
		{name: "secure by default", args: []string{"--metrics-bind-address=127.0.0.1:8080"}, why: "HTTPS"},
		{name: "a bare bool flag is true", args: []string{"--metrics-bind-address=127.0.0.1:8080", "--metrics-secure"}, why: "HTTPS"},
		{name: "not on loopback", args: []string{"--metrics-bind-address=10.0.0.1:8080", "--metrics-secure=false"}, why: "not on loopback"},
		{name: "not host:port", args: []string{"--metrics-bind-address=8080", "--metrics-secure=false"}, why: "not host:port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, why := ManagerMetrics(tc.args)
			if addr != tc.addr || !strings.Contains(why, tc.why) || (tc.why == "") != (why == "") {
				t.Errorf("ManagerMetrics(%q) = %q, %q; want %q and a reason with %q", tc.args, addr, why, tc.addr, tc.why)
			}
		})
	}
}

func TestPointSamplesAtMovesOnlyTheSensorsOfTheDefaultAddress(t *testing.T) {
	app := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "autonomic.homeostat.dev/v1alpha1", "kind": "AutonomicApp",
		"metadata": map[string]any{"namespace": "homeostat-demo", "name": "api"},
		"spec": map[string]any{"sensors": []any{
			map[string]any{"name": "latency", "prometheus": map[string]any{"address": "http://127.0.0.1:9090", "query": "q"}},
			map[string]any{"name": "other", "prometheus": map[string]any{"address": "http://prometheus.monitoring:9090", "query": "q"}},
			map[string]any{"name": "cpu", "resource": map[string]any{"component": "api", "resource": "cpu"}},
		}},
	}}
	cm := &unstructured.Unstructured{Object: map[string]any{"kind": "ConfigMap", "spec": map[string]any{"address": "http://127.0.0.1:9090"}}}
	if moved := PointSamplesAt([]*unstructured.Unstructured{app, cm}, DefaultPrometheusAddress); len(moved) != 0 {
		t.Errorf("At the default address it moved %v", moved)
	}
	moved := PointSamplesAt([]*unstructured.Unstructured{app, cm}, "127.0.0.1:19090")
	if strings.Join(moved, ",") != "homeostat-demo/api/latency" {
		t.Errorf("Moved %v, want homeostat-demo/api/latency", moved)
	}
	sensors, _, _ := unstructured.NestedSlice(app.Object, "spec", "sensors")
	got := []string{}
	for _, s := range sensors {
		a, _, _ := unstructured.NestedString(s.(map[string]any), "prometheus", "address")
		got = append(got, a)
	}
	if strings.Join(got, ",") != "http://127.0.0.1:19090,http://prometheus.monitoring:9090," {
		t.Errorf("The sensors' addresses are %q", got)
	}
}

func TestCheckAddressSaysWhatToDoWhenThePortIsTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	err = CheckAddress(l.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "is in use") || !strings.Contains(err.Error(), "--prometheus-address") {
		t.Errorf("CheckAddress of a taken port: %v; want it to say so and how to choose another", err)
	}
	if err := CheckAddress("192.0.2.1:9090"); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("CheckAddress of an address off loopback: %v", err)
	}
	if err := CheckAddress("127.0.0.1:0"); err != nil {
		t.Errorf("CheckAddress of a free port: %v", err)
	}
}
