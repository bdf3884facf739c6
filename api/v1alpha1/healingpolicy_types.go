package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// HealingPolicySpec is healing written once and merged into every app it selects.
type HealingPolicySpec struct {
	// appSelector selects AutonomicApps by label. An empty selector selects every app in
	// scope.
	// +required
	AppSelector metav1.LabelSelector `json:"appSelector"`

	// priority orders policies that define the same name: higher wins. The app's own
	// entries always win. Default 0.
	// +optional
	// +kubebuilder:validation:Minimum=-1000
	// +kubebuilder:validation:Maximum=1000
	Priority int32 `json:"priority,omitempty"`

	Healing `json:",inline"`
}

// HealingPolicyStatus reports what a policy selects.
type HealingPolicyStatus struct {
	// observedGeneration is the generation this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// matchedApps counts the apps this policy selects.
	// +optional
	MatchedApps int32 `json:"matchedApps"`
	// conflicts name entries of this policy that lost to another on a name clash, as
	// `<namespace>/<app>: <kind> <name> taken from <source>`.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=512
	Conflicts []string `json:"conflicts,omitempty"`
	// conditions are Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// HealingPolicy holds sensors, symptoms, policies and guards that apply to the
// AutonomicApps of its namespace that its appSelector selects.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=hpol,categories=homeostat
// +kubebuilder:printcolumn:name="Priority",type=integer,JSONPath=`.spec.priority`
// +kubebuilder:printcolumn:name="Apps",type=integer,JSONPath=`.status.matchedApps`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type HealingPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec selects apps and holds the shared healing.
	// +required
	Spec HealingPolicySpec `json:"spec"`

	// status reports what the policy selects.
	// +optional
	Status HealingPolicyStatus `json:"status,omitempty"`
}

// HealingPolicyList is a list of HealingPolicies.
// +kubebuilder:object:root=true
type HealingPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []HealingPolicy `json:"items"`
}

// ClusterHealingPolicySpec is a HealingPolicySpec that also selects namespaces.
type ClusterHealingPolicySpec struct {
	// namespaceSelector selects the namespaces whose apps this policy may select. An
	// empty selector selects every namespace.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	HealingPolicySpec `json:",inline"`
}

// ClusterHealingPolicy holds sensors, symptoms, policies and guards that apply to the
// AutonomicApps its selectors select, in any namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=chpol,categories=homeostat
// +kubebuilder:printcolumn:name="Priority",type=integer,JSONPath=`.spec.priority`
// +kubebuilder:printcolumn:name="Apps",type=integer,JSONPath=`.status.matchedApps`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterHealingPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec selects namespaces and apps and holds the shared healing.
	// +required
	Spec ClusterHealingPolicySpec `json:"spec"`

	// status reports what the policy selects.
	// +optional
	Status HealingPolicyStatus `json:"status,omitempty"`
}

// ClusterHealingPolicyList is a list of ClusterHealingPolicies.
// +kubebuilder:object:root=true
type ClusterHealingPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterHealingPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&HealingPolicy{}, &HealingPolicyList{}, &ClusterHealingPolicy{}, &ClusterHealingPolicyList{})
}
