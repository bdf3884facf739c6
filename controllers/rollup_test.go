package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/monitor"
)

// healthyComponent and sickComponent are gathered components whose built-in sensors say
// healthy, or not with msg (as monitor.ComputeStatus words it).
func healthyComponent(name string) monitor.Component {
	return monitor.Component{Name: name, Ref: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
		Status: v1alpha1.ComponentStatus{Name: name, Kind: "Deployment", Found: true, Healthy: true}}
}

func sickComponent(name, msg string) monitor.Component {
	c := healthyComponent(name)
	c.Status.Healthy, c.Status.Message = false, msg
	return c
}

// childComponent is an appRef component whose child app has the given Healthy condition
// and phase, with its status computed as the monitor computes it.
func childComponent(name string, healthy bool, phase v1alpha1.Phase) monitor.Component {
	status := metav1.ConditionFalse
	if healthy {
		status = metav1.ConditionTrue
	}
	c := monitor.Component{Name: name, Child: &v1alpha1.AutonomicApp{Status: v1alpha1.AutonomicAppStatus{Phase: phase,
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionHealthy, Status: status}}}}}
	c.Status = monitor.ComputeStatus(&c)
	return c
}

func quorum(n int32) *v1alpha1.HealthSpec {
	return &v1alpha1.HealthSpec{MinHealthyComponents: ptr.To(n)}
}

func TestRollupNeedsAllComponentsHealthyUnlessAQuorumIsSet(t *testing.T) {
	cases := []struct {
		name        string
		health      *v1alpha1.HealthSpec
		components  []monitor.Component
		wantHealthy bool
		wantMessage string
	}{
		{name: "by default every component healthy is healthy",
			components:  []monitor.Component{healthyComponent("web"), healthyComponent("api")},
			wantHealthy: true, wantMessage: "All 2 components are healthy."},
		{name: "by default one unhealthy component makes the app unhealthy and is named with its reason",
			components:  []monitor.Component{healthyComponent("web"), sickComponent("api", "1 of 3 replicas are ready.")},
			wantHealthy: false, wantMessage: "1 of 2 components are healthy, 2 needed; unhealthy: api (1 of 3 replicas are ready)."},
		{name: "a health block without minHealthyComponents still needs them all",
			health:      &v1alpha1.HealthSpec{},
			components:  []monitor.Component{healthyComponent("web"), sickComponent("api", `Deployment "api" not found.`)},
			wantHealthy: false, wantMessage: `1 of 2 components are healthy, 2 needed; unhealthy: api (Deployment "api" not found).`},
		{name: "a quorum met with one component unhealthy is healthy and still names the unhealthy one",
			health:      quorum(1),
			components:  []monitor.Component{healthyComponent("web"), sickComponent("web-standby", "0 of 2 replicas are ready.")},
			wantHealthy: true, wantMessage: "1 of 2 components are healthy, at least 1 needed; unhealthy: web-standby (0 of 2 replicas are ready)."},
		{name: "a quorum met exactly with every component healthy says all are",
			health:      quorum(2),
			components:  []monitor.Component{healthyComponent("web"), healthyComponent("api")},
			wantHealthy: true, wantMessage: "All 2 components are healthy."},
		{name: "a quorum missed is unhealthy and lists every unhealthy component in order",
			health: quorum(2),
			components: []monitor.Component{sickComponent("web", "1 of 2 pods are crash-looping."), healthyComponent("api"),
				sickComponent("db", "The rollout exceeded its progress deadline.")},
			wantHealthy: false, wantMessage: "1 of 3 components are healthy, 2 needed; unhealthy: web (1 of 2 pods are crash-looping); " +
				"db (The rollout exceeded its progress deadline)."},
		{name: "a healthy child app counts as a healthy component",
			components:  []monitor.Component{healthyComponent("web"), childComponent("payments", true, v1alpha1.PhaseHealthy)},
			wantHealthy: true, wantMessage: "All 2 components are healthy."},
		{name: "an unhealthy child app counts against the rollup with its phase",
			components:  []monitor.Component{healthyComponent("web"), childComponent("payments", false, v1alpha1.PhaseDegraded)},
			wantHealthy: false, wantMessage: "1 of 2 components are healthy, 2 needed; unhealthy: payments (Child app is Degraded)."},
		{name: "a missing child app is unhealthy",
			health: quorum(1),
			components: []monitor.Component{func() monitor.Component {
				c := monitor.Component{Name: "payments"}
				c.Status = monitor.ComputeStatus(&c)
				return c
			}()},
			wantHealthy: false, wantMessage: "0 of 1 components are healthy, 1 needed; unhealthy: payments (Child AutonomicApp not found)."},
		{name: "a quorum of child apps met with one degraded is healthy",
			health: quorum(2),
			components: []monitor.Component{childComponent("eu", true, v1alpha1.PhaseHealthy), childComponent("us", true, v1alpha1.PhaseHealthy),
				childComponent("ap", false, v1alpha1.PhaseNeedsAttention)},
			wantHealthy: true, wantMessage: "2 of 3 components are healthy, at least 2 needed; unhealthy: ap (Child app is NeedsAttention)."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := &v1alpha1.AutonomicApp{Spec: v1alpha1.AutonomicAppSpec{Health: tc.health}}
			h := rollup(app, tc.components)
			healthy, msg := h.Healthy, h.Message()
			if healthy != tc.wantHealthy || msg != tc.wantMessage {
				t.Fatalf("rollup = %v, %q\nwant     %v, %q", healthy, msg, tc.wantHealthy, tc.wantMessage)
			}
		})
	}
}
