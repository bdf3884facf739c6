package controllers

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/execute"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/plan"
	"github.com/homeostat-dev/homeostat/internal/rights"
)

// suiteRights answers for the envtest suite's manager, and says whom it was asked about.
var suiteRights *askedAuthorizer

// askedAuthorizer passes the questions on and remembers the namespaces of the
// ServiceAccounts they were about, so a test can prove that nothing was asked.
type askedAuthorizer struct {
	rights.Authorizer
	mu    sync.Mutex
	asked map[string]int
}

func (a *askedAuthorizer) note(s rights.Subject) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.asked == nil {
		a.asked = map[string]int{}
	}
	a.asked[s.Namespace]++
}

func (a *askedAuthorizer) Exists(ctx context.Context, s rights.Subject) (bool, error) {
	a.note(s)
	return a.Authorizer.Exists(ctx, s)
}

func (a *askedAuthorizer) Allowed(ctx context.Context, s rights.Subject, acc rights.Access) (bool, string, error) {
	a.note(s)
	return a.Authorizer.Allowed(ctx, s, acc)
}

func (a *askedAuthorizer) askedIn(ns string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.asked[ns]
}

// fakeRights is an authorizer of ServiceAccounts that exist and may do what allow says.
type fakeRights struct {
	exists map[string]bool // namespace/name
	allow  func(s rights.Subject, a rights.Access) bool
}

func (f fakeRights) Exists(_ context.Context, s rights.Subject) (bool, error) {
	return f.exists[s.Namespace+"/"+s.Name], nil
}

func (f fakeRights) Allowed(_ context.Context, s rights.Subject, a rights.Access) (bool, string, error) {
	return f.allow(s, a), "", nil
}

