package controllers

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// The Argo CD health scripts of config/argocd, one per kind (the policy kinds share one).
var argoScripts = map[string]string{
	"AutonomicApp":         "health-autonomicapp.lua",
	"HealingPolicy":        "health-healingpolicy.lua",
	"ClusterHealingPolicy": "health-healingpolicy.lua",
}

// argoHealth is what Argo CD says of obj (an AutonomicApp, HealingPolicy or
// ClusterHealingPolicy): it runs the kind's script from config/argocd as Argo CD runs a
// health script from argocd-cm, with gopher-lua, only the package, base and table
// libraries open (no string, math or io), obj converted to a Lua table (numbers as
// numbers, lists as sequences) and a one-second limit, and reads the table it returns.
func argoHealth(t *testing.T, obj runtime.Object) (status, message string) {
	t.Helper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	if kind == "" {
		switch obj.(type) {
		case *v1alpha1.AutonomicApp:
			kind = "AutonomicApp"
		case *v1alpha1.HealingPolicy:
			kind = "HealingPolicy"
		case *v1alpha1.ClusterHealingPolicy:
			kind = "ClusterHealingPolicy"
		}
	}
	script, err := os.ReadFile(filepath.Join("..", "config", "argocd", argoScripts[kind]))
	if err != nil {
		t.Fatalf("The health script of %q: %v", kind, err)
	}
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for name, open := range map[string]lua.LGFunction{lua.LoadLibName: lua.OpenPackage, lua.BaseLibName: lua.OpenBase, lua.TabLibName: lua.OpenTable} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(open), Protect: true}, lua.LString(name)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, u))
	if err := l.DoString(string(script)); err != nil {
		t.Fatalf("%s: %v", argoScripts[kind], err)
	}
	hs, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("%s returned %s, not a table", argoScripts[kind], l.Get(-1).Type())
	}
	status = lua.LVAsString(hs.RawGetString("status"))
	switch status {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
	default:
		t.Fatalf("%s returned status %q, which Argo CD reads as Unknown", argoScripts[kind], status)
	}
	return status, lua.LVAsString(hs.RawGetString("message"))
}

// toLua converts a value of an unstructured object to Lua, as Argo CD does.
func toLua(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for k, item := range v {
			t.RawSetString(k, toLua(l, item))
		}
		return t
	case []any:
		t := l.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(l, item))
		}
		return t
	case string:
		return lua.LString(v)
	case bool:
		return lua.LBool(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	}
	return lua.LNil
}

// summarizedApp is an app of generation 2 whose status is what plan.Summarize decides
// of in, with Ready as given (nil: unset), written for generation observed.
func summarizedApp(in plan.SummaryInput, ready *plan.Condition, observed int64) *v1alpha1.AutonomicApp {
	app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop", Generation: observed}}
	in.Now = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	in.Ready = ready
	if ready != nil {
		copyCondition(app, *ready)
	}
	sum := plan.Summarize(in)
	for _, c := range sum.Conditions {
		copyCondition(app, c)
	}
	app.Status.Phase = sum.Phase
	app.Status.ObservedGeneration = observed
	app.Generation = 2
	return app
}

