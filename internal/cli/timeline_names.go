package cli

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// Which ReplicaSets and pods belong to a component's workload. Pods that crashed and
// ReplicaSets a rollback scaled away may be gone while their Events remain, so besides
// the objects that exist, names are matched the way the controllers generate them:
//
//	Deployment web     ReplicaSet web-<hash>          pod web-<hash>-<5 chars>
//	StatefulSet db     pod db-<ordinal>
//	ReplicaSet cache   pod cache-<5 chars>
//
// The hash (a ReplicaSet's pod-template-hash) and the random suffix are drawn from one
// alphabet without vowels, so the pods of Deployment web-api (web-api-<hash>-<5>) are
// never taken for web's: "api-<hash>" is not a hash. A name that has the shape but names
// a ReplicaSet or pod that exists and belongs to someone else is not taken either.

// nameAlphabet is the alphabet of pod-template-hashes and of generated name suffixes
// (k8s.io/apimachinery/pkg/util/rand).
const nameAlphabet = "bcdfghjklmnpqrstvwxz2456789"

const (
	// maxHashLen is the longest pod-template-hash: a 32-bit number, one character per
	// decimal digit.
	maxHashLen = 10
	// suffixLen is the length of the random suffix of a generated name.
	suffixLen = 5
	// maxGeneratedBase is how much of a generateName the API server keeps: the name is at
	// most 63 characters, the last 5 random.
	maxGeneratedBase = 63 - suffixLen
)

// inAlphabet is true for a non-empty string of nameAlphabet's characters.
func inAlphabet(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune(nameAlphabet, r) {
			return false
		}
	}
	return true
}

// generatedFrom is true when name is what the API server makes of generateName base:
// the base, cut to 58 characters, and 5 random characters.
func generatedFrom(name, base string) bool {
	if len(base) > maxGeneratedBase {
		base = base[:maxGeneratedBase]
	}
	return len(name) == len(base)+suffixLen && strings.HasPrefix(name, base) && inAlphabet(name[len(base):])
}

// workloadMatcher tells the objects of one component's workload by kind and name.
type workloadMatcher struct {
	component string
	kind      string
	name      string
	// uid is the workload's, when it could be read.
	uid types.UID
	// selector is the workload's pod selector, when it could be read.
	selector labels.Selector
	// replicaSets are the live ReplicaSets a Deployment owns, by name, and hashes their
	// pod-template-hashes.
	replicaSets map[string]bool
	hashes      map[string]bool
	// liveReplicaSets and livePods are the namespace's, by name, with their controller
	// (nil for none).
	liveReplicaSets map[string]*metav1.OwnerReference
	livePods        map[string]*metav1.OwnerReference
	// selected are the live pods the selector matches, unless another controller owns
	// them.
	selected map[string]bool
}

// newWorkloadMatcher is the matcher of component c, whose workload obj is nil when it
// could not be read; rss and pods are the namespace's, as far as they could be listed.
func newWorkloadMatcher(c v1alpha1.Component, obj client.Object, rss, pods []metav1.PartialObjectMetadata) *workloadMatcher {
	m := &workloadMatcher{
		component: c.Name, kind: c.WorkloadRef.Kind, name: c.WorkloadRef.Name,
		replicaSets:     map[string]bool{},
		hashes:          map[string]bool{},
		liveReplicaSets: map[string]*metav1.OwnerReference{},
		livePods:        map[string]*metav1.OwnerReference{},
		selected:        map[string]bool{},
	}
	var sel *metav1.LabelSelector
	switch w := obj.(type) {
	case *appsv1.Deployment:
		sel = w.Spec.Selector
	case *appsv1.StatefulSet:
		sel = w.Spec.Selector
	case *appsv1.ReplicaSet:
		sel = w.Spec.Selector
	}
	if obj != nil {
		m.uid = obj.GetUID()
	}
	if sel != nil {
		if s, err := metav1.LabelSelectorAsSelector(sel); err == nil && !s.Empty() {
			m.selector = s
		}
	}
	for i := range rss {
		rs := &rss[i]
		owner := metav1.GetControllerOfNoCopy(rs)
		m.liveReplicaSets[rs.Name] = owner
		if m.kind == "Deployment" && owner != nil && owner.Kind == "Deployment" && owner.Name == m.name &&
			(m.uid == "" || owner.UID == m.uid) {
			m.replicaSets[rs.Name] = true
			hash := rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
			if hash == "" {
				hash = strings.TrimPrefix(rs.Name, m.name+"-")
			}
			m.hashes[hash] = true
		}
	}
	for i := range pods {
		p := &pods[i]
		m.livePods[p.Name] = metav1.GetControllerOfNoCopy(p)
	}
	if m.selector != nil {
		for i := range pods {
			p := &pods[i]
			owner := m.livePods[p.Name]
			if m.selector.Matches(labels.Set(p.Labels)) && (owner == nil || m.ownedPod(p.Name, owner)) {
				m.selected[p.Name] = true
			}
		}
	}
	return m
}

