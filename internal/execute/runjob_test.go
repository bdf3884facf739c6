package execute

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func jobTemplateJSON(restartPolicy corev1.RestartPolicy) apiextensionsv1.JSON {
	t := batchv1.JobTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "sre"}, Annotations: map[string]string{"note": "fix"}},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To(int32(0)),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: restartPolicy,
				Containers:    []corev1.Container{{Name: "fix", Image: "registry.local/tools/fix:good"}},
			}},
		},
	}
	raw, err := json.Marshal(t)
	if err != nil {
		panic(err)
	}
	return apiextensionsv1.JSON{Raw: raw}
}

func runJobAction(timeout time.Duration) v1alpha1.Action {
	a := &v1alpha1.RunJobAction{Template: jobTemplateJSON(corev1.RestartPolicyNever)}
	if timeout > 0 {
		a.Timeout = &metav1.Duration{Duration: timeout}
	}
	return v1alpha1.Action{RunJob: a}
}

func TestRunJobPrepareRejectsATemplateThatIsNotAJobTemplateSpec(t *testing.T) {
	app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "shop"}}
	e := &Effectors{}
	for name, raw := range map[string]string{
		"a whole Job":                     `{"apiVersion":"batch/v1","kind":"Job","spec":{"template":{"spec":{"containers":[{"name":"a","image":"b"}]}}}}`,
		"a field of the wrong type":       `{"spec":{"template":"run the fix"}}`,
		"a misspelt field":                `{"spec":{"tempalte":{}}}`,
		"a field in the wrong case":       `{"Spec":{"template":{"spec":{"containers":[{"name":"a","image":"b"}]}}}}`,
		"no containers":                   `{"spec":{"template":{"spec":{"restartPolicy":"Never"}}}}`,
		"not an object":                   `["job"]`,
		"empty":                           ``,
		"a pod template, not a Job's one": `{"metadata":{},"spec":{"containers":[{"name":"a","image":"b"}]}}`,
	} {
		t.Run(name, func(t *testing.T) {
			action := v1alpha1.Action{RunJob: &v1alpha1.RunJobAction{Template: apiextensionsv1.JSON{Raw: []byte(raw)}}}
			_, err := e.Prepare(Request{App: app, Action: action, Record: &v1alpha1.ActionRecord{ID: "heal-1"}})
			if err == nil || !strings.Contains(err.Error(), "runJob.template") {
				t.Fatalf("Prepare() error = %v, want one naming runJob.template", err)
			}
		})
	}
}

func TestRunJobPrepareNamesTheJobFromTheActionID(t *testing.T) {
	app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "shop"}}
	e := &Effectors{}
	req := Request{App: app, Action: runJobAction(0), Record: &v1alpha1.ActionRecord{ID: "heal-web-m5x8k2ab-3fa9c1"}}
	p, err := e.Prepare(req)
	if err != nil {
		t.Fatal(err)
	}
	name := JobName("shop", "heal-web-m5x8k2ab-3fa9c1")
	if p.Kind != KindRunJob || p.Target != "Job/"+name || len(p.Objects) != 1 || p.Objects[0] != name || p.Disruptive {
		t.Errorf("Prepare() = %+v, want target Job/%s and objects [%s], not disruptive", p, name, name)
	}
	if again, _ := e.Prepare(req); again.Target != p.Target {
		t.Errorf("Prepare() is not deterministic: %q then %q", p.Target, again.Target)
	}
	if p, err := e.Prepare(Request{App: app, Action: runJobAction(0)}); err != nil || p.Target != "Job" || p.Objects != nil {
		t.Errorf("Prepare() without an id = %+v, %v; want target Job and no objects", p, err)
	}
}

