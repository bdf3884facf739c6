package execute

import (
	"encoding/json"
	"fmt"
	"maps"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// testRS is a ReplicaSet of the fake Deployment with a revision and an image.
func testRS(d *appsv1.Deployment, revision string, image string, mutate ...func(*appsv1.ReplicaSet)) appsv1.ReplicaSet {
	tmpl := podTemplateSpec(image)
	tmpl.Labels = map[string]string{"app": "web", appsv1.DefaultDeploymentUniqueLabelKey: "h" + revision}
	rs := appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:            "web-h" + revision,
			Annotations:     map[string]string{RevisionAnnotation: revision},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))},
		},
		Spec: appsv1.ReplicaSetSpec{Template: tmpl},
	}
	for _, m := range mutate {
		m(&rs)
	}
	return rs
}

func TestPreviousRevision(t *testing.T) {
	running := func(image string) *appsv1.Deployment {
		return (&fakeDeployment{replicas: 2, mutate: func(d *appsv1.Deployment) {
			d.Spec.Template = podTemplateSpec(image)
		}}).deployment()
	}
	notOwned := func(rs *appsv1.ReplicaSet) { rs.OwnerReferences = nil }
	noRevision := func(rs *appsv1.ReplicaSet) { delete(rs.Annotations, RevisionAnnotation) }

	tests := []struct {
		name    string
		d       *appsv1.Deployment
		rss     func(d *appsv1.Deployment) []appsv1.ReplicaSet
		want    string
		wantErr string
	}{
		{"the revision before the current, newest one", running("v3"), func(d *appsv1.Deployment) []appsv1.ReplicaSet {
			return []appsv1.ReplicaSet{testRS(d, "1", "v1"), testRS(d, "3", "v3"), testRS(d, "2", "v2")}
		}, "web-h2", ""},
		{"the revision before the one whose template the Deployment runs, even when a newer one exists", running("v2"),
			func(d *appsv1.Deployment) []appsv1.ReplicaSet {
				return []appsv1.ReplicaSet{testRS(d, "1", "v1"), testRS(d, "2", "v2"), testRS(d, "3", "v3")}
			}, "web-h1", ""},
		{"with no template match, the revision before the highest", running("v9"), func(d *appsv1.Deployment) []appsv1.ReplicaSet {
			return []appsv1.ReplicaSet{testRS(d, "1", "v1"), testRS(d, "2", "v2")}
		}, "web-h1", ""},
		{"revisions compare as numbers", running("v10"), func(d *appsv1.Deployment) []appsv1.ReplicaSet {
			return []appsv1.ReplicaSet{testRS(d, "9", "v9"), testRS(d, "10", "v10"), testRS(d, "2", "v2")}
		}, "web-h9", ""},
		{"ReplicaSets of another owner or without a revision are ignored", running("v3"), func(d *appsv1.Deployment) []appsv1.ReplicaSet {
			return []appsv1.ReplicaSet{testRS(d, "2", "v2", notOwned), testRS(d, "1", "v1", noRevision), testRS(d, "3", "v3")}
		}, "", "there is no revision before its current revision 3"},
		{"a single revision has nothing before it", running("v1"), func(d *appsv1.Deployment) []appsv1.ReplicaSet {
			return []appsv1.ReplicaSet{testRS(d, "1", "v1")}
		}, "", "there is no revision before its current revision 1"},
		{"no ReplicaSets, no revisions", running("v1"), func(*appsv1.Deployment) []appsv1.ReplicaSet { return nil },
			"", "it has no revisions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, _, err := previousRevision(tt.d, tt.rss(tt.d))
			switch {
			case tt.wantErr != "":
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("previousRevision() error = %v, want %q", err, tt.wantErr)
				}
			case err != nil:
				t.Errorf("previousRevision() error = %v", err)
			case rs.Name != tt.want:
				t.Errorf("previousRevision() = %s, want %s", rs.Name, tt.want)
			}
		})
	}
}

