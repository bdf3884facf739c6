package execute

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/plan"
	"github.com/homeostat-dev/homeostat/internal/rights"
)

var healer = &rights.Subject{Namespace: "shop", Name: "healer"}

// TestEachActionDeclaresWhatItAsksOfTheAPIServer: with a ServiceAccount to act as,
// Prepare lists the accesses the intent will make, as a person doing the same by hand
// would need them; Accesses lists the same for the recorded intent, for a resumed one.
func TestEachActionDeclaresWhatItAsksOfTheAPIServer(t *testing.T) {
	app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "shop"}}
	rs := func(name, rev string) appsv1.ReplicaSet {
		r := appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop",
			Annotations: map[string]string{RevisionAnnotation: rev},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "web-uid",
				Controller: ptr.To(true)}}}}
		r.Spec.Template = podTemplateSpec("web:" + rev)
		return r
	}
	web := (&fakeDeployment{replicas: 2, rss: []appsv1.ReplicaSet{rs("web-1", "1"), rs("web-2", "2")},
		mutate: func(d *appsv1.Deployment) {
			d.Spec.Template = podTemplateSpec("web:2")
			d.Spec.Selector = &metav1.LabelSelector{MatchLabels: appLabels}
		}}).component(
		crashingPod("web-a"), crashingPod("web-b"))
	web.Pods[0].Spec.NodeName, web.Pods[1].Spec.NodeName = "n1", "n2"
	evict := func(name string) rights.Access {
		return rights.Access{Verb: "create", Resource: "pods", Subresource: "eviction", Namespace: "shop", Name: name}
	}
	withFailover := app.DeepCopy()
	withFailover.Spec.Policies = []v1alpha1.Policy{{Name: "fo", Failover: &v1alpha1.FailoverPolicy{Service: "web"}}}
	withFailover.Status.Policies = []v1alpha1.PolicyStatus{{Name: "fo", Primary: "web"}}

	cases := []struct {
		name   string
		app    *v1alpha1.AutonomicApp
		action v1alpha1.Action
		target *monitor.Component
		change *FailoverChange
		want   []rights.Access
	}{
		{name: "restartPods evicts each unhealthy pod", action: v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "web"}},
			target: web, want: []rights.Access{evict("web-a"), evict("web-b")}},
		{name: "rolloutRestart patches the workload", action: v1alpha1.Action{RolloutRestart: &v1alpha1.ComponentAction{Component: "web"}},
			target: web, want: []rights.Access{{Verb: "patch", Group: "apps", Resource: "deployments", Namespace: "shop", Name: "web"}}},
		{name: "rollback patches the workload and reads the revision", action: v1alpha1.Action{Rollback: &v1alpha1.ComponentAction{Component: "web"}},
			target: web, want: []rights.Access{
				{Verb: "patch", Group: "apps", Resource: "deployments", Namespace: "shop", Name: "web"},
				{Verb: "get", Group: "apps", Resource: "replicasets", Namespace: "shop", Name: "web-1"}}},
		{name: "scale patches the scale subresource", action: v1alpha1.Action{Scale: &v1alpha1.ScaleAction{Component: "web", Replicas: ptr.To(int32(5))}},
			target: web, want: []rights.Access{{Verb: "patch", Group: "apps", Resource: "deployments", Subresource: "scale", Namespace: "shop", Name: "web"}}},
		{name: "runJob creates its Job", action: runJobAction(0),
			want: []rights.Access{{Verb: "create", Group: "batch", Resource: "jobs", Namespace: "shop", Name: JobName("shop", "heal-1")}}},
		{name: "a webhook gets the Secret of its headers", action: webhookAction("https://127.0.0.1/hook", func(a *v1alpha1.WebhookAction) {
			a.HeadersFrom = &v1alpha1.SecretReference{Name: "pager"}
		}), want: []rights.Access{{Verb: "get", Resource: "secrets", Namespace: "shop", Name: "pager"}}},
		{name: "a webhook without headers asks nothing", action: webhookAction("https://127.0.0.1/hook")},
		{name: "notify asks nothing", action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "help"}}},
		{name: "cordonNode patches the nodes, cluster-scoped", action: v1alpha1.Action{CordonNode: &v1alpha1.NodeAction{Component: "web", MaxNodes: 2}},
			target: web, want: []rights.Access{{Verb: "patch", Resource: "nodes", Name: "n1"}, {Verb: "patch", Resource: "nodes", Name: "n2"}}},
		{name: "drainNode also lists and evicts pods of any namespace", action: v1alpha1.Action{DrainNode: &v1alpha1.NodeAction{Component: "web", MaxNodes: 2}},
			target: web, want: []rights.Access{{Verb: "patch", Resource: "nodes", Name: "n1"}, {Verb: "patch", Resource: "nodes", Name: "n2"},
				{Verb: "list", Resource: "pods"}, {Verb: "create", Resource: "pods", Subresource: "eviction"}}},
		{name: "a ladder's failover demotes, changing nothing", app: withFailover,
			action: v1alpha1.Action{Failover: &v1alpha1.FailoverAction{Policy: "fo"}}},
		{name: "a failover's traffic move patches the Service", action: v1alpha1.Action{Failover: &v1alpha1.FailoverAction{Policy: "fo"}},
			target: web, change: &FailoverChange{Phase: plan.PhaseMoveTraffic, Service: "web"},
			want: []rights.Access{{Verb: "patch", Resource: "services", Namespace: "shop", Name: "web"}}},
		{name: "a failover's scale patches the scale subresource", action: v1alpha1.Action{Failover: &v1alpha1.FailoverAction{Policy: "fo"}},
			target: web, change: &FailoverChange{Phase: plan.PhaseScaleUpStandby, Service: "web", Replicas: 4},
			want: []rights.Access{{Verb: "patch", Group: "apps", Resource: "deployments", Subresource: "scale", Namespace: "shop", Name: "web"}}},
	}
	e := &Effectors{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := app
			if tc.app != nil {
				a = tc.app
			}
			req := Request{App: a, Action: tc.action, Target: tc.target, Subject: healer,
				Record: &v1alpha1.ActionRecord{ID: "heal-1", Time: metav1.Now()}}
			prepare := func(req Request) (Prepared, error) {
				if tc.change != nil {
					return e.PrepareFailover(req, *tc.change)
				}
				return e.Prepare(req)
			}
			p, err := prepare(req)
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if !slices.Equal(p.Accesses, tc.want) {
				t.Errorf("Prepare declared\n  %v\nwant\n  %v", p.Accesses, tc.want)
			}
			// The recorded intent, as a resumed one is asked about.
			rec := *req.Record
			rec.Action = p.Kind
			rec.Objects, rec.Replicas, rec.Failover = p.Objects, p.Replicas, p.Failover
			req.Record = &rec
			if got, err := e.Accesses(req); err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("Accesses of the record = %v, %v; want what Prepare declared", got, err)
			}
			// Without a ServiceAccount nothing is asked: the app acts as the manager.
			req.Subject = nil
			if p, err := prepare(req); err != nil || p.Accesses != nil {
				t.Errorf("without a subject Prepare declared %v, %v; want nothing", p.Accesses, err)
			}
		})
	}
}

