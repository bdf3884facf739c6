package analyze

import (
	"strings"
	"testing"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// shopApp is the app of the design, valid.
func shopApp() *v1alpha1.AutonomicApp {
	workload := func(name string) *v1alpha1.WorkloadReference {
		return &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name}
	}
	app := &v1alpha1.AutonomicApp{}
	app.Name, app.Namespace = "shop", "shop"
	app.Spec.Components = []v1alpha1.Component{
		{Name: "web", WorkloadRef: workload("web")},
		{Name: "web-standby", WorkloadRef: workload("web-eu")},
		{Name: "payments", AppRef: &v1alpha1.AppReference{Name: "payments"}},
	}
	app.Spec.Sensors = []v1alpha1.Sensor{
		{Name: "latency_p95", Prometheus: &v1alpha1.PrometheusSensor{Address: "http://127.0.0.1:9090", Query: "x"}},
		{Name: "cpu", Resource: &v1alpha1.ResourceSensor{Component: "web", Resource: v1alpha1.ResourceCPU}},
	}
	app.Spec.Symptoms = []v1alpha1.Symptom{
		{Name: "CrashLooping", Expression: "components.web.crashLoopingPods > 0"},
		{Name: "SlowResponses", Expression: "has(sensors.latency_p95) && sensors.latency_p95 > 0.3"},
	}
	app.Spec.Policies = []v1alpha1.Policy{
		{Name: "heal-web", Remediate: &v1alpha1.RemediatePolicy{
			When: []string{"CrashLooping"},
			Steps: []v1alpha1.RemediationStep{
				{Action: v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "web"}}},
				{Action: v1alpha1.Action{Rollback: &v1alpha1.ComponentAction{Component: "web"}}},
				{Action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "web keeps crashing"}}},
			},
		}},
		{Name: "scale-web", Autoscale: &v1alpha1.AutoscalePolicy{Component: "web", MaxReplicas: 20,
			Metrics: []v1alpha1.AutoscaleMetric{{Sensor: "cpu"}}}},
		{Name: "web-failover", Failover: &v1alpha1.FailoverPolicy{Service: "web",
			Candidates: []v1alpha1.FailoverCandidate{{Component: "web"}, {Component: "web-standby"}}}},
	}
	return app
}

