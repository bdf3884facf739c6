package analyze

import (
	"fmt"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"
)

// Names of the variables a symptom expression reads.
const (
	varComponents = "components"
	varSensors    = "sensors"
	varApp        = "app"
)

// Limits of a symptom expression.
const (
	// MaxExpressionLength is the longest expression the parser accepts, in code points;
	// it matches the API's MaxLength of spec.symptoms[].expression.
	MaxExpressionLength = 4096
	// CostLimit bounds one evaluation of one expression, in CEL cost units. It is the
	// per-call limit of Kubernetes' CEL admission and CRD validation (about 0.1 s of
	// CPU), far above what any symptom over at most 32 components and 32 sensors needs.
	CostLimit = 1_000_000
)

// envOptions build the one CEL environment every symptom is compiled in. It follows
// the Kubernetes API server's base environment (k8s.io/apiserver/pkg/cel/environment),
// minus the Kubernetes-specific libraries (quantity, IP, CIDR, URL, authz, semver) that
// no symptom needs.
func envOptions() []cel.EnvOption {
	return []cel.EnvOption{
		// The variables. Component maps hold dyn values (ints, a double, bools, a string),
		// so a field's static type is dyn; sensors are doubles; app is a small map.
		cel.Variable(varComponents, cel.MapType(cel.StringType, cel.MapType(cel.StringType, cel.DynType))),
		cel.Variable(varSensors, cel.MapType(cel.StringType, cel.DoubleType)),
		cel.Variable(varApp, cel.MapType(cel.StringType, cel.DynType)),

		// As Kubernetes does.
		cel.HomogeneousAggregateLiterals(),
		cel.EagerlyValidateDeclarations(true),
		cel.DefaultUTCTimeZone(true),
		// `components.web.restarts > 0.5` and `sensors.cpu > 70` compare int with double.
		cel.CrossTypeNumericComparisons(true),
		// `sensors.?latency.orValue(0.0) > 0.3`.
		cel.OptionalTypes(),
		// Strings at version 5, the first with runtime cost tracking of every string
		// function (Kubernetes pins version 2 and tracks costs with its own estimator).
		ext.Strings(ext.StringsVersion(5)),
		ext.Sets(),
		ext.Lists(ext.ListsVersion(3), ext.ListsMaxRangeSize(1000)),
		// `components.all(name, c, c.crashLoopingPods == 0)`.
		ext.TwoVarComprehensions(),
		cel.ASTValidators(
			cel.ValidateDurationLiterals(),
			cel.ValidateTimestampLiterals(),
			cel.ValidateRegexLiterals(),
			cel.ValidateHomogeneousAggregateLiterals(),
		),
		cel.ParserExpressionSizeLimit(MaxExpressionLength),
		cel.CostEstimatorOptions(checker.PresenceTestHasCost(false)),
	}
}

// programOptions are the options of every symptom program.
func programOptions() []cel.ProgramOption {
	return []cel.ProgramOption{
		cel.CostLimit(CostLimit),
		cel.CostTrackerOptions(interpreter.PresenceTestHasCost(false)),
		// Compile constant regular expressions of matches() once, with the program.
		// OptOptimize is not used: it folds constant calls when the program is built,
		// outside the cost limit.
		cel.OptimizeRegex(interpreter.MatchesRegexOptimization),
	}
}

// env is the shared environment. A cel.Env is safe for concurrent use once built.
var env = sync.OnceValues(func() (*cel.Env, error) {
	e, err := cel.NewEnv(envOptions()...)
	if err != nil {
		return nil, fmt.Errorf("building the CEL environment for symptoms: %w", err)
	}
	return e, nil
})