// healerMay is the rights of ServiceAccount shop/healer, which may only do what verbs
// lists (as "verb resource[/subresource]").
func healerMay(verbs ...string) *rights.Checker {
	return &rights.Checker{Authorizer: fakeRights{exists: map[string]bool{"shop/healer": true},
		allow: func(s rights.Subject, a rights.Access) bool {
			res := a.Resource
			if a.Subresource != "" {
				res += "/" + a.Subresource
			}
			return s.Name == "healer" && contains(verbs, a.Verb+" "+res)
		}}}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestAForbiddenStepIsRecordedOnceAndTheLadderMovesOnAtItsTimeout: a step the app's
// ServiceAccount may not take is recorded once, Forbidden, with the missing permission
// and the rule that grants it, judged Unknown, with a Warning Event, and the workload is
// not touched; the ladder then waits out the step's timeout and escalates, as after a
// failed step.
func TestAForbiddenStepIsRecordedOnceAndTheLadderMovesOnAtItsTimeout(t *testing.T) {
	ctx := context.Background()
	objs := unreadyWeb("web:bad",
		v1alpha1.RemediationStep{Action: v1alpha1.Action{RolloutRestart: &v1alpha1.ComponentAction{Component: "web"}}, Timeout: &metav1.Duration{Duration: time.Minute}},
		v1alpha1.RemediationStep{Action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "web is still unready"}}})
	objs[2].(*v1alpha1.AutonomicApp).Spec.ServiceAccountName = "healer"
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))
	c, r := newFakeReconciler(t, clk, objs...)
	r.Rights = healerMay() // nothing
	rec := events.NewFakeRecorder(100)
	r.Recorder, r.Effectors.Recorder = rec, rec
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "shop", Name: "shop"}}
	get := appGetter(t, c, req.NamespacedName)
	reconcile := func() {
		t.Helper()
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	web := func() *appsv1.Deployment {
		d := &appsv1.Deployment{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	before := web().ResourceVersion

	reconcile()
	reconcile() // the step has acted: nothing more is recorded
	a := get()
	if len(a.Status.History) != 1 {
		t.Fatalf("history %+v; want one Forbidden record", a.Status.History)
	}
	f := a.Status.History[0]
	want := `Refused by the tenant's rights, nothing was done: ServiceAccount shop/healer may not patch deployments.apps in namespace shop ("web"): ` +
		`grant it in a Role of namespace shop bound to the ServiceAccount, with the rule {apiGroups: ["apps"], resources: ["deployments"], verbs: ["patch"]}.`
	if f.Result != v1alpha1.ResultForbidden || f.Message != want || f.Outcome != v1alpha1.OutcomeUnknown ||
		f.Step != 1 || f.Component != "web" || f.Target != "Deployment/web" {
		t.Fatalf("record %+v;\nwant Forbidden, Unknown, step 1 on Deployment/web with the message\n  %s", f, want)
	}
	if got := web().ResourceVersion; got != before {
		t.Fatalf("the Deployment was written (resourceVersion %s -> %s): a forbidden action changes nothing", before, got)
	}
	expectEvent(t, rec, execute.ReasonActionForbidden, "Policy heal step 1: Refused by the tenant's rights")
	if p := policyNamed(a, "heal"); p.Step != 1 || p.StepStart == nil || p.LastAction != f.ID {
		t.Fatalf("policy %+v; want step 1 acted with the Forbidden record", p)
	}

	clk.Step(61 * time.Second)
	reconcile()
	a = get()
	if n := recordOf(t, a, "notify"); n.Result != v1alpha1.ResultSucceeded || n.Step != 2 {
		t.Fatalf("notify record %+v; want step 2 to run after step 1's timeout", n)
	}
}

// TestAResumedIntentTheRightsNoLongerAllowIsForbidden: an intent left Pending (a crash,
// a drain in progress) is authorized again before it is carried on; refused, it ends
// Forbidden and its effector does not run.
func TestAResumedIntentTheRightsNoLongerAllowIsForbidden(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	objs := unreadyWeb("web:bad",
		v1alpha1.RemediationStep{Action: v1alpha1.Action{RolloutRestart: &v1alpha1.ComponentAction{Component: "web"}}, Timeout: &metav1.Duration{Duration: time.Hour}})
	app := objs[2].(*v1alpha1.AutonomicApp)
	app.Spec.ServiceAccountName = "healer"
	pending := v1alpha1.ActionRecord{ID: "heal-1", Time: metav1.NewTime(now), Policy: "heal", Step: 1, Action: "rolloutRestart",
		Component: "web", Target: "Deployment/web", Result: v1alpha1.ResultPending}
	app.Status.History = []v1alpha1.ActionRecord{pending}
	app.Status.Policies = []v1alpha1.PolicyStatus{{Name: "heal", State: v1alpha1.PolicyActing, Step: 1,
		EpisodeStart: &pending.Time, StepStart: &pending.Time, LastAction: "heal-1"}}
	c, r := newFakeReconciler(t, clocktesting.NewFakeClock(now.Add(time.Second)), objs...)
	r.Rights = healerMay("get deployments")
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "shop", Name: "shop"}}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	a := appGetter(t, c, req.NamespacedName)()
	got := recordOf(t, a, "rolloutRestart")
	if got.ID != "heal-1" || got.Result != v1alpha1.ResultForbidden ||
		!strings.Contains(got.Message, "Refused by the tenant's rights when carried on") ||
		!strings.Contains(got.Message, "may not patch deployments.apps") {
		t.Fatalf("record %+v; want the resumed intent Forbidden with the missing permission", got)
	}
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, d); err != nil {
		t.Fatal(err)
	}
	if _, restarted := d.Spec.Template.Annotations[execute.RestartedAtAnnotation]; restarted {
		t.Fatal("the refused intent restarted the Deployment")
	}
}

// TestAMissingServiceAccountHoldsTheApp: an app whose ServiceAccount does not exist
// says so in Ready (and Reconciling, for kstatus), with the fix, looks again soon, and
// nothing acts; the manager's default ServiceAccount counts the same as the field.
func TestAMissingServiceAccountHoldsTheApp(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, field, def, missing string
	}{
		{name: "named by the app", field: "ghost", missing: "ServiceAccount shop/ghost does not exist"},
		{name: "the manager's default", def: "homeostat", missing: "ServiceAccount shop/homeostat does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := unreadyWeb("web:bad",
				v1alpha1.RemediationStep{Action: v1alpha1.Action{RolloutRestart: &v1alpha1.ComponentAction{Component: "web"}}})
			objs[2].(*v1alpha1.AutonomicApp).Spec.ServiceAccountName = tc.field
			clk := clocktesting.NewFakeClock(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))
			c, r := newFakeReconciler(t, clk, objs...)
			r.Rights = healerMay("patch deployments")
			r.Rights.DefaultServiceAccount = tc.def
			req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "shop", Name: "shop"}}
			res, err := r.Reconcile(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			a := appGetter(t, c, req.NamespacedName)()
			ready := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionReady)
			if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != v1alpha1.ReasonServiceAccountNotFound ||
				!strings.Contains(ready.Message, tc.missing) || !strings.Contains(ready.Message, "kubectl create serviceaccount") {
				t.Fatalf("Ready = %+v; want False, ServiceAccountNotFound, saying %q and how to fix it", ready, tc.missing)
			}
			if !meta.IsStatusConditionTrue(a.Status.Conditions, v1alpha1.ConditionReconciling) {
				t.Errorf("Reconciling is not True: kstatus would not wait for the ServiceAccount")
			}
			if len(a.Status.History) != 0 {
				t.Errorf("history %+v; nothing may act", a.Status.History)
			}
			if res.RequeueAfter <= 0 || res.RequeueAfter > serviceAccountRecheck {
				t.Errorf("RequeueAfter = %s; want a look again within %s", res.RequeueAfter, serviceAccountRecheck)
			}
			// Looking again and finding the same writes nothing.
			clk.Step(serviceAccountRecheck)
			if _, err := r.Reconcile(ctx, req); err != nil {
				t.Fatal(err)
			}
			if again := appGetter(t, c, req.NamespacedName)(); again.ResourceVersion != a.ResourceVersion {
				t.Errorf("a second pass with the ServiceAccount still missing wrote status: %+v", again.Status.Conditions)
			}
		})
	}
}

