package analyze

import (
	"fmt"
	"maps"
	"slices"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// wildcardComponent in a shared policy means each component of the app.
const wildcardComponent = "*"

// ValidateApp checks what the CRD schema cannot: that every symptom compiles against the
// app's components and sensors (see Compile), that every policies[].remediate.when entry
// names a symptom of the app, and that every component named by an action, an autoscale
// or failover policy or a resource sensor is a workload component of the app; and, as the
// CRD does too, that no object sensor names a Secret. `"*"` is rejected: it is for
// HealingPolicy and ClusterHealingPolicy only.
//
// It checks the app as given. The admission webhook passes the app as submitted; the
// reconciler reports the same errors in the Ready condition.
func ValidateApp(app *v1alpha1.AutonomicApp) []FieldError {
	return ValidateMerged(app, nil)
}

// ValidateMerged is ValidateApp for an app whose spec already holds the entries merged in
// from HealingPolicies and ClusterHealingPolicies; fromShared says which policies came
// from one (by name), and only those may name the component `"*"`.
func ValidateMerged(app *v1alpha1.AutonomicApp, fromShared func(policy string) bool) []FieldError {
	if app == nil {
		return nil
	}
	decl := DeclaredFor(app)
	_, errs := Compile(app.Spec.Symptoms, decl, "spec.symptoms")

	v := &appValidator{decl: decl, fromShared: fromShared}
	for _, s := range app.Spec.Symptoms {
		v.symptoms = append(v.symptoms, s.Name)
	}
	for _, p := range app.Spec.Policies {
		if p.Failover != nil {
			v.failovers = append(v.failovers, p.Name)
		}
	}
	for i, s := range app.Spec.Sensors {
		if s.Resource != nil {
			v.component(fmt.Sprintf("spec.sensors[%d].resource.component", i),
				fmt.Sprintf("sensor %q", s.Name), "a resource sensor", s.Resource.Component)
		}
		// The CRD refuses it too; an app stored before that rule, or merged from a
		// policy that was, is refused here.
		if s.Object != nil && s.Object.Ref.NamesSecret() {
			v.errs = append(v.errs, FieldError{Field: fmt.Sprintf("spec.sensors[%d].object.ref.kind", i),
				Message: fmt.Sprintf("sensor %q: %s", s.Name, v1alpha1.ObjectSensorSecretMessage)})
		}
	}
	for i, p := range app.Spec.Policies {
		v.policy(fmt.Sprintf("spec.policies[%d]", i), p)
	}
	return append(errs, v.errs...)
}

type appValidator struct {
	decl       Declared
	symptoms   []string
	failovers  []string
	errs       []FieldError
	fromShared func(policy string) bool
	// shared is true while checking a policy that came from a shared policy.
	shared bool
	// allowApp is true while checking a use that accepts a child-app component.
	allowApp bool
}

func (v *appValidator) policy(path string, p v1alpha1.Policy) {
	owner := fmt.Sprintf("policy %q", p.Name)
	v.shared = v.fromShared != nil && v.fromShared(p.Name)
	defer func() { v.shared = false }()
	if r := p.Remediate; r != nil {
		for j, name := range r.When {
			if slices.Contains(v.symptoms, name) {
				continue
			}
			v.errs = append(v.errs, FieldError{
				Field:   fmt.Sprintf("%s.remediate.when[%d]", path, j),
				Symptom: name,
				Message: fmt.Sprintf("%s: remediate.when names symptom %q, which is not a symptom of this app (%s)%s",
					owner, name, listOr("declared symptoms", "the app declares no symptoms", sortedCopy(v.symptoms)),
					suggest(name, v.symptoms)),
			})
		}
		for j, step := range r.Steps {
			v.action(fmt.Sprintf("%s.remediate.steps[%d].action", path, j), owner, step.Action)
		}
	}
	if a := p.Autoscale; a != nil {
		v.component(path+".autoscale.component", owner, "an autoscale policy", a.Component)
	}
	if f := p.Failover; f != nil {
		// A failover candidate may be a child app: traffic then goes to the pods of the
		// child's first workload component.
		v.allowApp = true
		for j, c := range f.Candidates {
			v.component(fmt.Sprintf("%s.failover.candidates[%d].component", path, j), owner, "a failover candidate", c.Component)
		}
		v.allowApp = false
	}
}

func (v *appValidator) action(path, owner string, a v1alpha1.Action) {
	switch {
	case a.RestartPods != nil:
		v.component(path+".restartPods.component", owner, "restartPods", a.RestartPods.Component)
	case a.RolloutRestart != nil:
		v.component(path+".rolloutRestart.component", owner, "rolloutRestart", a.RolloutRestart.Component)
	case a.Rollback != nil:
		v.component(path+".rollback.component", owner, "rollback", a.Rollback.Component)
	case a.Scale != nil:
		v.component(path+".scale.component", owner, "scale", a.Scale.Component)
	case a.CordonNode != nil:
		v.component(path+".cordonNode.component", owner, "cordonNode", a.CordonNode.Component)
	case a.DrainNode != nil:
		v.component(path+".drainNode.component", owner, "drainNode", a.DrainNode.Component)
	case a.Failover != nil:
		if !slices.Contains(v.failovers, a.Failover.Policy) {
			v.errs = append(v.errs, FieldError{Field: path + ".failover.policy", Message: fmt.Sprintf(
				"%s: failover names policy %q, which is not a failover policy of this app (%s)%s", owner, a.Failover.Policy,
				listOr("failover policies", "the app has none", sortedCopy(v.failovers)), suggest(a.Failover.Policy, v.failovers))})
		}
	}
}

// component checks that name is a workload component of the app. Every user of a
// component name acts on pods or a workload's replicas, which a child app has not.
func (v *appValidator) component(path, owner, user, name string) {
	workloads := v.workloads()
	var msg string
	kind, ok := v.decl.Components[name]
	switch {
	case name == wildcardComponent && v.shared && len(workloads) > 0:
		return
	case name == wildcardComponent && v.shared:
		msg = fmt.Sprintf(`%s: %s names component "*" (each workload component), but this app has no workload components`, owner, user)
	case name == wildcardComponent:
		msg = fmt.Sprintf(`%s: %s names component "*", which means every component and is allowed only in a HealingPolicy or ClusterHealingPolicy; name a component of this app (%s)`,
			owner, user, listOr("workload components", "the app has no workload components", workloads))
	case !ok:
		msg = fmt.Sprintf("%s: %s names component %q, which is not a component of this app (%s)%s",
			owner, user, name, listOr("declared components", "no components are declared", slices.Sorted(maps.Keys(v.decl.Components))),
			suggest(name, slices.Collect(maps.Keys(v.decl.Components))))
	case kind != Workload && v.allowApp:
		return
	case kind != Workload:
		msg = fmt.Sprintf("%s: %s names component %q, which is a child AutonomicApp; %s needs a workload component (%s)",
			owner, user, name, user, listOr("workload components", "the app has none", workloads))
	default:
		return
	}
	v.errs = append(v.errs, FieldError{Field: path, Message: msg})
}

func (v *appValidator) workloads() []string {
	var names []string
	for name, kind := range v.decl.Components {
		if kind == Workload {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}
