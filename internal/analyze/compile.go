package analyze

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// ComponentKind says which built-in sensors a component has.
type ComponentKind string

const (
	// Workload is a component with a workloadRef: a Deployment, StatefulSet or ReplicaSet.
	Workload ComponentKind = "Workload"
	// App is a component with an appRef: a child AutonomicApp.
	App ComponentKind = "App"
)

// The fields of a component's map, with their CEL types.
var (
	workloadFieldTypes = map[string]string{
		"desiredReplicas":     "int",
		"readyReplicas":       "int",
		"availableReplicas":   "int",
		"unavailableReplicas": "int",
		"restarts":            "int",
		"crashLoopingPods":    "int",
		"oomKilledPods":       "int",
		"pendingPods":         "int",
		"readyRatio":          "double",
		"rolloutStuck":        "bool",
		"healthy":             "bool",
		"found":               "bool",
	}
	appComponentFieldTypes = map[string]string{
		"healthy": "bool",
		"phase":   "string",
		"found":   "bool",
	}
	appFieldTypes = map[string]string{
		"name":              "string",
		"namespace":         "string",
		"labels":            "map(string, string)",
		"healthyComponents": "int",
		"totalComponents":   "int",
	}
)

func fieldTypes(k ComponentKind) map[string]string {
	if k == App {
		return appComponentFieldTypes
	}
	return workloadFieldTypes
}

// Declared is what symptom expressions of one app may name.
type Declared struct {
	// Components maps each component's name to its kind.
	Components map[string]ComponentKind
	// Sensors are the names of the polled sensors: the app's own and those merged in
	// from the healing policies that select it.
	Sensors []string
}

// DeclaredFor returns the components and sensors an app declares in its own spec. The
// caller adds the sensors of the healing policies that select the app.
func DeclaredFor(app *v1alpha1.AutonomicApp) Declared {
	d := Declared{Components: map[string]ComponentKind{}}
	if app == nil {
		return d
	}
	for _, c := range app.Spec.Components {
		kind := Workload
		if c.AppRef != nil {
			kind = App
		}
		d.Components[c.Name] = kind
	}
	for _, s := range app.Spec.Sensors {
		d.Sensors = append(d.Sensors, s.Name)
	}
	return d
}

// FieldError is an invalid field of a spec, with a message a user can act on. The
// admission webhook denies with it; the reconciler reports it in the Ready condition.
type FieldError struct {
	// Field is the path of the field, for example spec.symptoms[2].expression.
	Field string
	// Symptom names the symptom concerned, if any.
	Symptom string
	// Message says what is wrong, naming the symptom or policy.
	Message string
}

// Error returns "<field>: <message>".
func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// Compiled is the compiled symptoms of one app, ready to evaluate. It is immutable and
// safe for concurrent use.
type Compiled struct {
	symptoms []compiledSymptom
}

type compiledSymptom struct {
	name string
	prog *program
}

// Names returns the names of the symptoms that compiled, in spec order.
func (c *Compiled) Names() []string {
	if c == nil {
		return nil
	}
	names := make([]string, 0, len(c.symptoms))
	for _, s := range c.symptoms {
		names = append(names, s.name)
	}
	return names
}

// program is one compiled expression, shared by every symptom and app that uses the
// same text.
type program struct {
	prg cel.Program
	// refs are the constant names the expression reads.
	refs []reference
	// problem says why the expression is invalid whatever the app declares; "" when it
	// compiled. Failures are cached too, so an invalid app does not recompile on
	// every reconcile.
	problem string
}

// Compile type-checks each symptom against the components and sensors decl declares and
// compiles it. It returns the symptoms that compiled, in order, and one FieldError per
// problem of the others, at fieldPrefix[i].expression (fieldPrefix is, for example,
// "spec.symptoms"). A symptom is invalid when its expression does not compile, does not
// return a bool, may cost more than StaticCostLimit, or names with a constant key a
// component, component field, sensor or app field that does not exist; keys computed at
// run time are not checked.
//
// Compiled expressions are cached by their text alone: the program is the same for every
// app, and the names it reads are extracted once and checked against decl on each call.
// Compiling an unchanged app again costs a few map lookups, and an expression shared by
// many apps through a healing policy is compiled once.
func Compile(symptoms []v1alpha1.Symptom, decl Declared, fieldPrefix string) (*Compiled, []FieldError) {
	c := &Compiled{}
	var errs []FieldError
	for i, s := range symptoms {
		p := compileExpression(s.Expression)
		var problems []string
		if p.problem != "" {
			problems = []string{p.problem}
		} else {
			problems = decl.check(p.refs)
		}
		if len(problems) == 0 {
			c.symptoms = append(c.symptoms, compiledSymptom{name: s.Name, prog: p})
			continue
		}
		for _, problem := range problems {
			errs = append(errs, FieldError{
				Field:   fmt.Sprintf("%s[%d].expression", fieldPrefix, i),
				Symptom: s.Name,
				Message: fmt.Sprintf("symptom %q: %s", s.Name, problem),
			})
		}
	}
	return c, errs
}