func TestArgoCDHealthOfAnAppFollowsWhatItsStatusSays(t *testing.T) {
	ready := &plan.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonReconciled,
		Message: "Every component resolves and every symptom compiles."}
	notReady := func(reason, msg string) *plan.Condition {
		return &plan.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason, Message: msg}
	}
	healthy := []plan.ComponentHealth{{Name: "web", Healthy: true, Found: true}}
	unhealthy := []plan.ComponentHealth{{Name: "web", Found: true, Message: "1 of 3 pods ready."}}
	heal := []v1alpha1.Policy{{Name: "heal", Remediate: &v1alpha1.RemediatePolicy{When: []string{"Down"}, Steps: []v1alpha1.RemediationStep{
		{Action: v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "web"}}},
		{Action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "web stays down"}}}}}}}
	down := []v1alpha1.SymptomStatus{{Name: "Down", Active: true}}
	stepStart := ptr.To(metav1.Now())
	openEpisode := []v1alpha1.PolicyStatus{{Name: "heal", State: v1alpha1.PolicyWaiting, Step: 1, StepStart: stepStart, Message: "Waiting until 10:02."}}

	for _, tc := range []struct {
		name string
		app  *v1alpha1.AutonomicApp
		want string
		// msg is a part of the message Argo CD shows.
		msg string
	}{{
		name: "healthy and ready for the current generation",
		app:  summarizedApp(plan.SummaryInput{Components: healthy}, ready, 2),
		want: "Healthy", msg: "All 1 components are healthy.",
	}, {
		name: "healthy with a sensor unavailable",
		app: summarizedApp(plan.SummaryInput{Components: healthy,
			Sensors: []v1alpha1.SensorStatus{{Name: "latency", Error: "Prometheus answered 503."}}}, ready, 2),
		want: "Healthy",
	}, {
		name: "healthy in DryRun",
		app:  summarizedApp(plan.SummaryInput{Mode: v1alpha1.ModeDryRun, Components: healthy}, ready, 2),
		want: "Healthy",
	}, {
		name: "no status yet",
		app:  &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop", Generation: 1}},
		want: "Progressing", msg: "Waiting for Homeostat",
	}, {
		name: "a status of an older generation",
		app:  summarizedApp(plan.SummaryInput{Components: healthy}, ready, 1),
		want: "Progressing", msg: "latest spec",
	}, {
		name: "a component not created yet",
		app: summarizedApp(plan.SummaryInput{Components: []plan.ComponentHealth{{Name: "web", Message: "Deployment web does not exist."}}},
			notReady(v1alpha1.ReasonComponentNotFound, `Component "web": Deployment web does not exist. Create it or fix spec.components.`), 2),
		want: "Progressing", msg: `Component "web"`,
	}, {
		name: "the ServiceAccount not created yet",
		app: summarizedApp(plan.SummaryInput{Components: healthy},
			notReady(v1alpha1.ReasonServiceAccountNotFound, "ServiceAccount shop does not exist."), 2),
		want: "Progressing", msg: "ServiceAccount shop",
	}, {
		name: "degraded before any policy acts",
		app:  summarizedApp(plan.SummaryInput{Components: unhealthy, Policies: heal, Symptoms: down}, ready, 2),
		want: "Progressing", msg: "1 of 3 pods ready",
	}, {
		name: "a Degraded phase while an episode is open",
		app: func() *v1alpha1.AutonomicApp {
			a := summarizedApp(plan.SummaryInput{Components: unhealthy, Policies: heal, PolicyStatus: openEpisode, Symptoms: down}, ready, 2)
			a.Status.Phase = v1alpha1.PhaseDegraded
			return a
		}(),
		want: "Progressing",
	}, {
		name: "remediating",
		app:  summarizedApp(plan.SummaryInput{Components: unhealthy, Policies: heal, PolicyStatus: openEpisode, Symptoms: down}, ready, 2),
		want: "Progressing", msg: "Remediation episodes are open: heal",
	}, {
		name: "needs attention: the ladder reached notify",
		app: summarizedApp(plan.SummaryInput{Components: unhealthy, Policies: heal, Symptoms: down, PolicyStatus: []v1alpha1.PolicyStatus{
			{Name: "heal", State: v1alpha1.PolicyWaiting, Step: 2, StepStart: stepStart, Message: "web stays down"}}}, ready, 2),
		want: "Degraded", msg: "Needs attention: heal: web stays down",
	}, {
		name: "needs attention: gave up",
		app: summarizedApp(plan.SummaryInput{Components: unhealthy, Policies: heal, Symptoms: down, PolicyStatus: []v1alpha1.PolicyStatus{
			{Name: "heal", State: v1alpha1.PolicyGaveUp, Reason: "LadderExhausted", Message: "Every step ran."}}}, ready, 2),
		want: "Degraded", msg: "Every step ran.",
	}, {
		name: "an invalid spec",
		app: summarizedApp(plan.SummaryInput{Components: healthy},
			notReady(v1alpha1.ReasonInvalidSpec, "The spec is invalid and no policy runs until it is fixed: spec.symptoms[0]."), 2),
		want: "Degraded", msg: "spec.symptoms[0]",
	}, {
		name: "an invalid spec, written before Stalled existed",
		app: func() *v1alpha1.AutonomicApp {
			a := summarizedApp(plan.SummaryInput{Components: healthy}, notReady(v1alpha1.ReasonInvalidSpec, "The spec is invalid."), 2)
			a.Status.Conditions = removeCondition(a.Status.Conditions, v1alpha1.ConditionStalled)
			return a
		}(),
		want: "Degraded", msg: "The spec is invalid.",
	}, {
		name: "a hierarchy cycle",
		app: summarizedApp(plan.SummaryInput{Components: healthy},
			notReady("HierarchyCycle", "shop contains payments, which contains shop."), 2),
		want: "Degraded", msg: "contains shop",
	}, {
		name: "paused by spec.mode",
		app:  summarizedApp(plan.SummaryInput{Mode: v1alpha1.ModePaused, Components: unhealthy, Symptoms: down}, ready, 2),
		want: "Suspended", msg: "spec.mode is Paused",
	}, {
		name: "paused by the annotation while an episode is open",
		app: summarizedApp(plan.SummaryInput{PausedAnnotation: true, Components: unhealthy, Policies: heal,
			PolicyStatus: openEpisode, Symptoms: down}, ready, 2),
		want: "Suspended", msg: v1alpha1.PausedAnnotation,
	}, {
		name: "an unknown phase",
		app: func() *v1alpha1.AutonomicApp {
			a := summarizedApp(plan.SummaryInput{Components: healthy}, ready, 2)
			a.Status.Phase = "Sleeping"
			return a
		}(),
		want: "Unknown", msg: "Sleeping",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, msg := argoHealth(t, tc.app)
			if got != tc.want || !strings.Contains(msg, tc.msg) {
				t.Errorf("Argo CD health %s (%q), want %s with a message containing %q\nstatus: %+v", got, msg, tc.want, tc.msg, tc.app.Status)
			}
		})
	}
}

