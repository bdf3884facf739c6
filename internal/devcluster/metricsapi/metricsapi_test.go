package metricsapi_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
	"k8s.io/utils/ptr"

	"github.com/homeostat-dev/homeostat/internal/devcluster"
	"github.com/homeostat-dev/homeostat/internal/devcluster/metricsapi"
)

// TestPodMetricsAreListedThroughTheAPIServer starts a local control plane, registers the
// API with it and reads it as every consumer does: with client-go's metrics clientset
// through kube-apiserver's aggregation layer.
func TestPodMetricsAreListedThroughTheAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local control plane; skipped with -short")
	}
	ctx := t.Context()
	cluster := devcluster.StartForTest(t, devcluster.Options{})
	cfg := cluster.RESTConfig()
	client := kubernetes.NewForConfigOrDie(cfg)

	began := time.Now()
	srv, err := metricsapi.Start(ctx, cfg, metricsapi.Options{})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("The API was registered and Available in %s, at %s", time.Since(began).Round(time.Millisecond), srv.Addr())
	defer func() {
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}()

	ns := "metrics"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	web := createDeployment(t, client, ns, "web", 3)
	createDeployment(t, client, ns, "db", 1)
	webPods := runningPods(t, client, ns, "web", 3)
	dbPods := runningPods(t, client, ns, "db", 1)

	// Two of the three web pods and the db pod have usage; the third web pod has none
	// yet, as a pod metrics-server has not scraped.
	srv.SetPodUsage(ns, webPods[0], resource.MustParse("150m"), resource.MustParse("40Mi"))
	srv.SetPodUsage(ns, webPods[1], resource.MustParse("50m"), resource.MustParse("30Mi"))
	srv.SetPodUsage(ns, dbPods[0], resource.MustParse("1"), resource.MustParse("1Gi"))
	srv.SetNodeUsage("kwok-node-0", resource.MustParse("1200m"), resource.MustParse("2Gi"))

	metrics := metricsclient.NewForConfigOrDie(cfg).MetricsV1beta1()

	t.Run("a list with the workload's label selector returns its pods that have metrics, with their labels and containers", func(t *testing.T) {
		sel := metav1.FormatLabelSelector(web.Spec.Selector)
		list, err := metrics.PodMetricses(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		var names []string
		for _, m := range list.Items {
			names = append(names, m.Name)
			if m.Labels["app"] != "web" {
				t.Errorf("%s has labels %v, want the pod's", m.Name, m.Labels)
			}
			if len(m.Containers) != 1 || m.Containers[0].Name != "app" {
				t.Errorf("%s has containers %+v, want one named app", m.Name, m.Containers)
			}
			if m.Window.Duration != metricsapi.DefaultWindow || time.Since(m.Timestamp.Time) > time.Minute {
				t.Errorf("%s has window %s and timestamp %s, want 15s and now", m.Name, m.Window.Duration, m.Timestamp)
			}
		}
		want := []string{webPods[0], webPods[1]}
		slices.Sort(want)
		if !slices.Equal(names, want) {
			t.Fatalf("Listed %v, want %v (the web pods with usage, not %s, nor the db pod)", names, want, webPods[2])
		}
		cpu := list.Items[slices.Index(names, webPods[0])].Containers[0].Usage[corev1.ResourceCPU]
		if cpu.MilliValue() != 150 {
			t.Errorf("%s uses %s CPU, want 150m", webPods[0], cpu.String())
		}
	})

	t.Run("a list of all namespaces and a field selector select as metrics-server's do", func(t *testing.T) {
		all, err := metrics.PodMetricses("").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(all.Items) != 3 {
			t.Errorf("Listed %d pod metrics in all namespaces, want 3", len(all.Items))
		}
		one, err := metrics.PodMetricses(ns).List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + dbPods[0]})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(one.Items) != 1 || one.Items[0].Name != dbPods[0] {
			t.Errorf("The field selector selected %d items, want %s alone", len(one.Items), dbPods[0])
		}
	})

	t.Run("a get returns a pod's metrics, and NotFound for a pod without any", func(t *testing.T) {
		m, err := metrics.PodMetricses(ns).Get(ctx, dbPods[0], metav1.GetOptions{})
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if mem := m.Containers[0].Usage[corev1.ResourceMemory]; mem.Value() != 1<<30 {
			t.Errorf("%s uses %s memory, want 1Gi", m.Name, mem.String())
		}
		_, err = metrics.PodMetricses(ns).Get(ctx, webPods[2], metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("Get of a pod without usage: %v, want NotFound", err)
		}
	})

	t.Run("node metrics are served", func(t *testing.T) {
		list, err := metrics.NodeMetricses().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(list.Items) != 1 || list.Items[0].Name != "kwok-node-0" {
			t.Fatalf("Listed %+v, want kwok-node-0", list.Items)
		}
		if cpu := list.Items[0].Usage[corev1.ResourceCPU]; cpu.MilliValue() != 1200 {
			t.Errorf("kwok-node-0 uses %s CPU, want 1200m", cpu.String())
		}
	})

	t.Run("a protobuf client, as kube-controller-manager's HPA controller is, gets protobuf", func(t *testing.T) {
		pcfg := rest.CopyConfig(cfg)
		pcfg.ContentType = runtime.ContentTypeProtobuf
		pcfg.AcceptContentTypes = runtime.ContentTypeProtobuf
		list, err := metricsclient.NewForConfigOrDie(pcfg).MetricsV1beta1().PodMetricses(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(list.Items) != 3 {
			t.Errorf("Listed %d, want 3", len(list.Items))
		}
	})

	t.Run("a change is seen by the next request, and deleted usage is no metric", func(t *testing.T) {
		srv.SetPodsUsage(metricsapi.Usage{CPU: resource.MustParse("75m"), Memory: resource.MustParse("10Mi")},
			types.NamespacedName{Namespace: ns, Name: webPods[0]}, types.NamespacedName{Namespace: ns, Name: webPods[2]})
		srv.DeletePodUsage(types.NamespacedName{Namespace: ns, Name: webPods[1]})
		list, err := metrics.PodMetricses(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		got := map[string]int64{}
		for _, m := range list.Items {
			got[m.Name] = m.Containers[0].Usage.Cpu().MilliValue()
		}
		want := map[string]int64{webPods[0]: 75, webPods[2]: 75}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Got %v, want %v", got, want)
		}
	})

	t.Run("every request came through the front proxy, which asserted the caller", func(t *testing.T) {
		var users []string
		for _, r := range srv.Requests() {
			if !slices.Contains(users, r.User) {
				users = append(users, r.User)
			}
		}
		if !slices.Contains(users, "admin") || !slices.Contains(users, "system:kube-aggregator") {
			t.Errorf("Users seen: %v, want admin (the test's client) and system:kube-aggregator (the availability check)", users)
		}
	})

	t.Run("a client that is not the front proxy is refused, the cluster's own admin included", func(t *testing.T) {
		tlsCfg, err := rest.TLSConfigFor(cfg) // the admin's certificate, of the cluster CA
		if err != nil {
			t.Fatal(err)
		}
		tlsCfg.InsecureSkipVerify, tlsCfg.RootCAs = true, nil //nolint:gosec // the server's certificate is not under test
		for name, tc := range map[string]*tls.Config{
			"no certificate":          {InsecureSkipVerify: true}, //nolint:gosec // as above
			"the admin's certificate": tlsCfg,
		} {
			hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+srv.Addr()+"/apis/metrics.k8s.io/v1beta1/pods", nil)
			req.Header.Set("X-Remote-User", "system:admin")
			resp, err := hc.Do(req)
			if err != nil {
				// A certificate of another CA fails the TLS handshake.
				t.Logf("%s: refused: %v", name, err)
				continue
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s: %s, want 401 Unauthorized", name, resp.Status)
			}
		}
	})

	t.Run("Stop unregisters the API", func(t *testing.T) {
		if err := srv.Stop(ctx); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		groups, err := client.Discovery().ServerGroups()
		if err != nil {
			t.Fatalf("Discovery: %v", err)
		}
		for _, g := range groups.Groups {
			if g.Name == metricsapi.Group {
				t.Errorf("Discovery still lists %s after Stop", g.Name)
			}
		}
	})
}

func createDeployment(t *testing.T, client kubernetes.Interface, ns, name string, replicas int32) *appsv1.Deployment {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.local/" + name + ":1",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}}},
			},
		},
	}
	d, err := client.AppsV1().Deployments(ns).Create(t.Context(), d, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// runningPods waits until the app has n Running pods and returns their names, sorted.
func runningPods(t *testing.T, client kubernetes.Interface, ns, app string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		list, err := client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning {
				names = append(names, p.Name)
			}
		}
		if len(names) == n {
			slices.Sort(names)
			return names
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d pods of %s are Running after a minute", len(names), n, app)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
