package monitor

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"unique"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The cache holds many equal values that each decoded object brings its own copy of: a
// ReplicaSet's labels are its pods' labels and its selector's, a Deployment's template is
// its current ReplicaSet's, the requests of a pod are its siblings'. Trim makes cached
// objects share one copy of each such value. That is safe because nothing changes a
// cached object in place: reads from the cache are deep copies (and the few
// UnsafeDisableDeepCopy reads only read), and Trim itself edits an object only before it
// interns the object's values.

// internMaxEntries bounds each generation of a table. A value is kept while objects
// that hold it keep arriving; one not seen for two generations is dropped from the table
// (the objects that hold it keep it).
const internMaxEntries = 1 << 16

// internMaxKey is the largest value (as its key) worth a table entry; larger ones, rare
// and seldom shared, stay with their object.
const internMaxKey = 4 << 10

// internTable maps a value's canonical key to the one copy objects share. It keeps two
// generations, so its size is bounded without tracking which objects still hold a value.
type internTable[V any] struct {
	mu       sync.Mutex
	cur, old map[string]V
}

// intern returns the copy of v to keep: the one already in the table under key, or v.
func (t *internTable[V]) intern(key string, v V) V {
	if len(key) > internMaxKey {
		return v
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if got, ok := t.getLocked(key); ok {
		return got
	}
	t.putLocked(key, v)
	return v
}

// get returns the copy in the table under key, if there is one.
func (t *internTable[V]) get(key string) (V, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.getLocked(key)
}

func (t *internTable[V]) getLocked(key string) (V, bool) {
	if got, ok := t.cur[key]; ok {
		return got, true
	}
	got, ok := t.old[key]
	if ok {
		// Still in use: it moves to the current generation.
		t.putLocked(key, got)
	}
	return got, ok
}

func (t *internTable[V]) putLocked(key string, v V) {
	if t.cur == nil || len(t.cur) >= internMaxEntries {
		t.old, t.cur = t.cur, make(map[string]V)
	}
	t.cur[key] = v
}

// len is the number of entries in both generations (for tests).
func (t *internTable[V]) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.cur) + len(t.old)
}

// interner holds the tables of the values cached objects share.
type interner struct {
	strs      internTable[map[string]string]
	resources internTable[corev1.ResourceList]
	selectors internTable[*metav1.LabelSelector]
	ctrs      internTable[[]corev1.Container]
	vols      internTable[[]corev1.Volume]
	podSec    internTable[*corev1.PodSecurityContext]
	int64s    internTable[*int64]
	owners    internTable[[]metav1.OwnerReference]
}

// shared is the process's interner: every cache of the manager trims through Trim.
var shared = &interner{}

// str returns the canonical copy of s.
func str(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}

// stringMap returns the shared copy of a map of strings (labels, annotations, a
// selector's matchLabels).
func (in *interner) stringMap(m map[string]string) map[string]string {
	m, _ = in.stringMapKey(m)
	return m
}

// stringMapKey is stringMap that also returns the map's key in the table.
func (in *interner) stringMapKey(m map[string]string) (map[string]string, string) {
	if len(m) == 0 {
		return m, ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(m[k])
		b.WriteByte(0)
	}
	key := b.String()
	if len(key) > internMaxKey {
		return m, key
	}
	if got, ok := in.strs.get(key); ok {
		return got, key
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[str(k)] = str(v)
	}
	return in.strs.intern(key, c), key
}

// resourceList returns the shared copy of requests or limits.
func (in *interner) resourceList(l corev1.ResourceList) corev1.ResourceList {
	if len(l) == 0 {
		return l
	}
	names := make([]string, 0, len(l))
	for n := range l {
		names = append(names, string(n))
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		q := l[corev1.ResourceName(n)]
		b.WriteString(n)
		b.WriteByte(0)
		b.WriteString(q.String())
		b.WriteByte(0)
	}
	return in.resources.intern(b.String(), l)
}

// selector returns the shared copy of a label selector of matchLabels only; one with
// expressions stays with its object.
func (in *interner) selector(s *metav1.LabelSelector) *metav1.LabelSelector {
	if s == nil || len(s.MatchExpressions) > 0 {
		return s
	}
	var key string
	s.MatchLabels, key = in.stringMapKey(s.MatchLabels)
	return in.selectors.intern(key, s)
}

