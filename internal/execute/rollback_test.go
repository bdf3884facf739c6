package execute

import (
	"encoding/json"
	"fmt"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
			if err := json.Unmarshal(rollbackPatch(d, &tt.rs, "id-1"), &ops); err != nil {
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

	It("refuses a StatefulSet", func() {
		f.statefulSet("db", 1)
		_, err := f.eff.Prepare(Request{App: f.app, Action: action, Target: f.gather(kindStatefulSet, "db")})
		Expect(err).To(MatchError("StatefulSet/db cannot be rolled back: rollback supports Deployments only"))
	})
})
