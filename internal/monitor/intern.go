package monitor

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"maps"
	"slices"
	"sync"
	"unique"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The cache holds many equal values that each decoded object brings its own copy of: a
// ReplicaSet's labels are its pods' labels and its selector's, a Deployment's template is
// its current ReplicaSet's, the requests of a pod are its siblings'. Trim makes cached
// objects share one copy of each such value.
//
// That is safe because nothing changes a cached object in place: reads from the cache
// are deep copies (the few UnsafeDisableDeepCopy reads only read), and the interner never
// writes to a value it may have shared. It builds a new value, or changes the object's
// own one, before that value enters a table. Trim can run twice on one object (client-go's
// watch-list applies the transform in its temporary store and again in its queue), and
// the second run finds the object's values already shared: it only looks them up.
//
// Tables are keyed by a hash of the value and check equality on a hit, so two values
// that collide, or that only a separator would tell apart, are never shared.

// internMaxEntries bounds each generation of a table. A value is kept while objects
// that hold it keep arriving; one not seen for two generations is dropped from the table
// (the objects that hold it keep it).
const internMaxEntries = 1 << 16

// internMaxBytes is the largest value (in the bytes its hash reads) worth a table
// entry; larger ones, rare and seldom shared, stay with their object.
const internMaxBytes = 4 << 10

// internTable maps a value's hash to the one copy objects share. It keeps two
// generations, so its size is bounded without tracking which objects still hold a value.
type internTable[V any] struct {
	// equal says whether two values are the same; a value whose hash hits another is
	// not shared.
	equal func(a, b V) bool

	mu       sync.Mutex
	cur, old map[uint64]V
}

// intern returns the copy of v to keep: an equal one already in the table, or v, which
// the table keeps unless another value holds its hash.
func (t *internTable[V]) intern(h uint64, v V) V {
	t.mu.Lock()
	defer t.mu.Unlock()
	if got, ok := t.getLocked(h); ok {
		if t.equal(got, v) {
			return got
		}
		return v
	}
	t.putLocked(h, v)
	return v
}

// lookup returns the copy in the table equal to v, if there is one.
func (t *internTable[V]) lookup(h uint64, v V) (V, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	got, ok := t.getLocked(h)
	if ok && t.equal(got, v) {
		return got, true
	}
	var zero V
	return zero, false
}

func (t *internTable[V]) getLocked(h uint64) (V, bool) {
	if got, ok := t.cur[h]; ok {
		return got, true
	}
	got, ok := t.old[h]
	if ok {
		// Still in use: it moves to the current generation.
		t.putLocked(h, got)
	}
	return got, ok
}

func (t *internTable[V]) putLocked(h uint64, v V) {
	if t.cur == nil || len(t.cur) >= internMaxEntries {
		t.old, t.cur = t.cur, make(map[uint64]V)
	}
	t.cur[h] = v
}

// len is the number of entries in both generations (for tests).
func (t *internTable[V]) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.cur) + len(t.old)
}

// interner holds the tables of the values cached objects share. A nil interner shares
// nothing (Trim then only trims).
type interner struct {
	strs      internTable[map[string]string]
	resources internTable[corev1.ResourceList]
	selectors internTable[*metav1.LabelSelector]
	owners    internTable[[]metav1.OwnerReference]
	ctrs      internTable[[]corev1.Container]
	vols      internTable[[]corev1.Volume]
	podSec    internTable[*corev1.PodSecurityContext]
	int64s    internTable[*int64]
}

func newInterner() *interner {
	return &interner{
		strs:      internTable[map[string]string]{equal: maps.Equal[map[string]string, map[string]string]},
		resources: internTable[corev1.ResourceList]{equal: equalResources},
		selectors: internTable[*metav1.LabelSelector]{equal: func(a, b *metav1.LabelSelector) bool {
			return len(a.MatchExpressions) == 0 && len(b.MatchExpressions) == 0 && maps.Equal(a.MatchLabels, b.MatchLabels)
		}},
		owners: internTable[[]metav1.OwnerReference]{equal: func(a, b []metav1.OwnerReference) bool {
			return slices.EqualFunc(a, b, equalOwner)
		}},
		ctrs:   internTable[[]corev1.Container]{equal: equalMarshaled[corev1.Container]},
		vols:   internTable[[]corev1.Volume]{equal: equalMarshaled[corev1.Volume]},
		podSec: internTable[*corev1.PodSecurityContext]{equal: func(a, b *corev1.PodSecurityContext) bool { return marshaledEqual(a, b) }},
		int64s: internTable[*int64]{equal: func(a, b *int64) bool { return *a == *b }},
	}
}

