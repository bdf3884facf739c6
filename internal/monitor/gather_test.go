package monitor

import (
	"context"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// controlledBy makes owner the controller of o, as the workload controllers do.
func controlledBy(o client.Object, kind, name string) {
	o.SetOwnerReferences(append(o.GetOwnerReferences(), metav1.OwnerReference{
		APIVersion: "apps/v1", Kind: kind, Name: name, UID: types.UID(kind + "-" + name), Controller: ptr.To(true)}))
}

func revObject(ns, name, ownerKind, owner string) *appsv1.ControllerRevision {
	return &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: ownerKind, Name: owner, UID: types.UID(owner), Controller: ptr.To(true)}}}}
}

func rsObject(ns, name, deployment string) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if deployment != "" {
		controlledBy(rs, "Deployment", deployment)
	}
	return rs
}

// podObject is a running, ready pod in ns controlled by kind/name ("" for none), with
// the given labels.
func podObject(ns, name, kind, owner string, labels map[string]string) *corev1.Pod {
	p := pod(name, corev1.PodRunning, true)
	p.Namespace, p.Labels = ns, labels
	if kind != "" {
		controlledBy(&p, kind, owner)
	}
	return &p
}

// indexedClient is a fake cache with monitor's indexes registered, as SetupIndexes
// registers them on the manager.
func indexedClient(t *testing.T, objs ...client.Object) client.Client {
	t.Helper()
	b := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(objs...)
	if err := SetupIndexes(context.Background(), fakeIndexer{b}); err != nil {
		t.Fatal(err)
	}
	return b.Build()
}

type fakeIndexer struct{ b *fake.ClientBuilder }

func (i fakeIndexer) IndexField(_ context.Context, obj client.Object, field string, fn client.IndexerFunc) error {
	i.b.WithIndex(obj, field, fn)
	return nil
}

