package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Annotations Homeostat reads and writes.
const (
	// PausedAnnotation on an AutonomicApp stops all actions while it is present, whatever
	// its value, as spec.mode Paused does.
	PausedAnnotation = "autonomic.homeostat.dev/paused"
	// ActionIDAnnotation is stamped by effectors on what they change, with the id of the
	// action record, so a retried action recognises its own earlier effect.
	ActionIDAnnotation = "autonomic.homeostat.dev/action-id"
	// FieldManager is the server-side apply field manager of every write Homeostat makes.
	FieldManager = "homeostat"
)

// Mode says whether an app's policies act.
// +kubebuilder:validation:Enum=Active;DryRun;Paused
type Mode string

const (
	// ModeActive decides and acts.
	ModeActive Mode = "Active"
	// ModeDryRun decides and records every decision, but never acts.
	ModeDryRun Mode = "DryRun"
	// ModePaused neither decides nor acts; sensors and symptoms are still reported.
	ModePaused Mode = "Paused"
)

// AutonomicAppSpec describes an application and how it heals itself.
// +kubebuilder:validation:XValidation:rule="!has(self.health) || !has(self.health.minHealthyComponents) || self.health.minHealthyComponents <= size(self.components)",message="health.minHealthyComponents must not exceed the number of components",fieldPath=".health.minHealthyComponents"
// +kubebuilder:validation:XValidation:rule="!has(self.policies) || self.policies.all(p, !has(p.autoscale) || self.components.exists(c, c.name == p.autoscale.component))",message="policies[].autoscale.component must name a component of spec.components",fieldPath=".policies"
// +kubebuilder:validation:XValidation:rule="!has(self.policies) || self.policies.all(p, !has(p.failover) || p.failover.candidates.all(f, self.components.exists(c, c.name == f.component)))",message="policies[].failover.candidates[].component must name a component of spec.components",fieldPath=".policies"
// +kubebuilder:validation:XValidation:rule="!has(self.sensors) || self.sensors.all(s, !has(s.resource) || self.components.exists(c, c.name == s.resource.component && has(c.workloadRef)))",message="sensors[].resource.component must name a workload component of spec.components",fieldPath=".sensors"
type AutonomicAppSpec struct {
	// mode is Active (default), DryRun (decide and record, never act) or Paused.
	// +optional
	// +kubebuilder:default=Active
	Mode Mode `json:"mode,omitempty"`

	// components are the parts of the application: workloads, or child AutonomicApps
	// that manage themselves and roll their health up into this one.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Components []Component `json:"components"`

	// health says when the app as a whole counts as healthy.
	// +optional
	Health *HealthSpec `json:"health,omitempty"`

	// serviceAccountName names a ServiceAccount of the app's namespace whose rights bound
	// what Homeostat reads and does for the app: every action, every object an object
	// sensor reads and the Secret of a webhook's headers is first authorized as that
	// ServiceAccount (a SubjectAccessReview), and a refused action is recorded as
	// Forbidden with the permission it lacks. A runJob's Job runs as it. Default: the
	// manager's --default-service-account; when neither is set, Homeostat acts with its
	// own rights. While the ServiceAccount does not exist, Ready is False
	// (ServiceAccountNotFound) and nothing acts.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	Healing `json:",inline"`
}

// Component is a workload or a child app. Exactly one of workloadRef, appRef.
// +kubebuilder:validation:XValidation:rule="[has(self.workloadRef), has(self.appRef)].filter(x, x).size() == 1",message="exactly one of workloadRef, appRef must be set"
type Component struct {
	// name identifies the component; symptoms read it as `components.<name>` (or
	// `components['<name>']` when it contains a dash).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// workloadRef names a Deployment, StatefulSet or ReplicaSet in the app's namespace.
	// +optional
	WorkloadRef *WorkloadReference `json:"workloadRef,omitempty"`

	// appRef names a child AutonomicApp in the app's namespace.
	// +optional
	AppRef *AppReference `json:"appRef,omitempty"`
}

