package metricsapi

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// These tests call the handler directly, with listers of fixed pods and nodes; the
// package's other test reads the API through a real apiserver.

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testPod(ns, name, app string, phase corev1.PodPhase, containers ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": app}},
		Status:     corev1.PodStatus{Phase: phase},
	}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
	}
	return p
}

func testServer(t *testing.T, objs ...any) *Server {
	t.Helper()
	podIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	nodeIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.Pod:
			_ = podIdx.Add(o)
		case *corev1.Node:
			_ = nodeIdx.Add(o)
		}
	}
	s := newServer(corelisters.NewPodLister(podIdx), corelisters.NewNodeLister(nodeIdx), 0, logr.Discard())
	s.now = func() time.Time { return fixedNow }
	return s
}

func get(t *testing.T, h http.Handler, path, accept string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decodeJSON[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("Decoding %q: %v", rec.Body.String(), err)
	}
	return v
}

func TestListPodsReportsRunningPodsWithUsageThatMatchTheSelectors(t *testing.T) {
	s := testServer(t,
		testPod("shop", "web-1", "web", corev1.PodRunning, "app", "sidecar"),
		testPod("shop", "web-2", "web", corev1.PodRunning, "app"),
		testPod("shop", "web-3", "web", corev1.PodRunning, "app"), // no usage: not scraped yet
		testPod("shop", "web-4", "web", corev1.PodPending, "app"), // usage, but not running
		testPod("shop", "db-1", "db", corev1.PodRunning, "db"),
		testPod("other", "web-1", "web", corev1.PodRunning, "app"),
	)
	for _, p := range []struct{ ns, name string }{{"shop", "web-1"}, {"shop", "web-2"}, {"shop", "web-4"}, {"shop", "db-1"}, {"other", "web-1"}} {
		s.SetPodUsage(p.ns, p.name, resource.MustParse("150m"), resource.MustParse("64Mi"))
	}
	s.SetPodUsage("shop", "gone", resource.MustParse("1"), resource.MustParse("1Gi")) // no such pod
	h := s.handler()

	for _, tc := range []struct {
		name, path string
		want       []string
	}{
		{"a namespace", "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods", []string{"shop/db-1", "shop/web-1", "shop/web-2"}},
		{"a label selector", "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods?labelSelector=app%3Dweb", []string{"shop/web-1", "shop/web-2"}},
		{"a set-based selector", "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods?labelSelector=app+in+(db)", []string{"shop/db-1"}},
		{"a field selector", "/apis/metrics.k8s.io/v1beta1/pods?fieldSelector=metadata.name%3Dweb-1", []string{"other/web-1", "shop/web-1"}},
		{"every namespace", "/apis/metrics.k8s.io/v1beta1/pods", []string{"other/web-1", "shop/db-1", "shop/web-1", "shop/web-2"}},
		{"an empty result", "/apis/metrics.k8s.io/v1beta1/namespaces/none/pods", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(t, h, tc.path, "application/json")
			if rec.Code != http.StatusOK {
				t.Fatalf("%s: %d %s", tc.path, rec.Code, rec.Body)
			}
			list := decodeJSON[metricsv1beta1.PodMetricsList](t, rec)
			if list.Kind != "PodMetricsList" || list.APIVersion != "metrics.k8s.io/v1beta1" {
				t.Errorf("Kind %q apiVersion %q", list.Kind, list.APIVersion)
			}
			var got []string
			for _, m := range list.Items {
				got = append(got, m.Namespace+"/"+m.Name)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("Got %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("a pod's usage is on its first container, the others report zero", func(t *testing.T) {
		rec := get(t, h, "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods/web-1", "")
		m := decodeJSON[metricsv1beta1.PodMetrics](t, rec)
		if len(m.Containers) != 2 || m.Containers[0].Name != "app" || m.Containers[1].Name != "sidecar" {
			t.Fatalf("Containers %+v", m.Containers)
		}
		if c := m.Containers[0].Usage.Cpu().MilliValue(); c != 150 {
			t.Errorf("app uses %dm", c)
		}
		if c := m.Containers[1].Usage.Cpu().MilliValue(); c != 0 {
			t.Errorf("sidecar uses %dm", c)
		}
		if !m.Timestamp.Time.Equal(fixedNow) || m.Window.Duration != DefaultWindow || m.Labels["app"] != "web" {
			t.Errorf("Timestamp %s, window %s, labels %v", m.Timestamp, m.Window.Duration, m.Labels)
		}
	})
}

func TestGetIsNotFoundForAPodWithoutUsageOrThatDoesNotExist(t *testing.T) {
	s := testServer(t, testPod("shop", "web-1", "web", corev1.PodRunning, "app"))
	h := s.handler()
	for _, path := range []string{
		"/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods/web-1",
		"/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods/web-9",
		"/apis/metrics.k8s.io/v1beta1/nodes/kwok-node-0",
	} {
		rec := get(t, h, path, "")
		st := decodeJSON[metav1.Status](t, rec)
		if rec.Code != http.StatusNotFound || st.Reason != metav1.StatusReasonNotFound || st.Kind != "Status" {
			t.Errorf("%s: %d %+v, want a NotFound Status", path, rec.Code, st)
		}
	}
}

func TestNodesWithUsageAreReported(t *testing.T) {
	s := testServer(t,
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "kwok-node-0", Labels: map[string]string{"type": "kwok"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "kwok-node-1"}},
	)
	s.SetNodeUsage("kwok-node-0", resource.MustParse("2"), resource.MustParse("4Gi"))
	s.SetNodeUsage("kwok-node-1", resource.MustParse("1"), resource.MustParse("1Gi"))
	s.DeleteNodeUsage("kwok-node-1")
	rec := get(t, s.handler(), "/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=type%3Dkwok", "")
	list := decodeJSON[metricsv1beta1.NodeMetricsList](t, rec)
	if len(list.Items) != 1 || list.Items[0].Name != "kwok-node-0" || list.Items[0].Usage.Cpu().Value() != 2 {
		t.Errorf("Got %+v", list.Items)
	}
}

func TestDiscoveryAndOpenAPIDocuments(t *testing.T) {
	h := testServer(t).handler()

	groups := decodeJSON[metav1.APIGroupList](t, get(t, h, "/apis", ""))
	if groups.Kind != "APIGroupList" || len(groups.Groups) != 1 || groups.Groups[0].PreferredVersion.GroupVersion != "metrics.k8s.io/v1beta1" {
		t.Errorf("/apis: %+v", groups)
	}
	group := decodeJSON[metav1.APIGroup](t, get(t, h, "/apis/metrics.k8s.io", ""))
	if group.Kind != "APIGroup" || group.Name != "metrics.k8s.io" {
		t.Errorf("/apis/metrics.k8s.io: %+v", group)
	}
	resources := decodeJSON[metav1.APIResourceList](t, get(t, h, "/apis/metrics.k8s.io/v1beta1", ""))
	var got []string
	for _, r := range resources.APIResources {
		got = append(got, r.Name+"/"+r.Kind+"/"+strings.Join(r.Verbs, "+"))
	}
	if resources.GroupVersion != "metrics.k8s.io/v1beta1" || strings.Join(got, ",") != "nodes/NodeMetrics/get+list,pods/PodMetrics/get+list" {
		t.Errorf("/apis/metrics.k8s.io/v1beta1: %s %v", resources.GroupVersion, got)
	}
	if !resources.APIResources[1].Namespaced || resources.APIResources[0].Namespaced {
		t.Errorf("pods must be namespaced and nodes not: %+v", resources.APIResources)
	}
	v2 := decodeJSON[map[string]any](t, get(t, h, "/openapi/v2", ""))
	if v2["swagger"] != "2.0" {
		t.Errorf("/openapi/v2: %v", v2)
	}
	v3 := decodeJSON[map[string]any](t, get(t, h, "/openapi/v3", ""))
	if _, ok := v3["paths"]; !ok {
		t.Errorf("/openapi/v3: %v", v3)
	}
	if rec := get(t, h, "/healthz", ""); rec.Code != http.StatusOK {
		t.Errorf("/healthz: %d", rec.Code)
	}
}

func TestAnswersAreNegotiated(t *testing.T) {
	s := testServer(t, testPod("shop", "web-1", "web", corev1.PodRunning, "app"))
	s.SetPodUsage("shop", "web-1", resource.MustParse("150m"), resource.MustParse("64Mi"))
	h := s.handler()
	const path = "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods"
	for _, tc := range []struct {
		accept, want string
		code         int
	}{
		{"", "application/json", http.StatusOK},
		{"*/*", "application/json", http.StatusOK},
		{"application/vnd.kubernetes.protobuf, */*", "application/vnd.kubernetes.protobuf", http.StatusOK},
		{"application/vnd.kubernetes.protobuf", "application/vnd.kubernetes.protobuf", http.StatusOK},
		// kubectl get asks for a Table first.
		{"application/json;as=Table;v=v1;g=meta.k8s.io,application/json", "application/json", http.StatusOK},
		{"application/yaml", "application/json", http.StatusNotAcceptable},
	} {
		rec := get(t, h, path, tc.accept)
		if rec.Code != tc.code || rec.Header().Get("Content-Type") != tc.want {
			t.Errorf("Accept %q: %d %s, want %d %s", tc.accept, rec.Code, rec.Header().Get("Content-Type"), tc.code, tc.want)
		}
		if tc.want == runtime.ContentTypeProtobuf && !strings.HasPrefix(rec.Body.String(), "k8s\x00") {
			t.Errorf("Accept %q: the body is not a Kubernetes protobuf envelope: %q", tc.accept, rec.Body.String())
		}
	}
}

func TestWatchesAndWritesAreRefused(t *testing.T) {
	h := testServer(t).handler()
	if rec := get(t, h, "/apis/metrics.k8s.io/v1beta1/pods?watch=true", ""); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("watch: %d", rec.Code)
	}
	req := httptest.NewRequest(http.MethodDelete, "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods/web-1", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d", rec.Code)
	}
}

