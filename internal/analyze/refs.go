package analyze

import (
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
)

// refKind says what a constant name in an expression refers to.
type refKind int

const (
	// refComponent is `components.<key>`, `components['<key>']`, `has(components.<key>)`,
	// `components.?<key>`, `'<key>' in components`.
	refComponent refKind = iota
	// refComponentField is `components.<component>.<key>` (and the index, has() and
	// optional forms) with a constant component name.
	refComponentField
	// refAnyComponentField is a field read of a component whose name is not constant:
	// `components[c].<key>` in a comprehension, or `v.<key>` where v ranges over the
	// values of components (`components.all(name, v, ...)`).
	refAnyComponentField
	// refSensor is `sensors.<key>` and its forms.
	refSensor
	// refAppField is `app.<key>` and its forms.
	refAppField
)

// reference is one constant name an expression reads. References do not depend on what
// an app declares, so they are computed once per expression and cached with its program;
// checking them against a Declared is a loop.
type reference struct {
	kind      refKind
	component string // for refComponentField
	key       string
}

// binding is what a name bound by a comprehension stands for.
type binding int

const (
	// bindOpaque hides a variable of the same name: nothing is known about its value.
	bindOpaque binding = iota
	// bindComponentValue is a value of the components map.
	bindComponentValue
)

// scope maps the names bound by enclosing comprehensions.
type scope map[string]binding

func (s scope) with(names map[string]binding) scope {
	next := make(scope, len(s)+len(names))
	for k, v := range s {
		next[k] = v
	}
	for k, v := range names {
		next[k] = v
	}
	return next
}

// referencesOf walks a checked (or parsed) AST, with its macros expanded, and returns
// the constant names it reads from components, sensors and app, in source order,
// without duplicates. Dynamic keys (`components[c]`) are skipped, not rejected.
func referencesOf(e ast.Expr) []reference {
	w := &refWalker{seen: map[reference]bool{}}
	w.walk(e, scope{})
	return w.refs
}

type refWalker struct {
	refs []reference
	seen map[reference]bool
}

func (w *refWalker) add(r reference) {
	if !w.seen[r] {
		w.seen[r] = true
		w.refs = append(w.refs, r)
	}
}

func (w *refWalker) walk(e ast.Expr, sc scope) {
	if e == nil {
		return
	}
	switch e.Kind() {
	case ast.SelectKind:
		sel := e.AsSelect()
		w.access(sel.Operand(), sel.FieldName(), true, sc)
		w.walk(sel.Operand(), sc)
	case ast.CallKind:
		call := e.AsCall()
		args := call.Args()
		switch call.FunctionName() {
		case operators.Index, operators.OptIndex, operators.OptSelect:
			if len(args) == 2 {
				key, ok := stringLiteral(args[1])
				w.access(args[0], key, ok, sc)
			}
		case operators.In, operators.OldIn:
			// `'web' in components` tests a constant key as has() does.
			if len(args) == 2 {
				key, ok := stringLiteral(args[0])
				w.access(args[1], key, ok, sc)
			}
		}
		if call.IsMemberFunction() {
			w.walk(call.Target(), sc)
		}
		for _, a := range args {
			w.walk(a, sc)
		}
	case ast.ComprehensionKind:
		comp := e.AsComprehension()
		w.walk(comp.IterRange(), sc)
		w.walk(comp.AccuInit(), sc)
		bound := map[string]binding{comp.IterVar(): bindOpaque, comp.AccuVar(): bindOpaque}
		if comp.HasIterVar2() {
			bound[comp.IterVar2()] = bindOpaque
			// For a map, the second variable is the value: over components, a component.
			if isGlobal(comp.IterRange(), varComponents, sc) {
				bound[comp.IterVar2()] = bindComponentValue
			}
		}
		inner := sc.with(bound)
		w.walk(comp.LoopCondition(), inner)
		w.walk(comp.LoopStep(), inner)
		w.walk(comp.Result(), sc.with(map[string]binding{comp.AccuVar(): bindOpaque}))
	case ast.ListKind:
		for _, el := range e.AsList().Elements() {
			w.walk(el, sc)
		}
	case ast.MapKind:
		for _, en := range e.AsMap().Entries() {
			if en.Kind() == ast.MapEntryKind {
				w.walk(en.AsMapEntry().Key(), sc)
				w.walk(en.AsMapEntry().Value(), sc)
			}
		}
	case ast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			if f.Kind() == ast.StructFieldKind {
				w.walk(f.AsStructField().Value(), sc)
			}
		}
	}
}