func TestRollbackPatch(t *testing.T) {
	d := (&fakeDeployment{replicas: 1}).deployment()
	withCause := func(rs *appsv1.ReplicaSet) { rs.Annotations[ChangeCauseAnnotation] = "deploy v1" }
	tests := []struct {
		name   string
		dAnn   map[string]string
		rs     appsv1.ReplicaSet
		wantOp []string
	}{
		{"a Deployment without annotations gets the map whole", nil, testRS(d, "1", "v1", withCause),
			[]string{"replace /spec/template", "add /metadata/annotations"}},
		{"the revision's change-cause replaces the Deployment's", map[string]string{ChangeCauseAnnotation: "deploy v2"},
			testRS(d, "1", "v1", withCause), []string{
				"replace /spec/template",
				"add /metadata/annotations/autonomic.homeostat.dev~1action-id",
				"add /metadata/annotations/kubernetes.io~1change-cause"}},
		{"a revision without a change-cause leaves the Deployment's", map[string]string{ChangeCauseAnnotation: "deploy v2"},
			testRS(d, "1", "v1"), []string{
				"replace /spec/template",
				"add /metadata/annotations/autonomic.homeostat.dev~1action-id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d.Annotations = tt.dAnn
			var ops []struct {
				Op, Path string
				Value    json.RawMessage
			}
			if err := json.Unmarshal(rollbackPatch(d.Annotations, withoutHash(&tt.rs.Spec.Template), tt.rs.Annotations, "id-1"), &ops); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, op := range ops {
				got = append(got, op.Op+" "+op.Path)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantOp) {
				t.Errorf("ops = %v, want %v", got, tt.wantOp)
			}
			var tmpl struct {
				Metadata metav1.ObjectMeta
			}
			if err := json.Unmarshal(ops[0].Value, &tmpl); err != nil {
				t.Fatal(err)
			}
			if _, ok := tmpl.Metadata.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; ok {
				t.Errorf("the template keeps pod-template-hash: %v", tmpl.Metadata.Labels)
			}
		})
	}
}

var _ = Describe("rollback", func() {
	var f *fixture
	BeforeEach(func() { f = newFixture() })
	action := v1alpha1.Action{Rollback: &v1alpha1.ComponentAction{Component: "web"}}

	// rollOut changes the Deployment's image and creates the ReplicaSet of the new revision,
	// as the Deployment controller would.
	rollOut := func(d *appsv1.Deployment, revision int, image, cause string) *appsv1.ReplicaSet {
		if revision > 1 {
			d.Spec.Template.Spec.Containers[0].Image = image
			if d.Annotations == nil {
				d.Annotations = map[string]string{}
			}
			d.Annotations[ChangeCauseAnnotation] = cause
			Expect(k8s.Update(ctx, d)).To(Succeed())
		}
		rs := f.replicaSet(d, revision, 0)
		rs.Annotations[ChangeCauseAnnotation] = cause
		Expect(k8s.Update(ctx, rs)).To(Succeed())
		return rs
	}

	It("returns the Deployment to the previous revision's template and is a no-op when run again", func() {
		d := f.deployment("web", 2)
		rollOut(d, 1, "web:v1", "deploy v1")
		rollOut(d, 2, "web:v2", "deploy v2")
		rollOut(d, 3, "web:v3", "deploy v3")
		generation := d.Generation

		req := f.prepare("act-r1", action, f.gather(kindDeployment, "web"))
		Expect(req.Record.Target).To(Equal("Deployment/web to revision 2"))
		Expect(req.Record.Objects).To(Equal([]string{"web-h2"}))

		out := f.eff.Execute(ctx, req)
		Expect(out).To(Equal(Outcome{Result: v1alpha1.ResultSucceeded,
			Message: "Rolled Deployment/web back to revision 2 (ReplicaSet web-h2)"}))
		got := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(d), got)).To(Succeed())
		Expect(got.Spec.Template.Spec.Containers[0].Image).To(Equal("web:v2"))
		Expect(got.Spec.Template.Labels).To(Equal(appLabels), "no pod-template-hash")
		Expect(got.Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, "act-r1"))
		Expect(got.Annotations).To(HaveKeyWithValue(ChangeCauseAnnotation, "deploy v2"))
		Expect(got.Generation).To(Equal(generation + 1))
		Expect(f.drainEvents()).To(ConsistOf("Normal ActionSucceeded Rolled Deployment/web back to revision 2 " +
			"(ReplicaSet web-h2) (rollback on Deployment/web to revision 2, action act-r1)"))

		again := f.eff.Execute(ctx, req)
		Expect(again).To(Equal(Outcome{Result: v1alpha1.ResultSucceeded,
			Message: "Deployment/web was already rolled back by this action"}))
		after := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(d), after)).To(Succeed())
		Expect(after.ResourceVersion).To(Equal(got.ResourceVersion), "the second run wrote nothing")
	})

	It("says there is no previous revision when there is none", func() {
		d := f.deployment("web", 1)
		rollOut(d, 1, "web:v1", "deploy v1")
		req := Request{App: f.app, Action: action, Target: f.gather(kindDeployment, "web")}

		_, err := f.eff.Prepare(req)
		Expect(err).To(MatchError("Deployment/web cannot be rolled back: there is no revision before its current revision 1"))

		req.Record = &v1alpha1.ActionRecord{ID: "act-r2", Target: "Deployment/web"}
		out := f.eff.Execute(ctx, req)
		Expect(out).To(Equal(Outcome{Result: v1alpha1.ResultFailed,
			Message: "Deployment/web cannot be rolled back: there is no revision before its current revision 1"}))
		Expect(f.drainEvents()).To(ConsistOf(HavePrefix("Warning ActionFailed Deployment/web cannot be rolled back")))
	})

	It("refuses a ReplicaSet, saying what to use instead", func() {
		rs := &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: f.ns},
			Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(1)), Selector: &metav1.LabelSelector{MatchLabels: appLabels},
				Template: podTemplateSpec("web:v1")},
		}
		Expect(k8s.Create(ctx, rs)).To(Succeed())
		_, err := f.eff.Prepare(Request{App: f.app, Action: action, Target: f.gather(kindReplicaSet, "web")})
		Expect(err).To(MatchError("ReplicaSet/web cannot be rolled back: rollback supports Deployments and StatefulSets; " +
			"use rolloutRestart or restartPods for a ReplicaSet"))
	})
})

