package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// The tenancy specs' world. A tenant is a namespace and a ServiceAccount of it bound to
// the built-in edit ClusterRole there and nowhere else; the specs act as the tenant
// through a client that impersonates that ServiceAccount, so the API server's RBAC
// decides what the tenant may write, exactly as for a team with kubectl. The apps act as
// the ServiceAccount config/lockdown names (--default-service-account), with the Role
// of config/lockdown/tenant. The specs' servers listen on 127.0.0.2, the one loopback
// address the tenancy manager's egress policy opens.

const (
	// tenantUser is the ServiceAccount a tenant acts as: edit in its namespace only.
	tenantUser = "team"
	// appServiceAccount is the manager's --default-service-account, as in config/lockdown.
	appServiceAccount = "homeostat-tenant"
	// attackHost is where the specs' servers listen: the only address the tenancy
	// manager's --egress-allow-cidrs opens. The rest of loopback (127.0.0.1, where the
	// API server and the manager's probes listen) stays refused.
	attackHost = "127.0.0.2"
)

// tenant is a namespace and the client of the team that owns it.
type tenant struct {
	ns string
	// c impersonates system:serviceaccount:<ns>:team.
	c client.Client
	// cfg is c's rest config.
	cfg *rest.Config
	// warned are the warnings the API server answered the tenant's requests with.
	warned warnings
}

// warnings keeps the API server's warnings (an unknown field it dropped, say) and shows
// them in the spec's output.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
	fmt.Fprintln(GinkgoWriter, "API server warning:", text)
}

func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.msgs)
}

// user is the tenant's user name as the API server authenticates it.
func (t *tenant) user() string { return "system:serviceaccount:" + t.ns + ":" + tenantUser }

// newTenant creates a namespace (deleted after the spec or container), binds its
// ServiceAccount team to edit in it, grants the apps' ServiceAccount the Role of
// config/lockdown/tenant, and returns the team's impersonating client once the API
// server lets it list apps there.
func newTenant(prefix string) *tenant {
	ctx := context.Background()
	ns := newNamespace(prefix)
	Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tenantUser}})).To(Succeed())
	Expect(k8s.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tenantUser + "-edit"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: tenantUser}},
	})).To(Succeed())
	grantAppServiceAccount(ns)

	t := &tenant{ns: ns, cfg: rest.CopyConfig(restConfig)}
	t.cfg.Impersonate = rest.ImpersonationConfig{UserName: t.user()}
	t.cfg.WarningHandler = &t.warned
	var err error
	t.c, err = client.New(t.cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	// The edit role gets the AutonomicApp rules by aggregation (config/rbac), and the
	// RBAC authorizer sees a new binding within moments.
	Eventually(func() error {
		return t.c.List(ctx, &v1alpha1.AutonomicAppList{}, client.InNamespace(ns))
	}).WithTimeout(30*time.Second).WithPolling(250*time.Millisecond).Should(Succeed(), "tenant %s may list its apps", ns)
	return t
}

// grantAppServiceAccount creates, in ns, what config/lockdown/tenant gives a tenant
// namespace: the ServiceAccount homeostat-tenant, its Role and RoleBinding.
func grantAppServiceAccount(ns string) {
	for _, o := range kustomize(filepath.Join("config", "lockdown", "tenant")) {
		o.SetNamespace(ns)
		if o.GetKind() == "RoleBinding" {
			subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
			for _, s := range subjects {
				s.(map[string]any)["namespace"] = ns
			}
			Expect(unstructured.SetNestedSlice(o.Object, subjects, "subjects")).To(Succeed())
		}
		Expect(k8s.Create(context.Background(), o)).To(Succeed(), "%s %s", o.GetKind(), o.GetName())
	}
}

// kustomize renders a kustomization of the repository with kubectl kustomize.
func kustomize(dir string) []*unstructured.Unstructured {
	out, err := exec.Command("kubectl", "kustomize", filepath.Join(repoRoot, dir)).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		err = fmt.Errorf("%w: %s", err, ee.Stderr)
	}
	Expect(err).NotTo(HaveOccurred(), "rendering %s", dir)
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			Expect(err).NotTo(HaveOccurred(), "decoding %s", dir)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	Expect(objs).NotTo(BeEmpty(), "%s renders nothing", dir)
	return objs
}

