package monitor

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// Index names registered on the cache.
const (
	// IndexOwner indexes pods and ReplicaSets by their controller: "<Kind>/<name>".
	IndexOwner = "homeostat.owner"
	// IndexWorkload indexes apps by the workloads they name: "<Kind>/<name>".
	IndexWorkload = "homeostat.workload"
	// IndexChild indexes apps by the child apps they name.
	IndexChild = "homeostat.child"
	// IndexPodNode indexes pods by the node they run on, for drains.
	IndexPodNode = "spec.nodeName"
)

// OwnerKey is the owner index key of a controller reference.
func OwnerKey(kind, name string) string { return kind + "/" + name }

// ownerIndex returns the object's controller as an index key.
func ownerIndex(o client.Object) []string {
	if ref := metav1.GetControllerOf(o); ref != nil {
		return []string{OwnerKey(ref.Kind, ref.Name)}
	}
	return nil
}

// workloadIndex returns the workloads an app names.
func workloadIndex(o client.Object) []string {
	app := o.(*v1alpha1.AutonomicApp)
	var keys []string
	for _, c := range app.Spec.Components {
		if c.WorkloadRef != nil {
			keys = append(keys, OwnerKey(c.WorkloadRef.Kind, c.WorkloadRef.Name))
		}
	}
	return keys
}

// childIndex returns the child apps an app names.
func childIndex(o client.Object) []string {
	app := o.(*v1alpha1.AutonomicApp)
	var keys []string
	for _, c := range app.Spec.Components {
		if c.AppRef != nil {
			keys = append(keys, c.AppRef.Name)
		}
	}
	return keys
}

// podNodeIndex returns the node a pod runs on.
func podNodeIndex(o client.Object) []string {
	if p, ok := o.(*corev1.Pod); ok && p.Spec.NodeName != "" {
		return []string{p.Spec.NodeName}
	}
	return nil
}

// SetupIndexes registers the indexes the monitor and the event mapping use.
//
// The owner, workload and child indexes are read only within one namespace (an owner
// reference never crosses one), so on a controller-runtime cache they hold only the
// namespaced key: IndexField would also file every object under an "all namespaces"
// key, a second set per value that no read uses (at 10,000 apps, 30,000 sets). A List
// through them must name its namespace (client.InNamespace); one that does not finds
// nothing. The pod-node index is read across namespaces by drains, and keeps both.
func SetupIndexes(ctx context.Context, idx client.FieldIndexer) error {
	for _, i := range []struct {
		obj         client.Object
		name        string
		fn          client.IndexerFunc
		inNamespace bool
	}{
		{&corev1.Pod{}, IndexOwner, ownerIndex, true},
		{&appsv1.ReplicaSet{}, IndexOwner, ownerIndex, true},
		{&appsv1.ControllerRevision{}, IndexOwner, ownerIndex, true},
		{&v1alpha1.AutonomicApp{}, IndexWorkload, workloadIndex, true},
		{&v1alpha1.AutonomicApp{}, IndexChild, childIndex, true},
		{&corev1.Pod{}, IndexPodNode, podNodeIndex, false},
	} {
		var err error
		if i.inNamespace {
			err = indexInNamespace(ctx, idx, i.obj, i.name, i.fn)
		} else {
			err = idx.IndexField(ctx, i.obj, i.name, i.fn)
		}
		if err != nil {
			return fmt.Errorf("indexing %T by %s: %w", i.obj, i.name, err)
		}
	}
	return nil
}

// informerGetter is what a controller-runtime cache offers besides IndexField.
type informerGetter interface {
	GetInformer(ctx context.Context, obj client.Object, opts ...crcache.InformerGetOption) (crcache.Informer, error)
}

// allNamespaces is the namespace controller-runtime's cache reader looks a field index
// up under when a List names none (and for cluster-scoped objects).
const allNamespaces = "__all_namespaces"

// indexInNamespace registers fn on obj's informer as IndexField does, under the index
// name controller-runtime's cache reader looks up ("field:" + name) and with the keys it
// looks up ("<namespace>/<value>"), but without the "all namespaces" copy of each key.
// Any other indexer (a fake client's) gets IndexField: it answers lookups itself.
func indexInNamespace(ctx context.Context, idx client.FieldIndexer, obj client.Object, name string, fn client.IndexerFunc) error {
	ig, ok := idx.(informerGetter)
	if !ok {
		return idx.IndexField(ctx, obj, name, fn)
	}
	inf, err := ig.GetInformer(ctx, obj, crcache.BlockUntilSynced(false))
	if err != nil {
		return err
	}
	return inf.AddIndexers(toolscache.Indexers{"field:" + name: func(raw any) ([]string, error) {
		o, ok := raw.(client.Object)
		if !ok {
			return nil, fmt.Errorf("indexing %s: %T is not an object", name, raw)
		}
		return namespacedKeys(o.GetNamespace(), fn(o)), nil
	}})
}

// namespacedKeys prefixes each of vals with ns, as controller-runtime's cache reader
// keys a field index: "<ns>/<value>", "__all_namespaces/<value>" when ns is empty.
func namespacedKeys(ns string, vals []string) []string {
	if ns == "" {
		ns = allNamespaces
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = ns + "/" + v
	}
	return out
}

