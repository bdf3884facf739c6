package metricsapi

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// The API this package serves.
const (
	Group   = metricsv1beta1.GroupName // metrics.k8s.io
	Version = "v1beta1"
)

// DefaultWindow is the window of every sample unless Options.Window says otherwise:
// metrics-server's default metric resolution.
const DefaultWindow = 15 * time.Second

// maxRequests bounds the request log.
const maxRequests = 4096

// Usage is the usage of a pod or a node.
type Usage struct {
	CPU, Memory resource.Quantity
}

// Request is one request the server answered, for a test to see who asked what.
type Request struct {
	At time.Time
	// User is the user the apiserver's front proxy asserted (X-Remote-User), empty for
	// a request that did not come through it.
	User string
	// Path and Query are the request's URL path and raw query.
	Path, Query string
	// Code is the HTTP status of the answer.
	Code int
}

// Server serves metrics.k8s.io/v1beta1 from a table of usage the test sets, for the pods
// and nodes its listers know. Start makes one and registers it with a cluster; its methods
// are safe for concurrent use.
type Server struct {
	log    logr.Logger
	window time.Duration
	now    func() time.Time
	pods   corelisters.PodLister
	nodes  corelisters.NodeLister
	codecs serializer.CodecFactory
	// auth is who may call; nil lets anyone (the package's own handler tests).
	auth *frontProxyAuth

	mu        sync.RWMutex
	podUsage  map[types.NamespacedName]Usage
	nodeUsage map[string]Usage

	reqMu    sync.Mutex
	requests []Request
}

// frontProxyAuth is the apiserver's front proxy as extension-apiserver-authentication
// describes it.
type frontProxyAuth struct {
	cas          *x509.CertPool
	allowedNames []string // empty: any name of the CA
	userHeaders  []string
	groupHeaders []string
}

func newServer(pods corelisters.PodLister, nodes corelisters.NodeLister, window time.Duration, log logr.Logger) *Server {
	scheme := runtime.NewScheme()
	if err := metricsv1beta1.AddToScheme(scheme); err != nil {
		panic(err) // registering four known types does not fail
	}
	if window <= 0 {
		window = DefaultWindow
	}
	return &Server{
		log: log, window: window, now: time.Now, pods: pods, nodes: nodes,
		codecs:   serializer.NewCodecFactory(scheme),
		podUsage: map[types.NamespacedName]Usage{}, nodeUsage: map[string]Usage{},
	}
}

// SetPodUsage sets a pod's usage, reported from the next request on while the pod exists
// and is Running. The pod need not exist yet.
func (s *Server) SetPodUsage(namespace, name string, cpu, memory resource.Quantity) {
	s.SetPodsUsage(Usage{CPU: cpu, Memory: memory}, types.NamespacedName{Namespace: namespace, Name: name})
}

// SetPodsUsage sets the usage of several pods at once: no request sees some of them
// changed and others not.
func (s *Server) SetPodsUsage(u Usage, pods ...types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range pods {
		s.podUsage[p] = Usage{CPU: u.CPU.DeepCopy(), Memory: u.Memory.DeepCopy()}
	}
}

// DeletePodUsage forgets the usage of the pods, as if metrics-server had no sample of
// them: they are left out of lists and a get of one is NotFound.
func (s *Server) DeletePodUsage(pods ...types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range pods {
		delete(s.podUsage, p)
	}
}

// SetNodeUsage sets a node's usage.
func (s *Server) SetNodeUsage(name string, cpu, memory resource.Quantity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodeUsage[name] = Usage{CPU: cpu.DeepCopy(), Memory: memory.DeepCopy()}
}

// DeleteNodeUsage forgets a node's usage.
func (s *Server) DeleteNodeUsage(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.nodeUsage, name)
}

// Requests returns the requests answered so far, oldest first (the last 4096).
func (s *Server) Requests() []Request {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	return slices.Clone(s.requests)
}

func (s *Server) record(r Request) {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	if len(s.requests) == maxRequests {
		s.requests = slices.Delete(s.requests, 0, 1)
	}
	s.requests = append(s.requests, r)
}