// WorkloadReference names a workload in the app's namespace.
// +kubebuilder:validation:XValidation:rule="self.apiVersion == 'apps/v1' && self.kind in ['Deployment', 'StatefulSet', 'ReplicaSet']",message="workloadRef must be an apps/v1 Deployment, StatefulSet or ReplicaSet"
type WorkloadReference struct {
	// apiVersion of the workload: apps/v1.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	APIVersion string `json:"apiVersion"`

	// kind of the workload: Deployment, StatefulSet or ReplicaSet.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	Kind string `json:"kind"`

	// name of the workload.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// AppReference names a child AutonomicApp in the same namespace.
type AppReference struct {
	// name of the child AutonomicApp.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// HealthSpec is the app's health rollup.
type HealthSpec struct {
	// minHealthyComponents is the quorum: the app is healthy while at least this many
	// components are healthy. Default: all components.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=32
	MinHealthyComponents *int32 `json:"minHealthyComponents,omitempty"`
}

// Phase is the one-word summary of an app.
// +kubebuilder:validation:Enum=Healthy;Degraded;Remediating;NeedsAttention;Paused
type Phase string

const (
	PhaseHealthy        Phase = "Healthy"
	PhaseDegraded       Phase = "Degraded"
	PhaseRemediating    Phase = "Remediating"
	PhaseNeedsAttention Phase = "NeedsAttention"
	PhasePaused         Phase = "Paused"
)

// Condition types of an AutonomicApp.
const (
	// ConditionReady is True when the spec is understood and every component resolves.
	ConditionReady = "Ready"
	// ConditionHealthy is True when the health rollup holds.
	ConditionHealthy = "Healthy"
	// ConditionRemediating is True while a remediation episode is open.
	ConditionRemediating = "Remediating"
	// ConditionSensorsAvailable is False while any polled sensor is unavailable.
	ConditionSensorsAvailable = "SensorsAvailable"
	// ConditionNeedsAttention is True when a human is needed.
	ConditionNeedsAttention = "NeedsAttention"
	// ConditionSuspended is True while actions are held back app- or cluster-wide.
	ConditionSuspended = "Suspended"
	// ConditionStalled is present, True, while the app cannot make progress until its
	// spec is fixed (an invalid symptom, a hierarchy cycle): kstatus reads it as Failed, so
	// Flux and kpt stop waiting and report the reason. Absent otherwise.
	ConditionStalled = "Stalled"
	// ConditionReconciling is present, True, while the app waits for something to appear
	// (a component's workload not created yet): kstatus reads it as InProgress. Absent
	// otherwise.
	ConditionReconciling = "Reconciling"
	// ConditionOverridden is present, True, while an enforced ClusterHealingPolicy
	// replaces an entry of the app (or of a HealingPolicy that selects it), or tightens
	// one of its guards; its message says which, and by which policy. Absent otherwise.
	ConditionOverridden = "Overridden"
)

// ReasonEnforcedByClusterPolicy is the reason of the Overridden condition.
const ReasonEnforcedByClusterPolicy = "EnforcedByClusterPolicy"

// Condition reasons.
const (
	ReasonReconciled          = "Reconciled"
	ReasonInvalidSpec         = "InvalidSpec"
	ReasonComponentNotFound   = "ComponentNotFound"
	ReasonComponentsHealthy   = "ComponentsHealthy"
	ReasonComponentsUnhealthy = "ComponentsUnhealthy"
	ReasonEpisodeOpen         = "EpisodeOpen"
	ReasonNoEpisode           = "NoEpisode"
	ReasonSensorsAvailable    = "AllSensorsAvailable"
	ReasonSensorsUnavailable  = "SensorUnavailable"
	ReasonNoSensors           = "NoSensors"
	ReasonNotified            = "Notified"
	ReasonGaveUp              = "GaveUp"
	ReasonNothingNeeded       = "NothingNeeded"
	ReasonModePaused          = "ModePaused"
	ReasonPausedAnnotation    = "PausedAnnotation"
	ReasonDryRun              = "DryRun"
	ReasonStormDetected       = "StormDetected"
	ReasonActive              = "Active"
)

// ReasonServiceAccountNotFound is Ready's reason while the ServiceAccount the app acts as
// (spec.serviceAccountName, or the manager's --default-service-account) does not exist.
const ReasonServiceAccountNotFound = "ServiceAccountNotFound"

// AutonomicAppStatus is what the operator observed, decided and did.
type AutonomicAppStatus struct {
	// observedGeneration is the generation this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase summarises the app: Healthy, Degraded, Remediating, NeedsAttention or Paused.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// conditions are Ready, Healthy, Remediating, SensorsAvailable, NeedsAttention and
	// Suspended; Stalled and Reconciling for kstatus; and Overridden while an enforced
	// ClusterHealingPolicy replaces or tightens what the app asks for.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// components are the built-in sensors of each component.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Components []ComponentStatus `json:"components,omitempty"`

	// sensors are the last readings of the polled sensors.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Sensors []SensorStatus `json:"sensors,omitempty"`

	// symptoms are the symptoms' states.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Symptoms []SymptomStatus `json:"symptoms,omitempty"`

	// policies are the policies' states.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Policies []PolicyStatus `json:"policies,omitempty"`

	// lastAction is the most recent action record.
	// +optional
	LastAction *ActionRecord `json:"lastAction,omitempty"`

	// history is the ledger of recent action records, newest first, bounded. An intent
	// is recorded with result Pending before its effector runs.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=50
	History []ActionRecord `json:"history,omitempty"`
}

// ComponentStatus holds the built-in sensors of one component.
type ComponentStatus struct {
	// name of the component.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// kind is the workload kind, or AutonomicApp for a child app.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Kind string `json:"kind,omitempty"`
	// healthy is the component's health as this operator judges it.
	// +optional
	Healthy bool `json:"healthy"`
	// found is false when the workload or child app does not exist.
	// +optional
	Found bool `json:"found"`
	// desiredReplicas is the workload's spec.replicas.
	// +optional
	DesiredReplicas int32 `json:"desiredReplicas,omitempty"`
	// readyReplicas counts ready pods.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// availableReplicas counts pods available for minReadySeconds.
	// +optional
	AvailableReplicas int32 `json:"availableReplicas,omitempty"`
	// unavailableReplicas is desired minus available, never negative.
	// +optional
	UnavailableReplicas int32 `json:"unavailableReplicas,omitempty"`
	// restarts sums container restarts over the component's pods.
	// +optional
	Restarts int32 `json:"restarts,omitempty"`
	// crashLoopingPods counts pods with a container in CrashLoopBackOff.
	// +optional
	CrashLoopingPods int32 `json:"crashLoopingPods,omitempty"`
	// oomKilledPods counts pods with a container last terminated by OOMKilled.
	// +optional
	OOMKilledPods int32 `json:"oomKilledPods,omitempty"`
	// pendingPods counts pods in phase Pending.
	// +optional
	PendingPods int32 `json:"pendingPods,omitempty"`
	// rolloutStuck is true when the Deployment reports ProgressDeadlineExceeded.
	// +optional
	RolloutStuck bool `json:"rolloutStuck,omitempty"`
	// phase is a child app's phase.
	// +optional
	Phase Phase `json:"phase,omitempty"`
	// message explains an unhealthy or missing component.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// SensorStatus is the last reading of a polled sensor.
type SensorStatus struct {
	// name of the sensor.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// value is the last good reading, as a decimal string.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Value string `json:"value,omitempty"`
	// observedAt is when the value was read.
	// +optional
	ObservedAt *metav1.Time `json:"observedAt,omitempty"`
	// error says why the sensor is unavailable; empty while it is available.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Error string `json:"error,omitempty"`
	// consecutiveFailures counts failed polls since the last success.
	// +optional
	ConsecutiveFailures int32 `json:"consecutiveFailures,omitempty"`
	// source is where the sensor came from when a HealingPolicy or ClusterHealingPolicy
	// contributed it; empty for the app's own.
	// +optional
	// +kubebuilder:validation:MaxLength=320
	Source string `json:"source,omitempty"`
}

// SymptomStatus is the state of one symptom.
type SymptomStatus struct {
	// name of the symptom.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// active is true once the expression has held for `for`, until it has been false for
	// `clearFor`.
	// +optional
	Active bool `json:"active"`
	// since is when active last changed.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
	// pendingSince is when the expression started to disagree with active: to hold while
	// inactive (a `for` runs) or to fail while active (a `clearFor` runs).
	// +optional
	PendingSince *metav1.Time `json:"pendingSince,omitempty"`
	// holding is the expression's current value, before hysteresis.
	// +optional
	Holding bool `json:"holding,omitempty"`
	// message is an evaluation error, if any.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
	// source is where the symptom came from when a HealingPolicy or ClusterHealingPolicy
	// contributed it; empty for the app's own.
	// +optional
	// +kubebuilder:validation:MaxLength=320
	Source string `json:"source,omitempty"`
}

// PolicyState is where a policy is.
// +kubebuilder:validation:Enum=Idle;Waiting;Acting;Held;GaveUp;Conflict;Invalid
type PolicyState string

const (
	PolicyIdle     PolicyState = "Idle"
	PolicyWaiting  PolicyState = "Waiting"
	PolicyActing   PolicyState = "Acting"
	PolicyHeld     PolicyState = "Held"
	PolicyGaveUp   PolicyState = "GaveUp"
	PolicyConflict PolicyState = "Conflict"
	PolicyInvalid  PolicyState = "Invalid"
)

// PolicyStatus is the state of one policy.
type PolicyStatus struct {
	// name of the policy.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// source is where the policy came from: the app itself, or a HealingPolicy or
	// ClusterHealingPolicy that selects the app.
	// +optional
	// +kubebuilder:validation:MaxLength=320
	Source string `json:"source,omitempty"`
	// state is Idle, Waiting, Acting, Held, GaveUp, Conflict or Invalid.
	// +optional
	State PolicyState `json:"state,omitempty"`
	// step is the 1-based ladder step of the open episode.
	// +optional
	Step int32 `json:"step,omitempty"`
	// episodeStart is when the open episode began.
	// +optional
	EpisodeStart *metav1.Time `json:"episodeStart,omitempty"`
	// stepStart is when the current step acted; its timeout runs from here.
	// +optional
	StepStart *metav1.Time `json:"stepStart,omitempty"`
	// recentEpisodes are the start times of recent episodes, for giveUp.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1000
	RecentEpisodes []metav1.Time `json:"recentEpisodes,omitempty"`
	// verifyingSince is when the symptoms of the open episode cleared after its step
	// acted: the episode closes as healed once they have stayed clear for
	// remediate.verifyFor from here. Unset while they are active.
	// +optional
	VerifyingSince *metav1.Time `json:"verifyingSince,omitempty"`
	// lastAction is the id of the policy's last action record.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	LastAction string `json:"lastAction,omitempty"`
	// desiredReplicas is an autoscaler's last recommendation.
	// +optional
	DesiredReplicas *int32 `json:"desiredReplicas,omitempty"`
	// autoscale is an autoscale policy's last recommendation in detail: what each
	// metric asked for, and the bound or behavior rule that changed it.
	// +optional
	Autoscale *AutoscaleStatus `json:"autoscale,omitempty"`
	// heldUntil is, while a guard holds the policy's action (state Held), when that guard
	// may let it through: the cooldown's or rate limit's end. Unset when only a change of
	// what Homeostat observes can (a pause, a storm, too many unhealthy pods).
	// +optional
	HeldUntil *metav1.Time `json:"heldUntil,omitempty"`
	// primary is a failover policy's elected component.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Primary string `json:"primary,omitempty"`
	// reason is a CamelCase word for the state.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Reason string `json:"reason,omitempty"`
	// message is a sentence a person can act on.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// Autoscale limits: the rule that changed a recommendation.
const (
	// LimitTooManyReplicas: maxReplicas cut the recommendation.
	LimitTooManyReplicas = "TooManyReplicas"
	// LimitTooFewReplicas: minReplicas raised it.
	LimitTooFewReplicas = "TooFewReplicas"
	// LimitScaleUp: a behavior.scaleUp policy limited the step up.
	LimitScaleUp = "ScaleUpLimit"
	// LimitScaleDown: a behavior.scaleDown policy limited the step down.
	LimitScaleDown = "ScaleDownLimit"
	// LimitScaleUpStabilized: the scale-up stabilization window held it back.
	LimitScaleUpStabilized = "ScaleUpStabilized"
	// LimitScaleDownStabilized: the scale-down stabilization window held it back.
	LimitScaleDownStabilized = "ScaleDownStabilized"
)

// AutoscaleStatus is an autoscaler's last recommendation in detail.
type AutoscaleStatus struct {
	// currentReplicas are the workload's replicas the recommendation started from.
	// +required
	CurrentReplicas int32 `json:"currentReplicas"`
	// recommendedReplicas is what the metrics asked for before the behavior's windows
	// and rate policies and the bounds: the largest metric's replicas (0 when every
	// metric is idle).
	// +required
	RecommendedReplicas int32 `json:"recommendedReplicas"`
	// limitedBy names, in the order they apply, the rules that changed the
	// recommendation: ScaleUpStabilized or ScaleDownStabilized (a window), ScaleUpLimit or
	// ScaleDownLimit (a rate policy), TooManyReplicas or TooFewReplicas (a bound).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=3
	// +kubebuilder:validation:items:MaxLength=32
	LimitedBy []string `json:"limitedBy,omitempty"`
	// limitedUntil is when the window or rate period that holds the recommendation back
	// ends, so the autoscaler looks again although no reading changed.
	// +optional
	LimitedUntil *metav1.Time `json:"limitedUntil,omitempty"`
	// metrics are each metric's part, in the policy's order.
	// +optional
	// +listType=map
	// +listMapKey=sensor
	// +kubebuilder:validation:MaxItems=8
	Metrics []MetricRecommendation `json:"metrics,omitempty"`
}

// MetricState is how one metric of an autoscaler took part in its recommendation.
// +kubebuilder:validation:Enum=Active;Idle;Predicted;Unavailable;Fallback
type MetricState string

const (
	// MetricActive: the metric's reading recommends replicas.
	MetricActive MetricState = "Active"
	// MetricIdle: the reading is at or below the activation threshold.
	MetricIdle MetricState = "Idle"
	// MetricPredicted: a forecast above the reading recommends replicas.
	MetricPredicted MetricState = "Predicted"
	// MetricUnavailable: the sensor has no reading, or the metric cannot be computed.
	MetricUnavailable MetricState = "Unavailable"
	// MetricFallback: the sensor failed long enough for onSensorFailure Fallback.
	MetricFallback MetricState = "Fallback"
)

// MetricRecommendation is one metric's part in an autoscaler's recommendation.
type MetricRecommendation struct {
	// sensor is the metric's sensor.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Sensor string `json:"sensor"`
	// state is Active, Idle, Predicted, Unavailable or Fallback.
	// +required
	State MetricState `json:"state"`
	// value is the reading the metric used (the forecast when Predicted), as a decimal.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Value string `json:"value,omitempty"`
	// replicas is what the metric recommends; unset when it cannot say.
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
	// message says what the metric shows and asks for.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Message string `json:"message,omitempty"`
}

// ActionResult is what became of an action record's intent.
// +kubebuilder:validation:Enum=Pending;Succeeded;Failed;Skipped;Cancelled;Forbidden
type ActionResult string

const (
	// ResultPending marks an intent whose effector has not reported yet.
	ResultPending ActionResult = "Pending"
	// ResultSucceeded marks an effect that happened.
	ResultSucceeded ActionResult = "Succeeded"
	// ResultFailed marks an effect that was refused or errored.
	ResultFailed ActionResult = "Failed"
	// ResultSkipped marks a decision that was recorded but not carried out (DryRun).
	ResultSkipped ActionResult = "Skipped"
	// ResultCancelled marks an intent an earlier run recorded and did not finish, which a
	// guard (pause, DryRun, the storm breaker, a stale cache) held when it was resumed:
	// it was not carried on.
	ResultCancelled ActionResult = "Cancelled"
	// ResultForbidden marks an action refused by the tenant's rights or the admin's
	// policy before anything was changed.
	ResultForbidden ActionResult = "Forbidden"
)

// ActionOutcome says whether an action fixed what it was taken for.
// +kubebuilder:validation:Enum=Verified;Ineffective;Unknown
type ActionOutcome string

const (
	// OutcomeVerified: the symptoms that started the action cleared and stayed clear for
	// the verification window.
	OutcomeVerified ActionOutcome = "Verified"
	// OutcomeIneffective: the symptoms never cleared, or came back within the window.
	OutcomeIneffective ActionOutcome = "Ineffective"
	// OutcomeUnknown: the action cannot be judged: it changed nothing (failed, skipped,
	// cancelled, forbidden), or it was superseded before its window ended (the policy
	// changed, another action took over).
	OutcomeUnknown ActionOutcome = "Unknown"
)

// ActionRecord is one entry of the ledger.
type ActionRecord struct {
	// id is unique per action; effectors stamp it on what they change.
	// +required
	// +kubebuilder:validation:MaxLength=64
	ID string `json:"id"`
	// time is when the intent was recorded.
	// +required
	Time metav1.Time `json:"time"`
	// policy is the policy that acted.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Policy string `json:"policy,omitempty"`
	// step is the 1-based ladder step, for remediation.
	// +optional
	Step int32 `json:"step,omitempty"`
	// action is the action's kind, for example restartPods.
	// +required
	// +kubebuilder:validation:MaxLength=32
	Action string `json:"action"`
	// component is the component the action targeted; a shared policy's "*" is resolved
	// to one record per component.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Component string `json:"component,omitempty"`
	// target is what the action changes, for example Deployment/web.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Target string `json:"target,omitempty"`
	// objects are the objects the action changes, fixed when the intent is recorded (for
	// example the pods to evict), so a retry after a crash never picks new ones.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	Objects []string `json:"objects,omitempty"`
	// replicas is the absolute count a scale action sets, fixed with the intent.
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
	// failover says what a failover record changes, fixed with the intent: the phase of
	// the move, the policy, the candidate acted on and where traffic leaves, so a retry
	// after a crash makes the same change. Only records of action failover have it.
	// +optional
	Failover *FailoverRecord `json:"failover,omitempty"`
	// reason says why, in a sentence.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`
	// result is Pending, Succeeded, Failed, Skipped (DryRun), Cancelled (a resumed intent
	// a guard held) or Forbidden (refused by the tenant's rights or the admin's policy).
	// +required
	Result ActionResult `json:"result"`
	// outcome says whether the action fixed what it was taken for: Verified (the
	// symptoms cleared and stayed clear for the verification window), Ineffective (they
	// came back or never cleared) or Unknown (it changed nothing, or was superseded).
	// Unset until it is known.
	// +optional
	Outcome ActionOutcome `json:"outcome,omitempty"`
	// outcomeAt is when the outcome was judged.
	// +optional
	OutcomeAt *metav1.Time `json:"outcomeAt,omitempty"`
	// message is what the effector reported.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
	// dryRun is true when the app was in DryRun mode and nothing was changed.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`
	// detectedAt is when the change that triggered the action was observed.
	// +optional
	DetectedAt *metav1.Time `json:"detectedAt,omitempty"`
	// finishedAt is when the result was recorded.
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
}

// FailoverPhase is the change a failover record makes.
// +kubebuilder:validation:Enum=ScaleUpStandby;MoveTraffic;ScaleDownOldPrimary;ScaleDownStandby;Demote
type FailoverPhase string

const (
	// FailoverScaleUpStandby scales a standby at zero replicas up before traffic moves to it.
	FailoverScaleUpStandby FailoverPhase = "ScaleUpStandby"
	// FailoverMoveTraffic points the Service's selector at the candidate's pods.
	FailoverMoveTraffic FailoverPhase = "MoveTraffic"
	// FailoverScaleDownOldPrimary scales the candidate traffic left down to zero.
	FailoverScaleDownOldPrimary FailoverPhase = "ScaleDownOldPrimary"
	// FailoverScaleDownStandby scales a standby that a move no longer needs back to zero.
	FailoverScaleDownStandby FailoverPhase = "ScaleDownStandby"
	// FailoverDemote is a remediation ladder's failover action: it changes nothing in the
	// cluster, and the named policy treats its primary as failed while the ladder's
	// episode is open.
	FailoverDemote FailoverPhase = "Demote"
)

// FailoverRecord is what one failover record changes.
type FailoverRecord struct {
	// phase is the change: ScaleUpStandby, MoveTraffic, ScaleDownOldPrimary or
	// ScaleDownStandby for a failover policy's own change, Demote for a remediation
	// ladder's failover action.
	// +required
	Phase FailoverPhase `json:"phase"`
	// policy is the failover policy: the record's own policy for a change, the policy the
	// ladder's action names for Demote.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Policy string `json:"policy"`
	// component is the candidate the change acts on (the standby scaled up, the candidate
	// traffic moves to, the candidate scaled down), or for Demote the primary treated as
	// failed.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Component string `json:"component"`
	// from is the candidate traffic moves away from (MoveTraffic; empty when the Service
	// selected none).
	// +optional
	// +kubebuilder:validation:MaxLength=63
	From string `json:"from,omitempty"`
	// service is the Service whose selector the policy sets.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Service string `json:"service,omitempty"`
}

// AutonomicApp is an application that keeps itself healthy: its components, the sensors
// that watch it, the symptoms that judge it, and the policies that heal it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=aapp,categories=homeostat
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Healthy",type=string,JSONPath=`.status.conditions[?(@.type=="Healthy")].status`
// +kubebuilder:printcolumn:name="Last Action",type=string,JSONPath=`.status.lastAction.action`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AutonomicApp struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired application and its healing.
	// +required
	Spec AutonomicAppSpec `json:"spec"`

	// status is what the operator observed and did.
	// +optional
	Status AutonomicAppStatus `json:"status,omitempty"`
}

// AutonomicAppList is a list of AutonomicApps.
// +kubebuilder:object:root=true
type AutonomicAppList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AutonomicApp `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AutonomicApp{}, &AutonomicAppList{})
}