func removeCondition(cs []metav1.Condition, typ string) []metav1.Condition {
	out := cs[:0]
	for _, c := range cs {
		if c.Type != typ {
			out = append(out, c)
		}
	}
	return out
}

func TestArgoCDHealthOfAPolicyFollowsItsReadyCondition(t *testing.T) {
	policy := func(generation, observed int64, ready *metav1.Condition) *v1alpha1.HealingPolicy {
		p := &v1alpha1.HealingPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "team", Generation: generation}}
		p.Status.ObservedGeneration = observed
		if ready != nil {
			p.Status.Conditions = []metav1.Condition{*ready}
		}
		return p
	}
	cond := func(status metav1.ConditionStatus, reason, msg string, gen int64) *metav1.Condition {
		return &metav1.Condition{Type: v1alpha1.ConditionReady, Status: status, Reason: reason, Message: msg, ObservedGeneration: gen}
	}
	for _, tc := range []struct {
		name string
		obj  runtime.Object
		want string
	}{
		{"ready", policy(2, 2, cond(metav1.ConditionTrue, v1alpha1.ReasonReconciled, "Selects 3 apps.", 2)), "Healthy"},
		{"ready, cluster-scoped", &v1alpha1.ClusterHealingPolicy{ObjectMeta: metav1.ObjectMeta{Name: "platform", Generation: 1},
			Status: policy(1, 1, cond(metav1.ConditionTrue, v1alpha1.ReasonReconciled, "Selects 30 apps.", 1)).Status}, "Healthy"},
		{"no status yet", policy(1, 0, nil), "Progressing"},
		{"a status of an older generation", policy(3, 2, cond(metav1.ConditionTrue, v1alpha1.ReasonReconciled, "Selects 3 apps.", 2)), "Progressing"},
		{"Ready of an older generation", policy(3, 3, cond(metav1.ConditionTrue, v1alpha1.ReasonReconciled, "Selects 3 apps.", 2)), "Progressing"},
		{"an invalid spec", policy(2, 2, cond(metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, "spec.symptoms[0] does not compile.", 2)), "Degraded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, msg := argoHealth(t, tc.obj); got != tc.want {
				t.Errorf("Argo CD health %s (%q), want %s", got, msg, tc.want)
			}
		})
	}
}
