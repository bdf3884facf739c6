package monitor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	celtypes "github.com/google/cel-go/common/types"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// Limits of an object sensor's expression.
const (
	// ObjectExpressionMaxLength is the API's MaxLength of spec.sensors[].object.expression,
	// in code points; the parser rejects longer expressions.
	ObjectExpressionMaxLength = 4096
	// ObjectCostLimit bounds one evaluation, in CEL cost units: the per-call limit of
	// Kubernetes' CEL admission and CRD validation (about 0.1 s of CPU). An object can be
	// large (a ConfigMap holds up to 1 MiB), so the limit is what stops an expression
	// that walks it from running long.
	ObjectCostLimit = 1_000_000
)

// objectVar is the variable an object sensor's expression reads.
const objectVar = "object"

// objectEnv is the CEL environment of object sensors: the standard library, optional
// types (`object.?status.?replicas.orValue(0)`) and Kubernetes' numeric comparisons, with
// `object` the fetched object as a map. No string or list extension is included: an
// expression extracts a number, and without them no single call can allocate far beyond
// what the runtime cost limit charges for.
var objectEnv = sync.OnceValues(func() (*cel.Env, error) {
	e, err := cel.NewEnv(
		cel.Variable(objectVar, cel.MapType(cel.StringType, cel.DynType)),
		cel.HomogeneousAggregateLiterals(),
		cel.EagerlyValidateDeclarations(true),
		cel.DefaultUTCTimeZone(true),
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		cel.ParserExpressionSizeLimit(ObjectExpressionMaxLength),
	)
	if err != nil {
		return nil, fmt.Errorf("building the CEL environment for object sensors: %w", err)
	}
	return e, nil
})

// CompileObjectExpression compiles an object sensor's expression: it must parse, type
// check with `object` a map, and return a number (int, uint, double, or dyn, which is
// checked when it is evaluated). The program is safe for concurrent use.
func CompileObjectExpression(expr string) (cel.Program, error) {
	env, err := objectEnv()
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("the expression does not compile: %s", strings.TrimSpace(iss.Err().Error()))
	}
	switch t := ast.OutputType(); {
	case t.IsExactType(cel.IntType), t.IsExactType(cel.UintType), t.IsExactType(cel.DoubleType), t.IsExactType(cel.DynType):
	default:
		return nil, fmt.Errorf("the expression returns %s, not a number (convert it with double() or int())", t)
	}
	prg, err := env.Program(ast,
		cel.CostLimit(ObjectCostLimit),
		cel.InterruptCheckFrequency(100),
	)
	if err != nil {
		return nil, fmt.Errorf("the expression does not compile: %w", err)
	}
	return prg, nil
}

// EvalObjectExpression evaluates a compiled object expression, expr, over an object's
// content (an unstructured object's map) and returns its number. A result that is not a
// finite number is an error that says what type it was, and an error of the evaluation
// says what kind of error it was: neither ever quotes a value of the object.
func EvalObjectExpression(ctx context.Context, prg cel.Program, expr string, object map[string]any) (f float64, err error) {
	defer func() {
		// cel-go reports errors as values; this is a last line of defence, so that a
		// bug in a library function fails one sensor and not the poller. The panic's
		// value may hold the object's content: only its type is shown.
		if r := recover(); r != nil {
			f, err = 0, fmt.Errorf("evaluating the expression panicked (%T)", r)
		}
	}()
	val, _, err := prg.ContextEval(ctx, map[string]any{objectVar: object})
	if err != nil {
		return 0, errors.New("evaluating the expression failed: " + celEvalErrorText(expr, err))
	}
	switch v := val.(type) {
	case celtypes.Double:
		f = float64(v)
	case celtypes.Int:
		f = float64(v)
	case celtypes.Uint:
		f = float64(v)
	default:
		return 0, fmt.Errorf("the expression returned %s, not a number (convert it with double() or int())", celTypeNoun(val))
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("the expression returned %s; a sensor needs a finite number", strconv.FormatFloat(f, 'g', -1, 64))
	}
	return f, nil
}

// errSecret is the error of an object sensor that names a Secret. The reference is
// checked before anything is read, and at read time so is the resource the REST mapper
// maps its kind to.
var errSecret = errors.New(v1alpha1.ObjectSensorSecretMessage)

// objectProbe gets one object with a direct read (never the cache, so no informer starts
// for an arbitrary kind) and evaluates the expression over it. A namespaced kind is read
// in the app's namespace, always; a cluster-scoped kind only if the cluster admin lists it
// in the poller's ClusterKinds; a Secret never. The scope comes from the REST mapper.
// The operator's RBAC must allow get on the kind: ConfigMaps are allowed by the default
// role; for any other kind, add a rule with verb get to the manager's ClusterRole. A
// denied read says so in the sensor's error.
type objectProbe struct {
	p    *Poller
	ns   string
	ref  v1alpha1.ObjectReference
	gvk  schema.GroupVersionKind
	expr string
	prg  cel.Program
	what string // Kind "name", for messages
}

