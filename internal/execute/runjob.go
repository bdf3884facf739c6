package execute

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	k8sjson "sigs.k8s.io/json"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/rights"
)

func init() { register(KindRunJob, runJob{}) }

// AppLabel is set on every object an action creates (the Jobs of runJob) to the name of
// the app it acts for, so a cache can be restricted to the operator's own Jobs.
const AppLabel = "autonomic.homeostat.dev/app"

// DefaultRunJobTimeout is how long a runJob action waits for its Job when the action
// sets no timeout.
const DefaultRunJobTimeout = 10 * time.Minute

// runJob creates a Job from the action's template, owned by the app, and reports the
// Job's outcome.
//
// It never waits in a reconcile. Execute is idempotent and doubles as the poll: it
// creates the Job if the ledger says it has not been created yet, and otherwise reports
// what the Job has become. While the Job runs the outcome is Pending; the controller
// keeps the record Pending, calls Execute again on the next reconcile (a Job owned by the
// app triggers one when it changes), and records the outcome once it is Succeeded or
// Failed. PendingDeadline says when a Pending runJob fails by its timeout.
//
// The Job's name is derived from the action id, so a retry after a crash finds the Job
// the first run created instead of creating a second one.
type runJob struct{}

func (runJob) prepare(req Request) (Prepared, error) {
	if req.App == nil {
		return Prepared{}, errors.New("the runJob action has no app to own its Job")
	}
	tmpl, err := jobTemplate(req.Action.RunJob)
	if err != nil {
		return Prepared{}, err
	}
	if err := jobRunsAs(tmpl, req.Subject); err != nil {
		return Prepared{}, err
	}
	// The controller passes the action id it is about to record, when it has one: then the
	// record names the Job. Without it Execute still derives the same name from the id.
	if req.Record == nil || req.Record.ID == "" {
		return Prepared{Target: "Job"}, nil
	}
	name := JobName(req.App.Name, req.Record.ID)
	return Prepared{Target: "Job/" + name, Objects: []string{name}}, nil
}

// accesses are the create of the Job the record names, once the Job is known to run as
// the app's ServiceAccount (jobRunsAs).
func (runJob) accesses(req Request) ([]rights.Access, error) {
	if req.App == nil {
		return nil, nil
	}
	if tmpl, err := jobTemplate(req.Action.RunJob); err == nil {
		if err := jobRunsAs(tmpl, req.Subject); err != nil {
			return nil, err
		}
	}
	name := JobName(req.App.Name, req.Record.ID)
	if len(req.Record.Objects) == 1 {
		name = req.Record.Objects[0]
	}
	return []rights.Access{{Verb: "create", Group: "batch", Resource: "jobs", Namespace: req.App.Namespace, Name: name}}, nil
}

// jobRunsAs refuses a Job whose pods would run as another ServiceAccount than the one
// the app acts as: a Job runs with the rights of its ServiceAccount, so naming a more
// privileged one in the template would act beyond the app's rights, and creating the Job
// needs only create on jobs. An empty serviceAccountName is fine: newJob sets the app's.
// Without a subject every ServiceAccount is allowed, as before.
func jobRunsAs(tmpl *batchv1.JobTemplateSpec, s *rights.Subject) error {
	if s == nil {
		return nil
	}
	spec := &tmpl.Spec.Template.Spec
	for _, f := range []struct{ field, sa string }{
		{"serviceAccountName", spec.ServiceAccountName},
		{"serviceAccount", spec.DeprecatedServiceAccount},
	} {
		if f.sa != "" && f.sa != s.Name {
			return &rights.Forbidden{Subject: *s, Rule: fmt.Sprintf(
				"The runJob's Job would run as ServiceAccount %s/%s (runJob.template.spec.template.spec.%s), but the app acts as %s, "+
					"and a Job runs with the rights of its ServiceAccount: remove the field, and the Job runs as %s, or set it to %s",
				s.Namespace, f.sa, f.field, *s, s.Name, s.Name)}
		}
	}
	return nil
}