// compileExpression returns the cached program of expr, compiling it on a miss.
func compileExpression(expr string) *program {
	if len(expr) > utf8.UTFMax*MaxExpressionLength {
		// Rejected by the parser's size limit; not worth a cache entry.
		compilations.Add(1)
		return buildProgram(expr)
	}
	if p, ok := programs.get(expr); ok {
		return p
	}
	compilations.Add(1)
	return programs.add(expr, buildProgram(expr))
}

func buildProgram(expr string) *program {
	e, err := env()
	if err != nil {
		return &program{problem: err.Error()}
	}
	checked, iss := e.Compile(expr)
	if iss.Err() != nil {
		return &program{problem: "expression does not compile: " + iss.Err().Error()}
	}
	native := checked.NativeRep()
	switch out := checked.OutputType(); out.Kind() {
	case types.BoolKind:
	case types.DynKind:
		// `components.web.healthy` is dyn to the checker; a known field of another
		// type is rejected here, anything else at evaluation.
		if t := staticFieldType(native.Expr()); t != "" && t != "bool" {
			return &program{problem: "expression must return a bool, but returns " + t}
		}
	default:
		return &program{problem: "expression must return a bool, but returns " + cel.FormatCELType(out)}
	}
	cost, err := e.EstimateCost(checked, sizeEstimator{})
	if err != nil {
		return &program{problem: "the cost of the expression cannot be estimated: " + err.Error()}
	}
	if cost.Max > StaticCostLimit {
		return &program{problem: fmt.Sprintf("expression is too expensive: its estimated worst-case cost %s exceeds the limit of %d; "+
			"iterate over fewer elements or nest fewer comprehensions and string functions", costString(cost.Max), StaticCostLimit)}
	}
	prg, err := e.Program(checked, programOptions()...)
	if err != nil {
		return &program{problem: "expression cannot be prepared for evaluation: " + err.Error()}
	}
	return &program{prg: prg, refs: referencesOf(native.Expr())}
}

func costString(c uint64) string {
	if c == math.MaxUint64 {
		return "is unbounded and"
	}
	return strconv.FormatUint(c, 10)
}

// check returns a problem for each reference that decl does not declare.
func (d Declared) check(refs []reference) []string {
	var problems []string
	for _, r := range refs {
		switch r.kind {
		case refComponent:
			if _, ok := d.Components[r.key]; !ok {
				problems = append(problems, fmt.Sprintf("unknown component %q (%s)%s",
					r.key, listOr("declared components", "no components are declared", slices.Sorted(maps.Keys(d.Components))),
					suggest(r.key, slices.Collect(maps.Keys(d.Components)))))
			}
		case refComponentField:
			kind, ok := d.Components[r.component]
			if !ok {
				continue // reported as an unknown component
			}
			fields := fieldTypes(kind)
			if _, ok := fields[r.key]; !ok {
				what := "a workload component"
				if kind == App {
					what = "a child-app component"
				}
				problems = append(problems, fmt.Sprintf("component %q has no field %q (fields of %s: %s)%s",
					r.component, r.key, what, strings.Join(slices.Sorted(maps.Keys(fields)), ", "),
					suggest(r.key, slices.Collect(maps.Keys(fields)))))
			}
		case refAnyComponentField:
			fields := d.anyComponentFields()
			if _, ok := fields[r.key]; !ok {
				problems = append(problems, fmt.Sprintf("no component has a field %q (component fields: %s)%s",
					r.key, strings.Join(slices.Sorted(maps.Keys(fields)), ", "),
					suggest(r.key, slices.Collect(maps.Keys(fields)))))
			}
		case refSensor:
			if !slices.Contains(d.Sensors, r.key) {
				problems = append(problems, fmt.Sprintf("unknown sensor %q (%s)%s",
					r.key, listOr("declared sensors", "no sensors are declared", sortedCopy(d.Sensors)),
					suggest(r.key, d.Sensors)))
			}
		case refAppField:
			if _, ok := appFieldTypes[r.key]; !ok {
				problems = append(problems, fmt.Sprintf("unknown app field %q (app fields: %s)%s",
					r.key, strings.Join(slices.Sorted(maps.Keys(appFieldTypes)), ", "),
					suggest(r.key, slices.Collect(maps.Keys(appFieldTypes)))))
			}
		}
	}
	return problems
}

// anyComponentFields is the union of the fields of the kinds of component declared.
func (d Declared) anyComponentFields() map[string]string {
	fields := map[string]string{}
	kinds := map[ComponentKind]bool{}
	for _, k := range d.Components {
		kinds[k] = true
	}
	if len(kinds) == 0 {
		kinds[Workload], kinds[App] = true, true
	}
	for k := range kinds {
		maps.Copy(fields, fieldTypes(k))
	}
	return fields
}

// listOr formats "label: a, b" or, for no names, none.
func listOr(label, none string, names []string) string {
	if len(names) == 0 {
		return none
	}
	return label + ": " + strings.Join(names, ", ")
}

// suggest returns `; did you mean "x"?` for the candidate closest to name, when it is
// at most two edits away (or differs only in case).
func suggest(name string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range slices.Sorted(slices.Values(candidates)) {
		d := editDistance(strings.ToLower(name), strings.ToLower(c))
		if d < bestDist && c != name {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func sortedCopy(s []string) []string {
	return slices.Sorted(slices.Values(s))
}