// createApp creates an app as the tenant, and deletes it after the spec, waiting until
// it is gone so that it counts in no later spec's storm breaker.
func (t *tenant) createApp(app *v1alpha1.AutonomicApp) {
	ctx := context.Background()
	Expect(t.c.Create(ctx, app)).To(Succeed(), "tenant %s creates app %s", t.ns, app.Name)
	DeferCleanup(func() {
		Expect(client.IgnoreNotFound(t.c.Delete(ctx, app))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(app), &v1alpha1.AutonomicApp{}))
		}).WithTimeout(30*time.Second).WithPolling(250*time.Millisecond).Should(BeTrue(), "app %s/%s is deleted", t.ns, app.Name)
	})
}

// create creates an object as the tenant and deletes it after the spec.
func (t *tenant) create(o client.Object) {
	ctx := context.Background()
	o.SetNamespace(t.ns)
	Expect(t.c.Create(ctx, o)).To(Succeed(), "tenant %s creates %T %s", t.ns, o, o.GetName())
	DeferCleanup(func() {
		Expect(client.IgnoreNotFound(t.c.Delete(ctx, o, client.PropagationPolicy(metav1.DeletePropagationBackground)))).To(Succeed())
	})
}

// tenancyApp is an app of the tenant's Deployment web with the given healing.
func tenancyApp(ns, name string, h v1alpha1.Healing) *v1alpha1.AutonomicApp {
	return &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.AutonomicAppSpec{
			Mode:       v1alpha1.ModeActive,
			Components: []v1alpha1.Component{workload("web", "web")},
			Healing:    h,
		},
	}
}

// sensing is healing of polled sensors alone.
func sensing(sensors ...v1alpha1.Sensor) v1alpha1.Healing { return v1alpha1.Healing{Sensors: sensors} }

// actingOnce is healing whose symptom always holds and whose one-step ladder takes the
// action once: the step's timeout is an hour.
func actingOnce(a v1alpha1.Action) v1alpha1.Healing {
	return v1alpha1.Healing{
		Symptoms: []v1alpha1.Symptom{{Name: "Always", Expression: "components.web.desiredReplicas >= 0"}},
		Policies: []v1alpha1.Policy{{Name: "act", Remediate: &v1alpha1.RemediatePolicy{
			When: []string{"Always"}, Steps: []v1alpha1.RemediationStep{step(a, time.Hour)}}}},
	}
}

func httpSensor(name, url string) v1alpha1.Sensor {
	return v1alpha1.Sensor{Name: name, Interval: dur(time.Second), HTTP: &v1alpha1.HTTPSensor{URL: url}}
}

func promSensor(name, address string) v1alpha1.Sensor {
	return v1alpha1.Sensor{Name: name, Interval: dur(time.Second),
		Prometheus: &v1alpha1.PrometheusSensor{Address: address, Query: "up"}}
}

func objectSensor(name, apiVersion, kind, objName, expr string) v1alpha1.Sensor {
	return v1alpha1.Sensor{Name: name, Interval: dur(time.Second), Object: &v1alpha1.ObjectSensor{
		Ref: v1alpha1.ObjectReference{APIVersion: apiVersion, Kind: kind, Name: objName}, Expression: expr}}
}

// sensorStatuses waits until the app's status lists n sensors and every one of them
// matches its matcher, and returns them by name.
func sensorStatuses(ns, app string, want map[string]OmegaMatcher) map[string]v1alpha1.SensorStatus {
	var got map[string]v1alpha1.SensorStatus
	Eventually(func(g Gomega) {
		a := getApp(ns, app)
		got = map[string]v1alpha1.SensorStatus{}
		for _, s := range a.Status.Sensors {
			got[s.Name] = s
		}
		for name, m := range want {
			g.Expect(got).To(HaveKey(name))
			g.Expect(got[name]).To(m, "sensor %s", name)
		}
	}).WithTimeout(45*time.Second).WithPolling(250*time.Millisecond).Should(Succeed(), "the sensors of %s/%s", ns, app)
	return got
}

// failsWith matches a sensor that has no value and whose error matches m.
func failsWith(m OmegaMatcher) OmegaMatcher {
	return And(HaveField("Value", BeEmpty()), HaveField("Error", m))
}

// firstRecord waits for the app's first action record that is no longer Pending.
func firstRecord(ns, app string) v1alpha1.ActionRecord {
	var r v1alpha1.ActionRecord
	Eventually(func(g Gomega) {
		rs := records(getApp(ns, app), "")
		g.Expect(rs).NotTo(BeEmpty())
		r = rs[0]
		g.Expect(r.Result).NotTo(Equal(v1alpha1.ResultPending))
	}).WithTimeout(60*time.Second).WithPolling(250*time.Millisecond).Should(Succeed(), "the first action of %s/%s", ns, app)
	return r
}