// ownsReplicaSet is true for a ReplicaSet of the Deployment: one it owns, or, for one
// that no longer exists, one named <deployment>-<hash>.
func (m *workloadMatcher) ownsReplicaSet(name string) bool {
	if m.kind != "Deployment" {
		return false
	}
	if m.replicaSets[name] {
		return true
	}
	if _, live := m.liveReplicaSets[name]; live {
		return false // it exists, and the Deployment does not own it
	}
	hash, ok := strings.CutPrefix(name, m.name+"-")
	return ok && len(hash) <= maxHashLen && inAlphabet(hash)
}

// ownsPod is true for a pod of the workload: one its selector matches now, or one named
// as the workload names its pods whose controller, if it still exists, is the workload's.
func (m *workloadMatcher) ownsPod(name string) bool {
	if m.selected[name] {
		return true
	}
	return m.ownedPod(name, m.livePods[name])
}

// ownedPod is true when a pod called name, controlled by owner (nil when it has none or
// no longer exists), is the workload's by its name and owner.
func (m *workloadMatcher) ownedPod(name string, owner *metav1.OwnerReference) bool {
	switch m.kind {
	case "StatefulSet":
		if owner != nil && (owner.Kind != "StatefulSet" || owner.Name != m.name) {
			return false
		}
		ord, ok := strings.CutPrefix(name, m.name+"-")
		return ok && isOrdinal(ord)
	case "ReplicaSet":
		if owner != nil && (owner.Kind != "ReplicaSet" || owner.Name != m.name) {
			return false
		}
		return generatedFrom(name, m.name+"-")
	case "Deployment":
		if owner != nil {
			return owner.Kind == "ReplicaSet" && m.ownsReplicaSet(owner.Name)
		}
		// The pod-template-hashes of the Deployment's ReplicaSets first: they are exact,
		// even where a long name was cut.
		for hash := range m.hashes {
			if generatedFrom(name, m.name+"-"+hash+"-") {
				return true
			}
		}
		return m.deploymentPodName(name)
	}
	return false
}

// deploymentPodName is true for <deployment>-<hash>-<5 chars> whose ReplicaSet
// <deployment>-<hash> could be the Deployment's. The API server cuts a generateName to 58
// characters, so the pod of a long name may have lost the end of its hash, or all of it.
func (m *workloadMatcher) deploymentPodName(name string) bool {
	if len(name) <= suffixLen || !inAlphabet(name[len(name)-suffixLen:]) {
		return false
	}
	base := name[:len(name)-suffixLen]
	prefix := m.name + "-"
	if len(base) == maxGeneratedBase {
		if len(prefix) >= maxGeneratedBase {
			return base == prefix[:maxGeneratedBase]
		}
		if !strings.HasSuffix(base, "-") {
			hash, ok := strings.CutPrefix(base, prefix)
			return ok && len(hash) <= maxHashLen && inAlphabet(hash)
		}
	}
	rs, ok := strings.CutSuffix(base, "-")
	return ok && m.ownsReplicaSet(rs)
}

// isOrdinal is true for a StatefulSet pod's ordinal: a decimal number without leading
// zeros.
func isOrdinal(s string) bool {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
