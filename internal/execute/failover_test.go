package execute

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

func TestPrepareFailoverFixesEachChange(t *testing.T) {
	e := &Effectors{}
	selectorOf := func(sel *metav1.LabelSelector) *fakeDeployment {
		return &fakeDeployment{replicas: 3, mutate: func(d *appsv1.Deployment) { d.Spec.Selector = sel }}
	}
	web := selectorOf(&metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}})
	tests := []struct {
		name    string
		target  *fakeDeployment
		change  FailoverChange
		want    Prepared
		wantErr string
	}{
		{"scaling a standby up is not disruptive", &fakeDeployment{replicas: 0},
			FailoverChange{Phase: plan.PhaseScaleUpStandby, Service: "web", Replicas: 3},
			Prepared{Kind: KindFailover, Target: "Deployment/web from 0 to 3 replicas (standby for Service/web)",
				Objects: []string{"Deployment/web"}, Replicas: ptr.To[int32](3),
				Failover: &v1alpha1.FailoverRecord{Phase: v1alpha1.FailoverScaleUpStandby, Policy: "fo", Component: "web", Service: "web"}}, ""},
		{"scaling the old primary down is disruptive by its pods", web,
			FailoverChange{Phase: plan.PhaseScaleDownOldPrimary, Service: "web", Replicas: 0},
			Prepared{Kind: KindFailover, Target: "Deployment/web from 3 to 0 replicas (old primary for Service/web)",
				Objects: []string{"Deployment/web"}, Replicas: ptr.To[int32](0), Disruptive: true, Pods: 3,
				Failover: &v1alpha1.FailoverRecord{Phase: v1alpha1.FailoverScaleDownOldPrimary, Policy: "fo", Component: "web", Service: "web"}}, ""},
		{"moving traffic names the Service, the candidate and where traffic leaves", web,
			FailoverChange{Phase: plan.PhaseMoveTraffic, Service: "shop", From: "web-eu"},
			Prepared{Kind: KindFailover, Target: "Service/shop -> web", Objects: []string{"Service/shop"},
				Failover: &v1alpha1.FailoverRecord{Phase: v1alpha1.FailoverMoveTraffic, Policy: "fo", Component: "web", From: "web-eu", Service: "shop"}}, ""},
		{"matchExpressions are refused with the reason",
			selectorOf(&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"web"}}}}),
			FailoverChange{Phase: plan.PhaseMoveTraffic, Service: "web"}, Prepared{Kind: KindFailover},
			"Deployment/web selects its pods with matchExpressions, which a Service's selector cannot express"},
		{"a scale that changes nothing is refused", web,
			FailoverChange{Phase: plan.PhaseScaleUpStandby, Service: "web", Replicas: 3}, Prepared{Kind: KindFailover},
			"Deployment/web already has 3 replicas, so scaling would change nothing"},
		{"a phase that is not a change is refused", web,
			FailoverChange{Phase: plan.PhaseWaitStandbyReady, Service: "web"}, Prepared{Kind: KindFailover},
			`a failover has no phase "WaitStandbyReady" to carry out`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			action := v1alpha1.Action{Failover: &v1alpha1.FailoverAction{Policy: "fo"}}
			got, err := e.PrepareFailover(Request{Action: action, Target: tt.target.component()}, tt.change)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("PrepareFailover() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("PrepareFailover() error = %v", err)
			}
			NewWithT(t).Expect(got).To(Equal(tt.want))
		})
	}
	t.Run("a change of no policy is refused", func(t *testing.T) {
		_, err := e.PrepareFailover(Request{Target: web.component()}, FailoverChange{Phase: plan.PhaseMoveTraffic, Service: "web"})
		if err == nil || err.Error() != "the failover change names no policy" {
			t.Fatalf("PrepareFailover() error = %v", err)
		}
	})
}

// The record's failover phases are the plan's, string for string: the controller and
// PrepareFailover convert one into the other.
func TestFailoverPhasesAreThePlansPhases(t *testing.T) {
	for api, p := range map[v1alpha1.FailoverPhase]plan.FailoverPhase{
		v1alpha1.FailoverScaleUpStandby:      plan.PhaseScaleUpStandby,
		v1alpha1.FailoverMoveTraffic:         plan.PhaseMoveTraffic,
		v1alpha1.FailoverScaleDownOldPrimary: plan.PhaseScaleDownOldPrimary,
		v1alpha1.FailoverScaleDownStandby:    plan.PhaseScaleDownStandby,
		v1alpha1.FailoverDemote:              plan.PhaseDemote,
	} {
		if string(api) != string(p) {
			t.Errorf("API phase %q is plan phase %q", api, p)
		}
	}
}