// handler serves the API.
func (s *Server) handler() http.Handler {
	const gv = "/apis/" + Group + "/" + Version
	mux := http.NewServeMux()
	for _, p := range []string{"/healthz", "/livez", "/readyz"} {
		mux.HandleFunc("GET "+p, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	}
	mux.HandleFunc("GET /apis", s.serveGroupList)
	mux.HandleFunc("GET /apis/"+Group, s.serveGroup)
	mux.HandleFunc("GET "+gv, s.serveResourceList)
	mux.HandleFunc("GET "+gv+"/pods", s.listPods)
	mux.HandleFunc("GET "+gv+"/namespaces/{namespace}/pods", s.listPods)
	mux.HandleFunc("GET "+gv+"/namespaces/{namespace}/pods/{name}", s.getPod)
	mux.HandleFunc("GET "+gv+"/nodes", s.listNodes)
	mux.HandleFunc("GET "+gv+"/nodes/{name}", s.getNode)
	mux.HandleFunc("GET /openapi/v2", s.serveOpenAPIv2)
	mux.HandleFunc("GET /openapi/v3", s.serveOpenAPIv3)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			writeStatus(w, apierrors.NewMethodNotSupported(metricsv1beta1.Resource(""), r.Method))
			return
		}
		writeStatus(w, apierrors.NewNotFound(metricsv1beta1.Resource(""), r.URL.Path))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		user, err := s.authenticate(r)
		switch {
		case err != nil && !isHealthPath(r.URL.Path):
			s.log.V(1).Info("Refusing a request that did not come from the front proxy", "path", r.URL.Path, "reason", err.Error())
			writeStatus(rec, apierrors.NewUnauthorized(err.Error()))
		case r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1":
			writeStatus(rec, apierrors.NewMethodNotSupported(metricsv1beta1.Resource(""), "watch"))
		default:
			mux.ServeHTTP(rec, r)
		}
		s.record(Request{At: s.now(), User: user, Path: r.URL.Path, Query: r.URL.RawQuery, Code: rec.code})
	})
}

func isHealthPath(p string) bool { return p == "/healthz" || p == "/livez" || p == "/readyz" }

// authenticate accepts a request that presents a client certificate of the front
// proxy's CA under an allowed name, and returns the user the front proxy asserts.
func (s *Server) authenticate(r *http.Request) (string, error) {
	if s.auth == nil {
		return firstHeader(r, []string{"X-Remote-User"}), nil
	}
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return "", fmt.Errorf("no client certificate of the front proxy's CA")
	}
	cn := r.TLS.VerifiedChains[0][0].Subject.CommonName
	if len(s.auth.allowedNames) > 0 && !slices.Contains(s.auth.allowedNames, cn) {
		return "", fmt.Errorf("client certificate %q is not among the front proxy's allowed names %v", cn, s.auth.allowedNames)
	}
	user := firstHeader(r, s.auth.userHeaders)
	if user == "" {
		return "", fmt.Errorf("the front proxy asserted no user")
	}
	return user, nil
}

func firstHeader(r *http.Request, names []string) string {
	for _, n := range names {
		if v := r.Header.Get(n); v != "" {
			return v
		}
	}
	return ""
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// Discovery, as an aggregated API server serves it. The aggregator asks for aggregated
// discovery first and falls back to these documents.

func (s *Server) serveGroupList(w http.ResponseWriter, _ *http.Request) {
	g := apiGroup()
	writeJSON(w, http.StatusOK, &metav1.APIGroupList{
		TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"},
		Groups:   []metav1.APIGroup{g},
	})
}

func (s *Server) serveGroup(w http.ResponseWriter, _ *http.Request) {
	g := apiGroup()
	g.TypeMeta = metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}
	writeJSON(w, http.StatusOK, &g)
}

func apiGroup() metav1.APIGroup {
	v := metav1.GroupVersionForDiscovery{GroupVersion: Group + "/" + Version, Version: Version}
	return metav1.APIGroup{Name: Group, Versions: []metav1.GroupVersionForDiscovery{v}, PreferredVersion: v}
}

