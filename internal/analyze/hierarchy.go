package analyze

import (
	"fmt"
	"strings"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// MaxDepth is how deep apps may nest through appRef components: an app, its children,
// their children, and so on, MaxDepth levels in all.
const MaxDepth = 5

// HierarchyError is a cycle or an over-deep nesting of apps.
type HierarchyError struct {
	// Reason is HierarchyCycle or HierarchyTooDeep.
	Reason string
	// Path is the chain of app names that shows it.
	Path []string
}

func (e *HierarchyError) Error() string {
	chain := strings.Join(e.Path, " -> ")
	if e.Reason == ReasonHierarchyCycle {
		return fmt.Sprintf("The apps form a cycle through appRef components (%s): an app cannot contain itself. Remove one of the appRefs.", chain)
	}
	return fmt.Sprintf("Apps nest %d levels deep through appRef components (%s), more than the limit of %d. Flatten the hierarchy.",
		len(e.Path), chain, MaxDepth)
}

// Hierarchy reasons.
const (
	ReasonHierarchyCycle   = "HierarchyCycle"
	ReasonHierarchyTooDeep = "HierarchyTooDeep"
)

// CheckHierarchy walks the appRef components below app (children in the same namespace,
// looked up by name; a child that does not exist ends its branch) and returns a cycle or a
// nesting deeper than MaxDepth, or nil. It reads only what lookup returns.
func CheckHierarchy(app *v1alpha1.AutonomicApp, lookup func(name string) *v1alpha1.AutonomicApp) *HierarchyError {
	return walk(app, []string{app.Name}, lookup)
}

func walk(app *v1alpha1.AutonomicApp, path []string, lookup func(string) *v1alpha1.AutonomicApp) *HierarchyError {
	for _, c := range app.Spec.Components {
		if c.AppRef == nil {
			continue
		}
		next := append(append([]string{}, path...), c.AppRef.Name)
		for _, seen := range path {
			if seen == c.AppRef.Name {
				return &HierarchyError{Reason: ReasonHierarchyCycle, Path: next}
			}
		}
		if len(next) > MaxDepth {
			return &HierarchyError{Reason: ReasonHierarchyTooDeep, Path: next}
		}
		child := lookup(c.AppRef.Name)
		if child == nil {
			continue
		}
		if err := walk(child, next, lookup); err != nil {
			return err
		}
	}
	return nil
}