// access records a read of key (when constant) from operand.
func (w *refWalker) access(operand ast.Expr, key string, constant bool, sc scope) {
	switch {
	case isGlobal(operand, varComponents, sc):
		if constant {
			w.add(reference{kind: refComponent, key: key})
		}
	case isGlobal(operand, varSensors, sc):
		if constant {
			w.add(reference{kind: refSensor, key: key})
		}
	case isGlobal(operand, varApp, sc):
		if constant {
			w.add(reference{kind: refAppField, key: key})
		}
	default:
		if !constant {
			return
		}
		if name, nameConstant, ok := componentAccess(operand, sc); ok {
			if nameConstant {
				w.add(reference{kind: refComponentField, component: name, key: key})
			} else {
				w.add(reference{kind: refAnyComponentField, key: key})
			}
		}
	}
}

// componentAccess reports whether e yields one component's map: `components.<name>`,
// `components[<expr>]` or a comprehension variable over the values of components. It
// returns the component's name when it is a constant.
func componentAccess(e ast.Expr, sc scope) (name string, constant, ok bool) {
	switch e.Kind() {
	case ast.IdentKind:
		if b, bound := sc[e.AsIdent()]; bound && b == bindComponentValue {
			return "", false, true
		}
	case ast.SelectKind:
		sel := e.AsSelect()
		if !sel.IsTestOnly() && isGlobal(sel.Operand(), varComponents, sc) {
			return sel.FieldName(), true, true
		}
	case ast.CallKind:
		call := e.AsCall()
		switch call.FunctionName() {
		case operators.Index, operators.OptIndex, operators.OptSelect:
		default:
			return "", false, false
		}
		if len(call.Args()) == 2 && isGlobal(call.Args()[0], varComponents, sc) {
			name, constant := stringLiteral(call.Args()[1])
			return name, constant, true
		}
	}
	return "", false, false
}

// isGlobal reports whether e is the identifier of the global variable name, not hidden
// by a comprehension variable of the same name.
func isGlobal(e ast.Expr, name string, sc scope) bool {
	if e == nil || e.Kind() != ast.IdentKind || e.AsIdent() != name {
		return false
	}
	_, shadowed := sc[name]
	return !shadowed
}

func stringLiteral(e ast.Expr) (string, bool) {
	if e == nil || e.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

// staticFieldType returns the type name of a top-level read of a known field
// (`components.web.restarts` is an int), or "" when e is no such read. The checker
// types those reads dyn; this lets Compile reject `components.web.restarts` as a
// symptom that does not return a bool.
func staticFieldType(e ast.Expr) string {
	var operand ast.Expr
	var key string
	switch e.Kind() {
	case ast.SelectKind:
		if e.AsSelect().IsTestOnly() {
			return ""
		}
		operand, key = e.AsSelect().Operand(), e.AsSelect().FieldName()
	case ast.CallKind:
		call := e.AsCall()
		if call.FunctionName() != operators.Index || len(call.Args()) != 2 {
			return ""
		}
		k, ok := stringLiteral(call.Args()[1])
		if !ok {
			return ""
		}
		operand, key = call.Args()[0], k
	default:
		return ""
	}
	if isGlobal(operand, varApp, scope{}) {
		return appFieldTypes[key]
	}
	if _, _, ok := componentAccess(operand, scope{}); ok {
		if t, known := workloadFieldTypes[key]; known {
			return t
		}
		return appComponentFieldTypes[key]
	}
	return ""
}

// Reads lists what an expression reads by name, in source order: its sensors, and its
// component fields as "component.field" (a field of a component named in a
// comprehension is left out). An expression that does not compile reads nothing.
func Reads(expr string) (sensors, componentFields []string) {
	for _, r := range compileExpression(expr).refs {
		switch r.kind {
		case refSensor:
			sensors = append(sensors, r.key)
		case refComponentField:
			componentFields = append(componentFields, r.component+"."+r.key)
		}
	}
	return sensors, componentFields
}
