package monitor

import (
	"fmt"
	"maps"
	"reflect"
	goruntime "runtime"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// footprintApp is app i's objects as the API server sends them: a Deployment, its
// ReplicaSet and three pods, with what the Deployment controller, the scheduler and the
// kubelet add.
func footprintApp(i int) (*appsv1.Deployment, *appsv1.ReplicaSet, []*corev1.Pod) {
	name := fmt.Sprintf("app-%05d", i)
	ns := fmt.Sprintf("bench-%03d", i/500)
	hash := fmt.Sprintf("%010x", i*7919)
	labels := func(extra ...string) map[string]string {
		m := map[string]string{"app": name}
		for j := 0; j+1 < len(extra); j += 2 {
			m[extra[j]] = extra[j+1]
		}
		return m
	}
	tmpl := func(extra ...string) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels(extra...)}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "registry.local/bench/app:good",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}},
				TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				ImagePullPolicy: corev1.PullIfNotPresent}},
			RestartPolicy: corev1.RestartPolicyAlways, TerminationGracePeriodSeconds: ptr.To(int64(30)),
			DNSPolicy: corev1.DNSClusterFirst, SecurityContext: &corev1.PodSecurityContext{}, SchedulerName: "default-scheduler",
		}}
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(name + "-d"), Labels: labels(),
			Annotations: map[string]string{"deployment.kubernetes.io/revision": "1"}, Generation: 1, ResourceVersion: "1234567"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(3)), Selector: &metav1.LabelSelector{MatchLabels: labels()},
			Template: tmpl()},
	}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-" + hash, UID: types.UID(name + "-rs"),
			Labels: labels("pod-template-hash", hash), ResourceVersion: "1234568",
			Annotations: map[string]string{"deployment.kubernetes.io/revision": "1",
				"deployment.kubernetes.io/desired-replicas": "3", "deployment.kubernetes.io/max-replicas": "6"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: name, UID: d.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: labels("pod-template-hash", hash)}, Template: tmpl("pod-template-hash", hash)},
	}
	var pods []*corev1.Pod
	for j := range 3 {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s-%05x", rs.Name, j), GenerateName: rs.Name + "-",
				UID: types.UID(fmt.Sprintf("%s-p%d", name, j)), Labels: labels("pod-template-hash", hash), ResourceVersion: "1234569",
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID,
					Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}},
			Spec: tmpl().Spec,
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1",
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue},
					{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, Image: "registry.local/bench/app:good",
					State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
		}
		p.Spec.NodeName = fmt.Sprintf("kwok-node-%d", i/33)
		pods = append(pods, p)
	}
	return d, rs, pods
}

// decoded is what an informer holds before its transform: each object decoded on its own
// from its protobuf encoding, sharing nothing.
func decoded[T interface{ Marshal() ([]byte, error) }](t testing.TB, obj T, into interface{ Unmarshal([]byte) error }) {
	raw, err := obj.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := into.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
}

