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
	// overrides name, for a ClusterHealingPolicy with enforced entries or guards, what of
	// the apps it selects they replace or tighten, as `<namespace>/<app>: <kind> <name>
	// from <source> is replaced` or `<namespace>/<app>: guards.<field> <value> from
	// <source> is tightened to <value>`.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=512
	Overrides []string `json:"overrides,omitempty"`
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

// ClusterHealingPolicySpec is a HealingPolicySpec that also selects namespaces, and may
// enforce its entries and guards on the apps it selects.
// +kubebuilder:validation:XValidation:rule="!has(self.enforced) || !has(self.enforced.sensors) || self.enforced.sensors.all(n, has(self.sensors) && self.sensors.exists(s, s.name == n))",message="enforced.sensors must name sensors of this policy"
// +kubebuilder:validation:XValidation:rule="!has(self.enforced) || !has(self.enforced.symptoms) || self.enforced.symptoms.all(n, has(self.symptoms) && self.symptoms.exists(s, s.name == n))",message="enforced.symptoms must name symptoms of this policy"
// +kubebuilder:validation:XValidation:rule="!has(self.enforced) || !has(self.enforced.policies) || self.enforced.policies.all(n, has(self.policies) && self.policies.exists(p, p.name == n))",message="enforced.policies must name policies of this policy"
// +kubebuilder:validation:XValidation:rule="!has(self.enforced) || !has(self.enforced.guards) || self.enforced.guards.all(g, has(self.guards) && ((g == 'cooldown' && has(self.guards.cooldown)) || (g == 'maxActions' && has(self.guards.maxActions)) || (g == 'maxUnhealthyPods' && has(self.guards.maxUnhealthyPods))))",message="enforced.guards must name guards this policy sets in spec.guards"
type ClusterHealingPolicySpec struct {
	// namespaceSelector selects the namespaces whose apps this policy may select. An
	// empty selector selects every namespace.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// enforced names the entries and guards of this policy that the apps it selects
	// cannot override or loosen: a platform guardrail rather than a default. An enforced
	// entry replaces the app's own entry of the same name and any HealingPolicy's, and an
	// enforced guard is a bound the app's guards may only tighten. The app's status says
	// what was replaced (condition Overridden), and this policy's status.overrides lists
	// it. Entries not named here merge as defaults: the app's own win.
	// +optional
	Enforced *Enforcement `json:"enforced,omitempty"`

	HealingPolicySpec `json:",inline"`
}

// Enforcement names what of a ClusterHealingPolicy the apps it selects cannot change.
// When two enforced ClusterHealingPolicies define the same entry, the higher priority
// wins, then the name that sorts first.
type Enforcement struct {
	// sensors names sensors of this policy that replace a sensor of the same name in the
	// app or in a HealingPolicy.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=63
	Sensors []string `json:"sensors,omitempty"`

	// symptoms names symptoms of this policy that replace a symptom of the same name in
	// the app or in a HealingPolicy.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=63
	Symptoms []string `json:"symptoms,omitempty"`

	// policies names policies of this policy that replace a policy of the same name in
	// the app or in a HealingPolicy.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=63
	Policies []string `json:"policies,omitempty"`

	// guards names guards of this policy (set in spec.guards) that become bounds: the
	// app's cooldown is at least this policy's; its maxActions allows at most this
	// policy's count within at least this policy's window; its maxUnhealthyPods is at
	// most this policy's (a count and a percentage, which compare only against the pods
	// there are, must both hold). A stricter guard of the app stays.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=3
	Guards []EnforcedGuard `json:"guards,omitempty"`
}

// EnforcedGuard names a guard of an enforced ClusterHealingPolicy.
// +kubebuilder:validation:Enum=cooldown;maxActions;maxUnhealthyPods
type EnforcedGuard string

// The guards a ClusterHealingPolicy can enforce: the JSON names of the Guards fields.
const (
	GuardCooldown         EnforcedGuard = "cooldown"
	GuardMaxActions       EnforcedGuard = "maxActions"
	GuardMaxUnhealthyPods EnforcedGuard = "maxUnhealthyPods"
)

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
