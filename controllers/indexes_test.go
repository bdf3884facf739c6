package controllers

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/monitor"
)

// listRecorder is a client that records the options of every List, to prove that the
// event mapping reads an index of one namespace instead of scanning the apps.
type listRecorder struct {
	client.Client
	mu    sync.Mutex
	lists []client.ListOptions
}

func (r *listRecorder) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	o := client.ListOptions{}
	o.ApplyOptions(opts)
	r.mu.Lock()
	r.lists = append(r.lists, o)
	r.mu.Unlock()
	return r.Client.List(ctx, list, opts...)
}

func (r *listRecorder) take() []client.ListOptions {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.lists
	r.lists = nil
	return out
}

// workloadTree creates, in ns, what a Deployment, a StatefulSet and a bare ReplicaSet
// controller would have made (envtest runs no controller-manager): a ReplicaSet
// controlled by each Deployment, and one pod controlled by each ReplicaSet and by the
// StatefulSet. It returns the pods by workload name.
func workloadTree(ctx context.Context, ns string, deployments, statefulSets, replicaSets []string) map[string]*corev1.Pod {
	podSpec := corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.local/app:good"}}}
	template := func(name string) (*metav1.LabelSelector, corev1.PodTemplateSpec) {
		labels := map[string]string{"app": name}
		return &metav1.LabelSelector{MatchLabels: labels}, corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec}
	}
	controller := func(o client.Object, kind string) metav1.OwnerReference {
		return metav1.OwnerReference{APIVersion: "apps/v1", Kind: kind, Name: o.GetName(), UID: o.GetUID(), Controller: ptr.To(true)}
	}
	newPod := func(name string, owner metav1.OwnerReference, labels map[string]string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{owner}}, Spec: podSpec}
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		return p
	}
	newRS := func(name string, owner *metav1.OwnerReference, labels map[string]string) *appsv1.ReplicaSet {
		sel, tmpl := template(name)
		for k, v := range labels {
			sel.MatchLabels[k] = v
			tmpl.Labels[k] = v
		}
		rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
			Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(1)), Selector: sel, Template: tmpl}}
		if owner != nil {
			rs.OwnerReferences = []metav1.OwnerReference{*owner}
		}
		Expect(k8sClient.Create(ctx, rs)).To(Succeed())
		return rs
	}
	pods := map[string]*corev1.Pod{}
	for _, name := range deployments {
		sel, tmpl := template(name)
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(1)), Selector: sel, Template: tmpl}}
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		hash := map[string]string{appsv1.DefaultDeploymentUniqueLabelKey: "7d9"}
		rs := newRS(name+"-7d9", ptr.To(controller(d, "Deployment")), hash)
		pods[name] = newPod(name+"-7d9-x2x", controller(rs, "ReplicaSet"), rs.Spec.Template.Labels)
	}
	for _, name := range statefulSets {
		sel, tmpl := template(name)
		s := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(int32(1)), ServiceName: name, Selector: sel, Template: tmpl}}
		Expect(k8sClient.Create(ctx, s)).To(Succeed())
		pods[name] = newPod(name+"-0", controller(s, "StatefulSet"), tmpl.Labels)
	}
	for _, name := range replicaSets {
		rs := newRS(name, nil, nil)
		pods[name] = newPod(name+"-abc", controller(rs, "ReplicaSet"), rs.Spec.Template.Labels)
	}
	return pods
}

// appOn is an app whose components name workloads; component names differ from the
// workloads' so an index keyed by the wrong one finds nothing.
func appOn(ns, name string, refs ...v1alpha1.WorkloadReference) *v1alpha1.AutonomicApp {
	a := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for i := range refs {
		a.Spec.Components = append(a.Spec.Components, v1alpha1.Component{Name: "c-" + refs[i].Name, WorkloadRef: &refs[i]})
	}
	return a
}

func workloadRef(kind, name string) v1alpha1.WorkloadReference {
	return v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: kind, Name: name}
}