func TestJobName(t *testing.T) {
	long := strings.Repeat("a", 50) + "-.b" + strings.Repeat("c", 200)
	for _, tt := range []struct{ app, id string }{
		{"shop", "heal-web-m5x8k2ab-3fa9c1"},
		{"shop", "heal-web-m5x8k2ab-3fa9c2"},
		{long, "heal-web-m5x8k2ab-3fa9c1"},
		{strings.Repeat("x", 52) + ".y", "p-1"},
		{"a.b.c", "p-1"},
	} {
		name := JobName(tt.app, tt.id)
		if len(name) > 63 {
			t.Errorf("JobName(%q, %q) = %q, longer than 63", tt.app, tt.id, name)
		}
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			t.Errorf("JobName(%q, %q) = %q, not a valid name: %v", tt.app, tt.id, name, errs)
		}
		if errs := validation.IsValidLabelValue(name); len(errs) > 0 {
			t.Errorf("JobName(%q, %q) = %q, not a valid job-name label: %v", tt.app, tt.id, name, errs)
		}
		if JobName(tt.app, tt.id) != name {
			t.Errorf("JobName(%q, %q) is not deterministic", tt.app, tt.id)
		}
	}
	if JobName("shop", "heal-1") == JobName("shop", "heal-2") {
		t.Error("two action ids give one Job name")
	}
	if got := JobName("shop", "x"); !strings.HasPrefix(got, "shop-") || len(got) != len("shop-")+10 {
		t.Errorf("JobName(shop, x) = %q, want shop-<10 hex>", got)
	}
	if got := labelValue(long); len(got) > 63 || len(validation.IsValidLabelValue(got)) > 0 {
		t.Errorf("labelValue(long) = %q, not a valid label value", got)
	}
}

func TestPendingDeadline(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := &v1alpha1.ActionRecord{ID: "a", Time: metav1.NewTime(at)}
	if got := PendingDeadline(Request{Action: runJobAction(0), Record: rec}); !got.Equal(at.Add(10 * time.Minute)) {
		t.Errorf("PendingDeadline(default) = %v, want the record's time + 10m", got)
	}
	if got := PendingDeadline(Request{Action: runJobAction(90 * time.Second), Record: rec}); !got.Equal(at.Add(90 * time.Second)) {
		t.Errorf("PendingDeadline(90s) = %v, want the record's time + 90s", got)
	}
	if got := PendingDeadline(Request{Action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "x"}}, Record: rec}); !got.IsZero() {
		t.Errorf("PendingDeadline(notify) = %v, want zero", got)
	}
}