// shared is the process's interner: every cache of the manager trims through Trim.
var shared = newInterner()

// seed is the hash seed of the tables, fixed for the process.
var seed = maphash.MakeSeed()

// hasher hashes the parts of a value, each with its length, so that no two different
// values feed it the same bytes, and counts them.
type hasher struct {
	h maphash.Hash
	n int
}

func newHasher() *hasher {
	h := &hasher{}
	h.h.SetSeed(seed)
	return h
}

func (h *hasher) str(s string) {
	var l [binary.MaxVarintLen64]byte
	_, _ = h.h.Write(l[:binary.PutUvarint(l[:], uint64(len(s)))])
	_, _ = h.h.WriteString(s)
	h.n += len(s)
}

func (h *hasher) bytes(b []byte) {
	var l [binary.MaxVarintLen64]byte
	_, _ = h.h.Write(l[:binary.PutUvarint(l[:], uint64(len(b)))])
	_, _ = h.h.Write(b)
	h.n += len(b)
}

func (h *hasher) sum() uint64 { return h.h.Sum64() }

// tooBig says whether the value hashed is past internMaxBytes.
func (h *hasher) tooBig() bool { return h.n > internMaxBytes }

// str returns the canonical copy of s.
func str(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}

// hashStringMap hashes a map of strings in key order.
func hashStringMap(m map[string]string) *hasher {
	h := newHasher()
	for _, k := range slices.Sorted(maps.Keys(m)) {
		h.str(k)
		h.str(m[k])
	}
	return h
}

// stringMap returns the shared copy of a map of strings (labels, annotations, a
// selector's matchLabels). It never changes m.
func (in *interner) stringMap(m map[string]string) map[string]string {
	if in == nil || len(m) == 0 {
		return m
	}
	h := hashStringMap(m)
	if h.tooBig() {
		return m
	}
	if got, ok := in.strs.lookup(h.sum(), m); ok {
		return got
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[str(k)] = str(v)
	}
	return in.strs.intern(h.sum(), c)
}

func equalResources(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for n, q := range a {
		p, ok := b[n]
		if !ok || q.Cmp(p) != 0 || q.Format != p.Format {
			return false
		}
	}
	return true
}

// resourceList returns the shared copy of requests or limits. It never changes l.
func (in *interner) resourceList(l corev1.ResourceList) corev1.ResourceList {
	if in == nil || len(l) == 0 {
		return l
	}
	h := newHasher()
	for _, n := range slices.Sorted(maps.Keys(l)) {
		q := l[n]
		h.str(string(n))
		h.str(q.String())
	}
	return in.resources.intern(h.sum(), l)
}

// selector returns the shared copy of a label selector of matchLabels only; one with
// expressions stays with its object. It never changes s, which may be shared already.
func (in *interner) selector(s *metav1.LabelSelector) *metav1.LabelSelector {
	if in == nil || s == nil || len(s.MatchExpressions) > 0 {
		return s
	}
	h := hashStringMap(s.MatchLabels)
	if h.tooBig() {
		return s
	}
	if got, ok := in.selectors.lookup(h.sum(), s); ok {
		return got
	}
	c := &metav1.LabelSelector{MatchLabels: in.stringMap(s.MatchLabels)}
	return in.selectors.intern(h.sum(), c)
}

func equalOwner(a, b metav1.OwnerReference) bool {
	return a.APIVersion == b.APIVersion && a.Kind == b.Kind && a.Name == b.Name && a.UID == b.UID &&
		equalBool(a.Controller, b.Controller) && equalBool(a.BlockOwnerDeletion, b.BlockOwnerDeletion)
}