// The envtest of the tenant's rights asks the real API server's RBAC: a ServiceAccount
// whose Role allows get on Deployments and create on Jobs, nothing else. The actions are
// not disruptive, so the storm breaker, which the suite's many unhealthy apps engage,
// holds none of them.
var _ = Describe("the tenant's rights", func() {
	var ns string
	deployment := func(name string) *appsv1.Deployment {
		labels := map[string]string{"app": name}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(1)), Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "web:1"}}}}},
		}
		Expect(k8sClient.Create(testCtx, d)).To(Succeed())
		return d
	}
	// healingApp is an app on the Deployment whose only symptom is always active (no
	// pod is ever ready without a controller-manager), with a one-step ladder.
	healingApp := func(name, sa string, action v1alpha1.Action) *v1alpha1.AutonomicApp {
		deployment(name)
		app := &v1alpha1.AutonomicApp{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: v1alpha1.AutonomicAppSpec{
				ServiceAccountName: sa,
				Components:         []v1alpha1.Component{{Name: "web", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name}}},
				Healing: v1alpha1.Healing{
					Symptoms: []v1alpha1.Symptom{{Name: "Unready", Expression: "components.web.readyReplicas < components.web.desiredReplicas"}},
					Policies: []v1alpha1.Policy{{Name: "heal", Remediate: &v1alpha1.RemediatePolicy{When: []string{"Unready"},
						Steps: []v1alpha1.RemediationStep{{Action: action, Timeout: &metav1.Duration{Duration: time.Hour}}}}}},
				},
			},
		}
		Expect(k8sClient.Create(testCtx, app)).To(Succeed())
		return app
	}
	record := func(app *v1alpha1.AutonomicApp) func(Gomega) v1alpha1.ActionRecord {
		return func(g Gomega) v1alpha1.ActionRecord {
			a := &v1alpha1.AutonomicApp{}
			g.Expect(k8sClient.Get(testCtx, client.ObjectKeyFromObject(app), a)).To(Succeed())
			g.Expect(a.Status.History).To(HaveLen(1))
			g.Expect(a.Status.History[0].Result).NotTo(Equal(v1alpha1.ResultPending))
			return a.Status.History[0]
		}
	}

	BeforeEach(func() {
		ns = newNS()
		Expect(k8sClient.Create(testCtx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "healer"}})).To(Succeed())
		Expect(k8sClient.Create(testCtx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "healer"},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get"}},
				{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"create"}},
			}})).To(Succeed())
		Expect(k8sClient.Create(testCtx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "healer"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "healer"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "healer"}}})).To(Succeed())
	})

	jobTemplate := func(sa string) apiextensionsv1.JSON {
		raw, err := json.Marshal(batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			ServiceAccountName: sa, RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "fix", Image: "fix:1"}}}}}})
		Expect(err).NotTo(HaveOccurred())
		return apiextensionsv1.JSON{Raw: raw}
	}

	It("runs an action the app's ServiceAccount may take, and its Job runs as that ServiceAccount", func() {
		healingApp("allowed", "healer", v1alpha1.Action{RunJob: &v1alpha1.RunJobAction{Template: jobTemplate("")}})
		Eventually(func(g Gomega) {
			var jobs batchv1.JobList
			g.Expect(k8sClient.List(testCtx, &jobs, client.InNamespace(ns))).To(Succeed())
			g.Expect(jobs.Items).To(HaveLen(1))
			g.Expect(jobs.Items[0].Spec.Template.Spec.ServiceAccountName).To(Equal("healer"))
		}).WithTimeout(20 * time.Second).Should(Succeed())
	})

	It("records an action it may not take as Forbidden, naming the missing permission, and changes nothing", func() {
		app := healingApp("refused", "healer", v1alpha1.Action{Scale: &v1alpha1.ScaleAction{Component: "web", Replicas: ptr.To(int32(5))}})
		before := &appsv1.Deployment{}
		Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: ns, Name: "refused"}, before)).To(Succeed())
		var r v1alpha1.ActionRecord
		Eventually(func(g Gomega) { r = record(app)(g) }).WithTimeout(20 * time.Second).Should(Succeed())
		Expect(r.Result).To(Equal(v1alpha1.ResultForbidden))
		Expect(r.Outcome).To(Equal(v1alpha1.OutcomeUnknown))
		Expect(r.Message).To(ContainSubstring(`ServiceAccount %s/healer may not patch deployments.apps/scale in namespace %s ("refused")`, ns, ns))
		Expect(r.Message).To(ContainSubstring(`{apiGroups: ["apps"], resources: ["deployments/scale"], verbs: ["patch"]}`))
		Consistently(func(g Gomega) {
			d := &appsv1.Deployment{}
			g.Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: ns, Name: "refused"}, d)).To(Succeed())
			g.Expect(d.ResourceVersion).To(Equal(before.ResourceVersion))
			g.Expect(*d.Spec.Replicas).To(Equal(int32(1)))
		}).WithTimeout(time.Second).Should(Succeed())
	})

	It("refuses a runJob whose Job would run as a more privileged ServiceAccount", func() {
		app := healingApp("escalate", "healer", v1alpha1.Action{RunJob: &v1alpha1.RunJobAction{Template: jobTemplate("deployer")}})
		var r v1alpha1.ActionRecord
		Eventually(func(g Gomega) { r = record(app)(g) }).WithTimeout(20 * time.Second).Should(Succeed())
		Expect(r.Result).To(Equal(v1alpha1.ResultForbidden))
		Expect(r.Message).To(ContainSubstring("The runJob's Job would run as ServiceAccount %s/deployer", ns))
		var jobs batchv1.JobList
		Expect(k8sClient.List(testCtx, &jobs, client.InNamespace(ns))).To(Succeed())
		Expect(jobs.Items).To(BeEmpty())
	})

	It("checks nothing for an app that names no ServiceAccount, on a manager without --default-service-account", func() {
		other := newNS()
		ns = other
		app := healingApp("unchecked", "", v1alpha1.Action{Scale: &v1alpha1.ScaleAction{Component: "web", Replicas: ptr.To(int32(2))}})
		Eventually(record(app)).WithTimeout(20 * time.Second).Should(HaveField("Result", v1alpha1.ResultSucceeded))
		Expect(suiteRights.askedIn(other)).To(BeZero())
	})
})