// expectForbiddenRecord checks the shape every refusal by the tenant's rights has: one
// Forbidden record with outcome Unknown, a message that starts with the refusal and
// contains each of parts, and a Warning Event ActionForbidden.
func expectForbiddenRecord(ns, app string, parts ...string) v1alpha1.ActionRecord {
	r := firstRecord(ns, app)
	Expect(r.Result).To(Equal(v1alpha1.ResultForbidden), r.Message)
	Expect(r.Outcome).To(Equal(v1alpha1.OutcomeUnknown))
	Expect(r.Message).To(HavePrefix("Refused by the tenant's rights, nothing was done: "))
	for _, p := range parts {
		Expect(r.Message).To(ContainSubstring(p))
	}
	Eventually(func() []eventsv1.Event { return eventsFor(ns, app, "ActionForbidden") }).
		WithTimeout(10*time.Second).WithPolling(250*time.Millisecond).ShouldNot(BeEmpty(), "a Warning Event ActionForbidden")
	return r
}

// expectNowhere checks that a value (and its base64 form, as a Secret stores it) appears
// in no app's status or spec of the namespace, in no Event of it, and not in the log of
// the manager m.
func expectNowhere(ns, value string, m *managerProcess) {
	ctx := context.Background()
	forms := []string{value, base64.StdEncoding.EncodeToString([]byte(value))}
	var apps v1alpha1.AutonomicAppList
	Expect(k8s.List(ctx, &apps, client.InNamespace(ns))).To(Succeed())
	var events eventsv1.EventList
	Expect(k8s.List(ctx, &events, client.InNamespace(ns))).To(Succeed())
	var coreEvents corev1.EventList
	Expect(k8s.List(ctx, &coreEvents, client.InNamespace(ns))).To(Succeed())
	for what, obj := range map[string]any{"the apps": apps, "the Events": events, "the core Events": coreEvents} {
		b, err := json.Marshal(obj)
		Expect(err).NotTo(HaveOccurred())
		for _, f := range forms {
			Expect(string(b)).NotTo(ContainSubstring(f), "%s of namespace %s quote it", what, ns)
		}
	}
	log, err := os.ReadFile(m.logPath)
	Expect(err).NotTo(HaveOccurred())
	for _, f := range forms {
		Expect(string(log)).NotTo(ContainSubstring(f), "the manager's log quotes it")
	}
}

// attackServer is an HTTP server of a spec on loopback that counts the requests it gets.
type attackServer struct {
	*httptest.Server
	hits atomic.Int32
}

// serve starts a server on host (a loopback address) that counts every request and
// answers with h (200 and no body when h is nil). It is closed after the spec: the
// requests' contexts are cancelled and its clients' connections closed first, so that a
// handler that waits for its client returns.
func serve(host string, h http.HandlerFunc) *attackServer {
	s := &attackServer{}
	closing, closeAll := context.WithCancel(context.Background())
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if h == nil {
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(closing, cancel)()
		h(w, r.WithContext(ctx))
	}))
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	Expect(err).NotTo(HaveOccurred())
	_ = s.Listener.Close()
	s.Listener = l
	s.Start()
	DeferCleanup(func() {
		closeAll()
		s.CloseClientConnections()
		s.Close()
	})
	return s
}

// hangups records how long a server's requests lasted before their client hung up, and
// when each was in flight.
type hangups struct {
	mu     sync.Mutex
	spans  []time.Duration
	flight [][2]time.Time // start and end of each request; a zero end is still in flight
	active atomic.Int32
	bytes  atomic.Int64 // the most bytes written in one request
}

// begin counts a request in flight until the returned func is called.
func (h *hangups) begin() func() {
	h.active.Add(1)
	h.mu.Lock()
	i := len(h.flight)
	h.flight = append(h.flight, [2]time.Time{time.Now()})
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		h.flight[i][1] = time.Now()
		h.mu.Unlock()
		h.active.Add(-1)
	}
}