func TestWorkloadOfPodFollowsControllersUpToTheWorkloadAnAppNames(t *testing.T) {
	hash := map[string]string{appsv1.DefaultDeploymentUniqueLabelKey: "7d9"}
	cached := []client.Object{
		rsObject("shop", "web-7d9", "web"),
		rsObject("shop", "batch", ""),
		rsObject("other", "api-5f1", "api"),
		func() client.Object {
			rs := rsObject("shop", "canary-1a2", "")
			controlledBy(rs, "Rollout", "canary")
			return rs
		}(),
	}
	cases := []struct {
		name string
		pod  *corev1.Pod
		want []OwnerRef
	}{
		{name: "a Deployment's pod maps to its ReplicaSet and the Deployment",
			pod:  podObject("shop", "web-7d9-x2x", "ReplicaSet", "web-7d9", hash),
			want: []OwnerRef{{Kind: "ReplicaSet", Name: "web-7d9"}, {Kind: "Deployment", Name: "web"}}},
		{name: "a StatefulSet's pod maps to the StatefulSet alone",
			pod:  podObject("shop", "db-0", "StatefulSet", "db", nil),
			want: []OwnerRef{{Kind: "StatefulSet", Name: "db"}}},
		{name: "a bare ReplicaSet's pod maps to the ReplicaSet alone",
			pod:  podObject("shop", "batch-abc", "ReplicaSet", "batch", nil),
			want: []OwnerRef{{Kind: "ReplicaSet", Name: "batch"}}},
		{name: "a ReplicaSet controlled by something other than a Deployment adds no Deployment",
			pod:  podObject("shop", "canary-1a2-q", "ReplicaSet", "canary-1a2", nil),
			want: []OwnerRef{{Kind: "ReplicaSet", Name: "canary-1a2"}}},
		{name: "a ReplicaSet not cached yet: the Deployment is its name less the pod-template-hash",
			pod:  podObject("shop", "web-8e0-y3y", "ReplicaSet", "web-8e0", map[string]string{appsv1.DefaultDeploymentUniqueLabelKey: "8e0"}),
			want: []OwnerRef{{Kind: "ReplicaSet", Name: "web-8e0"}, {Kind: "Deployment", Name: "web"}}},
		{name: "a ReplicaSet not cached and a hash that is not its suffix: no Deployment is guessed",
			pod:  podObject("shop", "jobs-x", "ReplicaSet", "jobs", map[string]string{appsv1.DefaultDeploymentUniqueLabelKey: "8e0"}),
			want: []OwnerRef{{Kind: "ReplicaSet", Name: "jobs"}}},
		{name: "a ReplicaSet of the same name in another namespace is not the pod's",
			pod:  podObject("shop", "api-5f1-z", "ReplicaSet", "api-5f1", nil),
			want: []OwnerRef{{Kind: "ReplicaSet", Name: "api-5f1"}}},
		{name: "a pod without a controller maps to nothing",
			pod: func() *corev1.Pod {
				p := podObject("shop", "bare", "", "", nil)
				p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d9", UID: "x"}}
				return p
			}(),
			want: nil},
	}
	c := indexedClient(t, cached...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := WorkloadOfPod(context.Background(), c, tc.pod)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("WorkloadOfPod = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOwnerIndexKeysAnObjectByItsControllerOnly(t *testing.T) {
	cases := []struct {
		name string
		obj  client.Object
		want []string
	}{
		{name: "a pod of a ReplicaSet", obj: podObject("shop", "a", "ReplicaSet", "web-7d9", nil), want: []string{"ReplicaSet/web-7d9"}},
		{name: "a pod of a StatefulSet", obj: podObject("shop", "db-0", "StatefulSet", "db", nil), want: []string{"StatefulSet/db"}},
		{name: "a ReplicaSet of a Deployment", obj: rsObject("shop", "web-7d9", "web"), want: []string{"Deployment/web"}},
		{name: "a bare ReplicaSet", obj: rsObject("shop", "batch", ""), want: nil},
		{name: "an owner that is not the controller is not indexed",
			obj:  &corev1.Pod{ObjectMeta: metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-7d9"}}}},
			want: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ownerIndex(tc.obj); !slices.Equal(got, tc.want) {
				t.Fatalf("ownerIndex = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAppIndexesKeyAnAppByTheWorkloadsAndChildAppsItNames(t *testing.T) {
	app := &v1alpha1.AutonomicApp{Spec: v1alpha1.AutonomicAppSpec{Components: []v1alpha1.Component{
		{Name: "web", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}},
		{Name: "db", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db"}},
		{Name: "batch", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "batch"}},
		{Name: "pay", AppRef: &v1alpha1.AppReference{Name: "payments"}},
	}}}
	if got, want := workloadIndex(app), []string{"Deployment/web", "StatefulSet/db", "ReplicaSet/batch"}; !slices.Equal(got, want) {
		t.Errorf("workloadIndex = %v, want %v", got, want)
	}
	if got, want := childIndex(app), []string{"payments"}; !slices.Equal(got, want) {
		t.Errorf("childIndex = %v, want %v", got, want)
	}
}

// TestGatherFindsEachComponentsPodsThroughTheOwnerIndex builds, in one namespace, a
// Deployment with two revisions, a StatefulSet with two ControllerRevisions and a bare
// ReplicaSet, and decoys: a pod
// of an unrelated ReplicaSet, a pod that only carries matching labels, and the same
// names in another namespace. Each component gets exactly its own pods.
func TestGatherFindsEachComponentsPodsThroughTheOwnerIndex(t *testing.T) {
	labels := map[string]string{"app": "web"}
	objs := []client.Object{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(2))}},
		rsObject("shop", "web-new", "web"), rsObject("shop", "web-old", "web"),
		podObject("shop", "web-new-a", "ReplicaSet", "web-new", labels), podObject("shop", "web-old-a", "ReplicaSet", "web-old", labels),
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db"}, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(int32(2))}},
		podObject("shop", "db-0", "StatefulSet", "db", nil), podObject("shop", "db-1", "StatefulSet", "db", nil),
		revObject("shop", "db-1a", "StatefulSet", "db"), revObject("shop", "db-2b", "StatefulSet", "db"),
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "batch"}, Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(1))}},
		podObject("shop", "batch-a", "ReplicaSet", "batch", nil),
		// Decoys.
		rsObject("shop", "api-1", "api"), podObject("shop", "api-1-a", "ReplicaSet", "api-1", nil),
		podObject("shop", "stray", "", "", labels),
		rsObject("other", "web-new", "web"), podObject("other", "web-new-z", "ReplicaSet", "web-new", labels),
		podObject("other", "db-0", "StatefulSet", "db", nil),
		revObject("other", "db-1a", "StatefulSet", "db"), revObject("shop", "agent-1a", "DaemonSet", "agent"),
	}
	app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop"}, Spec: v1alpha1.AutonomicAppSpec{
		Components: []v1alpha1.Component{
			{Name: "web", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}},
			{Name: "db", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db"}},
			{Name: "batch", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "batch"}},
		}}}
	got, err := Gatherer{Reader: indexedClient(t, objs...)}.Gather(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ pods, replicaSets, revisions []string }{
		"web":   {pods: []string{"web-new-a", "web-old-a"}, replicaSets: []string{"web-new", "web-old"}},
		"db":    {pods: []string{"db-0", "db-1"}, revisions: []string{"db-1a", "db-2b"}},
		"batch": {pods: []string{"batch-a"}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d components, want %d", len(got), len(want))
	}
	for _, c := range got {
		var pods, rss []string
		for _, p := range c.Pods {
			if p.Namespace != "shop" {
				t.Errorf("component %s: pod %s/%s is from another namespace", c.Name, p.Namespace, p.Name)
			}
			pods = append(pods, p.Name)
		}
		for _, rs := range c.ReplicaSets {
			rss = append(rss, rs.Name)
		}
		var revs []string
		for _, cr := range c.Revisions {
			revs = append(revs, cr.Name)
		}
		slices.Sort(pods)
		slices.Sort(rss)
		slices.Sort(revs)
		if w := want[c.Name]; !slices.Equal(pods, w.pods) || !slices.Equal(rss, w.replicaSets) || !slices.Equal(revs, w.revisions) {
			t.Errorf("component %s: pods %v, ReplicaSets %v, ControllerRevisions %v; want pods %v, ReplicaSets %v, ControllerRevisions %v",
				c.Name, pods, rss, revs, w.pods, w.replicaSets, w.revisions)
		}
		if !c.Status.Found || !c.Status.Healthy {
			t.Errorf("component %s: status %+v; want found and healthy (every pod is ready)", c.Name, c.Status)
		}
	}
}

