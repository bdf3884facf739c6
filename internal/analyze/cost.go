package analyze

import (
	"github.com/google/cel-go/checker"
)

// StaticCostLimit bounds the estimated worst-case cost of an expression, checked when it
// is compiled, as the API server does for CRD validation rules (its
// StaticEstimatedCostLimit). The runtime CostLimit alone is not enough: cost is charged
// after a call returns, so one string function can allocate far more than the limit
// before the evaluation stops (`s.replace(”, t)` multiplies the size of s by that of t).
// The estimate rejects such expressions before they ever run.
const StaticCostLimit = 10 * CostLimit

// sizeEstimator tells the cost estimator how large the variables can be, from the API's
// bounds: at most 32 components with 12 fields each, 32 sensors, names of 63
// characters, and the Kubernetes limits on an object's name, namespace and labels. The
// number of labels is not bounded by Kubernetes; 64 is assumed, and the runtime
// CostLimit still bounds an app with more.
type sizeEstimator struct{}

func (sizeEstimator) EstimateSize(node checker.AstNode) *checker.SizeEstimate {
	path := node.Path()
	if len(path) == 0 {
		return nil
	}
	size := func(n uint64) *checker.SizeEstimate { return &checker.SizeEstimate{Min: 0, Max: n} }
	switch path[0] {
	case varComponents:
		switch len(path) {
		case 1: // the map of components
			return size(32)
		case 2:
			if path[1] == "@keys" { // a component's name
				return size(63)
			}
			return size(uint64(len(workloadFieldTypes))) // a component's map
		case 3: // a field: only phase is a string, and phases are short
			return size(32)
		}
	case varSensors:
		switch len(path) {
		case 1:
			return size(32)
		case 2:
			if path[1] == "@keys" {
				return size(63)
			}
		}
	case varApp:
		switch len(path) {
		case 1:
			return size(uint64(len(appFieldTypes)))
		case 2:
			switch path[1] {
			case "namespace":
				return size(63)
			case "labels":
				return size(64)
			case "@keys":
				return size(32)
			default: // the counts, and any other field: at most a name
				return size(253)
			}
		case 3:
			if path[1] == "labels" {
				if path[2] == "@keys" { // prefix/name
					return size(253 + 1 + 63)
				}
				return size(63) // a label value
			}
		}
	}
	return nil
}

func (sizeEstimator) EstimateCallCost(function, overloadID string, target *checker.AstNode, args []checker.AstNode) *checker.CallEstimate {
	return nil
}