// statefulRevision is the ControllerRevision the StatefulSet controller records for the
// StatefulSet's current pod template: its data is {"spec":{"template":{..., "$patch":
// "replace"}}}, its annotations the StatefulSet's.
func statefulRevision(s *appsv1.StatefulSet, name string, revision int64) *appsv1.ControllerRevision {
	var tmpl map[string]any
	if err := json.Unmarshal(mustJSON(s.Spec.Template), &tmpl); err != nil {
		panic(err)
	}
	tmpl["$patch"] = "replace"
	data := mustJSON(map[string]any{"spec": map[string]any{"template": tmpl}})
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.Namespace, Labels: s.Spec.Template.Labels,
			Annotations:     maps.Clone(s.Annotations),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(s, appsv1.SchemeGroupVersion.WithKind("StatefulSet"))}},
		Data:     runtime.RawExtension{Raw: data},
		Revision: revision,
	}
}

func TestPreviousStatefulRevision(t *testing.T) {
	set := func(image, updateRevision string) *appsv1.StatefulSet {
		return &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop", UID: "db-uid"},
			Spec:       appsv1.StatefulSetSpec{Template: podTemplateSpec(image)},
			Status:     appsv1.StatefulSetStatus{UpdateRevision: updateRevision},
		}
	}
	rev := func(s *appsv1.StatefulSet, image, name string, n int64) appsv1.ControllerRevision {
		c := s.DeepCopy()
		c.Spec.Template = podTemplateSpec(image)
		return *statefulRevision(c, name, n)
	}
	notOwned := func(cr appsv1.ControllerRevision) appsv1.ControllerRevision { cr.OwnerReferences = nil; return cr }
	tests := []struct {
		name    string
		s       *appsv1.StatefulSet
		revs    func(s *appsv1.StatefulSet) []appsv1.ControllerRevision
		want    string
		wantErr string
	}{
		{"the revision before the current, newest one", set("v3", "db-3"), func(s *appsv1.StatefulSet) []appsv1.ControllerRevision {
			return []appsv1.ControllerRevision{rev(s, "v1", "db-1", 1), rev(s, "v3", "db-3", 3), rev(s, "v2", "db-2", 2)}
		}, "db-2", ""},
		{"the revision before the one whose template the StatefulSet runs, even when a newer one exists", set("v2", "db-3"),
			func(s *appsv1.StatefulSet) []appsv1.ControllerRevision {
				return []appsv1.ControllerRevision{rev(s, "v1", "db-1", 1), rev(s, "v2", "db-2", 2), rev(s, "v3", "db-3", 3)}
			}, "db-1", ""},
		{"a template the controller has not recorded yet: the revision before status.updateRevision", set("v9", "db-2"),
			func(s *appsv1.StatefulSet) []appsv1.ControllerRevision {
				return []appsv1.ControllerRevision{rev(s, "v1", "db-1", 1), rev(s, "v2", "db-2", 2), rev(s, "v3", "db-3", 3)}
			}, "db-1", ""},
		{"with no match at all, the revision before the highest", set("v9", ""), func(s *appsv1.StatefulSet) []appsv1.ControllerRevision {
			return []appsv1.ControllerRevision{rev(s, "v1", "db-1", 1), rev(s, "v2", "db-2", 2)}
		}, "db-1", ""},
		{"a revision another StatefulSet owns is not one of ours", set("v2", "db-2"), func(s *appsv1.StatefulSet) []appsv1.ControllerRevision {
			return []appsv1.ControllerRevision{notOwned(rev(s, "v1", "db-1", 1)), rev(s, "v2", "db-2", 2)}
		}, "", "there is no revision before its current revision 2"},
		{"no revisions", set("v1", ""), func(*appsv1.StatefulSet) []appsv1.ControllerRevision { return nil }, "", "it has no revisions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := previousStatefulRevision(tt.s, tt.revs(tt.s))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != tt.want {
				t.Fatalf("picked %s, want %s", got.Name, tt.want)
			}
		})
	}
}

