package cli

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// listPageSize bounds one page of a list, so a namespace with many Events is read in
// pieces.
const listPageSize = 500

// gatherTimeline reads what the timeline of app joins, in app's namespace:
//
//   - the Events, through events.k8s.io/v1, or through core/v1 when that is refused or
//     not served (both serve the same Events);
//   - each component's workload (Deployment, StatefulSet, ReplicaSet), for its uid and
//     pod selector;
//   - the ReplicaSets and pods, metadata only, to tell a workload's from others'.
//
// It reads nothing else when Events may not be listed: nothing would be shown of them.
// What the user may not read is left out with a warning in the result; any other error
// of the API server ends it.
func gatherTimeline(ctx context.Context, c client.Reader, app *v1alpha1.AutonomicApp) (timelineInput, error) {
	in := timelineInput{App: app}
	ns := app.Namespace

	err := listPages(ctx, c, ns, func() *eventsv1.EventList { return &eventsv1.EventList{} }, func(l *eventsv1.EventList) {
		in.Events = append(in.Events, l.Items...)
	})
	if err != nil && (apierrors.IsForbidden(err) || meta.IsNoMatchError(err) || apierrors.IsNotFound(err)) {
		coreErr := listPages(ctx, c, ns, func() *corev1.EventList { return &corev1.EventList{} }, func(l *corev1.EventList) {
			in.CoreEvents = append(in.CoreEvents, l.Items...)
		})
		switch {
		case coreErr == nil:
			err = nil
		case apierrors.IsForbidden(coreErr):
			in.Warnings = append(in.Warnings, fmt.Sprintf("You may not list Events in namespace %s (neither events.k8s.io "+
				"nor core), so they are left out: the timeline shows only the app's status, its history, conditions and symptoms.", ns))
			return in, nil
		default:
			err = coreErr
		}
	}
	if err != nil {
		return in, apiError(err, "listing the Events of namespace "+ns)
	}

	var workloads, deployments bool
	forbidden := map[string]bool{}
	for _, comp := range app.Spec.Components {
		ref := comp.WorkloadRef
		if ref == nil {
			continue
		}
		workloads = true
		var obj client.Object
		switch ref.Kind {
		case "Deployment":
			obj, deployments = &appsv1.Deployment{}, true
		case "StatefulSet":
			obj = &appsv1.StatefulSet{}
		case "ReplicaSet":
			obj = &appsv1.ReplicaSet{}
		default:
			continue
		}
		err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}, obj)
		switch {
		case err == nil:
			in.Workloads = append(in.Workloads, obj)
		case apierrors.IsNotFound(err):
			// Gone: its Events, and its pods', are still matched by name.
		case apierrors.IsForbidden(err):
			if !forbidden[ref.Kind] {
				forbidden[ref.Kind] = true
				in.Warnings = append(in.Warnings, fmt.Sprintf("You may not get %ss in namespace %s, so the pods of %s %s "+
					"are found by their names only, not by its selector.", ref.Kind, ns, ref.Kind, ref.Name))
			}
		default:
			return in, apiError(err, fmt.Sprintf("reading %s %s/%s", ref.Kind, ns, ref.Name))
		}
	}
	if deployments {
		err := listPages(ctx, c, ns, metadataList(appsv1.SchemeGroupVersion.WithKind("ReplicaSetList")), func(l *metav1.PartialObjectMetadataList) {
			in.ReplicaSets = append(in.ReplicaSets, l.Items...)
		})
		switch {
		case apierrors.IsForbidden(err):
			in.Warnings = append(in.Warnings, fmt.Sprintf("You may not list ReplicaSets in namespace %s, so a Deployment's "+
				"ReplicaSets and pods are found by their names only.", ns))
		case err != nil:
			return in, apiError(err, "listing the ReplicaSets of namespace "+ns)
		}
	}
	if workloads {
		err := listPages(ctx, c, ns, metadataList(corev1.SchemeGroupVersion.WithKind("PodList")), func(l *metav1.PartialObjectMetadataList) {
			in.Pods = append(in.Pods, l.Items...)
		})
		switch {
		case apierrors.IsForbidden(err):
			in.Warnings = append(in.Warnings, fmt.Sprintf("You may not list pods in namespace %s, so pods are found by "+
				"their names only: the Events of a pod a selector matches under another name are left out.", ns))
		case err != nil:
			return in, apiError(err, "listing the pods of namespace "+ns)
		}
	}
	return in, nil
}

// listPages lists namespace ns page by page, each page into a new list, and calls each
// with every page.
func listPages[L client.ObjectList](ctx context.Context, c client.Reader, ns string, newList func() L, each func(L)) error {
	cont := ""
	for {
		list := newList()
		if err := c.List(ctx, list, client.InNamespace(ns), client.Limit(listPageSize), client.Continue(cont)); err != nil {
			return err
		}
		each(list)
		if cont = list.GetContinue(); cont == "" {
			return nil
		}
	}
}

// metadataList makes empty metadata-only lists of kind gvk.
func metadataList(gvk schema.GroupVersionKind) func() *metav1.PartialObjectMetadataList {
	return func() *metav1.PartialObjectMetadataList {
		l := &metav1.PartialObjectMetadataList{}
		l.SetGroupVersionKind(gvk)
		return l
	}
}
