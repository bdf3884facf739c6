package execute

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/egress"
	"github.com/homeostat-dev/homeostat/internal/egress/egresstest"
	"github.com/homeostat-dev/homeostat/internal/monitor"
)

// The envtest suite runs the effectors against a real kube-apiserver and etcd. There is
// no controller-manager: tests create ReplicaSets and Pods themselves and set pod status
// through the status subresource. Pods get a nodeName, so an eviction leaves them
// terminating (graceful deletion, no kubelet to finish it) rather than gone.

var (
	testEnv *envtest.Environment
	k8s     client.Client
	// apiServer is the API server's host, which the effectors' egress policy refuses.
	apiServer string
	ctx       context.Context
	cancel    context.CancelFunc
	scheme    = runtime.NewScheme()
)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
}

func TestEnvtest(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("Skipping the envtest suite: KUBEBUILDER_ASSETS is empty. Run " +
			"KUBEBUILDER_ASSETS=$(bash hack/tools.sh envtest-dir) go test ./internal/execute/...")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "Execute envtest suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())
	testEnv = &envtest.Environment{}
	cfg, err := testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	apiServer = cfg.Host
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	cancel()
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// fixture is one test's namespace, app, effectors and recorded Events.
type fixture struct {
	ns       string
	app      *v1alpha1.AutonomicApp
	recorder *events.FakeRecorder
	eff      *Effectors
	clock    *clocktesting.FakePassiveClock
}

func newFixture() *fixture {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "execute-"}}
	Expect(k8s.Create(ctx, ns)).To(Succeed())
	rec := events.NewFakeRecorder(100)
	clk := clocktesting.NewFakePassiveClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	return &fixture{
		ns:       ns.Name,
		app:      &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns.Name, UID: "app-uid"}},
		recorder: rec,
		// The servers of webhook tests are on loopback, as the manager of the e2e suite
		// allows; the API server, on loopback too, stays refused.
		eff: &Effectors{Client: k8s, Recorder: rec, Clock: clk, Egress: egresstest.AllowLoopback(GinkgoT(), func(c *egress.Config) {
			c.APIServers = []string{apiServer}
		})},
		clock: clk,
	}
}

var appLabels = map[string]string{"app": "web"}

func podTemplateSpec(image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: appLabels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}},
	}
}

func (f *fixture) deployment(name string, replicas int32) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: appLabels},
			Template: podTemplateSpec("web:v1"),
		},
	}
	Expect(k8s.Create(ctx, d)).To(Succeed())
	return d
}

func (f *fixture) statefulSet(name string, replicas int32) *appsv1.StatefulSet {
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: appLabels},
			Template: podTemplateSpec("db:v1"),
		},
	}
	Expect(k8s.Create(ctx, s)).To(Succeed())
	return s
}

// replicaSet creates the ReplicaSet the Deployment controller would create for the
// Deployment's current template, with the given revision.
func (f *fixture) replicaSet(d *appsv1.Deployment, revision int, replicas int32) *appsv1.ReplicaSet {
	hash := fmt.Sprintf("h%d", revision)
	tmpl := d.Spec.Template.DeepCopy()
	tmpl.Labels = map[string]string{"app": "web", appsv1.DefaultDeploymentUniqueLabelKey: hash}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:        d.Name + "-" + hash,
			Namespace:   f.ns,
			Labels:      tmpl.Labels,
			Annotations: map[string]string{RevisionAnnotation: fmt.Sprint(revision)},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d,
				appsv1.SchemeGroupVersion.WithKind("Deployment"))},
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: tmpl.Labels},
			Template: *tmpl,
		},
	}
	Expect(k8s.Create(ctx, rs)).To(Succeed())
	return rs
}

// podState is how a test pod looks to the kubelet we do not have.
type podState int

const (
	running podState = iota
	notReady
	crashLooping
	pending
)

// pod creates a pod controlled by owner, bound to a node so that eviction leaves it
// terminating, and sets its status.
func (f *fixture) pod(name string, owner client.Object, gvk string, state podState, labels ...string) *corev1.Pod {
	l := map[string]string{"app": "web"}
	for i := 0; i+1 < len(labels); i += 2 {
		l[labels[i]] = labels[i+1]
	}
	apiVersion, kind, _ := strings.Cut(gvk, ",")
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: f.ns, Labels: l,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: apiVersion, Kind: kind, Name: owner.GetName(), UID: owner.GetUID(),
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "web", Image: "web:v1"}}},
	}
	Expect(k8s.Create(ctx, p)).To(Succeed())
	p.Status = podStatus(state)
	Expect(k8s.Status().Update(ctx, p)).To(Succeed())
	return p
}