func crashingPod(name string) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop",
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-2", Controller: ptr.To(true)}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "web",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}},
	}
}

// runJobAs is a runJob action whose pod template names the ServiceAccount in the field
// (serviceAccountName, or the deprecated serviceAccount).
func runJobAs(field, sa string) v1alpha1.Action {
	a := runJobAction(0)
	var t batchv1.JobTemplateSpec
	if err := json.Unmarshal(a.RunJob.Template.Raw, &t); err != nil {
		panic(err)
	}
	switch field {
	case "serviceAccountName":
		t.Spec.Template.Spec.ServiceAccountName = sa
	case "serviceAccount":
		t.Spec.Template.Spec.DeprecatedServiceAccount = sa
	}
	raw, err := json.Marshal(t)
	if err != nil {
		panic(err)
	}
	a.RunJob.Template = apiextensionsv1.JSON{Raw: raw}
	return a
}

// TestRunJobRunsOnlyAsTheAppsServiceAccount: with the lockdown on, a Job is a way to run
// as another ServiceAccount, so its template may name only the app's (or none, and then
// the Job runs as the app's); anything else is Forbidden before the Job is created, and
// at Execute too (a template changed while the intent was pending). Without the lockdown
// the template is as it was.
func TestRunJobRunsOnlyAsTheAppsServiceAccount(t *testing.T) {
	app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "shop", UID: "app-uid"}}
	cases := []struct {
		name      string
		subject   *rights.Subject
		action    v1alpha1.Action
		wantErr   string
		wantRunAs string
	}{
		{name: "a more privileged ServiceAccount is refused", subject: healer, action: runJobAs("serviceAccountName", "cluster-admin-sa"),
			wantErr: "The runJob's Job would run as ServiceAccount shop/cluster-admin-sa (runJob.template.spec.template.spec.serviceAccountName), " +
				"but the app acts as ServiceAccount shop/healer, and a Job runs with the rights of its ServiceAccount: " +
				"remove the field, and the Job runs as healer, or set it to healer"},
		{name: "so is one named in the deprecated field", subject: healer, action: runJobAs("serviceAccount", "cluster-admin-sa"),
			wantErr: "(runJob.template.spec.template.spec.serviceAccount)"},
		{name: "the app's own ServiceAccount is fine", subject: healer, action: runJobAs("serviceAccountName", "healer"), wantRunAs: "healer"},
		{name: "none runs as the app's", subject: healer, action: runJobAs("", ""), wantRunAs: "healer"},
		{name: "without the lockdown any ServiceAccount is as before", action: runJobAs("serviceAccountName", "cluster-admin-sa"),
			wantRunAs: "cluster-admin-sa"},
		{name: "without the lockdown none stays none", action: runJobAs("", "")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := fake.NewClientBuilder().WithScheme(scheme).Build()
			e := &Effectors{Client: store, Clock: clocktesting.NewFakePassiveClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))}
			rec := &v1alpha1.ActionRecord{ID: "heal-1", Time: metav1.NewTime(e.Clock.Now()), Action: KindRunJob, Result: v1alpha1.ResultPending}
			req := Request{App: app, Action: tc.action, Subject: tc.subject, Record: rec}
			_, err := e.Prepare(req)
			out := e.Execute(context.Background(), req)
			var jobs batchv1.JobList
			if err := store.List(context.Background(), &jobs); err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" {
				f, ok := rights.IsForbidden(err)
				if !ok || !strings.Contains(f.Error(), tc.wantErr) {
					t.Errorf("Prepare = %v; want Forbidden with %q", err, tc.wantErr)
				}
				if out.Result != v1alpha1.ResultForbidden || !strings.Contains(out.Message, tc.wantErr) || len(jobs.Items) != 0 {
					t.Errorf("Execute = %+v with %d Jobs; want Forbidden and no Job", out, len(jobs.Items))
				}
				return
			}
			if err != nil || out.Result != v1alpha1.ResultPending || len(jobs.Items) != 1 {
				t.Fatalf("Prepare = %v, Execute = %+v with %d Jobs; want the Job created", err, out, len(jobs.Items))
			}
			if got := jobs.Items[0].Spec.Template.Spec.ServiceAccountName; got != tc.wantRunAs {
				t.Errorf("the Job runs as %q, want %q", got, tc.wantRunAs)
			}
		})
	}
}

