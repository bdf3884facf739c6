package plan

import (
	"errors"
	"fmt"
	"math"
	"math/big"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// ScaleReplicas is the absolute count a scale action sets from the current count:
// replicas as given, current plus delta, or current times factor rounded up (computed
// exactly, so 10 × 1.1 is 11, not 12). The result is at least 0 and at most maxReplicas
// when that is set. The scale effector sets it, and a replay computes it the same way.
func ScaleReplicas(a *v1alpha1.ScaleAction, current int32) (int32, error) {
	var n int64
	switch {
	case a.Replicas != nil:
		n = int64(*a.Replicas)
	case a.Delta != nil:
		n = int64(current) + int64(*a.Delta)
	case a.Factor != nil:
		f, ok := new(big.Rat).SetString(*a.Factor)
		if !ok || f.Sign() <= 0 {
			return 0, fmt.Errorf("factor %q is not a positive decimal", *a.Factor)
		}
		p := new(big.Rat).Mul(f, new(big.Rat).SetInt64(int64(current)))
		q, r := new(big.Int).QuoRem(p.Num(), p.Denom(), new(big.Int))
		if r.Sign() > 0 {
			q.Add(q, big.NewInt(1))
		}
		if !q.IsInt64() || q.Int64() > math.MaxInt32 {
			n = math.MaxInt32
		} else {
			n = q.Int64()
		}
	default:
		return 0, errors.New("the scale action sets none of replicas, delta, factor")
	}
	n = max(n, 0)
	if a.MaxReplicas != nil {
		n = min(n, int64(*a.MaxReplicas))
	}
	return int32(min(n, math.MaxInt32)), nil
}
