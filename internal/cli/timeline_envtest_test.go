package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// TestTimelineReadsTheClusterAsTheUserMay runs `kubectl homeostat timeline` against an
// API server (envtest: kube-apiserver and etcd, RBAC on, no controllers) holding a
// crash-loop episode, as users with different rights.
func TestTimelineReadsTheClusterAsTheUserMay(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set: run `make test` or set it to $(bash hack/tools.sh envtest-dir)")
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	scheme := Scheme()
	_ = apiextensionsv1.AddToScheme(scheme)
	admin, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	ns := "shop"
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))

	// The workloads: Deployment web with its good ReplicaSet and a pod, and Deployment
	// web-api, whose names share web's prefix. The bad ReplicaSet and its pods are gone.
	web := tlDeployment(ns, "web")
	must(admin.Create(ctx, web))
	webAPI := tlDeployment(ns, "web-api")
	must(admin.Create(ctx, webAPI))
	good := tlReplicaSet(web, "6b9d5c7f84")
	must(admin.Create(ctx, good))
	apiRS := tlReplicaSet(webAPI, "5c4d8f7b9z")
	must(admin.Create(ctx, apiRS))
	must(admin.Create(ctx, tlPod(good, "z5t8n")))
	must(admin.Create(ctx, tlPod(apiRS, "q2w4e")))

	app := &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
		Spec: v1alpha1.AutonomicAppSpec{Components: []v1alpha1.Component{
			{Name: "web", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}}}},
	}
	must(admin.Create(ctx, app))
	at := func(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(d)) }
	ago := func(d time.Duration) *metav1.Time { t := at(-d); return &t }
	app.Status = v1alpha1.AutonomicAppStatus{
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionHealthy, Status: metav1.ConditionTrue, Reason: "ComponentsHealthy",
			Message: "All 1 components are healthy.", LastTransitionTime: at(-3 * time.Minute)}},
		Symptoms: []v1alpha1.SymptomStatus{{Name: "CrashLooping", Since: ago(2 * time.Minute)}},
		History: []v1alpha1.ActionRecord{
			{ID: "heal-web-b-2", Time: at(-5 * time.Minute), Policy: "heal-web", Step: 2, Action: "rollback", Component: "web",
				Target: "Deployment/web", Result: v1alpha1.ResultSucceeded, Message: "Rolled Deployment/web back to revision 1.",
				Outcome: v1alpha1.OutcomeVerified, OutcomeAt: ago(time.Minute)},
			{ID: "heal-web-a-1", Time: at(-6 * time.Minute), Policy: "heal-web", Step: 1, Action: "restartPods", Component: "web",
				Target: "Deployment/web", Objects: []string{"web-57f4c9dd8x-k2x9p"}, Result: v1alpha1.ResultSucceeded,
				Message: "Evicted 1 of 1 pods of Deployment/web.", Outcome: v1alpha1.OutcomeIneffective, OutcomeAt: ago(5 * time.Minute)},
		},
	}
	must(admin.Status().Update(ctx, app))

	// The Events: Homeostat's on the app (events.k8s.io), the controllers' and the
	// kubelet's (core/v1) on the Deployment, a deleted ReplicaSet and a deleted pod, and
	// web-api's pod.
	appRef := corev1.ObjectReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: "AutonomicApp", Namespace: ns, Name: "shop", UID: app.UID}
	must(admin.Create(ctx, &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop.1"}, Regarding: appRef, EventTime: metav1.NewMicroTime(now.Add(-6 * time.Minute)),
		ReportingController: "homeostat", ReportingInstance: "homeostat-0", Action: "Analyze", Type: corev1.EventTypeWarning,
		Reason: "SymptomBecameActive", Note: "Symptom CrashLooping became active.",
	}))
	must(admin.Create(ctx, &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop.2"}, Regarding: appRef, EventTime: metav1.NewMicroTime(now.Add(-6 * time.Minute).Add(300 * time.Millisecond)),
		ReportingController: "homeostat", ReportingInstance: "homeostat-0", Action: "restartPods", Type: corev1.EventTypeNormal,
		Reason: "ActionSucceeded", Note: "Evicted 1 of 1 pods of Deployment/web. (restartPods on Deployment/web, action heal-web-a-1)",
	}))
	coreEvent := func(name, kind, apiVersion, obj, typ, reason, msg string, ago time.Duration) *corev1.Event {
		return &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: name},
			InvolvedObject: corev1.ObjectReference{APIVersion: apiVersion, Kind: kind, Namespace: ns, Name: obj},
			Type:           typ, Reason: reason, Message: msg, Source: corev1.EventSource{Component: "test"},
			FirstTimestamp: at(-ago), LastTimestamp: at(-ago), Count: 1,
		}
	}
	must(admin.Create(ctx, coreEvent("web.1", "Deployment", "apps/v1", "web", "Normal", "ScalingReplicaSet",
		"Scaled up replica set web-6b9d5c7f84 from 2 to 3", 5*time.Minute)))
	must(admin.Create(ctx, coreEvent("web-57f4c9dd8x.1", "ReplicaSet", "apps/v1", "web-57f4c9dd8x", "Normal", "SuccessfulCreate",
		"Created pod: web-57f4c9dd8x-b2c4d", 6*time.Minute)))
	must(admin.Create(ctx, coreEvent("web-57f4c9dd8x-k2x9p.1", "Pod", "v1", "web-57f4c9dd8x-k2x9p", "Warning", "BackOff",
		"Back-off restarting failed container web", 7*time.Minute)))
	must(admin.Create(ctx, coreEvent("web-6b9d5c7f84-z5t8n.1", "Pod", "v1", "web-6b9d5c7f84-z5t8n", "Normal", "Scheduled",
		"Successfully assigned shop/web-6b9d5c7f84-z5t8n to node-0", 5*time.Minute)))
	must(admin.Create(ctx, coreEvent("web-api-5c4d8f7b9z-q2w4e.1", "Pod", "v1", "web-api-5c4d8f7b9z-q2w4e", "Warning", "BackOff",
		"Back-off restarting failed container api", 4*time.Minute)))

	dir := t.TempDir()
	kubeconfig := func(name string, groups ...string) string {
		t.Helper()
		u, err := env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
		must(err)
		b, err := u.KubeConfig()
		must(err)
		path := filepath.Join(dir, name)
		must(os.WriteFile(path, b, 0o600))
		return path
	}
	grant := func(user string, rules ...rbacv1.PolicyRule) {
		t.Helper()
		must(admin.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user}, Rules: rules}))
		must(admin.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: user},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}))
	}
	readApp := rbacv1.PolicyRule{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"autonomicapps"}, Verbs: []string{"get"}}
	run := func(kubeconfig string, args ...string) (TimelineResult, string, int) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := Main(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
			append([]string{"timeline", "--kubeconfig", kubeconfig, "-n", ns, "-o", "json"}, args...))
		var res TimelineResult
		if code == ExitOK {
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatalf("the output is not JSON: %v\n%s", err, out.String())
			}
		}
		return res, errOut.String(), code
	}
	has := func(res TimelineResult, kind TimelineKind, reason, source string) bool {
		for _, e := range res.Entries {
			if e.Kind == kind && e.Reason == reason && (source == "" || e.Source == source) {
				return true
			}
		}
		return false
	}

	t.Run("an admin sees the app's status and Events and its workload's, and no one else's", func(t *testing.T) {
		res, stderr, code := run(kubeconfig("admin", "system:masters"), "shop")
		if code != ExitOK || stderr != "" {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		for _, want := range []struct {
			kind           TimelineKind
			reason, source string
		}{
			{TimelineEvent, "BackOff", "Pod/web-57f4c9dd8x-k2x9p"},
			{TimelineSymptom, "SymptomBecameActive", homeostatSource},
			{TimelineAction, "ActionSucceeded", homeostatSource},
			{TimelineEvent, "SuccessfulCreate", "ReplicaSet/web-57f4c9dd8x"},
			{TimelineOutcome, "ActionIneffective", homeostatSource},
			{TimelineEvent, "ScalingReplicaSet", "Deployment/web"},
			{TimelineEvent, "Scheduled", "Pod/web-6b9d5c7f84-z5t8n"},
			{TimelineSymptom, "SymptomCleared", homeostatSource},
			{TimelineOutcome, "ActionVerified", homeostatSource},
			{TimelineCondition, "ComponentsHealthy", homeostatSource},
		} {
			if !has(res, want.kind, want.reason, want.source) {
				t.Errorf("no %s %s from %s in %+v", want.kind, want.reason, want.source, res.Entries)
			}
		}
		for _, e := range res.Entries {
			if strings.Contains(e.Source, "web-api") {
				t.Errorf("an Event of Deployment web-api's pod is in web's timeline: %+v", e)
			}
			if e.Kind == TimelineEvent && e.Reason == "ActionSucceeded" {
				t.Errorf("the action's Event is listed beside its record: %+v", e)
			}
		}
	})

	t.Run("a user who may read the app but no Events gets its status and a warning", func(t *testing.T) {
		grant("viewer", readApp)
		res, stderr, code := run(kubeconfig("viewer"), "shop")
		if code != ExitOK {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "Warning: You may not list Events") {
			t.Errorf("want one warning about Events on stderr, got %q", stderr)
		}
		if !has(res, TimelineAction, "ActionSucceeded", "") || !has(res, TimelineSymptom, "SymptomCleared", "") || has(res, TimelineEvent, "BackOff", "") {
			t.Errorf("want the status's entries and no Events, got %+v", res.Entries)
		}
		if len(res.Warnings) != 1 {
			t.Errorf("the JSON does not carry the warning: %q", res.Warnings)
		}
	})

	t.Run("a user who may list core Events only reads them through core/v1", func(t *testing.T) {
		grant("core-reader", readApp, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"list"}})
		res, stderr, code := run(kubeconfig("core-reader"), "shop")
		if code != ExitOK {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if !has(res, TimelineSymptom, "SymptomBecameActive", homeostatSource) || !has(res, TimelineEvent, "BackOff", "Pod/web-57f4c9dd8x-k2x9p") {
			t.Errorf("the Events read through core/v1 are missing: %+v", res.Entries)
		}
		if strings.Contains(stderr, "You may not list Events") {
			t.Errorf("a warning about Events, which were read: %q", stderr)
		}
	})

	t.Run("a user who may not read the workloads gets their Events by name, and a warning for each permission", func(t *testing.T) {
		grant("events-reader", readApp, rbacv1.PolicyRule{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"list"}})
		res, stderr, code := run(kubeconfig("events-reader"), "shop")
		if code != ExitOK {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		for _, w := range []string{"You may not get Deployments", "You may not list ReplicaSets", "You may not list pods"} {
			if strings.Count(stderr, "Warning: "+w) != 1 {
				t.Errorf("want one warning %q on stderr, got %q", w, stderr)
			}
		}
		if !has(res, TimelineEvent, "BackOff", "Pod/web-57f4c9dd8x-k2x9p") || !has(res, TimelineEvent, "Scheduled", "Pod/web-6b9d5c7f84-z5t8n") {
			t.Errorf("the pods' Events, found by name, are missing: %+v", res.Entries)
		}
		if has(res, TimelineEvent, "BackOff", "Pod/web-api-5c4d8f7b9z-q2w4e") {
			t.Errorf("web-api's pod is taken for web's")
		}
	})

	t.Run("a user who may not read the app is refused", func(t *testing.T) {
		_, stderr, code := run(kubeconfig("stranger"), "shop")
		if code != ExitForbidden {
			t.Errorf("exit %d, want %d (forbidden); stderr %q", code, ExitForbidden, stderr)
		}
	})

	admin2 := kubeconfig("admin2", "system:masters")
	t.Run("a missing app exits as not found", func(t *testing.T) {
		_, stderr, code := run(admin2, "no-such-app")
		if code != ExitNotFound || !strings.Contains(stderr, "not found") {
			t.Errorf("exit %d, want %d; stderr %q", code, ExitNotFound, stderr)
		}
	})

	t.Run("without Homeostat's CRDs it exits as not found", func(t *testing.T) {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		must(admin.Get(ctx, types.NamespacedName{Name: "autonomicapps." + v1alpha1.GroupVersion.Group}, crd))
		must(admin.Delete(ctx, crd))
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, stderr, code := run(admin2, "shop")
			if code == ExitNotFound && strings.Contains(stderr, "CRDs are not installed") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("exit %d, want %d with a word about the CRDs; stderr %q", code, ExitNotFound, stderr)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

func tlDeployment(ns, name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.local/" + name}}}},
		},
	}
}

func tlReplicaSet(d *appsv1.Deployment, hash string) *appsv1.ReplicaSet {
	labels := map[string]string{"app": d.Name, appsv1.DefaultDeploymentUniqueLabelKey: hash}
	yes := true
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: d.Namespace, Name: d.Name + "-" + hash, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID, Controller: &yes}}},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: d.Spec.Template.Spec},
		},
	}
}

func tlPod(rs *appsv1.ReplicaSet, suffix string) *corev1.Pod {
	yes := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: rs.Namespace, Name: rs.Name + "-" + suffix, Labels: rs.Spec.Template.Labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &yes}}},
		Spec: rs.Spec.Template.Spec,
	}
}