func (s *Server) serveResourceList(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, &metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: Group + "/" + Version,
		APIResources: []metav1.APIResource{
			{Name: "nodes", Kind: "NodeMetrics", Namespaced: false, Verbs: metav1.Verbs{"get", "list"}},
			{Name: "pods", Kind: "PodMetrics", Namespaced: true, Verbs: metav1.Verbs{"get", "list"}},
		},
	})
}

// The aggregator merges every aggregated server's OpenAPI; empty documents satisfy it.

func (s *Server) serveOpenAPIv2(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"swagger": "2.0",
		"info":    map[string]string{"title": "metrics.k8s.io (a test's)", "version": Version},
		"paths":   map[string]any{},
	})
}

func (s *Server) serveOpenAPIv3(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"paths": map[string]any{}})
}

// Pods.

func (s *Server) listPods(w http.ResponseWriter, r *http.Request) {
	sel, fsel, err := selectors(r)
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	var pods []*corev1.Pod
	if ns := r.PathValue("namespace"); ns != "" {
		pods, err = s.pods.Pods(ns).List(sel)
	} else {
		pods, err = s.pods.List(sel)
	}
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	now := s.now()
	list := &metricsv1beta1.PodMetricsList{Items: []metricsv1beta1.PodMetrics{}}
	s.mu.RLock()
	for _, p := range pods {
		if !fsel.Matches(fields.Set{"metadata.name": p.Name, "metadata.namespace": p.Namespace}) {
			continue
		}
		if m, ok := s.podMetrics(p, now); ok {
			list.Items = append(list.Items, m)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(list.Items, func(a, b metricsv1beta1.PodMetrics) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	s.writeObject(w, r, list)
}

func (s *Server) getPod(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	p, err := s.pods.Pods(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	if err == nil {
		s.mu.RLock()
		m, ok := s.podMetrics(p, s.now())
		s.mu.RUnlock()
		if ok {
			s.writeObject(w, r, &m)
			return
		}
	}
	writeStatus(w, apierrors.NewNotFound(metricsv1beta1.Resource("pods"), name))
}

// podMetrics is what metrics-server reports of a pod; s.mu is held for reading.
func (s *Server) podMetrics(p *corev1.Pod, now time.Time) (metricsv1beta1.PodMetrics, bool) {
	u, ok := s.podUsage[types.NamespacedName{Namespace: p.Namespace, Name: p.Name}]
	if !ok || p.Status.Phase != corev1.PodRunning || len(p.Spec.Containers) == 0 {
		return metricsv1beta1.PodMetrics{}, false
	}
	m := metricsv1beta1.PodMetrics{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels,
			CreationTimestamp: metav1.NewTime(now)},
		Timestamp: metav1.NewTime(now),
		Window:    metav1.Duration{Duration: s.window},
	}
	for i, c := range p.Spec.Containers {
		usage := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("0"), corev1.ResourceMemory: resource.MustParse("0")}
		if i == 0 {
			usage = corev1.ResourceList{corev1.ResourceCPU: u.CPU.DeepCopy(), corev1.ResourceMemory: u.Memory.DeepCopy()}
		}
		m.Containers = append(m.Containers, metricsv1beta1.ContainerMetrics{Name: c.Name, Usage: usage})
	}
	return m, true
}

// Nodes.

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) {
	sel, fsel, err := selectors(r)
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	nodes, err := s.nodes.List(sel)
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	now := s.now()
	list := &metricsv1beta1.NodeMetricsList{Items: []metricsv1beta1.NodeMetrics{}}
	s.mu.RLock()
	for _, n := range nodes {
		if !fsel.Matches(fields.Set{"metadata.name": n.Name}) {
			continue
		}
		if m, ok := s.nodeMetrics(n, now); ok {
			list.Items = append(list.Items, m)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(list.Items, func(a, b metricsv1beta1.NodeMetrics) int { return strings.Compare(a.Name, b.Name) })
	s.writeObject(w, r, list)
}

func (s *Server) getNode(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	n, err := s.nodes.Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	if err == nil {
		s.mu.RLock()
		m, ok := s.nodeMetrics(n, s.now())
		s.mu.RUnlock()
		if ok {
			s.writeObject(w, r, &m)
			return
		}
	}
	writeStatus(w, apierrors.NewNotFound(metricsv1beta1.Resource("nodes"), name))
}

// nodeMetrics is what metrics-server reports of a node; s.mu is held for reading.
func (s *Server) nodeMetrics(n *corev1.Node, now time.Time) (metricsv1beta1.NodeMetrics, bool) {
	u, ok := s.nodeUsage[n.Name]
	if !ok {
		return metricsv1beta1.NodeMetrics{}, false
	}
	return metricsv1beta1.NodeMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: n.Labels, CreationTimestamp: metav1.NewTime(now)},
		Timestamp:  metav1.NewTime(now),
		Window:     metav1.Duration{Duration: s.window},
		Usage:      corev1.ResourceList{corev1.ResourceCPU: u.CPU.DeepCopy(), corev1.ResourceMemory: u.Memory.DeepCopy()},
	}, true
}

// selectors parses the request's labelSelector and fieldSelector. The fields are
// metadata.name and metadata.namespace, as metrics-server supports them.
func selectors(r *http.Request) (labels.Selector, fields.Selector, error) {
	q := r.URL.Query()
	sel, err := labels.Parse(q.Get("labelSelector"))
	if err != nil {
		return nil, nil, fmt.Errorf("labelSelector: %w", err)
	}
	fsel, err := fields.ParseSelector(q.Get("fieldSelector"))
	if err != nil {
		return nil, nil, fmt.Errorf("fieldSelector: %w", err)
	}
	for _, req := range fsel.Requirements() {
		if req.Field != "metadata.name" && req.Field != "metadata.namespace" {
			return nil, nil, fmt.Errorf("fieldSelector: field %q is not supported: use metadata.name or metadata.namespace", req.Field)
		}
	}
	return sel, fsel, nil
}

// Encoding.

// writeObject writes a metrics object in the first encoding the request accepts: JSON
// (also for */* and no Accept header) or protobuf. A Table is never served: a client
// that asks for one lists JSON as its fallback.
func (s *Server) writeObject(w http.ResponseWriter, r *http.Request, obj runtime.Object) {
	mediaType, ok := negotiate(r.Header.Get("Accept"))
	if !ok {
		writeStatus(w, apierrors.NewGenericServerResponse(http.StatusNotAcceptable, "get", metricsv1beta1.Resource(""), "",
			"only application/json and application/vnd.kubernetes.protobuf are served", 0, false))
		return
	}
	info, ok := runtime.SerializerInfoForMediaType(s.codecs.SupportedMediaTypes(), mediaType)
	if !ok {
		writeStatus(w, apierrors.NewInternalError(fmt.Errorf("no serializer for %s", mediaType)))
		return
	}
	enc := s.codecs.EncoderForVersion(info.Serializer, metricsv1beta1.SchemeGroupVersion)
	w.Header().Set("Content-Type", info.MediaType)
	w.WriteHeader(http.StatusOK)
	if err := enc.Encode(obj, w); err != nil {
		s.log.Error(err, "Encoding an answer failed", "path", r.URL.Path)
	}
}

// negotiate picks the media type of an answer from an Accept header, in the header's
// order (q-values are not weighed: clients of the API list what they prefer first).
func negotiate(accept string) (string, bool) {
	if strings.TrimSpace(accept) == "" {
		return runtime.ContentTypeJSON, true
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if _, ok := params["as"]; ok {
			continue // a Table or a partial object: not served
		}
		switch mt {
		case runtime.ContentTypeJSON, "application/*", "*/*":
			return runtime.ContentTypeJSON, true
		case runtime.ContentTypeProtobuf:
			return runtime.ContentTypeProtobuf, true
		}
	}
	return "", false
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", runtime.ContentTypeJSON)
	w.WriteHeader(code)
	_, _ = w.Write(data)
}

// writeStatus writes an API error as a metav1.Status in JSON, which every client decodes.
func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	st := err.ErrStatus
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	writeJSON(w, int(st.Code), &st)
}