func TestRevisionTemplateRefusesWhatIsNotATemplate(t *testing.T) {
	for _, raw := range []string{"", "{", `{"spec":{}}`} {
		cr := &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "db-1"}, Data: runtime.RawExtension{Raw: []byte(raw)}}
		if _, err := revisionTemplate(cr); err == nil {
			t.Errorf("data %q: no error", raw)
		}
	}
}

var _ = Describe("rollback of a StatefulSet", func() {
	var f *fixture
	BeforeEach(func() { f = newFixture() })
	action := v1alpha1.Action{Rollback: &v1alpha1.ComponentAction{Component: "db"}}

	It("returns the template to the previous revision, deletes the pod stuck on the broken one, and is a no-op when run again", func() {
		s, _ := f.brokenRelease()
		req := f.prepare("act-s1", action, f.gather(kindStatefulSet, "db"))
		Expect(req.Record.Target).To(Equal("StatefulSet/db to revision 1"))
		Expect(req.Record.Objects).To(Equal([]string{"db-r1"}))

		go func() {
			defer GinkgoRecover()
			controllerTakes(s, "db:v1", "db-r1")
		}()
		out := f.eff.Execute(ctx, req)
		Expect(out).To(Equal(Outcome{Result: v1alpha1.ResultSucceeded,
			Message: "Rolled StatefulSet/db back to revision 1 (ControllerRevision db-r1); deleted 1 pod(s) stuck on the old " +
				"revision (db-2), which the controller recreates from revision 1"}))
		got := &appsv1.StatefulSet{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(s), got)).To(Succeed())
		Expect(got.Spec.Template.Spec.Containers[0].Image).To(Equal("db:v1"))
		Expect(got.Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, "act-s1"))
		Expect(got.Annotations).To(HaveKeyWithValue(ChangeCauseAnnotation, "release v1"))
		Expect(podGone(f.ns, "db-2")).To(BeTrue(), "the pod stuck on revision 2 is deleted")
		Expect(podGone(f.ns, "db-0") || podGone(f.ns, "db-1")).To(BeFalse(), "ready pods are left to the controller's rolling update")

		again := f.eff.Execute(ctx, req)
		Expect(again).To(Equal(Outcome{Result: v1alpha1.ResultSucceeded,
			Message: "StatefulSet/db was already rolled back by this action"}))
		after := &appsv1.StatefulSet{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(s), after)).To(Succeed())
		Expect(after.ResourceVersion).To(Equal(got.ResourceVersion), "the second run wrote nothing")
	})

	It("finishes the forced part when it carries on an intent whose template write was made", func() {
		s, _ := f.brokenRelease()
		req := f.prepare("act-s2", action, f.gather(kindStatefulSet, "db"))
		// A manager that died after the template write: the StatefulSet is stamped.
		tmpl := s.Spec.Template.DeepCopy()
		tmpl.Spec.Containers[0].Image = "db:v1"
		Expect(f.eff.patch(ctx, s.DeepCopy(), types.JSONPatchType, rollbackPatch(s.Annotations, tmpl, nil, "act-s2"))).To(Succeed())
		controllerTakes(s, "db:v1", "db-r1")

		out := f.eff.Execute(ctx, req)
		Expect(out.Result).To(Equal(v1alpha1.ResultSucceeded))
		Expect(out.Message).To(Equal("StatefulSet/db was already rolled back by this action; deleted 1 pod(s) stuck on the " +
			"old revision (db-2), which the controller recreates from revision 1"))
		Expect(podGone(f.ns, "db-2")).To(BeTrue())
	})

	It("deletes nothing when the controller does not take the revision, and says so", func() {
		defer func(d time.Duration) { StatefulRollbackObserveTimeout = d }(StatefulRollbackObserveTimeout)
		StatefulRollbackObserveTimeout = 300 * time.Millisecond
		f.brokenRelease()
		out := f.eff.Execute(ctx, f.prepare("act-s3", action, f.gather(kindStatefulSet, "db")))
		Expect(out.Result).To(Equal(v1alpha1.ResultSucceeded))
		Expect(out.Message).To(HavePrefix("Rolled StatefulSet/db back to revision 1 (ControllerRevision db-r1); " +
			"the StatefulSet controller had not taken revision 1 within 300ms, so no stuck pod was deleted"))
		Expect(podGone(f.ns, "db-2")).To(BeFalse())
	})

	It("says there is no previous revision when there is none", func() {
		s := f.statefulSet("db", 1)
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(s), s)).To(Succeed())
		Expect(k8s.Create(ctx, statefulRevision(s, "db-r1", 1))).To(Succeed())
		_, err := f.eff.Prepare(Request{App: f.app, Action: action, Target: f.gather(kindStatefulSet, "db")})
		Expect(err).To(MatchError("StatefulSet/db cannot be rolled back: there is no revision before its current revision 1"))
	})
})