func TestOnlyTheFrontProxyIsServedAndItsUserIsRecorded(t *testing.T) {
	s := testServer(t)
	s.auth = &frontProxyAuth{cas: x509.NewCertPool(), allowedNames: []string{"front-proxy-client"}, userHeaders: []string{"X-Remote-User"}}
	h := s.handler()
	const path = "/apis/metrics.k8s.io/v1beta1/pods"
	proxy := func(cn, user string) *http.Request {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		cert := &x509.Certificate{Subject: pkix.Name{CommonName: cn}}
		// What the TLS stack leaves after verifying the certificate against the CA.
		req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}, VerifiedChains: [][]*x509.Certificate{{cert}}}
		if user != "" {
			req.Header.Set("X-Remote-User", user)
		}
		return req
	}
	for _, tc := range []struct {
		name string
		req  *http.Request
		code int
	}{
		{"no TLS", httptest.NewRequest(http.MethodGet, path, nil), http.StatusUnauthorized},
		{"a certificate of another name", proxy("admin", "admin"), http.StatusUnauthorized},
		{"the front proxy without a user", proxy("front-proxy-client", ""), http.StatusUnauthorized},
		{"the front proxy", proxy("front-proxy-client", "system:kube-controller-manager"), http.StatusOK},
		{"a health check without a certificate", httptest.NewRequest(http.MethodGet, "/healthz", nil), http.StatusOK},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, tc.req)
		if rec.Code != tc.code {
			body, _ := io.ReadAll(rec.Body)
			t.Errorf("%s: %d %s, want %d", tc.name, rec.Code, body, tc.code)
		}
	}
	reqs := s.Requests()
	if len(reqs) != 5 || reqs[3].User != "system:kube-controller-manager" || reqs[3].Code != http.StatusOK || reqs[0].Code != http.StatusUnauthorized {
		t.Errorf("Requests: %+v", reqs)
	}
}
