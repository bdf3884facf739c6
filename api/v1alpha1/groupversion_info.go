// Package v1alpha1 contains the Homeostat API: AutonomicApp, HealingPolicy and
// ClusterHealingPolicy in the autonomic.homeostat.dev group.
//
// The types, their markers and their CEL validation live here and nothing else: this
// package imports no controller code.
// +kubebuilder:object:generate=true
// +groupName=autonomic.homeostat.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "autonomic.homeostat.dev", Version: "v1alpha1"}

	// SchemeBuilder adds the Go types to a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this group-version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