// TestAClusterPolicysWebhookReadsItsHeadersFromTheManagersNamespace: the Secret of a
// ClusterHealingPolicy's webhook is the admin's, in the manager's namespace, never one
// of the app's namespace (which the tenant controls, and the admin's policy may not
// read); the tenant's rights are not asked for it. A manager that does not know its
// namespace says how to tell it.
func TestAClusterPolicysWebhookReadsItsHeadersFromTheManagersNamespace(t *testing.T) {
	h := newHookServer(t, true, http.StatusOK)
	admin := hookSecret()
	admin.Namespace, admin.Data = "homeostat-system", map[string][]byte{"Authorization": []byte("Bearer admin")}
	tenant := hookSecret()
	tenant.Data = map[string][]byte{"Authorization": []byte("Bearer tenant")}
	action := webhookAction(h.URL+"/hook", withCA(h), func(a *v1alpha1.WebhookAction) { a.HeadersFrom = &v1alpha1.SecretReference{Name: "pager"} })

	e, _ := hookEffectors(t, admin, tenant)
	e.ManagerNamespace = "homeostat-system"
	req := Request{App: hookApp(), Action: action, Subject: healer, ClusterPolicy: true}
	p, err := e.Prepare(req)
	if err != nil || len(p.Accesses) != 0 {
		t.Fatalf("Prepare = %+v, %v; a cluster policy's Secret is not the tenant's to authorize", p.Accesses, err)
	}
	req.Record = hookRecord()
	if out := untilDone(t, e, req); out.Result != v1alpha1.ResultSucceeded {
		t.Fatalf("Execute = %+v", out)
	}
	if got := h.got[0].Header.Get("Authorization"); got != "Bearer admin" {
		t.Errorf("the webhook sent the headers of %q; want the manager namespace's Secret", got)
	}

	e.ManagerNamespace = ""
	req.Record = hookRecord()
	req.Record.ID = "without-the-manager-namespace"
	out := untilDone(t, e, req)
	if out.Result != v1alpha1.ResultFailed || !strings.Contains(out.Message, "set --manager-namespace or the POD_NAMESPACE environment variable") {
		t.Errorf("Execute without the manager's namespace = %+v; want Failed saying how to set it", out)
	}
	if n := h.requests(); n != 1 {
		t.Errorf("the server got %d requests, want 1", n)
	}
	// A webhook without headers needs no Secret, and so no namespace.
	req.Action = webhookAction(h.URL+"/hook", withCA(h))
	req.Record = hookRecord()
	req.Record.ID = "without-headers"
	if out := untilDone(t, e, req); out.Result != v1alpha1.ResultSucceeded {
		t.Errorf("Execute of a cluster policy's webhook without headers = %+v; want it sent", out)
	}
}