// Gatherer reads an app's components from the cache.
type Gatherer struct {
	Reader client.Reader
}

// Gather returns every component of the app with its built-in sensors. A missing
// workload or child app is not an error: it is reported in the component's status.
//
//	Deployment web ──owns──> ReplicaSet web-7d9 ──owns──> Pod web-7d9-x2x
//	                └─owns──> ReplicaSet web-5f1 ──owns──> Pod web-5f1-abc (old revision)
//
// A Deployment's pods are those of all its ReplicaSets, found through the owner index,
// never by listing the namespace.
func (g Gatherer) Gather(ctx context.Context, app *v1alpha1.AutonomicApp) ([]Component, error) {
	out := make([]Component, 0, len(app.Spec.Components))
	for _, spec := range app.Spec.Components {
		c := Component{Name: spec.Name, Ref: spec.WorkloadRef}
		var err error
		if spec.AppRef != nil {
			err = g.gatherChild(ctx, app.Namespace, spec.AppRef.Name, &c)
		} else {
			err = g.gatherWorkload(ctx, app.Namespace, spec.WorkloadRef, &c)
		}
		if err != nil {
			return nil, fmt.Errorf("gathering component %q: %w", spec.Name, err)
		}
		c.Status = ComputeStatus(&c)
		out = append(out, c)
	}
	return out, nil
}

func (g Gatherer) gatherChild(ctx context.Context, ns, name string, c *Component) error {
	child := &v1alpha1.AutonomicApp{}
	if err := g.Reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, child); err != nil {
		return client.IgnoreNotFound(err)
	}
	c.Child = child
	return nil
}

func (g Gatherer) gatherWorkload(ctx context.Context, ns string, ref *v1alpha1.WorkloadReference, c *Component) error {
	var obj client.Object
	switch ref.Kind {
	case "Deployment":
		obj = &appsv1.Deployment{}
	case "StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "ReplicaSet":
		obj = &appsv1.ReplicaSet{}
	default:
		return nil
	}
	if err := g.Reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	c.Workload = obj
	owners := []string{OwnerKey(ref.Kind, ref.Name)}
	if ref.Kind == "StatefulSet" {
		var revs appsv1.ControllerRevisionList
		if err := g.Reader.List(ctx, &revs, client.InNamespace(ns), client.MatchingFields{IndexOwner: owners[0]}); err != nil {
			return err
		}
		c.Revisions = revs.Items
	}
	if ref.Kind == "Deployment" {
		var rss appsv1.ReplicaSetList
		if err := g.Reader.List(ctx, &rss, client.InNamespace(ns), client.MatchingFields{IndexOwner: owners[0]}); err != nil {
			return err
		}
		c.ReplicaSets = rss.Items
		owners = owners[:0]
		for _, rs := range rss.Items {
			owners = append(owners, OwnerKey("ReplicaSet", rs.Name))
		}
	}
	for _, o := range owners {
		var pods corev1.PodList
		if err := g.Reader.List(ctx, &pods, client.InNamespace(ns), client.MatchingFields{IndexOwner: o}); err != nil {
			return err
		}
		c.Pods = append(c.Pods, pods.Items...)
	}
	return nil
}

// AppsForWorkload returns the apps that name the workload (kind/name) in the namespace.
// It runs for every pod and workload event and reads only the apps' names, so it reads
// the cached apps without copying them.
func AppsForWorkload(ctx context.Context, r client.Reader, ns, kind, name string) ([]types.NamespacedName, error) {
	var apps v1alpha1.AutonomicAppList
	if err := r.List(ctx, &apps, client.InNamespace(ns), client.MatchingFields{IndexWorkload: OwnerKey(kind, name)},
		client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	out := make([]types.NamespacedName, 0, len(apps.Items))
	for _, a := range apps.Items {
		out = append(out, types.NamespacedName{Namespace: a.Namespace, Name: a.Name})
	}
	return out, nil
}

// WorkloadOfPod returns the workload that controls a pod: its StatefulSet or ReplicaSet,
// and for a ReplicaSet owned by a Deployment, also that Deployment.
func WorkloadOfPod(ctx context.Context, r client.Reader, pod *corev1.Pod) []OwnerRef {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return nil
	}
	out := []OwnerRef{{Kind: ref.Kind, Name: ref.Name}}
	if ref.Kind == "ReplicaSet" {
		rs := &appsv1.ReplicaSet{}
		// Only the ReplicaSet's controller is read, so the cached object is not copied.
		if err := r.Get(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: ref.Name}, rs, client.UnsafeDisableDeepCopy); err == nil {
			if d := metav1.GetControllerOf(rs); d != nil && d.Kind == "Deployment" {
				out = append(out, OwnerRef{Kind: "Deployment", Name: d.Name})
			}
		} else if h := pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; h != "" && strings.HasSuffix(ref.Name, "-"+h) {
			// The ReplicaSet is not in the cache yet: its name is <deployment>-<hash>.
			out = append(out, OwnerRef{Kind: "Deployment", Name: strings.TrimSuffix(ref.Name, "-"+h)})
		}
	}
	return out
}

// OwnerRef is a workload's kind and name.
type OwnerRef struct{ Kind, Name string }
