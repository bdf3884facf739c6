package analyze

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/google/cel-go/common/types"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// Input is what symptom expressions read, gathered by the Monitor stage.
type Input struct {
	// Components maps each component's name to its built-in sensors, as ComponentVars
	// builds them.
	Components map[string]map[string]any
	// Sensors maps each available polled sensor to its value. An unavailable sensor is
	// absent, so `has(sensors.x)` is false.
	Sensors map[string]float64
	// App is the app's name, namespace, labels and component counts, as AppVars builds it.
	App map[string]any
}

// Evaluation is one symptom's raw value, before hysteresis.
type Evaluation struct {
	// Holding is the expression's value; false when Err is set.
	Holding bool
	// Err says why the expression could not be evaluated, for example a sensor read
	// without has() while it is unavailable.
	Err error
}

// Eval evaluates every compiled symptom over in and returns the result by symptom
// name. It never panics: an error of one expression is that symptom's Err.
func (c *Compiled) Eval(in Input) map[string]Evaluation {
	if c == nil {
		return map[string]Evaluation{}
	}
	vars := map[string]any{
		varComponents: nonNil(in.Components),
		varSensors:    nonNil(in.Sensors),
		varApp:        nonNil(in.App),
	}
	out := make(map[string]Evaluation, len(c.symptoms))
	for _, s := range c.symptoms {
		out[s.name] = s.prog.eval(vars, in.Sensors)
	}
	return out
}

func nonNil[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}

func (p *program) eval(vars map[string]any, sensors map[string]float64) (ev Evaluation) {
	defer func() {
		// cel-go reports errors as values; this is a last line of defence, so that a
		// bug in a library function fails one symptom and not the controller.
		if r := recover(); r != nil {
			ev = Evaluation{Err: fmt.Errorf("evaluating the expression panicked: %v", r)}
		}
	}()
	if p.prg == nil {
		return Evaluation{Err: errors.New("the expression did not compile: " + p.problem)}
	}
	// An error may quote what the expression read; everything a symptom reads (component
	// and sensor values, the app's name and labels) is in the app's own status and
	// metadata already, so CEL's message is kept: it names the missing key.
	val, _, err := p.prg.Eval(vars)
	if err != nil {
		return Evaluation{Err: fmt.Errorf("evaluating the expression failed: %w%s", err, p.unavailableHint(sensors))}
	}
	b, ok := val.(types.Bool)
	if !ok {
		// The type, never the value.
		return Evaluation{Err: fmt.Errorf("the expression returned a value of type %s, not a bool", val.Type().TypeName())}
	}
	return Evaluation{Holding: bool(b)}
}

// unavailableHint names the sensors the expression reads that are unavailable, the
// usual cause of a "no such key" error.
func (p *program) unavailableHint(sensors map[string]float64) string {
	var missing []string
	for _, r := range p.refs {
		if r.kind == refSensor {
			if _, ok := sensors[r.key]; !ok {
				missing = append(missing, r.key)
			}
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf(" (unavailable sensors: %s; guard a read with has(sensors.%s))",
		strings.Join(missing, ", "), missing[0])
}

// ComponentVars builds the map `components.<name>` of one component from its status.
// A workload has desiredReplicas, readyReplicas, availableReplicas, unavailableReplicas,
// restarts, crashLoopingPods, oomKilledPods, pendingPods (ints), readyRatio (a double:
// ready over desired, 1.0 when nothing is desired), rolloutStuck, healthy and found
// (bools). A child app (isApp) has healthy, phase and found.
func ComponentVars(s v1alpha1.ComponentStatus, isApp bool) map[string]any {
	if isApp {
		return map[string]any{
			"healthy": s.Healthy,
			"phase":   string(s.Phase),
			"found":   s.Found,
		}
	}
	ratio := 1.0
	if s.DesiredReplicas > 0 {
		ratio = float64(s.ReadyReplicas) / float64(s.DesiredReplicas)
	}
	return map[string]any{
		"desiredReplicas":     int64(s.DesiredReplicas),
		"readyReplicas":       int64(s.ReadyReplicas),
		"availableReplicas":   int64(s.AvailableReplicas),
		"unavailableReplicas": int64(s.UnavailableReplicas),
		"restarts":            int64(s.Restarts),
		"crashLoopingPods":    int64(s.CrashLoopingPods),
		"oomKilledPods":       int64(s.OOMKilledPods),
		"pendingPods":         int64(s.PendingPods),
		"readyRatio":          ratio,
		"rolloutStuck":        s.RolloutStuck,
		"healthy":             s.Healthy,
		"found":               s.Found,
	}
}

// AppVars builds the map `app`: name, namespace, labels, healthyComponents and
// totalComponents.
func AppVars(app *v1alpha1.AutonomicApp, healthyComponents, totalComponents int) map[string]any {
	labels := map[string]string{}
	if app != nil {
		maps.Copy(labels, app.Labels)
	}
	vars := map[string]any{
		"name":              "",
		"namespace":         "",
		"labels":            labels,
		"healthyComponents": int64(healthyComponents),
		"totalComponents":   int64(totalComponents),
	}
	if app != nil {
		vars["name"], vars["namespace"] = app.Name, app.Namespace
	}
	return vars
}

// ComponentNumbers is a component's sensors as numbers, as the manager exports them
// (homeostat_component_sensor): every field of ComponentVars, bools as 0 or 1, except a
// child app's phase, a string, exported apart. ComponentVarsFromNumbers reads them back.
func ComponentNumbers(s v1alpha1.ComponentStatus, isApp bool) map[string]float64 {
	out := map[string]float64{}
	for k, v := range ComponentVars(s, isApp) {
		switch x := v.(type) {
		case int64:
			out[k] = float64(x)
		case float64:
			out[k] = x
		case bool:
			out[k] = boolNumber(x)
		}
	}
	return out
}

// ComponentVarsFromNumbers rebuilds `components.<name>` from recorded numbers (the
// inverse of ComponentNumbers) and, for a child app, its phase. A field without a number
// reads as zero, or false.
func ComponentVarsFromNumbers(n map[string]float64, phase string, isApp bool) map[string]any {
	vars := ComponentVars(v1alpha1.ComponentStatus{}, isApp)
	for k, v := range vars {
		x, ok := n[k]
		if !ok {
			continue
		}
		switch v.(type) {
		case int64:
			vars[k] = int64(x)
		case float64:
			vars[k] = x
		case bool:
			vars[k] = x != 0
		}
	}
	if isApp {
		vars["phase"] = phase
	}
	if _, ok := n["readyRatio"]; !ok && !isApp {
		vars["readyRatio"] = 1.0
		if d := vars["desiredReplicas"].(int64); d > 0 {
			vars["readyRatio"] = float64(vars["readyReplicas"].(int64)) / float64(d)
		}
	}
	return vars
}

func boolNumber(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