func equalBool(a, b *bool) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// ownerRefs returns the shared copy of an object's owner references: a ReplicaSet's pods
// all name it. It never changes refs.
func (in *interner) ownerRefs(refs []metav1.OwnerReference) []metav1.OwnerReference {
	if in == nil || len(refs) == 0 {
		return refs
	}
	h := newHasher()
	for _, r := range refs {
		h.str(r.APIVersion)
		h.str(r.Kind)
		h.str(r.Name)
		h.str(string(r.UID))
		h.str(boolKey(r.Controller) + boolKey(r.BlockOwnerDeletion))
	}
	return in.owners.intern(h.sum(), refs)
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

// marshaler is a generated API type, whose protobuf encoding is deterministic (map
// entries sorted).
type marshaler interface{ Marshal() ([]byte, error) }

func marshaledEqual[T marshaler](a, b T) bool {
	ra, errA := a.Marshal()
	rb, errB := b.Marshal()
	return errA == nil && errB == nil && bytes.Equal(ra, rb)
}

func equalMarshaled[T any, PT interface {
	*T
	marshaler
}](a, b []T) bool {
	return slices.EqualFunc(a, b, func(x, y T) bool { return marshaledEqual(PT(&x), PT(&y)) })
}

// hashMarshaled hashes the protobuf encoding of each item.
func hashMarshaled[T any, PT interface {
	*T
	marshaler
}](items []T) (*hasher, bool) {
	h := newHasher()
	for i := range items {
		raw, err := PT(&items[i]).Marshal()
		if err != nil {
			return nil, false
		}
		h.bytes(raw)
	}
	return h, !h.tooBig()
}

// containers returns the shared copy of a container list. A list not in the table yet is
// copied, its strings and resources shared, and kept; cs itself is never changed.
func (in *interner) containers(cs []corev1.Container) []corev1.Container {
	if in == nil || len(cs) == 0 {
		return cs
	}
	h, ok := hashMarshaled(cs)
	if !ok {
		return cs
	}
	if got, ok := in.ctrs.lookup(h.sum(), cs); ok {
		return got
	}
	c := slices.Clone(cs)
	for i := range c {
		c[i].Name, c[i].Image = str(c[i].Name), str(c[i].Image)
		c[i].Resources.Requests = in.resourceList(c[i].Resources.Requests)
		c[i].Resources.Limits = in.resourceList(c[i].Resources.Limits)
	}
	return in.ctrs.intern(h.sum(), c)
}

// volumes returns the shared copy of a pod template's volumes.
func (in *interner) volumes(vs []corev1.Volume) []corev1.Volume {
	if in == nil || len(vs) == 0 {
		return vs
	}
	h, ok := hashMarshaled(vs)
	if !ok {
		return vs
	}
	return in.vols.intern(h.sum(), vs)
}

// object makes an object's metadata share what equal objects hold. It sets the object's
// own fields only.
func (in *interner) object(m metav1.Object) {
	if in == nil {
		return
	}
	m.SetNamespace(str(m.GetNamespace()))
	m.SetGenerateName(str(m.GetGenerateName()))
	m.SetLabels(in.stringMap(m.GetLabels()))
	m.SetAnnotations(in.stringMap(m.GetAnnotations()))
	m.SetOwnerReferences(in.ownerRefs(m.GetOwnerReferences()))
}

// podTemplate makes a workload's pod template share what equal templates hold: a
// Deployment's with its current ReplicaSet's, and both with other apps' of the same
// image and resources. It sets the template's own fields only.
func (in *interner) podTemplate(t *corev1.PodTemplateSpec) {
	if in == nil {
		return
	}
	in.object(&t.ObjectMeta)
	t.Spec.Containers = in.containers(t.Spec.Containers)
	t.Spec.InitContainers = in.containers(t.Spec.InitContainers)
	t.Spec.Volumes = in.volumes(t.Spec.Volumes)
	if sc := t.Spec.SecurityContext; sc != nil {
		if raw, err := sc.Marshal(); err == nil {
			h := newHasher()
			h.bytes(raw)
			t.Spec.SecurityContext = in.podSec.intern(h.sum(), sc)
		}
	}
	if g := t.Spec.TerminationGracePeriodSeconds; g != nil {
		h := newHasher()
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(*g))
		h.bytes(b[:])
		t.Spec.TerminationGracePeriodSeconds = in.int64s.intern(h.sum(), g)
	}
	t.Spec.ServiceAccountName = str(t.Spec.ServiceAccountName)
	t.Spec.DeprecatedServiceAccount = str(t.Spec.DeprecatedServiceAccount)
	t.Spec.SchedulerName = str(t.Spec.SchedulerName)
	t.Spec.DNSPolicy = corev1.DNSPolicy(str(string(t.Spec.DNSPolicy)))
	t.Spec.RestartPolicy = corev1.RestartPolicy(str(string(t.Spec.RestartPolicy)))
}