func TestValidateApp(t *testing.T) {
	step := func(a v1alpha1.Action) func(*v1alpha1.AutonomicApp) {
		return func(app *v1alpha1.AutonomicApp) {
			app.Spec.Policies[0].Remediate.Steps[1] = v1alpha1.RemediationStep{Action: a}
		}
	}
	tests := []struct {
		name   string
		mutate func(*v1alpha1.AutonomicApp)
		// want maps each expected error's field to substrings of its message.
		want map[string][]string
	}{
		{name: "the design's app is valid", mutate: func(*v1alpha1.AutonomicApp) {}},
		{
			name:   "a symptom that does not compile",
			mutate: func(app *v1alpha1.AutonomicApp) { app.Spec.Symptoms[1].Expression = "sensors.latency > 0.3" },
			want: map[string][]string{"spec.symptoms[1].expression": {
				`symptom "SlowResponses": unknown sensor "latency" (declared sensors: cpu, latency_p95)`}},
		},
		{
			name: "when names an unknown symptom",
			mutate: func(app *v1alpha1.AutonomicApp) {
				app.Spec.Policies[0].Remediate.When = []string{"CrashLooping", "Crashlooping"}
			},
			want: map[string][]string{"spec.policies[0].remediate.when[1]": {
				`policy "heal-web": remediate.when names symptom "Crashlooping", which is not a symptom of this app (declared symptoms: CrashLooping, SlowResponses); did you mean "CrashLooping"?`}},
		},
		{
			name: "when with no symptoms declared",
			mutate: func(app *v1alpha1.AutonomicApp) {
				app.Spec.Symptoms = nil
			},
			want: map[string][]string{"spec.policies[0].remediate.when[0]": {"(the app declares no symptoms)"}},
		},
		{
			name:   "restartPods names an unknown component",
			mutate: step(v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "wbe"}}),
			want: map[string][]string{"spec.policies[0].remediate.steps[1].action.restartPods.component": {
				`policy "heal-web": restartPods names component "wbe", which is not a component of this app (declared components: payments, web, web-standby); did you mean "web"?`}},
		},
		{
			name:   "rolloutRestart names an unknown component",
			mutate: step(v1alpha1.Action{RolloutRestart: &v1alpha1.ComponentAction{Component: "api"}}),
			want:   map[string][]string{"spec.policies[0].remediate.steps[1].action.rolloutRestart.component": {`rolloutRestart names component "api"`}},
		},
		{
			name:   "rollback names an unknown component",
			mutate: step(v1alpha1.Action{Rollback: &v1alpha1.ComponentAction{Component: "api"}}),
			want:   map[string][]string{"spec.policies[0].remediate.steps[1].action.rollback.component": {`rollback names component "api"`}},
		},
		{
			name:   "scale names an unknown component",
			mutate: step(v1alpha1.Action{Scale: &v1alpha1.ScaleAction{Component: "api"}}),
			want:   map[string][]string{"spec.policies[0].remediate.steps[1].action.scale.component": {`scale names component "api"`}},
		},
		{
			name:   "cordonNode names an unknown component",
			mutate: step(v1alpha1.Action{CordonNode: &v1alpha1.NodeAction{Component: "api"}}),
			want:   map[string][]string{"spec.policies[0].remediate.steps[1].action.cordonNode.component": {`cordonNode names component "api"`}},
		},
		{
			name:   "drainNode names an unknown component",
			mutate: step(v1alpha1.Action{DrainNode: &v1alpha1.NodeAction{Component: "api"}}),
			want:   map[string][]string{"spec.policies[0].remediate.steps[1].action.drainNode.component": {`drainNode names component "api"`}},
		},
		{
			name:   "an action names * in an app",
			mutate: step(v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "*"}}),
			want: map[string][]string{"spec.policies[0].remediate.steps[1].action.restartPods.component": {
				`policy "heal-web": restartPods names component "*", which means every component and is allowed only in a HealingPolicy or ClusterHealingPolicy; name a component of this app (workload components: web, web-standby)`}},
		},
		{
			name:   "an action on a child app",
			mutate: step(v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "payments"}}),
			want: map[string][]string{"spec.policies[0].remediate.steps[1].action.restartPods.component": {
				`policy "heal-web": restartPods names component "payments", which is a child AutonomicApp; restartPods needs a workload component (workload components: web, web-standby)`}},
		},
		{
			name:   "actions without a component are not checked",
			mutate: step(v1alpha1.Action{Failover: &v1alpha1.FailoverAction{Policy: "web-failover"}}),
		},
		{
			name:   "autoscale names an unknown component",
			mutate: func(app *v1alpha1.AutonomicApp) { app.Spec.Policies[1].Autoscale.Component = "*" },
			want:   map[string][]string{"spec.policies[1].autoscale.component": {`policy "scale-web": an autoscale policy names component "*"`}},
		},
		{
			name:   "failover candidate names an unknown component",
			mutate: func(app *v1alpha1.AutonomicApp) { app.Spec.Policies[2].Failover.Candidates[1].Component = "web-eu" },
			want: map[string][]string{"spec.policies[2].failover.candidates[1].component": {
				`policy "web-failover": a failover candidate names component "web-eu", which is not a component of this app`}},
		},
		{
			name: "an object sensor names a Secret",
			mutate: func(app *v1alpha1.AutonomicApp) {
				app.Spec.Sensors = append(app.Spec.Sensors, v1alpha1.Sensor{Name: "db", Object: &v1alpha1.ObjectSensor{
					Ref: v1alpha1.ObjectReference{APIVersion: "v1", Kind: "Secret", Name: "db"}, Expression: "double(size(object.data))"}})
			},
			want: map[string][]string{"spec.sensors[2].object.ref.kind": {`sensor "db": object sensors never read Secrets: `, "put the number in a ConfigMap"}},
		},
		{
			name: "an object sensor names a Secret in lower case, with the core group spelt /v1",
			mutate: func(app *v1alpha1.AutonomicApp) {
				app.Spec.Sensors = append(app.Spec.Sensors, v1alpha1.Sensor{Name: "db", Object: &v1alpha1.ObjectSensor{
					Ref: v1alpha1.ObjectReference{APIVersion: "/v1", Kind: "secret", Name: "db"}, Expression: "1.0"}})
			},
			want: map[string][]string{"spec.sensors[2].object.ref.kind": {"object sensors never read Secrets"}},
		},
		{
			name: "an object sensor may name a kind called Secret of another group",
			mutate: func(app *v1alpha1.AutonomicApp) {
				app.Spec.Sensors = append(app.Spec.Sensors, v1alpha1.Sensor{Name: "vault", Object: &v1alpha1.ObjectSensor{
					Ref: v1alpha1.ObjectReference{APIVersion: "example.com/v1", Kind: "Secret", Name: "db"}, Expression: "1.0"}})
			},
		},
		{
			name:   "resource sensor names an unknown component",
			mutate: func(app *v1alpha1.AutonomicApp) { app.Spec.Sensors[1].Resource.Component = "db" },
			want: map[string][]string{"spec.sensors[1].resource.component": {
				`sensor "cpu": a resource sensor names component "db", which is not a component of this app`}},
		},
		{
			name: "every error is reported",
			mutate: func(app *v1alpha1.AutonomicApp) {
				app.Spec.Symptoms[0].Expression = "components.nope.healthy"
				app.Spec.Policies[0].Remediate.When = []string{"Nope"}
				app.Spec.Policies[1].Autoscale.Component = "payments"
			},
			want: map[string][]string{
				"spec.symptoms[0].expression":        {`unknown component "nope"`},
				"spec.policies[0].remediate.when[0]": {`symptom "Nope"`},
				"spec.policies[1].autoscale.component": {
					`policy "scale-web": an autoscale policy names component "payments", which is a child AutonomicApp; an autoscale policy needs a workload component`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := shopApp()
			tt.mutate(app)
			errs := ValidateApp(app)
			got := map[string]string{}
			for _, e := range errs {
				if _, dup := got[e.Field]; dup {
					t.Errorf("two errors at %s", e.Field)
				}
				got[e.Field] = e.Message
			}
			for field, wants := range tt.want {
				msg, ok := got[field]
				if !ok {
					t.Errorf("no error at %s; got %v", field, errs)
					continue
				}
				for _, w := range wants {
					if !strings.Contains(msg, w) {
						t.Errorf("%s: message %q does not contain %q", field, msg, w)
					}
				}
			}
			for field, msg := range got {
				if _, ok := tt.want[field]; !ok {
					t.Errorf("unexpected error at %s: %s", field, msg)
				}
			}
		})
	}
	if errs := ValidateApp(nil); errs != nil {
		t.Errorf("ValidateApp(nil) = %v, want nil", errs)
	}
}