func failoverApp(primary string) *v1alpha1.AutonomicApp {
	app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "shop"}}
	app.Spec.Policies = []v1alpha1.Policy{
		{Name: "heal", Remediate: &v1alpha1.RemediatePolicy{}},
		{Name: "web-failover", Failover: &v1alpha1.FailoverPolicy{Service: "web",
			Candidates: []v1alpha1.FailoverCandidate{{Component: "web"}, {Component: "web-eu"}}}},
	}
	if primary != "" {
		app.Status.Policies = []v1alpha1.PolicyStatus{{Name: "web-failover", Primary: primary}}
	}
	return app
}

func TestFailoverActionOfALadderDemotesThePrimary(t *testing.T) {
	e := &Effectors{}
	action := func(p string) v1alpha1.Action { return v1alpha1.Action{Failover: &v1alpha1.FailoverAction{Policy: p}} }
	tests := []struct {
		name    string
		req     Request
		want    Prepared
		wantErr string
	}{
		{"the policy's primary is demoted", Request{App: failoverApp("web"), Action: action("web-failover")},
			Prepared{Kind: KindFailover, Target: "Service/web away from web",
				Failover: &v1alpha1.FailoverRecord{Phase: v1alpha1.FailoverDemote, Policy: "web-failover", Component: "web", Service: "web"}}, ""},
		{"a policy that is not a failover policy", Request{App: failoverApp("web"), Action: action("heal")}, Prepared{},
			`policy "heal" is not a failover policy of this app`},
		{"a policy with no primary yet", Request{App: failoverApp(""), Action: action("web-failover")}, Prepared{},
			`failover policy "web-failover" has not elected a primary yet, so there is nothing to fail over from`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.Prepare(tt.req)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Prepare() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			NewWithT(t).Expect(got).To(Equal(tt.want))
			NewWithT(t).Expect(err).NotTo(HaveOccurred())
		})
	}

	// Executing the demotion changes nothing in the cluster: no client is needed. A
	// demotion recorded by the previous version, with what it changes in Objects, is
	// carried out the same.
	for name, record := range map[string]v1alpha1.ActionRecord{
		"typed":            {Failover: &v1alpha1.FailoverRecord{Phase: v1alpha1.FailoverDemote, Policy: "web-failover", Component: "web", Service: "web"}},
		"previous version": {Objects: []string{"failover=Demote", "policy=web-failover", "component=web"}},
	} {
		rec := events.NewFakeRecorder(10)
		record.ID, record.Policy, record.Step, record.Action, record.Target = "heal-1", "heal", 2, KindFailover, "Service/web away from web"
		req := Request{App: failoverApp("web"), Action: action("web-failover"), Record: &record}
		out := (&Effectors{Recorder: rec}).Execute(context.Background(), req)
		want := "Policy web-failover treats web as failed while this episode of heal is open, and moves Service/web to its best other candidate"
		if out.Result != v1alpha1.ResultSucceeded || out.Message != want {
			t.Errorf("%s: Execute() = %+v", name, out)
		}
		if got := <-rec.Events; got != "Normal ActionSucceeded "+want+" (failover on Service/web away from web, action heal-1)" {
			t.Errorf("%s: event = %q", name, got)
		}
	}
}

