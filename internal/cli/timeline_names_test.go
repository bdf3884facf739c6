package cli

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func ownedMeta(name string, labels map[string]string, kind, owner string) metav1.PartialObjectMetadata {
	m := metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if owner != "" {
		yes := true
		m.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: owner, UID: types.UID("uid-" + owner), Controller: &yes}}
	}
	return m
}

func matcherFor(kind, name string, obj client.Object, rss, pods []metav1.PartialObjectMetadata) *workloadMatcher {
	c := v1alpha1.Component{Name: "c", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: kind, Name: name}}
	return newWorkloadMatcher(c, obj, rss, pods)
}

func TestDeploymentPodsAreToldFromAnotherDeploymentsWithTheSamePrefix(t *testing.T) {
	web := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", UID: "uid-web"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
	rss := []metav1.PartialObjectMetadata{
		ownedMeta("web-6b9d5c7f84", map[string]string{"pod-template-hash": "6b9d5c7f84"}, "Deployment", "web"),
		ownedMeta("web-api-5c4d8f7b9z", map[string]string{"pod-template-hash": "5c4d8f7b9z"}, "Deployment", "web-api"),
		ownedMeta("web-bdf", nil, "", ""),
		ownedMeta("web-zz", nil, "Deployment", "web-zz-owner"),
	}
	pods := []metav1.PartialObjectMetadata{
		ownedMeta("web-6b9d5c7f84-z5t8n", map[string]string{"app": "web"}, "ReplicaSet", "web-6b9d5c7f84"),
		ownedMeta("web-api-5c4d8f7b9z-q2w4e", map[string]string{"app": "web-api"}, "ReplicaSet", "web-api-5c4d8f7b9z"),
		ownedMeta("web-bdf-h2k4m", map[string]string{"app": "web-bdf"}, "ReplicaSet", "web-bdf"),
		ownedMeta("web-debug", map[string]string{"app": "web"}, "", ""),
		ownedMeta("web-7c2d4-b2c4d", map[string]string{"app": "web"}, "Job", "migrate"),
	}
	m := matcherFor("Deployment", "web", web, rss, pods)
	for _, tc := range []struct {
		pod  string
		want bool
		why  string
	}{
		{"web-6b9d5c7f84-z5t8n", true, "a live pod of its ReplicaSet"},
		{"web-6b9d5c7f84-k2x9p", true, "a deleted pod of its live ReplicaSet, by its pod-template-hash"},
		{"web-57f4c9dd8x-k2x9p", true, "a deleted pod of a deleted ReplicaSet of the shape <web>-<hash>"},
		{"web-57f4c-w7m4q", true, "a shorter hash"},
		{"web-debug", true, "a pod the selector matches"},
		{"web-api-5c4d8f7b9z-q2w4e", false, "the live pod of Deployment web-api"},
		{"web-api-5c4d8f7b9z-x2x9k", false, "a deleted pod of Deployment web-api: api-5c4d8f7b9z is not a hash"},
		{"web-bdf-h2k4m", false, "the live pod of a bare ReplicaSet named like a hash"},
		{"web-bdf-x9z2q", false, "a deleted pod of the bare ReplicaSet web-bdf, which exists"},
		{"web-zz-x9z2q", false, "a deleted pod of ReplicaSet web-zz, another Deployment's"},
		{"web-7c2d4-b2c4d", false, "a live pod of the shape whose controller is a Job"},
		{"web-57f4c9dd8x-k2x9", false, "a suffix of 4"},
		{"web-57f4c9dd8x-k2x9pp", false, "a suffix of 6"},
		{"web-57f4c9dd8xy-k2x9p", false, "a hash of 11"},
		{"web-57f4c9dd8a-k2x9p", false, "a vowel in the hash"},
		{"web-k2x9p", false, "no hash"},
		{"webb-57f4c9dd8x-k2x9p", false, "another prefix"},
		{"web", false, "the Deployment's name"},
	} {
		if got := m.ownsPod(tc.pod); got != tc.want {
			t.Errorf("ownsPod(%q) = %v, want %v: %s", tc.pod, got, tc.want, tc.why)
		}
	}
	for _, tc := range []struct {
		rs   string
		want bool
	}{
		{"web-6b9d5c7f84", true},
		{"web-57f4c9dd8x", true},
		{"web-api-5c4d8f7b9z", false},
		{"web-bdf", false},
		{"web-zz", false},
		{"web-api", false},
		{"web", false},
	} {
		if got := m.ownsReplicaSet(tc.rs); got != tc.want {
			t.Errorf("ownsReplicaSet(%q) = %v, want %v", tc.rs, got, tc.want)
		}
	}
}

func TestPodsOfALongDeploymentNameAreMatchedWhereTheirHashWasCut(t *testing.T) {
	long := "checkout-frontend-with-a-rather-long-name-for-a-deploy" // 54 characters
	// The generateName <long>-<hash>- is cut to 58 characters: 3 of the hash stay.
	rs := long + "-6b9d5c7f84"
	pod := (rs + "-")[:58] + "k2x9p"
	other := (long + "-5c4d8f7b9z-")[:58] + "k2x9p"
	withHash := matcherFor("Deployment", long, nil,
		[]metav1.PartialObjectMetadata{ownedMeta(rs, map[string]string{"pod-template-hash": "6b9d5c7f84"}, "Deployment", long)}, nil)
	if !withHash.ownsPod(pod) {
		t.Errorf("%s, a pod of %s, is not matched", pod, rs)
	}
	if !withHash.ownsPod(other) {
		t.Errorf("%s, a pod of a deleted ReplicaSet whose hash was cut, is not matched", other)
	}
	veryLong := strings.Repeat("a", 60)
	m := matcherFor("Deployment", veryLong, nil, nil, nil)
	if !m.ownsPod(veryLong[:58] + "k2x9p") {
		t.Errorf("a pod of a Deployment whose name fills the generateName is not matched")
	}
	if m.ownsPod(veryLong[:57] + "b" + "k2x9p") {
		t.Errorf("a pod whose cut name differs from the Deployment's is matched")
	}
}

func TestStatefulSetPodsAreMatchedByOrdinal(t *testing.T) {
	m := matcherFor("StatefulSet", "db", nil, nil, []metav1.PartialObjectMetadata{
		ownedMeta("db-1", nil, "StatefulSet", "db"),
		ownedMeta("db-2", nil, "StatefulSet", "db-2-owner"),
	})
	for pod, want := range map[string]bool{
		"db-0": true, "db-1": true, "db-12": true, "db-01": false, "db-": false, "db-a": false,
		"db-2":        false, // it exists, and another StatefulSet controls it
		"db-backup-0": false, "dbx-0": false, "db-6b9d5c7f84-k2x9p": false,
	} {
		if got := m.ownsPod(pod); got != want {
			t.Errorf("StatefulSet db: ownsPod(%q) = %v, want %v", pod, got, want)
		}
	}
	if m.ownsReplicaSet("db-6b9d5c7f84") {
		t.Errorf("a StatefulSet owns no ReplicaSet")
	}
}

func TestReplicaSetPodsAreMatchedByTheirGeneratedSuffix(t *testing.T) {
	m := matcherFor("ReplicaSet", "cache", nil, nil, nil)
	for pod, want := range map[string]bool{
		"cache-k2x9p": true, "cache-k2x9": false, "cache-k2x9pp": false, "cache-aeiou": false,
		"cache-6b9d5c7f84-k2x9p": false, "cache": false,
	} {
		if got := m.ownsPod(pod); got != want {
			t.Errorf("ReplicaSet cache: ownsPod(%q) = %v, want %v", pod, got, want)
		}
	}
}