var _ = Describe("runJob", func() {
	var f *fixture

	BeforeEach(func() { f = newFixture() })

	// record writes an outcome into the request's record, as the controller does.
	record := func(req Request, out Outcome) {
		req.Record.Result, req.Record.Message = out.Result, out.Message
	}
	jobs := func() []batchv1.Job {
		var list batchv1.JobList
		Expect(k8s.List(ctx, &list, client.InNamespace(f.ns))).To(Succeed())
		return list.Items
	}
	getJob := func(name string) *batchv1.Job {
		j := &batchv1.Job{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: name}, j)).To(Succeed())
		return j
	}

	It("creates one Job, owned by the app and stamped with the action id, however often it is executed", func() {
		req := f.runJobIntent("heal-web-1", runJobAction(0))
		name := req.Record.Objects[0]
		Expect(req.Record.Target).To(Equal("Job/" + name))

		out := f.eff.Execute(ctx, req)
		Expect(out).To(Equal(Outcome{Result: v1alpha1.ResultPending,
			Message: "Started Job " + name + "; waiting up to 10m0s for it to finish."}))
		Expect(f.drainEvents()).To(ConsistOf(ContainSubstring("Started Job " + name)))

		By("a retry after a crash, before the outcome was recorded, finds the same Job")
		Expect(f.eff.Execute(ctx, req)).To(Equal(out))
		By("the next poll, with the outcome recorded, finds it too")
		record(req, out)
		Expect(f.eff.Execute(ctx, req)).To(Equal(out))
		Expect(jobs()).To(HaveLen(1))

		j := getJob(name)
		Expect(j.OwnerReferences).To(ConsistOf(metav1.OwnerReference{
			APIVersion: "autonomic.homeostat.dev/v1alpha1", Kind: "AutonomicApp", Name: "shop", UID: "app-uid",
			Controller: ptr.To(true),
		}))
		Expect(j.Labels).To(HaveKeyWithValue(AppLabel, "shop"))
		Expect(j.Labels).To(HaveKeyWithValue("team", "sre"), "the template's labels are kept")
		Expect(j.Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, "heal-web-1"))
		Expect(j.Annotations).To(HaveKeyWithValue("note", "fix"))
		Expect(j.Spec.ActiveDeadlineSeconds).To(Equal(ptr.To(int64(600))), "the action's timeout bounds the Job")
		Expect(j.Spec.Template.Spec.Containers[0].Image).To(Equal("registry.local/tools/fix:good"))
		Expect(j.ManagedFields).To(ContainElement(HaveField("Manager", v1alpha1.FieldManager)))
	})

	It("keeps a shorter activeDeadlineSeconds of the template", func() {
		action := runJobAction(time.Hour)
		var t batchv1.JobTemplateSpec
		Expect(json.Unmarshal(action.RunJob.Template.Raw, &t)).To(Succeed())
		t.Spec.ActiveDeadlineSeconds = ptr.To(int64(30))
		action.RunJob.Template.Raw, _ = json.Marshal(t)
		req := f.runJobIntent("heal-web-short", action)
		Expect(f.eff.Execute(ctx, req).Result).To(Equal(v1alpha1.ResultPending))
		Expect(getJob(req.Record.Objects[0]).Spec.ActiveDeadlineSeconds).To(Equal(ptr.To(int64(30))))
	})

	It("reports Succeeded when the Job completes, with how long it took", func() {
		req := f.runJobIntent("heal-web-2", runJobAction(0))
		record(req, f.eff.Execute(ctx, req))
		name := req.Record.Objects[0]
		finishJob(getJob(name), true)
		out := f.eff.Execute(ctx, req)
		Expect(out).To(Equal(Outcome{Result: v1alpha1.ResultSucceeded,
			Message: "Job " + name + " completed in 3s: 0 active, 1 succeeded, 0 failed pods"}))
		Expect(f.drainEvents()).To(ContainElement(HavePrefix("Normal ActionSucceeded Job " + name + " completed")))
	})

	It("reports Failed with the Job's reason and message when the Job fails", func() {
		req := f.runJobIntent("heal-web-3", runJobAction(0))
		record(req, f.eff.Execute(ctx, req))
		name := req.Record.Objects[0]
		finishJob(getJob(name), false)
		out := f.eff.Execute(ctx, req)
		Expect(out).To(Equal(Outcome{Result: v1alpha1.ResultFailed,
			Message: "Job " + name + " failed (BackoffLimitExceeded: Job has reached the specified backoff limit); 0 active, 0 succeeded, 1 failed pods"}))
		Expect(f.drainEvents()).To(ContainElement(HavePrefix("Warning ActionFailed Job " + name + " failed")))
	})

	It("reports Failed when the Job has not finished within runJob.timeout", func() {
		req := f.runJobIntent("heal-web-4", runJobAction(30*time.Second))
		record(req, f.eff.Execute(ctx, req))
		name := req.Record.Objects[0]
		Expect(PendingDeadline(req)).To(Equal(f.clock.Now().Add(30 * time.Second)))
		f.clock.SetTime(f.clock.Now().Add(29 * time.Second))
		Expect(f.eff.Execute(ctx, req).Result).To(Equal(v1alpha1.ResultPending))
		f.clock.SetTime(f.clock.Now().Add(time.Second))
		Expect(f.eff.Execute(ctx, req)).To(Equal(Outcome{Result: v1alpha1.ResultFailed,
			Message: "Job " + name + " did not finish within 30s (0 active, 0 succeeded, 0 failed pods); its activeDeadlineSeconds stops it"}))
	})

	It("never creates a Job for an intent older than its timeout", func() {
		req := f.runJobIntent("heal-web-5", runJobAction(time.Minute))
		f.clock.SetTime(f.clock.Now().Add(time.Minute))
		out := f.eff.Execute(ctx, req)
		Expect(out.Result).To(Equal(v1alpha1.ResultFailed))
		Expect(out.Message).To(ContainSubstring("was not created"))
		Expect(jobs()).To(BeEmpty())
	})

	It("never creates the Job again once an earlier run reported it created", func() {
		req := f.runJobIntent("heal-web-6", runJobAction(time.Minute))
		out := f.eff.Execute(ctx, req)
		record(req, out)
		name := req.Record.Objects[0]
		Expect(k8s.Delete(ctx, getJob(name), client.PropagationPolicy(metav1.DeletePropagationBackground))).To(Succeed())
		Eventually(jobs).Should(BeEmpty())

		Expect(f.eff.Execute(ctx, req)).To(Equal(out), "a Job not seen yet is waited for, not created twice")
		Expect(jobs()).To(BeEmpty())
		f.clock.SetTime(f.clock.Now().Add(time.Minute))
		gone := f.eff.Execute(ctx, req)
		Expect(gone.Result).To(Equal(v1alpha1.ResultFailed))
		Expect(gone.Message).To(ContainSubstring("Job " + name + " was not found"))
		Expect(jobs()).To(BeEmpty())
	})

	It("fails, changing nothing, when a Job of that name belongs to another action", func() {
		req := f.runJobIntent("heal-web-7", runJobAction(0))
		name := req.Record.Objects[0]
		other := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns, Annotations: map[string]string{v1alpha1.ActionIDAnnotation: "someone-else"}},
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "x", Image: "x"}}}}},
		}
		Expect(k8s.Create(ctx, other)).To(Succeed())
		out := f.eff.Execute(ctx, req)
		Expect(out.Result).To(Equal(v1alpha1.ResultFailed))
		Expect(out.Message).To(ContainSubstring("was not created by this action"))
		Expect(getJob(name).Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, "someone-else"))
	})

	It("fails with the API server's message when it refuses the Job", func() {
		action := v1alpha1.Action{RunJob: &v1alpha1.RunJobAction{Template: jobTemplateJSON(corev1.RestartPolicyAlways)}}
		req := f.runJobIntent("heal-web-8", action)
		out := f.eff.Execute(ctx, req)
		Expect(out.Result).To(Equal(v1alpha1.ResultFailed))
		Expect(out.Message).To(HavePrefix("The API server refused Job " + req.Record.Objects[0]))
		Expect(out.Message).To(ContainSubstring("restartPolicy"))
		Expect(jobs()).To(BeEmpty())
	})
})

