package analyze

import (
	"fmt"
	"strings"
	"testing"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func parent(name string, children ...string) *v1alpha1.AutonomicApp {
	a := &v1alpha1.AutonomicApp{}
	a.Name = name
	for _, c := range children {
		a.Spec.Components = append(a.Spec.Components, v1alpha1.Component{Name: c, AppRef: &v1alpha1.AppReference{Name: c}})
	}
	a.Spec.Components = append(a.Spec.Components, v1alpha1.Component{Name: "w", WorkloadRef: &v1alpha1.WorkloadReference{Name: "w"}})
	return a
}

func TestCheckHierarchy(t *testing.T) {
	chain := func(n int) map[string]*v1alpha1.AutonomicApp {
		m := map[string]*v1alpha1.AutonomicApp{}
		for i := range n {
			if i == n-1 {
				m[fmt.Sprint("a", i)] = parent(fmt.Sprint("a", i))
			} else {
				m[fmt.Sprint("a", i)] = parent(fmt.Sprint("a", i), fmt.Sprint("a", i+1))
			}
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		apps   map[string]*v1alpha1.AutonomicApp
		reason string
		path   string
	}{
		{name: "no children", apps: map[string]*v1alpha1.AutonomicApp{"a0": parent("a0")}},
		{name: "a missing child ends the branch", apps: map[string]*v1alpha1.AutonomicApp{"a0": parent("a0", "gone")}},
		{name: "a diamond is not a cycle", apps: map[string]*v1alpha1.AutonomicApp{
			"a0": parent("a0", "b", "c"), "b": parent("b", "d"), "c": parent("c", "d"), "d": parent("d")}},
		{name: "exactly the limit", apps: chain(MaxDepth)},
		{name: "one level too deep", apps: chain(MaxDepth + 1), reason: ReasonHierarchyTooDeep, path: "a0 -> a1 -> a2 -> a3 -> a4 -> a5"},
		{name: "an app naming itself", apps: map[string]*v1alpha1.AutonomicApp{"a0": parent("a0", "a0")}, reason: ReasonHierarchyCycle, path: "a0 -> a0"},
		{name: "a cycle below", apps: map[string]*v1alpha1.AutonomicApp{
			"a0": parent("a0", "b"), "b": parent("b", "c"), "c": parent("c", "b")}, reason: ReasonHierarchyCycle, path: "a0 -> b -> c -> b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckHierarchy(tc.apps["a0"], func(n string) *v1alpha1.AutonomicApp { return tc.apps[n] })
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("unexpected %v", err)
				}
				return
			}
			if err == nil || err.Reason != tc.reason || strings.Join(err.Path, " -> ") != tc.path {
				t.Fatalf("got %+v, want %s %s", err, tc.reason, tc.path)
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("message %q does not show the chain", err.Error())
			}
		})
	}
}
