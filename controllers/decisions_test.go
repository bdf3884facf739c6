package controllers

import (
	"testing"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func TestNewDecision(t *testing.T) {
	acting := func(reason, last string) v1alpha1.PolicyStatus {
		return v1alpha1.PolicyStatus{Name: "heal", State: v1alpha1.PolicyActing, Reason: reason, LastAction: last}
	}
	for _, tc := range []struct {
		name     string
		old, now v1alpha1.PolicyStatus
		want     bool
	}{
		{"first action of an episode", v1alpha1.PolicyStatus{Name: "heal", State: v1alpha1.PolicyIdle}, acting("CrashLooping", "a1"), true},
		{"the ladder escalates: same state and reason, a new action", acting("CrashLooping", "a1"), acting("CrashLooping", "a2"), true},
		{"nothing new: waiting out the step", acting("CrashLooping", "a1"), acting("CrashLooping", "a1"), false},
		{"held: the state changes, no action", acting("CrashLooping", "a1"),
			v1alpha1.PolicyStatus{Name: "heal", State: v1alpha1.PolicyHeld, Reason: "Cooldown", LastAction: "a1"}, true},
		{"still held", v1alpha1.PolicyStatus{State: v1alpha1.PolicyHeld, Reason: "Cooldown", LastAction: "a1"},
			v1alpha1.PolicyStatus{State: v1alpha1.PolicyHeld, Reason: "Cooldown", LastAction: "a1"}, false},
		{"healed", acting("CrashLooping", "a1"), v1alpha1.PolicyStatus{State: v1alpha1.PolicyIdle, Reason: "Healed", LastAction: "a1"}, true},
		{"a status without its last action (trimmed) is not a new one", acting("CrashLooping", "a1"), acting("CrashLooping", ""), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := newDecision(tc.old, tc.now); got != tc.want {
				t.Fatalf("newDecision(%+v, %+v) = %v, want %v", tc.old, tc.now, got, tc.want)
			}
		})
	}
}
