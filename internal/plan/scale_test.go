package plan

import (
	"testing"

	"k8s.io/utils/ptr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func TestScaleReplicas(t *testing.T) {
	tests := []struct {
		name    string
		action  v1alpha1.ScaleAction
		current int32
		want    int32
		wantErr bool
	}{
		{"replicas is absolute", v1alpha1.ScaleAction{Replicas: ptr.To[int32](7)}, 3, 7, false},
		{"replicas may be zero", v1alpha1.ScaleAction{Replicas: ptr.To[int32](0)}, 3, 0, false},
		{"delta adds", v1alpha1.ScaleAction{Delta: ptr.To[int32](2)}, 3, 5, false},
		{"a negative delta removes", v1alpha1.ScaleAction{Delta: ptr.To[int32](-2)}, 3, 1, false},
		{"a delta never goes below zero", v1alpha1.ScaleAction{Delta: ptr.To[int32](-5)}, 3, 0, false},
		{"factor rounds up", v1alpha1.ScaleAction{Factor: ptr.To("1.5")}, 3, 5, false},
		{"factor is exact: 10 × 1.1 is 11, not 12", v1alpha1.ScaleAction{Factor: ptr.To("1.1")}, 10, 11, false},
		{"a factor below 1 scales down, rounding up", v1alpha1.ScaleAction{Factor: ptr.To("0.5")}, 5, 3, false},
		{"a factor of zero replicas stays zero", v1alpha1.ScaleAction{Factor: ptr.To("2")}, 0, 0, false},
		{"maxReplicas caps a delta", v1alpha1.ScaleAction{Delta: ptr.To[int32](10), MaxReplicas: ptr.To[int32](6)}, 3, 6, false},
		{"maxReplicas caps a factor", v1alpha1.ScaleAction{Factor: ptr.To("4"), MaxReplicas: ptr.To[int32](10)}, 3, 10, false},
		{"maxReplicas caps an absolute count too", v1alpha1.ScaleAction{Replicas: ptr.To[int32](50), MaxReplicas: ptr.To[int32](10)}, 3, 10, false},
		{"a huge factor saturates instead of overflowing", v1alpha1.ScaleAction{Factor: ptr.To("99999999999")}, 1000, 2147483647, false},
		{"a delta near the limit saturates", v1alpha1.ScaleAction{Delta: ptr.To[int32](2147483647)}, 10, 2147483647, false},
		{"a factor that is not a number is an error", v1alpha1.ScaleAction{Factor: ptr.To("x")}, 3, 0, true},
		{"a zero factor is an error", v1alpha1.ScaleAction{Factor: ptr.To("0")}, 3, 0, true},
		{"no member is an error", v1alpha1.ScaleAction{}, 3, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ScaleReplicas(&tt.action, tt.current)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ScaleReplicas() = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