// brokenRelease is a StatefulSet db of 3 pods whose rollout from revision 1 (:v1) to
// revision 2 (:v2) is stuck as the StatefulSet controller leaves it with a release that
// never becomes ready: db-2 was recreated at revision 2 and crash-loops, db-0 and db-1
// still run revision 1, and the controller waits for db-2 before going on.
func (f *fixture) brokenRelease() (*appsv1.StatefulSet, *appsv1.ControllerRevision) {
	s := f.statefulSet("db", 3)
	Expect(k8s.Get(ctx, client.ObjectKeyFromObject(s), s)).To(Succeed())
	s.Annotations = map[string]string{ChangeCauseAnnotation: "release v1"}
	Expect(k8s.Update(ctx, s)).To(Succeed())
	r1 := statefulRevision(s, "db-r1", 1)
	Expect(k8s.Create(ctx, r1)).To(Succeed())
	s.Spec.Template.Spec.Containers[0].Image = "db:v2"
	s.Annotations[ChangeCauseAnnotation] = "release v2"
	Expect(k8s.Update(ctx, s)).To(Succeed())
	Expect(k8s.Create(ctx, statefulRevision(s, "db-r2", 2))).To(Succeed())
	s.Status = appsv1.StatefulSetStatus{ObservedGeneration: s.Generation, Replicas: 3, ReadyReplicas: 2,
		CurrentRevision: "db-r1", UpdateRevision: "db-r2"}
	Expect(k8s.Status().Update(ctx, s)).To(Succeed())
	f.pod("db-0", s, gvkStatefulSet, running, appsv1.ControllerRevisionHashLabelKey, "db-r1")
	f.pod("db-1", s, gvkStatefulSet, running, appsv1.ControllerRevisionHashLabelKey, "db-r1")
	f.pod("db-2", s, gvkStatefulSet, crashLooping, appsv1.ControllerRevisionHashLabelKey, "db-r2")
	return s, r1
}

// controllerTakes does what the StatefulSet controller does when the template changes
// back to a revision it has: that revision becomes the update revision.
func controllerTakes(s *appsv1.StatefulSet, image, revision string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		cur := &appsv1.StatefulSet{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(s), cur)).To(Succeed())
		g.Expect(cur.Spec.Template.Spec.Containers[0].Image).To(Equal(image))
		cur.Status.ObservedGeneration, cur.Status.UpdateRevision = cur.Generation, revision
		g.Expect(k8s.Status().Update(ctx, cur)).To(Succeed())
	}).WithTimeout(5 * time.Second).Should(Succeed())
}

// podGone reports whether a pod is gone or terminating.
func podGone(ns, name string) bool {
	p := &corev1.Pod{}
	err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, p)
	return apierrors.IsNotFound(err) || (err == nil && p.DeletionTimestamp != nil)
}