// ownerRefs returns the shared copy of an object's owner references: a ReplicaSet's pods
// all name it.
func (in *interner) ownerRefs(refs []metav1.OwnerReference) []metav1.OwnerReference {
	if len(refs) == 0 {
		return refs
	}
	var b strings.Builder
	for _, r := range refs {
		b.WriteString(r.APIVersion)
		b.WriteByte(0)
		b.WriteString(r.Kind)
		b.WriteByte(0)
		b.WriteString(r.Name)
		b.WriteByte(0)
		b.WriteString(string(r.UID))
		b.WriteByte(0)
		b.WriteString(boolKey(r.Controller))
		b.WriteString(boolKey(r.BlockOwnerDeletion))
	}
	return in.owners.intern(b.String(), refs)
}

func boolKey(b *bool) string {
	switch {
	case b == nil:
		return "-"
	case *b:
		return "t"
	}
	return "f"
}

// containers returns the shared copy of a container list, its requests and limits
// interned first. The key is the list's protobuf encoding, which is deterministic (map
// entries sorted).
func (in *interner) containers(cs []corev1.Container) []corev1.Container {
	if len(cs) == 0 {
		return cs
	}
	var b strings.Builder
	for i := range cs {
		raw, err := cs[i].Marshal()
		if err != nil {
			return cs
		}
		b.Write(raw)
		b.WriteByte(0)
	}
	key := b.String()
	if len(key) > internMaxKey {
		return cs
	}
	if got, ok := in.ctrs.get(key); ok {
		return got
	}
	for i := range cs {
		c := &cs[i]
		c.Name, c.Image = str(c.Name), str(c.Image)
		c.Resources.Requests = in.resourceList(c.Resources.Requests)
		c.Resources.Limits = in.resourceList(c.Resources.Limits)
	}
	return in.ctrs.intern(key, cs)
}

// volumes returns the shared copy of a pod template's volumes.
func (in *interner) volumes(vs []corev1.Volume) []corev1.Volume {
	if len(vs) == 0 {
		return vs
	}
	var b strings.Builder
	for i := range vs {
		raw, err := vs[i].Marshal()
		if err != nil {
			return vs
		}
		b.Write(raw)
		b.WriteByte(0)
	}
	return in.vols.intern(b.String(), vs)
}

// object makes an object's metadata share what equal objects hold.
func (in *interner) object(m metav1.Object) {
	m.SetNamespace(str(m.GetNamespace()))
	m.SetGenerateName(str(m.GetGenerateName()))
	m.SetLabels(in.stringMap(m.GetLabels()))
	m.SetAnnotations(in.stringMap(m.GetAnnotations()))
	m.SetOwnerReferences(in.ownerRefs(m.GetOwnerReferences()))
	f := m.GetFinalizers()
	for i := range f {
		f[i] = str(f[i])
	}
}

// podTemplate makes a workload's pod template share what equal templates hold: a
// Deployment's with its current ReplicaSet's, and both with other apps' of the same
// image and resources.
func (in *interner) podTemplate(t *corev1.PodTemplateSpec) {
	in.object(&t.ObjectMeta)
	t.Spec.Containers = in.containers(t.Spec.Containers)
	t.Spec.InitContainers = in.containers(t.Spec.InitContainers)
	t.Spec.Volumes = in.volumes(t.Spec.Volumes)
	if sc := t.Spec.SecurityContext; sc != nil {
		if raw, err := sc.Marshal(); err == nil {
			t.Spec.SecurityContext = in.podSec.intern(string(raw), sc)
		}
	}
	if g := t.Spec.TerminationGracePeriodSeconds; g != nil {
		t.Spec.TerminationGracePeriodSeconds = in.int64s.intern(strconv.FormatInt(*g, 10), g)
	}
	t.Spec.ServiceAccountName = str(t.Spec.ServiceAccountName)
	t.Spec.DeprecatedServiceAccount = str(t.Spec.DeprecatedServiceAccount)
	t.Spec.SchedulerName = str(t.Spec.SchedulerName)
	t.Spec.DNSPolicy = corev1.DNSPolicy(str(string(t.Spec.DNSPolicy)))
	t.Spec.RestartPolicy = corev1.RestartPolicy(str(string(t.Spec.RestartPolicy)))
}