func TestAppsForWorkloadListsOnlyTheAppsOfThatNamespaceThatNameIt(t *testing.T) {
	app := func(ns, name string, refs ...v1alpha1.WorkloadReference) *v1alpha1.AutonomicApp {
		a := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		for i := range refs {
			a.Spec.Components = append(a.Spec.Components, v1alpha1.Component{Name: refs[i].Name, WorkloadRef: &refs[i]})
		}
		return a
	}
	web := v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}
	db := v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db"}
	dbDeployment := v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "db"}
	c := indexedClient(t, app("shop", "front", web), app("shop", "data", db), app("shop", "both", web, db),
		app("shop", "wrong-kind", dbDeployment), app("other", "front", web))
	cases := []struct {
		ns, kind, name string
		want           []string
	}{
		{"shop", "Deployment", "web", []string{"both", "front"}},
		{"shop", "StatefulSet", "db", []string{"both", "data"}},
		{"shop", "Deployment", "db", []string{"wrong-kind"}},
		{"other", "Deployment", "web", []string{"front"}},
		{"shop", "ReplicaSet", "web", nil},
	}
	for _, tc := range cases {
		keys, err := AppsForWorkload(context.Background(), c, tc.ns, tc.kind, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, k := range keys {
			if k.Namespace != tc.ns {
				t.Errorf("%s %s/%s: app %s is from another namespace", tc.kind, tc.ns, tc.name, k)
			}
			got = append(got, k.Name)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s %s/%s: apps %v, want %v", tc.kind, tc.ns, tc.name, got, tc.want)
		}
	}
}

func TestNamespacedKeysAreWhatTheCacheReaderLooksUp(t *testing.T) {
	for _, tc := range []struct {
		ns   string
		vals []string
		want []string
	}{
		{"shop", []string{"ReplicaSet/web-7d9"}, []string{"shop/ReplicaSet/web-7d9"}},
		{"shop", []string{"Deployment/web", "StatefulSet/db"}, []string{"shop/Deployment/web", "shop/StatefulSet/db"}},
		{"shop", nil, []string{}},
		// A cluster-scoped object: the reader looks it up under "all namespaces".
		{"", []string{"x"}, []string{"__all_namespaces/x"}},
	} {
		got := namespacedKeys(tc.ns, tc.vals)
		if !slices.Equal(got, tc.want) {
			t.Errorf("namespacedKeys(%q, %q) = %q, want %q", tc.ns, tc.vals, got, tc.want)
		}
	}
}