// peak is the most requests in flight at once. The server notices that a client hung up
// a moment after it did, and the client's next request may arrive first: a request
// counts as ended that much (lag) before the server noticed.
func (h *hangups) peak(lag time.Duration) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	type edge struct {
		at time.Time
		d  int
	}
	var edges []edge
	for _, f := range h.flight {
		end := f[1]
		if end.IsZero() {
			end = time.Now().Add(time.Hour)
		}
		end = end.Add(-lag)
		if end.Before(f[0]) {
			continue
		}
		edges = append(edges, edge{f[0], 1}, edge{end, -1})
	}
	slices.SortFunc(edges, func(x, y edge) int {
		if c := x.at.Compare(y.at); c != 0 {
			return c
		}
		return x.d - y.d // an end before a start at the same instant
	})
	most, n := 0, 0
	for _, e := range edges {
		n += e.d
		most = max(most, n)
	}
	return most
}

func (h *hangups) add(d time.Duration, written int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.spans = append(h.spans, d)
	for {
		cur := h.bytes.Load()
		if written <= cur || h.bytes.CompareAndSwap(cur, written) {
			return
		}
	}
}

func (h *hangups) longest() (time.Duration, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var most time.Duration
	for _, d := range h.spans {
		most = max(most, d)
	}
	return most, len(h.spans)
}

// silent is a handler that never answers: it reads the request, then waits until its
// client hangs up (which the server notices only once the body is read).
func (h *hangups) silent(_ http.ResponseWriter, r *http.Request) {
	defer h.begin()()
	start := time.Now()
	_, _ = io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
	h.add(time.Since(start), 0)
}

// trickle answers 200 at once, then one byte of body every 200 ms, forever.
func (h *hangups) trickle(w http.ResponseWriter, r *http.Request) {
	defer h.begin()()
	start := time.Now()
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	var n int64
	for {
		if _, err := w.Write([]byte("x")); err != nil {
			break
		}
		n++
		http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
			h.add(time.Since(start), n)
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	h.add(time.Since(start), n)
}

// endless answers 200 with a body that never ends, as fast as its client reads.
func (h *hangups) endless(w http.ResponseWriter, r *http.Request) {
	defer h.begin()()
	start := time.Now()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	chunk := []byte(strings.Repeat("9", 32<<10))
	var n int64
	for r.Context().Err() == nil {
		k, err := w.Write(chunk)
		n += int64(k)
		if err != nil {
			break
		}
	}
	h.add(time.Since(start), n)
}

// startTenancyManager starts a manager of its own with the lockdown flags: apps act as
// homeostat-tenant of their namespace; egress reaches only 127.0.0.2 (where the specs'
// servers and the manager's metrics listen), at most 64 KiB and 2 s per request; the
// storm breaker needs two namespaces; object sensors read no cluster-scoped kind; node
// actions run only from nodeNamespace (and ClusterHealingPolicies), on one node at a
// time; one namespace's polls and webhook POSTs take at most half the workers. It runs
// as the suite's manager does, with config/default's ServiceAccount and RBAC, and stops
// after the container.
func startTenancyManager(nodeNamespace string) (m *managerProcess, probeAddr, pprofAddr string) {
	probePort, err := freePort()
	Expect(err).NotTo(HaveOccurred())
	pprofPort, err := freePort()
	Expect(err).NotTo(HaveOccurred())
	probeAddr, pprofAddr = fmt.Sprintf("127.0.0.1:%d", probePort), fmt.Sprintf("127.0.0.1:%d", pprofPort)
	m = &managerProcess{bin: mgr.bin, kubeconfig: mgr.kubeconfig, logPath: filepath.Join(workDir, "manager-tenancy.log"),
		metricsHost: attackHost,
		extraArgs: []string{
			"--default-service-account=" + appServiceAccount,
			"--egress-allow-cidrs=" + attackHost + "/32",
			"--egress-max-response-bytes=65536",
			"--egress-max-timeout=2s",
			"--storm-min-namespaces=2",
			"--object-sensor-cluster-kinds=",
			"--sensor-workers=8",
			"--sensor-workers-per-namespace=4",
			"--webhook-action-workers=4",
			"--webhook-action-workers-per-namespace=2",
			"--node-actions-namespaces=" + nodeNamespace,
			"--max-nodes-per-action=1",
			"--max-unavailable-nodes=10%",
			"--manager-namespace=" + managerNamespace,
			"--health-probe-bind-address=" + probeAddr,
			"--pprof-bind-address=" + pprofAddr,
		}}
	Expect(m.start(nil)).To(Succeed())
	DeferCleanup(m.stop)
	Eventually(m.metrics).WithTimeout(30*time.Second).WithPolling(250*time.Millisecond).
		Should(ContainSubstring("controller_runtime_"), "the tenancy manager serves metrics")
	return m, probeAddr, pprofAddr
}