var _ = Describe("mapping pod and workload events to apps", func() {
	It("enqueues exactly the apps whose components own a pod or workload, through the namespace's index, not a scan", func(ctx SpecContext) {
		ns, other := newNS(), newNS()

		By("starting a cache with the manager's indexes and transform, and a reconciler that reads it")
		// The suite's manager is not reachable from a spec, so this cache is set up as
		// Setup sets up the manager's: the same transform, the same indexes.
		c, err := cache.New(testEnv.Config, cache.Options{Scheme: k8sClient.Scheme(), DefaultTransform: monitor.Trim})
		Expect(err).NotTo(HaveOccurred())
		Expect(monitor.SetupIndexes(ctx, c)).To(Succeed())
		go func() { _ = c.Start(ctx) }() // stops with the spec
		cached, err := client.New(testEnv.Config, client.Options{Scheme: k8sClient.Scheme(), Cache: &client.CacheOptions{Reader: c}})
		Expect(err).NotTo(HaveOccurred())
		rec := &listRecorder{Client: cached}
		r := &AppReconciler{Client: rec, Clock: clocktesting.NewFakeClock(time.Now()), triggers: newTriggers()}

		By("creating two apps on two Deployments in one namespace, one also on a StatefulSet, one also on a bare ReplicaSet")
		pods := workloadTree(ctx, ns, []string{"web", "api", "cron"}, []string{"db"}, []string{"batch"})
		Expect(k8sClient.Create(ctx, appOn(ns, "front", workloadRef("Deployment", "web"), workloadRef("ReplicaSet", "batch")))).To(Succeed())
		Expect(k8sClient.Create(ctx, appOn(ns, "back", workloadRef("Deployment", "api"), workloadRef("StatefulSet", "db")))).To(Succeed())
		By("creating a third app of the same name on a Deployment of the same name in another namespace")
		otherPods := workloadTree(ctx, other, []string{"web"}, nil, nil)
		Expect(k8sClient.Create(ctx, appOn(other, "front", workloadRef("Deployment", "web")))).To(Succeed())
		By("creating a pod no workload controls")
		orphan := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orphan", Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.local/app:good"}}}}
		Expect(k8sClient.Create(ctx, orphan)).To(Succeed())

		By("waiting for the cache to hold all of it")
		Eventually(func(g Gomega) {
			for _, nsName := range []string{ns, other} {
				var apps v1alpha1.AutonomicAppList
				g.Expect(cached.List(ctx, &apps, client.InNamespace(nsName))).To(Succeed())
				g.Expect(apps.Items).NotTo(BeEmpty())
			}
			var apps v1alpha1.AutonomicAppList
			g.Expect(cached.List(ctx, &apps, client.InNamespace(ns))).To(Succeed())
			g.Expect(apps.Items).To(HaveLen(2))
			for _, p := range append([]*corev1.Pod{orphan, otherPods["web"]}, slices.Collect(maps.Values(pods))...) {
				g.Expect(cached.Get(ctx, client.ObjectKeyFromObject(p), &corev1.Pod{})).To(Succeed())
			}
			for _, rs := range []string{"web-7d9", "api-7d9", "cron-7d9", "batch"} {
				g.Expect(cached.Get(ctx, types.NamespacedName{Namespace: ns, Name: rs}, &appsv1.ReplicaSet{})).To(Succeed())
			}
			g.Expect(cached.Get(ctx, types.NamespacedName{Namespace: other, Name: "web-7d9"}, &appsv1.ReplicaSet{})).To(Succeed())
		}).WithTimeout(10 * time.Second).Should(Succeed())
		rec.take()

		By("keeping one key per value in the namespace-only indexes: no \"all namespaces\" copy")
		for _, tc := range []struct {
			obj   client.Object
			index string
		}{
			{&corev1.Pod{}, monitor.IndexOwner},
			{&appsv1.ReplicaSet{}, monitor.IndexOwner},
			{&v1alpha1.AutonomicApp{}, monitor.IndexWorkload},
		} {
			inf, err := c.GetInformer(ctx, tc.obj)
			Expect(err).NotTo(HaveOccurred())
			keys := inf.(interface{ GetIndexer() toolscache.Indexer }).GetIndexer().ListIndexFuncValues("field:" + tc.index)
			Expect(keys).To(ContainElement(HavePrefix(ns+"/")), "%T by %s", tc.obj, tc.index)
			Expect(keys).NotTo(ContainElement(HavePrefix("__all_namespaces/")), "%T by %s", tc.obj, tc.index)
		}

		By("still finding a node's pods across namespaces, as a drain lists them")
		onNode := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "on-node"},
			Spec: corev1.PodSpec{NodeName: "node-" + other, Containers: []corev1.Container{{Name: "app", Image: "registry.local/app:good"}}}}
		Expect(k8sClient.Create(ctx, onNode)).To(Succeed())
		Eventually(func(g Gomega) {
			var list corev1.PodList
			g.Expect(cached.List(ctx, &list, client.MatchingFields{monitor.IndexPodNode: "node-" + other})).To(Succeed())
			g.Expect(list.Items).To(HaveLen(1))
			g.Expect(list.Items[0].Name).To(Equal("on-node"))
		}).WithTimeout(10 * time.Second).Should(Succeed())
		rec.take()

		req := func(ns, name string) reconcile.Request {
			return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
		}
		// The pods as the event handler gets them: from the cache, trimmed.
		cachedPod := func(p *corev1.Pod) *corev1.Pod {
			got := &corev1.Pod{}
			Expect(cached.Get(ctx, client.ObjectKeyFromObject(p), got)).To(Succeed())
			return got
		}

		By("mapping each pod to exactly its own app")
		for _, tc := range []struct {
			what string
			pod  *corev1.Pod
			want []reconcile.Request
		}{
			{"a pod of Deployment web's ReplicaSet", pods["web"], []reconcile.Request{req(ns, "front")}},
			{"a pod of the bare ReplicaSet batch", pods["batch"], []reconcile.Request{req(ns, "front")}},
			{"a pod of Deployment api's ReplicaSet", pods["api"], []reconcile.Request{req(ns, "back")}},
			{"a pod of StatefulSet db", pods["db"], []reconcile.Request{req(ns, "back")}},
			{"a pod of Deployment web in the other namespace", otherPods["web"], []reconcile.Request{req(other, "front")}},
			{"a pod of a Deployment no app names", pods["cron"], nil},
			{"a pod without a controller", orphan, nil},
		} {
			Expect(r.appsOfPod(ctx, cachedPod(tc.pod))).To(ConsistOf(tc.want), tc.what)
		}

		By("mapping each workload to exactly its own app")
		workload := func(o client.Object, ns, name string) client.Object {
			Expect(cached.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, o)).To(Succeed())
			return o
		}
		for _, tc := range []struct {
			what string
			obj  client.Object
			want []reconcile.Request
		}{
			{"Deployment web", workload(&appsv1.Deployment{}, ns, "web"), []reconcile.Request{req(ns, "front")}},
			{"Deployment web's ReplicaSet", workload(&appsv1.ReplicaSet{}, ns, "web-7d9"), []reconcile.Request{req(ns, "front")}},
			{"the bare ReplicaSet batch", workload(&appsv1.ReplicaSet{}, ns, "batch"), []reconcile.Request{req(ns, "front")}},
			{"Deployment api", workload(&appsv1.Deployment{}, ns, "api"), []reconcile.Request{req(ns, "back")}},
			{"StatefulSet db", workload(&appsv1.StatefulSet{}, ns, "db"), []reconcile.Request{req(ns, "back")}},
			{"Deployment web in the other namespace", workload(&appsv1.Deployment{}, other, "web"), []reconcile.Request{req(other, "front")}},
			{"Deployment cron, which no app names", workload(&appsv1.Deployment{}, ns, "cron"), nil},
		} {
			Expect(r.appsOfWorkload(ctx, tc.obj)).To(ConsistOf(tc.want), tc.what)
		}

		By("checking that every list the mapping made read the workload index of one namespace")
		lists := rec.take()
		Expect(lists).NotTo(BeEmpty())
		for _, o := range lists {
			Expect(o.Namespace).NotTo(BeEmpty(), "a list across all namespaces: %+v", o)
			Expect(o.FieldSelector).NotTo(BeNil(), "a list without an index: %+v", o)
			_, ok := o.FieldSelector.RequiresExactMatch(monitor.IndexWorkload)
			Expect(ok).To(BeTrue(), "a list that does not read the workload index: %s", o.FieldSelector)
		}
	})
})