var _ = Describe("failover", func() {
	var f *fixture
	BeforeEach(func() { f = newFixture() })

	service := func(sel map[string]string) *corev1.Service {
		s := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: f.ns},
			Spec:       corev1.ServiceSpec{Selector: sel, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		}
		Expect(k8s.Create(ctx, s, client.FieldOwner("kubectl-create"))).To(Succeed())
		return s
	}
	prepare := func(id string, ch FailoverChange, target string) Request {
		req := Request{App: f.app, Action: v1alpha1.Action{Failover: &v1alpha1.FailoverAction{Policy: "web-failover"}},
			Target: f.gather(kindDeployment, target)}
		p, err := f.eff.PrepareFailover(req, ch)
		Expect(err).NotTo(HaveOccurred())
		req.Record = &v1alpha1.ActionRecord{ID: id, Policy: "web-failover", Action: p.Kind, Target: p.Target,
			Objects: p.Objects, Replicas: p.Replicas, Failover: p.Failover, Result: v1alpha1.ResultPending}
		return req
	}

	It("points the Service's selector at the candidate by server-side apply, owning only spec.selector, once", func() {
		svc := service(map[string]string{"app": "web-eu", "tier": "frontend"})
		f.deployment("web", 2)
		req := prepare("fo-1", FailoverChange{Phase: plan.PhaseMoveTraffic, Service: "web", From: "web-eu"}, "web")
		Expect(req.Record.Target).To(Equal("Service/web -> web"))

		out := f.eff.Execute(ctx, req)
		Expect(out).To(Equal(Outcome{Result: v1alpha1.ResultSucceeded, Message: "Pointed Service web at the pods of web (app=web)"}))
		got := &corev1.Service{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(svc), got)).To(Succeed())
		Expect(got.Spec.Selector).To(Equal(map[string]string{"app": "web"}), "the atomic selector is replaced whole")
		Expect(got.Spec.Ports).To(HaveLen(1), "nothing else changed")
		Expect(got.Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, "fo-1"))
		Expect(managedFieldsOf(got)).To(ContainElement(managedField{
			Manager: "homeostat", Operation: "Apply",
			Fields: map[string]any{"f:spec": map[string]any{"f:selector": map[string]any{}}},
		}))
		for _, m := range managedFieldsOf(got) {
			if m.Manager == "kubectl-create" {
				Expect(m.Fields["f:spec"]).NotTo(HaveKey("f:selector"), "forced apply took the selector")
				Expect(m.Fields["f:spec"]).To(HaveKey("f:ports"))
			}
		}
		Expect(f.drainEvents()).To(ConsistOf(
			"Normal ActionSucceeded Pointed Service web at the pods of web (app=web) (failover on Service/web -> web, action fo-1)"))

		By("running the same record again writes nothing")
		Expect(f.eff.Execute(ctx, req).Result).To(Equal(v1alpha1.ResultSucceeded))
		again := &corev1.Service{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(svc), again)).To(Succeed())
		Expect(again.ResourceVersion).To(Equal(got.ResourceVersion))
	})

	It("fails without creating a Service that is gone", func() {
		f.deployment("web", 1)
		req := prepare("fo-2", FailoverChange{Phase: plan.PhaseMoveTraffic, Service: "web"}, "web")
		out := f.eff.Execute(ctx, req)
		Expect(out).To(Equal(Outcome{Result: v1alpha1.ResultFailed, Message: "Service web was not found, so traffic was not moved to web"}))
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "web"}, &corev1.Service{})).NotTo(Succeed())
	})

	It("carries out a traffic move that the previous version recorded in the record's objects", func() {
		svc := service(map[string]string{"app": "web-eu"})
		f.deployment("web", 1)
		req := Request{App: f.app, Action: v1alpha1.Action{Failover: &v1alpha1.FailoverAction{Policy: "web-failover"}},
			Target: f.gather(kindDeployment, "web"), Record: &v1alpha1.ActionRecord{
				ID: "fo-5", Policy: "web-failover", Action: KindFailover, Target: "Service/web -> web", Result: v1alpha1.ResultPending,
				Objects: []string{"Service/web", "failover=MoveTraffic", "component=web", "from=web-eu"}}}
		Expect(f.eff.Execute(ctx, req)).To(Equal(Outcome{Result: v1alpha1.ResultSucceeded, Message: "Pointed Service web at the pods of web (app=web)"}))
		got := &corev1.Service{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(svc), got)).To(Succeed())
		Expect(got.Spec.Selector).To(Equal(map[string]string{"app": "web"}))
	})

	It("scales a standby up and the old primary down through /scale, as the scale action does", func() {
		f.deployment("web", 0)
		up := prepare("fo-3", FailoverChange{Phase: plan.PhaseScaleUpStandby, Service: "web", Replicas: 3}, "web")
		out := f.eff.Execute(ctx, up)
		Expect(out).To(Equal(Outcome{Result: v1alpha1.ResultSucceeded, Message: "Scaled Deployment/web to 3 replicas"}))
		d := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "web"}, d)).To(Succeed())
		Expect(*d.Spec.Replicas).To(BeEquivalentTo(3))
		Expect(d.Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, "fo-3"))
		Expect(managedFieldsOf(d)).To(ContainElement(HaveField("Subresource", "scale")))

		down := prepare("fo-4", FailoverChange{Phase: plan.PhaseScaleDownOldPrimary, Service: "web", Replicas: 0}, "web")
		Expect(f.eff.Execute(ctx, down).Result).To(Equal(v1alpha1.ResultSucceeded))
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "web"}, d)).To(Succeed())
		Expect(*d.Spec.Replicas).To(BeEquivalentTo(0))
	})
})