// runJobIntent runs Prepare with the id the controller is about to record and returns
// the request with the ledger record the controller would write, at the fake clock's time.
func (f *fixture) runJobIntent(id string, action v1alpha1.Action) Request {
	req := Request{App: f.app, Action: action, Record: &v1alpha1.ActionRecord{ID: id}}
	p, err := f.eff.Prepare(req)
	Expect(err).NotTo(HaveOccurred())
	req.Record = &v1alpha1.ActionRecord{
		ID: id, Time: metav1.NewTime(f.clock.Now()), Action: p.Kind, Target: p.Target, Objects: p.Objects,
		Result: v1alpha1.ResultPending,
	}
	return req
}

// finishJob sets the status the Job controller would write when the Job ends.
func finishJob(j *batchv1.Job, complete bool) {
	start := metav1.NewTime(time.Now().Add(-3 * time.Second).Truncate(time.Second))
	end := metav1.NewTime(start.Add(3 * time.Second))
	j.Status.StartTime = &start
	if complete {
		j.Status.CompletionTime = &end
		j.Status.Succeeded = 1
		j.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: end, LastProbeTime: end},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: end, LastProbeTime: end},
		}
	} else {
		j.Status.Failed = 1
		j.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded",
				Message: "Job has reached the specified backoff limit", LastTransitionTime: end, LastProbeTime: end},
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded",
				Message: "Job has reached the specified backoff limit", LastTransitionTime: end, LastProbeTime: end},
		}
	}
	Expect(k8s.Status().Update(ctx, j)).To(Succeed())
}

func TestRunJobCreatesItsJobAfterAFailedRead(t *testing.T) {
	app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "shop", UID: "app-uid"}}
	clk := clocktesting.NewFakePassiveClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	store := fake.NewClientBuilder().WithScheme(scheme).Build()
	broken := interceptor.NewClient(store, interceptor.Funcs{
		Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
			return errors.New("the cache is not synced")
		},
	})
	rec := &v1alpha1.ActionRecord{ID: "heal-1", Time: metav1.NewTime(clk.Now()), Action: KindRunJob, Result: v1alpha1.ResultPending}
	req := Request{App: app, Action: runJobAction(0), Record: rec}

	out := (&Effectors{Client: broken, Clock: clk}).Execute(context.Background(), req)
	if out.Result != v1alpha1.ResultPending || !strings.HasPrefix(out.Message, "Could not read Job") {
		t.Fatalf("Execute() with a failing read = %+v, want Pending, trying again", out)
	}
	rec.Message = out.Message
	out = (&Effectors{Client: store, Clock: clk}).Execute(context.Background(), req)
	if out.Result != v1alpha1.ResultPending || !strings.HasPrefix(out.Message, "Started Job") {
		t.Fatalf("Execute() = %+v, want the Job created", out)
	}
	var jobs batchv1.JobList
	if err := store.List(context.Background(), &jobs); err != nil || len(jobs.Items) != 1 {
		t.Fatalf("Jobs = %d (%v), want 1", len(jobs.Items), err)
	}
	rec.Message = out.Message
	out = (&Effectors{Client: broken, Clock: clk}).Execute(context.Background(), req)
	if out.Result != v1alpha1.ResultPending || !strings.HasPrefix(out.Message, "Started Job") {
		t.Errorf("Execute() with a failing read after the Job was created = %+v, want the same progress", out)
	}
}