func (runJob) execute(ctx context.Context, e *Effectors, req Request) Outcome {
	a := req.Action.RunJob
	if req.App == nil {
		return failed("The runJob action has no app to own its Job")
	}
	tmpl, err := jobTemplate(a)
	if err != nil {
		return failed("Did not create a Job: %v", err)
	}
	if err := jobRunsAs(tmpl, req.Subject); err != nil {
		return Outcome{Result: v1alpha1.ResultForbidden, Message: sentence(err.Error())}
	}
	rec := req.Record
	timeout := runJobTimeout(a)
	pastDeadline := e.runJobPast(PendingDeadline(req))
	job, name, err := e.readJob(ctx, req)
	running := Outcome{Result: v1alpha1.ResultPending,
		Message: fmt.Sprintf("%s%s; waiting up to %s for it to finish.", jobStarted, name, timeout)}
	switch {
	case err == nil:
		return jobOutcome(job, rec.ID, timeout, pastDeadline, running)
	case !apierrors.IsNotFound(err):
		if pastDeadline {
			return failed("Job %s did not finish within %s, and reading it failed: %v", name, timeout, err)
		}
		// A failed read changes nothing: the next reconcile looks again.
		log.FromContext(ctx).Error(err, "Reading the Job of a runJob action failed", "job", name, "actionID", rec.ID)
		if createdBefore(rec) {
			return running
		}
		return Outcome{Result: v1alpha1.ResultPending, Message: fmt.Sprintf("Could not read Job %s before creating it (%v); trying again.", name, err)}
	case pastDeadline:
		return failed("Job %s was not found and the action's timeout of %s has passed since it was decided, so it was not created", name, timeout)
	case createdBefore(rec):
		// Created by an earlier Execute of this record: the cache has not seen it yet, or it
		// was deleted. Never create it twice; the timeout ends the wait.
		return running
	}

	var runAs string
	if req.Subject != nil {
		runAs = req.Subject.Name
	}
	job = newJob(req.App, rec.ID, name, tmpl, timeout, runAs)
	log.FromContext(ctx).Info("Creating a Job", "job", name, "actionID", rec.ID)
	if err := e.Client.Create(ctx, job, client.FieldOwner(v1alpha1.FieldManager)); err != nil {
		if apierrors.IsAlreadyExists(err) {
			// Created by a run that stopped before it recorded so, or by a name clash that
			// the next Execute reports once it reads the Job.
			return running
		}
		return failed("The API server refused Job %s: %v", name, err)
	}
	return running
}

// observe reports a runJob as done once the Job the record names exists, was created by
// this action and has finished: Succeeded when it completed, Failed with the Job's reason
// when it failed. A Job that runs, even past the action's timeout, or that is being
// deleted before it finished, has no outcome of its own yet.
func (runJob) observe(ctx context.Context, e *Effectors, req Request) (Outcome, bool) {
	if req.App == nil {
		return Outcome{}, false
	}
	job, _, err := e.readJob(ctx, req)
	if err != nil || !stampedWith(job, req.Record.ID) {
		return Outcome{}, false
	}
	return jobFinished(job)
}

// readJob reads the Job of a runJob record: the one the record names, or the one its
// action id names. It returns the name even when the read fails.
func (e *Effectors) readJob(ctx context.Context, req Request) (*batchv1.Job, string, error) {
	name := JobName(req.App.Name, req.Record.ID)
	if len(req.Record.Objects) == 1 {
		name = req.Record.Objects[0]
	}
	job := &batchv1.Job{}
	if err := e.Client.Get(ctx, client.ObjectKey{Namespace: req.App.Namespace, Name: name}, job); err != nil {
		return nil, name, err
	}
	return job, name, nil
}

// jobStarted starts the message of a Pending runJob whose Job was created.
const jobStarted = "Started Job "

// createdBefore reports whether an earlier Execute of the record created its Job: the
// controller writes the message of a Pending outcome into the record, and only a created
// Job's message starts with jobStarted.
func createdBefore(rec *v1alpha1.ActionRecord) bool {
	return strings.HasPrefix(rec.Message, jobStarted)
}

// jobOutcome reports what a Job that already exists has become.
func jobOutcome(job *batchv1.Job, id string, timeout time.Duration, pastDeadline bool, running Outcome) Outcome {
	if !stampedWith(job, id) {
		return failed("Job %s exists but was not created by this action: its %s annotation is %q, not %q; nothing was created",
			job.Name, v1alpha1.ActionIDAnnotation, job.Annotations[v1alpha1.ActionIDAnnotation], id)
	}
	if out, finished := jobFinished(job); finished {
		return out
	}
	switch {
	case job.DeletionTimestamp != nil:
		return failed("Job %s is being deleted before it finished; %s", job.Name, podCounts(job))
	case pastDeadline:
		return failed("Job %s did not finish within %s (%s); its activeDeadlineSeconds stops it", job.Name, timeout, podCounts(job))
	}
	return running
}

// jobFinished is the outcome of a Job that has finished: Succeeded, with how long it
// took, when it completed; Failed, with its reason and message, when it failed. It is
// false while the Job has neither condition.
func jobFinished(job *batchv1.Job) (Outcome, bool) {
	if c := jobCondition(job, batchv1.JobComplete); c != nil {
		took := ""
		if s, f := job.Status.StartTime, job.Status.CompletionTime; s != nil && f != nil {
			took = " in " + f.Sub(s.Time).Round(time.Second).String()
		}
		return succeeded("Job %s completed%s: %s", job.Name, took, podCounts(job)), true
	}
	if c := jobCondition(job, batchv1.JobFailed); c != nil {
		why := c.Reason
		if c.Message != "" {
			why += ": " + c.Message
		}
		return failed("Job %s failed (%s); %s", job.Name, strings.TrimSuffix(why, "."), podCounts(job)), true
	}
	return Outcome{}, false
}