// TestARefusedAutoscaleIsAskedAgainAfterTheRetryDelay: an autoscaler decides the same
// scale on every pass; once the tenant's rights refused it, the next passes hold it (the
// refusal is recorded once a minute, not on every pass), and an app that acts as the
// manager is never held so.
func TestARefusedAutoscaleIsAskedAgainAfterTheRetryDelay(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop"}}
	app.Status.History = []v1alpha1.ActionRecord{{ID: "scale-web-1", Time: metav1.NewTime(now), Policy: "scale-web",
		Action: "scale", Component: "web", Result: v1alpha1.ResultForbidden, Message: "Refused."}}
	in := &plan.Intent{Action: v1alpha1.Action{Scale: &v1alpha1.ScaleAction{Component: "web", Replicas: ptr.To(int32(5))}}}
	targets := []*monitor.Component{{Name: "web"}}
	s := &session{app: app, now: now.Add(10 * time.Second), subject: &rights.Subject{Namespace: "shop", Name: "healer"}}
	if v := recentlyForbidden(s, "scale-web", in, targets); !v.Held || v.Reason != plan.ReasonForbidden {
		t.Fatalf("verdict %+v; want the scale held, Forbidden", v)
	}
	s.now = now.Add(plan.ForbiddenRetryDelay)
	if v := recentlyForbidden(s, "scale-web", in, targets); v.Held {
		t.Fatalf("verdict %+v after the retry delay; want the rights asked again", v)
	}
	s.now, s.subject = now.Add(10*time.Second), nil
	if v := recentlyForbidden(s, "scale-web", in, targets); v.Held {
		t.Fatalf("verdict %+v for an app without a ServiceAccount; want nothing held", v)
	}
}