func podStatus(state podState) corev1.PodStatus {
	ready := corev1.ConditionTrue
	st := corev1.PodStatus{Phase: corev1.PodRunning}
	cs := corev1.ContainerStatus{Name: "web", Image: "web:v1", Ready: true,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	switch state {
	case notReady:
		ready, cs.Ready = corev1.ConditionFalse, false
	case crashLooping:
		ready, cs.Ready = corev1.ConditionFalse, false
		cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
		cs.RestartCount = 5
	case pending:
		st.Phase, ready = corev1.PodPending, corev1.ConditionFalse
		cs = corev1.ContainerStatus{Name: "web", Image: "web:v1",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
	}
	st.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}
	st.ContainerStatuses = []corev1.ContainerStatus{cs}
	return st
}

const (
	gvkReplicaSet  = "apps/v1,ReplicaSet"
	gvkStatefulSet = "apps/v1,StatefulSet"
)

// gather builds what the monitor would report for a component, from live reads.
func (f *fixture) gather(kind, name string) *monitor.Component {
	ref := &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: kind, Name: name}
	c := &monitor.Component{Name: "web", Ref: ref}
	var obj client.Object
	switch kind {
	case kindDeployment:
		obj = &appsv1.Deployment{}
	case kindStatefulSet:
		obj = &appsv1.StatefulSet{}
	case kindReplicaSet:
		obj = &appsv1.ReplicaSet{}
	}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: name}, obj)).To(Succeed())
	c.Workload = obj
	rss := &appsv1.ReplicaSetList{}
	Expect(k8s.List(ctx, rss, client.InNamespace(f.ns))).To(Succeed())
	for _, rs := range rss.Items {
		if metav1.IsControlledBy(&rs, obj) {
			c.ReplicaSets = append(c.ReplicaSets, rs)
		}
	}
	revs := &appsv1.ControllerRevisionList{}
	Expect(k8s.List(ctx, revs, client.InNamespace(f.ns))).To(Succeed())
	for _, cr := range revs.Items {
		if metav1.IsControlledBy(&cr, obj) {
			c.Revisions = append(c.Revisions, cr)
		}
	}
	owners := map[types.UID]bool{obj.GetUID(): true}
	for _, rs := range c.ReplicaSets {
		owners[rs.UID] = true
	}
	pods := &corev1.PodList{}
	Expect(k8s.List(ctx, pods, client.InNamespace(f.ns))).To(Succeed())
	for _, p := range pods.Items {
		if ref := metav1.GetControllerOf(&p); ref != nil && owners[ref.UID] {
			c.Pods = append(c.Pods, p)
		}
	}
	return c
}

// prepare runs Prepare and turns its result into the ledger record the controller would
// write, with the intent time truncated to seconds as the ledger stores it.
func (f *fixture) prepare(id string, action v1alpha1.Action, target *monitor.Component) Request {
	req := Request{App: f.app, Action: action, Target: target}
	p, err := f.eff.Prepare(req)
	Expect(err).NotTo(HaveOccurred())
	req.Record = &v1alpha1.ActionRecord{
		ID: id, Time: metav1.NewTime(time.Now().Truncate(time.Second)),
		Action: p.Kind, Target: p.Target, Objects: p.Objects, Replicas: p.Replicas,
		Result: v1alpha1.ResultPending,
	}
	return req
}

// drainEvents returns the Events recorded so far.
func (f *fixture) drainEvents() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func getPod(ns, name string) *corev1.Pod {
	p := &corev1.Pod{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, p)).To(Succeed())
	return p
}

// resourceVersions maps each pod of the namespace to its resourceVersion.
func (f *fixture) resourceVersions() map[string]string {
	pods := &corev1.PodList{}
	Expect(k8s.List(ctx, pods, client.InNamespace(f.ns))).To(Succeed())
	out := map[string]string{}
	for _, p := range pods.Items {
		out[p.Name] = p.ResourceVersion
	}
	return out
}