func trimmed(t testing.TB, obj any) any {
	out, err := Trim(obj)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func same[M any](a, b M) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

func TestTrimSharesWhatEqualObjectsHold(t *testing.T) {
	d0, rs0, pods0 := footprintApp(1)
	d, rs := &appsv1.Deployment{}, &appsv1.ReplicaSet{}
	decoded(t, d0, d)
	decoded(t, rs0, rs)
	d = trimmed(t, d).(*appsv1.Deployment)
	rs = trimmed(t, rs).(*appsv1.ReplicaSet)
	var pods []*corev1.Pod
	for _, p0 := range pods0 {
		p := &corev1.Pod{}
		decoded(t, p0, p)
		pods = append(pods, trimmed(t, p).(*corev1.Pod))
	}
	a, b := pods[0], pods[1]
	switch {
	case !same(a.Labels, b.Labels) || !same(a.Labels, rs.Labels) || !same(rs.Labels, rs.Spec.Selector.MatchLabels) ||
		!same(rs.Labels, rs.Spec.Template.Labels):
		t.Error("a ReplicaSet's pods, its selector and its template do not share their labels")
	case !same(d.Labels, d.Spec.Selector.MatchLabels) || !same(d.Labels, d.Spec.Template.Labels):
		t.Error("a Deployment's labels, selector and template labels are not shared")
	case !same(a.OwnerReferences, b.OwnerReferences):
		t.Error("pods of one ReplicaSet do not share their owner references")
	case !same(a.Spec.Containers, b.Spec.Containers) ||
		!same(a.Spec.Containers[0].Resources.Requests, b.Spec.Containers[0].Resources.Requests):
		t.Error("pods of one ReplicaSet do not share their containers and requests")
	case !same(d.Spec.Template.Spec.Containers, rs.Spec.Template.Spec.Containers):
		t.Error("a Deployment and its ReplicaSet do not share their template's containers")
	case same(d.Labels, rs.Labels):
		t.Error("different labels were shared")
	}

	// Another app shares its equal values (annotations, containers), not its own ones.
	d2 := &appsv1.Deployment{}
	d20, _, _ := footprintApp(2)
	decoded(t, d20, d2)
	d2 = trimmed(t, d2).(*appsv1.Deployment)
	if !same(d.Annotations, d2.Annotations) || !same(d.Spec.Template.Spec.Containers, d2.Spec.Template.Spec.Containers) {
		t.Error("two Deployments of the same revision annotation and containers do not share them")
	}
	if same(d.Labels, d2.Labels) || d2.Labels["app"] != "app-00002" {
		t.Errorf("app 2's labels %v are app 1's", d2.Labels)
	}

	// Sharing changes no value: each object equals its own trim without the tables.
	for _, c := range []struct {
		got, want any
	}{{d, d0}, {rs, rs0}} {
		if !apiequality.Semantic.DeepEqual(c.got, trimmedAlone(t, c.want)) {
			t.Errorf("%T changed by sharing:\n%+v\nwant\n%+v", c.got, c.got, trimmedAlone(t, c.want))
		}
	}
	if want := trimmedAlone(t, pods0[0]); !apiequality.Semantic.DeepEqual(pods[0], want) {
		t.Errorf("pod changed by sharing:\n%+v\nwant\n%+v", pods[0], want)
	}
}

// trimmedAlone trims a copy of obj through fresh tables, so it shares nothing with
// what the tests trimmed before.
func trimmedAlone(t testing.TB, obj any) any {
	saved := shared
	shared = newInterner()
	defer func() { shared = saved }()
	return trimmed(t, obj.(interface{ DeepCopyObject() runtime.Object }).DeepCopyObject())
}

func TestTrimmedAppHasNoSpareCapacity(t *testing.T) {
	app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "n"}}
	app.Status.Conditions = make([]metav1.Condition, 3, 8)
	got := trimmed(t, app).(*v1alpha1.AutonomicApp)
	if cap(got.Status.Conditions) != 3 {
		t.Fatalf("conditions kept a capacity of %d for 3", cap(got.Status.Conditions))
	}
}

// TestTrimTwiceWritesNothingShared: client-go's watch-list runs the transform twice on
// an object, the second time over values already shared with cached objects, and even
// after the tables forgot them. Nothing a cached object holds may change.
func TestTrimTwiceWritesNothingShared(t *testing.T) {
	saved := shared
	defer func() { shared = saved }()
	shared = newInterner()
	d0, rs0, pods0 := footprintApp(7)
	cachedRS := trimmed(t, rs0.DeepCopy()).(*appsv1.ReplicaSet)
	cachedPod := trimmed(t, pods0[0].DeepCopy()).(*corev1.Pod)
	sel, selLabels := cachedRS.Spec.Selector, cachedRS.Spec.Selector.MatchLabels
	ctrs, reqs := cachedRS.Spec.Template.Spec.Containers, cachedRS.Spec.Template.Spec.Containers[0].Resources.Requests
	podCtrs := cachedPod.Spec.Containers

	again := trimmed(t, rs0.DeepCopy()).(*appsv1.ReplicaSet)
	shared = newInterner() // the tables forget between the two runs
	_ = trimmed(t, again)
	_ = trimmed(t, trimmed(t, pods0[1].DeepCopy()))
	_ = trimmed(t, trimmed(t, d0.DeepCopy()))
	switch {
	case cachedRS.Spec.Selector != sel || !same(sel.MatchLabels, selLabels):
		t.Error("a second trim wrote into a shared selector")
	case !same(cachedRS.Spec.Template.Spec.Containers, ctrs) || !same(ctrs[0].Resources.Requests, reqs):
		t.Error("a second trim wrote into shared containers")
	case !same(cachedPod.Spec.Containers, podCtrs) || !same(podCtrs[0].Resources.Requests, reqs):
		t.Error("a second trim wrote into a pod's shared containers")
	}
}