func newObjectProbe(p *Poller, ns string, spec *v1alpha1.ObjectSensor) probe {
	gv, err := schema.ParseGroupVersion(spec.Ref.APIVersion)
	if err != nil {
		return failingProbe{fmt.Errorf("apiVersion %q is not valid: %w", spec.Ref.APIVersion, err)}
	}
	gvk := gv.WithKind(spec.Ref.Kind)
	if v1alpha1.IsSecretKind(gvk.GroupKind()) {
		return failingProbe{errSecret}
	}
	prg, err := CompileObjectExpression(spec.Expression)
	if err != nil {
		return failingProbe{err}
	}
	return &objectProbe{p: p, ns: ns, ref: spec.Ref, gvk: gvk, expr: spec.Expression, prg: prg,
		what: fmt.Sprintf("%s %q", spec.Ref.Kind, spec.Ref.Name)}
}

func (*objectProbe) release() {}

func (op *objectProbe) read(ctx context.Context, _ types.NamespacedName, timeout time.Duration) (float64, *PodCounts, error) {
	if op.p.APIReader == nil {
		return 0, nil, errors.New("the poller has no API reader for object sensors")
	}
	key, err := op.key()
	if err != nil {
		return 0, nil, err
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(op.gvk)
	if err := op.p.APIReader.Get(ctx, key, u); err != nil {
		where := ""
		if key.Namespace != "" {
			where = " in namespace " + key.Namespace
		}
		switch {
		case apierrors.IsNotFound(err):
			return 0, nil, fmt.Errorf("%s not found%s", op.what, where)
		case apierrors.IsForbidden(err):
			return 0, nil, fmt.Errorf("reading %s is forbidden: the operator's RBAC must allow get on %s (%w)", op.what, op.gvk.GroupKind(), err)
		case meta.IsNoMatchError(err):
			return 0, nil, op.noKind()
		case timedOut(ctx, err):
			return 0, nil, fmt.Errorf("reading %s: no answer within %s", op.what, timeout)
		}
		return 0, nil, fmt.Errorf("reading %s: %w", op.what, err)
	}
	v, err := EvalObjectExpression(ctx, op.prg, op.expr, u.Object)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", op.what, err)
	}
	return v, nil, nil
}

// key is where the object is read: the app's namespace for a namespaced kind, none for
// a cluster-scoped kind the admin allows. A Secret, by any name the REST mapper knows
// it by, and a cluster-scoped kind the admin does not allow are refused.
func (op *objectProbe) key() (types.NamespacedName, error) {
	mapper := op.p.restMapper()
	if mapper == nil {
		return types.NamespacedName{}, errors.New("the poller has no REST mapper for object sensors")
	}
	mapping, err := mapper.RESTMapping(op.gvk.GroupKind(), op.gvk.Version)
	if err != nil {
		if meta.IsNoMatchError(err) {
			return types.NamespacedName{}, op.noKind()
		}
		return types.NamespacedName{}, fmt.Errorf("finding the kind of %s: %w", op.what, err)
	}
	if mapping.Resource.GroupResource() == (schema.GroupResource{Resource: "secrets"}) || v1alpha1.IsSecretKind(mapping.GroupVersionKind.GroupKind()) {
		return types.NamespacedName{}, errSecret
	}
	if mapping.Scope.Name() != meta.RESTScopeNameRoot {
		return types.NamespacedName{Namespace: op.ns, Name: op.ref.Name}, nil
	}
	gk := mapping.GroupVersionKind.GroupKind()
	if !slices.Contains(op.p.ClusterKinds, gk) {
		allowed := "none"
		if len(op.p.ClusterKinds) > 0 {
			names := make([]string, len(op.p.ClusterKinds))
			for i, k := range op.p.ClusterKinds {
				names[i] = k.String()
			}
			allowed = "only " + strings.Join(names, ", ")
		}
		return types.NamespacedName{}, fmt.Errorf("%s is cluster-scoped, and the cluster admin allows object sensors "+
			"to read %s of the cluster-scoped kinds (the manager's --object-sensor-cluster-kinds); read an object "+
			"of the app's namespace instead", gk, allowed)
	}
	return types.NamespacedName{Name: op.ref.Name}, nil
}

func (op *objectProbe) noKind() error {
	return fmt.Errorf("reading %s: the cluster serves no kind %s in %s", op.what, op.gvk.Kind, op.gvk.GroupVersion())
}