func jobCondition(job *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range job.Status.Conditions {
		if c := &job.Status.Conditions[i]; c.Type == t && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

func podCounts(job *batchv1.Job) string {
	return fmt.Sprintf("%d active, %d succeeded, %d failed pods", job.Status.Active, job.Status.Succeeded, job.Status.Failed)
}

// newJob builds the Job of an action: the template's labels, annotations and spec, named
// from the action id, stamped with it, labelled with the app and controlled by it, so the
// garbage collector deletes it with the app. Its activeDeadlineSeconds is at most the
// action's timeout, so a Job the action gave up on does not run on. runAs, when set, is
// the ServiceAccount its pods run as if the template names none.
func newJob(app *v1alpha1.AutonomicApp, id, name string, tmpl *batchv1.JobTemplateSpec, timeout time.Duration, runAs string) *batchv1.Job {
	labels := map[string]string{}
	for k, v := range tmpl.Labels {
		labels[k] = v
	}
	labels[AppLabel] = labelValue(app.Name)
	annotations := map[string]string{}
	for k, v := range tmpl.Annotations {
		annotations[k] = v
	}
	annotations[v1alpha1.ActionIDAnnotation] = id

	spec := *tmpl.Spec.DeepCopy()
	deadline := int64(math.Ceil(timeout.Seconds()))
	if spec.ActiveDeadlineSeconds == nil || *spec.ActiveDeadlineSeconds > deadline {
		spec.ActiveDeadlineSeconds = ptr.To(deadline)
	}
	if runAs != "" && spec.Template.Spec.ServiceAccountName == "" {
		spec.Template.Spec.ServiceAccountName = runAs
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: app.Namespace, Labels: labels, Annotations: annotations,
			// No blockOwnerDeletion: it would need update on autonomicapps/finalizers, and
			// background deletion of the app removes the Job without it.
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: v1alpha1.GroupVersion.String(), Kind: "AutonomicApp",
				Name: app.Name, UID: app.UID, Controller: ptr.To(true),
			}},
		},
		Spec: spec,
	}
}

// jobTemplate decodes runJob.template strictly into a batch/v1 JobTemplateSpec.
func jobTemplate(a *v1alpha1.RunJobAction) (*batchv1.JobTemplateSpec, error) {
	if a == nil || len(a.Template.Raw) == 0 {
		return nil, errors.New("runJob.template is empty: it must be a batch/v1 JobTemplateSpec (metadata and spec)")
	}
	tmpl := &batchv1.JobTemplateSpec{}
	strict, err := k8sjson.UnmarshalStrict(a.Template.Raw, tmpl)
	if err == nil && len(strict) > 0 {
		msgs := make([]string, len(strict))
		for i, e := range strict {
			msgs[i] = e.Error()
		}
		err = errors.New(strings.Join(msgs, "; "))
	}
	if err != nil {
		return nil, fmt.Errorf("runJob.template is not a batch/v1 JobTemplateSpec (metadata and spec): %w", err)
	}
	if len(tmpl.Spec.Template.Spec.Containers) == 0 {
		return nil, errors.New("runJob.template is not a usable batch/v1 JobTemplateSpec: spec.template.spec.containers is empty")
	}
	return tmpl, nil
}

func runJobTimeout(a *v1alpha1.RunJobAction) time.Duration {
	if a != nil && a.Timeout != nil && a.Timeout.Duration > 0 {
		return a.Timeout.Duration
	}
	return DefaultRunJobTimeout
}

// PendingDeadline is when a Pending outcome of the request turns Failed by itself even if
// nothing changes: for runJob, the record's time plus runJob.timeout. The controller
// requeues the app then. It is zero for actions whose outcome is never Pending.
func PendingDeadline(req Request) time.Time {
	if req.Action.RunJob == nil || req.Record == nil || req.Record.Time.IsZero() {
		return time.Time{}
	}
	return req.Record.Time.Add(runJobTimeout(req.Action.RunJob))
}

// JobName is the name of the Job a runJob action creates: the app's name and a hash of
// the action id, a valid name of at most 63 characters, the same on every retry.
func JobName(app, id string) string {
	sum := sha256.Sum256([]byte(id))
	suffix := "-" + hex.EncodeToString(sum[:])[:10]
	prefix := app
	if n := 63 - len(suffix); len(prefix) > n {
		prefix = prefix[:n]
	}
	prefix = strings.TrimRight(prefix, "-.")
	if prefix == "" {
		prefix = "runjob"
	}
	return prefix + suffix
}

// labelValue shortens an app name (a DNS subdomain of up to 253 characters) to a valid
// label value.
func labelValue(s string) string {
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.TrimRight(s, "-.")
}

// runJobPast reports whether the effectors' clock has reached t. Without a clock, or
// without a time to reach, it never has: the timeout is then left to the Job's
// activeDeadlineSeconds.
func (e *Effectors) runJobPast(t time.Time) bool {
	return e.Clock != nil && !t.IsZero() && !e.Clock.Now().Before(t)
}