// TestValuesThatOnlySeparatorsTellApartAreNotShared: annotation values and owner
// references may hold any byte; two different values must never come out as one.
func TestValuesThatOnlySeparatorsTellApartAreNotShared(t *testing.T) {
	in := newInterner()
	a := in.stringMap(map[string]string{"a": "1\x00b\x002"})
	b := in.stringMap(map[string]string{"a": "1", "b": "2"})
	if len(b) != 2 || b["a"] != "1" || len(a) != 1 {
		t.Fatalf("maps mixed up: %q and %q", a, b)
	}
	one := in.ownerRefs([]metav1.OwnerReference{{APIVersion: "v1", Kind: "K", Name: "m", UID: "u\x00--v1\x00K\x00m\x00w"}})
	two := in.ownerRefs([]metav1.OwnerReference{{APIVersion: "v1", Kind: "K", Name: "m", UID: "u"}, {APIVersion: "v1", Kind: "K", Name: "m", UID: "w"}})
	if len(one) != 1 || len(two) != 2 {
		t.Fatalf("owner references mixed up: %v and %v", one, two)
	}
	big := map[string]string{"k": string(make([]byte, internMaxBytes+1))}
	if x, y := in.stringMap(big), in.stringMap(maps.Clone(big)); same(x, y) {
		t.Fatal("an oversized map was shared")
	}
}

func TestInternTableIsBoundedAndKeepsWhatIsInUse(t *testing.T) {
	tb := internTable[*int]{equal: func(a, b *int) bool { return *a == *b }}
	kept := new(int)
	*kept = -1
	const keptHash = 1 << 62
	tb.intern(keptHash, kept)
	for i := range 3 * internMaxEntries {
		v := new(int)
		*v = i
		tb.intern(uint64(i), v)
		if i%(internMaxEntries/2) == 0 {
			// Still held by objects that keep arriving.
			again := new(int)
			*again = -1
			if got := tb.intern(keptHash, again); got != kept {
				t.Fatalf("after %d other entries the value in use was replaced", i)
			}
		}
	}
	if n := tb.len(); n > 2*internMaxEntries+1 {
		t.Fatalf("the table holds %d entries, more than two generations of %d", n, internMaxEntries)
	}
	// A different value under a hash in use is not shared, and does not replace it.
	other := new(int)
	*other = 5
	if got := tb.intern(keptHash, other); got != other {
		t.Fatal("a different value with a colliding hash was shared")
	}
	if got := tb.intern(keptHash, kept); got != kept {
		t.Fatal("a colliding value replaced the one in use")
	}
}

// TestTrimmedCacheFootprint reports what the objects of an app cost in the cache:
// decoded alone, trimmed without sharing, and trimmed and shared. It asserts only that
// sharing saves memory over trimming alone.
func TestTrimmedCacheFootprint(t *testing.T) {
	const n = 2000
	saved := shared
	defer func() { shared = saved }()
	measure := func(trim bool, in *interner) float64 {
		shared = in
		goruntime.GC()
		var before goruntime.MemStats
		goruntime.ReadMemStats(&before)
		keep := make([]any, 0, 5*n)
		for i := range n {
			d0, rs0, pods0 := footprintApp(i)
			d, rs := &appsv1.Deployment{}, &appsv1.ReplicaSet{}
			decoded(t, d0, d)
			decoded(t, rs0, rs)
			objs := []any{d, rs}
			for _, p0 := range pods0 {
				p := &corev1.Pod{}
				decoded(t, p0, p)
				objs = append(objs, p)
			}
			for _, o := range objs {
				if trim {
					o = trimmed(t, o)
				}
				keep = append(keep, o)
			}
		}
		goruntime.GC()
		var after goruntime.MemStats
		goruntime.ReadMemStats(&after)
		goruntime.KeepAlive(keep)
		return float64(after.HeapAlloc-before.HeapAlloc) / n / 1024
	}
	full, alone, both := measure(false, nil), measure(true, nil), measure(true, newInterner())
	t.Logf("Deployment, ReplicaSet and 3 pods: %.2f KiB decoded, %.2f KiB trimmed, %.2f KiB trimmed and shared", full, alone, both)
	if both >= alone {
		t.Fatalf("trimmed and shared %.2f KiB >= trimmed alone %.2f KiB", both, alone)
	}
}
