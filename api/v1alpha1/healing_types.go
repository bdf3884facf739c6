package v1alpha1

import (
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Healing is what an AutonomicApp, a HealingPolicy and a ClusterHealingPolicy share:
// polled sensors, symptoms over them, the policies that act on symptoms, and guards.
type Healing struct {
	// sensors are polled external signals (Prometheus, resource metrics, HTTP probes,
	// fields of other objects). Each becomes `sensors.<name>` (a double) in symptom
	// expressions while it is available. Component sensors need no entry here: they are
	// built in and event-driven.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Sensors []Sensor `json:"sensors,omitempty"`

	// symptoms are named CEL conditions over `components`, `sensors` and `app`
	// (the Analyze stage). A symptom is active once its expression has held for `for`.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Symptoms []Symptom `json:"symptoms,omitempty"`

	// policies decide and act (the Plan and Execute stages): a remediation ladder, an
	// autoscaler, or a failover. Each sets exactly one of remediate, autoscale, failover.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Policies []Policy `json:"policies,omitempty"`

	// guards hold actions back when acting could make an outage worse. They are checked
	// before every action.
	// +optional
	Guards *Guards `json:"guards,omitempty"`
}

// Sensor is a polled signal. Exactly one of prometheus, resource, http, object is set.
// +kubebuilder:validation:XValidation:rule="[has(self.prometheus), has(self.resource), has(self.http), has(self.object)].filter(x, x).size() == 1",message="exactly one of prometheus, resource, http, object must be set"
type Sensor struct {
	// name is the sensor's CEL identifier: symptoms read it as `sensors.<name>`.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-zA-Z_][a-zA-Z0-9_]*$`
	Name string `json:"name"`

	// interval is how often the sensor is polled. Default 15s, minimum 1s.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="interval must be at least 1s"
	Interval *metav1.Duration `json:"interval,omitempty"`

	// timeout bounds one poll. Default: the interval, at most 10s.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="timeout must be positive"
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// prometheus evaluates a PromQL query that returns a scalar or a one-sample vector.
	// +optional
	Prometheus *PrometheusSensor `json:"prometheus,omitempty"`

	// resource reads a component's CPU or memory utilization, as a percentage of the
	// pods' requests averaged over ready pods, from metrics.k8s.io (the HPA's semantics).
	// +optional
	Resource *ResourceSensor `json:"resource,omitempty"`

	// http probes a URL; the value is the response latency in seconds. A failing status
	// makes the sensor unavailable.
	// +optional
	HTTP *HTTPSensor `json:"http,omitempty"`

	// object fetches one object and evaluates a CEL expression over it to a number.
	// +optional
	Object *ObjectSensor `json:"object,omitempty"`
}

// PrometheusSensor queries a Prometheus server.
type PrometheusSensor struct {
	// address is the Prometheus base URL, for example http://prometheus.monitoring:9090.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'http' || url(self).getScheme() == 'https')",message="address must be an http or https URL"
	Address string `json:"address"`

	// query is a PromQL expression that evaluates to a scalar or a vector of one sample.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Query string `json:"query"`
}

// ResourceName is a compute resource a resource sensor reads.
// +kubebuilder:validation:Enum=cpu;memory
type ResourceName string

const (
	ResourceCPU    ResourceName = "cpu"
	ResourceMemory ResourceName = "memory"
)

// ResourceSensor reads resource utilization of a component's pods from metrics.k8s.io.
type ResourceSensor struct {
	// component names the component whose pods are measured (`"*"` is not allowed here).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Component string `json:"component"`

	// resource is cpu or memory.
	// +required
	Resource ResourceName `json:"resource"`
}

// HTTPSensor probes an HTTP endpoint.
type HTTPSensor struct {
	// url is the address probed with GET.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'http' || url(self).getScheme() == 'https')",message="url must be an http or https URL"
	URL string `json:"url"`

	// timeout bounds the request. Default 1s.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="timeout must be positive"
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// expectedStatus lists the status codes that count as success. Default: 200-399.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Minimum=100
	// +kubebuilder:validation:items:Maximum=599
	ExpectedStatus []int32 `json:"expectedStatus,omitempty"`
}

// ObjectReference names an object in the app's namespace (or, for a cluster-scoped kind,
// in the cluster). It has no namespace: an app reads nothing of another namespace.
type ObjectReference struct {
	// apiVersion of the object, for example v1 or apps/v1.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	APIVersion string `json:"apiVersion"`

	// kind of the object, for example ConfigMap.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Kind string `json:"kind"`

	// name of the object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// NamesSecret says whether the reference names a Secret of the core group, in any letter
// case: object sensors never read one.
func (r ObjectReference) NamesSecret() bool {
	gv, err := schema.ParseGroupVersion(r.APIVersion)
	return err == nil && IsSecretKind(gv.WithKind(r.Kind).GroupKind())
}

// ObjectSensorSecretMessage is why an object sensor may not name a Secret, as the
// validation of ObjectSensor (its CEL rule, the webhook, the reconciler) and the sensor
// itself say it.
const ObjectSensorSecretMessage = "object sensors never read Secrets: the sensor's value and errors are in the app's status, " +
	"so anyone who can read the app would read the Secret; put the number in a ConfigMap, or export it as a metric " +
	"and read it with a prometheus sensor"

// IsSecretKind says whether gk is the core group's Secret, in any letter case.
func IsSecretKind(gk schema.GroupKind) bool {
	return gk.Group == "" && strings.EqualFold(gk.Kind, "Secret")
}

// ObjectSensor reads a number out of an object.
// +kubebuilder:validation:XValidation:rule="!(self.ref.kind.lowerAscii() == 'secret' && (!self.ref.apiVersion.contains('/') || self.ref.apiVersion.startsWith('/')))",fieldPath=".ref.kind",message="object sensors never read Secrets: the sensor's value and errors are in the app's status, so anyone who can read the app would read the Secret; put the number in a ConfigMap, or export it as a metric and read it with a prometheus sensor"
type ObjectSensor struct {
	// ref names the object. A namespaced kind is read in the app's own namespace, always;
	// a cluster-scoped kind only if the cluster admin lists it in the manager's
	// --object-sensor-cluster-kinds; a Secret never.
	// +required
	Ref ObjectReference `json:"ref"`

	// expression is CEL over `object` that returns a number, for example
	// `double(object.data.depth)`.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Expression string `json:"expression"`
}

// Symptom is a named condition of the app (the Analyze stage).
type Symptom struct {
	// name identifies the symptom; policies list it in `when`.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-zA-Z][a-zA-Z0-9_]*$`
	Name string `json:"name"`

	// expression is CEL that returns a bool. It reads `components.<name>.<sensor>`
	// (for example `components.web.crashLoopingPods > 0`), `sensors.<name>` (absent while
	// unavailable: guard with `has(sensors.x)`), and `app` (`app.name`, `app.namespace`).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Expression string `json:"expression"`

	// for is how long the expression must hold before the symptom becomes active.
	// Default 0s: active at once.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	For *metav1.Duration `json:"for,omitempty"`

	// clearFor is how long the expression must be false before an active symptom clears.
	// Default 0s: clears at once.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	ClearFor *metav1.Duration `json:"clearFor,omitempty"`
}

// Policy decides and acts. Exactly one of remediate, autoscale, failover is set.
// +kubebuilder:validation:XValidation:rule="[has(self.remediate), has(self.autoscale), has(self.failover)].filter(x, x).size() == 1",message="exactly one of remediate, autoscale, failover must be set"
type Policy struct {
	// name identifies the policy in status, history, Events and metrics.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// remediate runs an escalation ladder while any of its symptoms is active.
	// +optional
	Remediate *RemediatePolicy `json:"remediate,omitempty"`

	// autoscale sets a component's replicas from sensors, like the HPA but event-driven.
	// +optional
	Autoscale *AutoscalePolicy `json:"autoscale,omitempty"`

	// failover points a Service at the elected primary among candidate components.
	// +optional
	Failover *FailoverPolicy `json:"failover,omitempty"`
}

// RemediatePolicy is an escalation ladder. An episode starts when any symptom in `when`
// becomes active; step 1 acts, and if the symptoms have not cleared after the step's
// timeout the next step acts, until the ladder runs out.
type RemediatePolicy struct {
	// when lists the symptoms that start an episode; any one active is enough.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=63
	When []string `json:"when"`

	// steps is the ladder, tried in order.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	Steps []RemediationStep `json:"steps"`

	// giveUp stops the policy after this many episodes within a window: the app goes to
	// NeedsAttention and the policy takes no more actions until the window has passed or
	// the app's spec changes. Each episode counts once, however often its symptoms flicker.
	// +optional
	GiveUp *GiveUp `json:"giveUp,omitempty"`

	// verifyFor is how long the symptoms that started an episode must stay clear after a
	// step acted for the action to count as a fix (outcome Verified) and the episode to
	// close. A symptom that comes back within it continues the same episode, and the
	// ladder escalates at the step's timeout. Default: the timeout of the step that acted.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="verifyFor must not be negative"
	VerifyFor *metav1.Duration `json:"verifyFor,omitempty"`
}

// RemediationStep is one rung of a ladder.
type RemediationStep struct {
	// action is what this step does.
	// +required
	Action Action `json:"action"`

	// timeout is how long to wait for the symptoms to clear before escalating to the next
	// step. Default 1m.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="timeout must be positive"
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// GiveUp bounds how often a ladder is retried.
type GiveUp struct {
	// episodes is how many episodes may start within the window.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Episodes int32 `json:"episodes"`

	// within is the window.
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="within must be positive"
	Within metav1.Duration `json:"within"`
}

// Action is one effector call. Exactly one member is set.
// +kubebuilder:validation:XValidation:rule="[has(self.restartPods), has(self.rolloutRestart), has(self.rollback), has(self.scale), has(self.failover), has(self.cordonNode), has(self.drainNode), has(self.runJob), has(self.webhook), has(self.notify)].filter(x, x).size() == 1",message="exactly one of restartPods, rolloutRestart, rollback, scale, failover, cordonNode, drainNode, runJob, webhook, notify must be set"
type Action struct {
	// restartPods evicts pods of a component through the eviction API, so
	// PodDisruptionBudgets are respected; the workload recreates them.
	// +optional
	RestartPods *RestartPodsAction `json:"restartPods,omitempty"`

	// rolloutRestart restarts a workload the way `kubectl rollout restart` does.
	// +optional
	RolloutRestart *ComponentAction `json:"rolloutRestart,omitempty"`

	// rollback returns a Deployment or a StatefulSet to its previous revision, as
	// `kubectl rollout undo` does. For a StatefulSet it then deletes the pods on another
	// revision that are not ready, which would otherwise hold the rollout.
	// +optional
	Rollback *ComponentAction `json:"rollback,omitempty"`

	// scale sets replicas through the /scale subresource.
	// +optional
	Scale *ScaleAction `json:"scale,omitempty"`

	// failover runs a failover policy of this app now.
	// +optional
	Failover *FailoverAction `json:"failover,omitempty"`

	// cordonNode cordons the nodes that host the component's unhealthy pods.
	// +optional
	CordonNode *NodeAction `json:"cordonNode,omitempty"`

	// drainNode cordons and drains the nodes that host the component's unhealthy pods.
	// +optional
	DrainNode *NodeAction `json:"drainNode,omitempty"`

	// runJob creates a Job from a template, owned by the app, and waits for its outcome.
	// +optional
	RunJob *RunJobAction `json:"runJob,omitempty"`

	// webhook POSTs the action record to a URL.
	// +optional
	Webhook *WebhookAction `json:"webhook,omitempty"`

	// notify records an Event and sets NeedsAttention: a human is needed.
	// +optional
	Notify *NotifyAction `json:"notify,omitempty"`
}

// PodSelection says which pods of a component an action takes.
// +kubebuilder:validation:Enum=Unhealthy;All
type PodSelection string

const (
	// PodsUnhealthy takes pods that are not ready, crash-looping, OOM-killed or pending.
	PodsUnhealthy PodSelection = "Unhealthy"
	// PodsAll takes every pod of the component.
	PodsAll PodSelection = "All"
)

// ComponentAction acts on one component's workload.
type ComponentAction struct {
	// component names a component of the app, or `"*"` in a shared policy for each one.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Component string `json:"component"`
}

// RestartPodsAction evicts pods.
type RestartPodsAction struct {
	// component names a component of the app, or `"*"` in a shared policy for each one.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Component string `json:"component"`

	// pods is Unhealthy (default) or All.
	// +optional
	// +kubebuilder:default=Unhealthy
	Pods PodSelection `json:"pods,omitempty"`
}

// ScaleAction changes a component's replicas. Exactly one of replicas, delta, factor.
// +kubebuilder:validation:XValidation:rule="[has(self.replicas), has(self.delta), has(self.factor)].filter(x, x).size() == 1",message="exactly one of replicas, delta, factor must be set"
type ScaleAction struct {
	// component names a component of the app, or `"*"` in a shared policy for each one.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Component string `json:"component"`

	// replicas sets an absolute count.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Replicas *int32 `json:"replicas,omitempty"`

	// delta adds (or, negative, removes) replicas.
	// +optional
	Delta *int32 `json:"delta,omitempty"`

	// factor multiplies the current replicas, rounding up, for example "1.5".
	// +optional
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]+)?$`
	// +kubebuilder:validation:XValidation:rule="double(self) > 0.0",message="factor must be positive"
	Factor *string `json:"factor,omitempty"`

	// maxReplicas caps the result of delta or factor. Default: no cap beyond the
	// autoscale policy's maxReplicas of the same component, if any.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxReplicas *int32 `json:"maxReplicas,omitempty"`
}

// FailoverAction runs a failover policy now.
type FailoverAction struct {
	// policy names a failover policy of this app.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Policy string `json:"policy"`
}

// NodeAction cordons or drains the nodes of a component's unhealthy pods.
type NodeAction struct {
	// component names a component of the app, or `"*"` in a shared policy for each one.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Component string `json:"component"`

	// maxNodes is how many nodes may be cordoned or drained by this app at once. Default 1.
	// The cluster admin's --max-nodes-per-action caps it.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxNodes int32 `json:"maxNodes,omitempty"`

	// maxUnavailableNodes stops the action when this share of the cluster's nodes is
	// already NotReady or cordoned. Default 10%. The cluster admin's
	// --max-unavailable-nodes caps it.
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:Pattern=`^(100|[1-9]?[0-9])%$`
	// +kubebuilder:validation:XValidation:rule="self >= 0 || self.endsWith('%')",message="maxUnavailableNodes must be a count >= 0 or a percentage from 0% to 100%"
	MaxUnavailableNodes *intstr.IntOrString `json:"maxUnavailableNodes,omitempty"`

	// timeout bounds a drain; pods still not evicted then are reported. Default 5m.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="timeout must be positive"
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// RunJobAction creates a Job.
type RunJobAction struct {
	// template is a batch/v1 JobTemplateSpec (metadata and spec). It is validated by the
	// API server when the Job is created; an invalid template fails the action with the
	// server's message. When the app acts as a ServiceAccount (spec.serviceAccountName),
	// the Job's pods run as it: a template that names another ServiceAccount is
	// Forbidden.
	// +required
	// +kubebuilder:validation:Type=object
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	Template apiextensionsv1.JSON `json:"template"`

	// timeout is how long to wait for the Job to finish. Default 10m.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="timeout must be positive"
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// WebhookAction POSTs the action record as JSON.
// +kubebuilder:validation:XValidation:rule="!isURL(self.url) || url(self.url).getScheme() == 'https' || (has(self.allowInsecure) && self.allowInsecure)",message="url must use https; set allowInsecure: true to send to an http URL"
type WebhookAction struct {
	// url receives the POST. It must be https unless allowInsecure is set.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'https' || url(self).getScheme() == 'http')",message="url must be an https (or, with allowInsecure, http) URL"
	URL string `json:"url"`

	// allowInsecure permits an http URL. TLS is always verified for https.
	// +optional
	AllowInsecure bool `json:"allowInsecure,omitempty"`

	// headersFrom names a Secret whose keys and values are sent as headers: in the app's
	// namespace, read only if the app's ServiceAccount may get it (see
	// spec.serviceAccountName); for a ClusterHealingPolicy's webhook, in the manager's
	// namespace. The operator reads it with get only.
	// +optional
	HeadersFrom *SecretReference `json:"headersFrom,omitempty"`

	// caBundle is PEM to trust for the server's certificate, beside the system roots.
	// +optional
	// +kubebuilder:validation:MaxLength=65536
	CABundle string `json:"caBundle,omitempty"`

	// timeout bounds one attempt. Default 5s.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="timeout must be positive"
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// retries is how many more attempts follow a failed one. Default 2.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=5
	Retries int32 `json:"retries,omitempty"`
}

// SecretReference names a Secret in the same namespace.
type SecretReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// NotifyAction asks for a human.
type NotifyAction struct {
	// message says what a person should look at.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message"`
}

// AutoscalePolicy sets a component's replicas from sensors.
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",message="minReplicas must be less than or equal to maxReplicas"
type AutoscalePolicy struct {
	// component names the component to scale, or `"*"` in a shared policy.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Component string `json:"component"`

	// minReplicas is the lower bound. 0 allows scale to zero when idle. Default 1.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MinReplicas *int32 `json:"minReplicas,omitempty"`

	// maxReplicas is the upper bound.
	// +required
	// +kubebuilder:validation:Minimum=1
	MaxReplicas int32 `json:"maxReplicas"`

	// metrics are the signals to scale on; the largest recommendation wins, as in the HPA.
	// +required
	// +listType=map
	// +listMapKey=sensor
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	Metrics []AutoscaleMetric `json:"metrics"`

	// behavior is the HPA's autoscaling/v2 behavior, with the same fields and defaults:
	// stabilization windows and rate policies for scaling up and down.
	// +optional
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`

	// onSensorFailure says what to do while a metric's sensor is unavailable.
	// +optional
	OnSensorFailure *SensorFailurePolicy `json:"onSensorFailure,omitempty"`

	// predictive forecasts each metric from its recent history and scales ahead. Off
	// when absent.
	// +optional
	Predictive *PredictiveScaling `json:"predictive,omitempty"`
}

// AutoscaleMetric is one signal of an autoscaler. Exactly one of target, band.
// +kubebuilder:validation:XValidation:rule="[has(self.target), has(self.band)].filter(x, x).size() == 1",message="exactly one of target, band must be set"
type AutoscaleMetric struct {
	// sensor names a sensor of the app (or of a selected healing policy).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Sensor string `json:"sensor"`

	// target keeps the metric at a value, as an HPA metric target does.
	// +optional
	Target *MetricTarget `json:"target,omitempty"`

	// band keeps the metric between watermarks, as Apache Brooklyn's AutoScalerPolicy:
	// above upper scales up, below lower scales down, in between holds.
	// +optional
	Band *Band `json:"band,omitempty"`

	// activationThreshold is the value above which a component scaled to zero is
	// activated. Default 0: any positive value.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^-?[0-9]+(\.[0-9]+)?$`
	ActivationThreshold *string `json:"activationThreshold,omitempty"`
}

// MetricTarget is exactly one of value, averageValue, averageUtilization.
// +kubebuilder:validation:XValidation:rule="[has(self.value), has(self.averageValue), has(self.averageUtilization)].filter(x, x).size() == 1",message="exactly one of value, averageValue, averageUtilization must be set"
type MetricTarget struct {
	// value is the target of the metric as a whole.
	// +optional
	Value *resource.Quantity `json:"value,omitempty"`

	// averageValue is the target of the metric divided by the replicas.
	// +optional
	AverageValue *resource.Quantity `json:"averageValue,omitempty"`

	// averageUtilization is the target percentage of requests, for resource sensors.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	AverageUtilization *int32 `json:"averageUtilization,omitempty"`
}

// Band is a pair of watermarks, given as decimal strings.
// +kubebuilder:validation:XValidation:rule="double(self.lower) < double(self.upper)",message="band lower must be less than upper"
type Band struct {
	// lower is the low watermark, for example "0.1".
	// +required
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]+)?$`
	Lower string `json:"lower"`

	// upper is the high watermark, for example "0.3".
	// +required
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]+)?$`
	Upper string `json:"upper"`
}

// SensorFailureMode says what an autoscaler does while a sensor is unavailable.
// +kubebuilder:validation:Enum=Hold;Fallback
type SensorFailureMode string

const (
	// SensorFailureHold keeps the current replicas: missing data never scales down.
	SensorFailureHold SensorFailureMode = "Hold"
	// SensorFailureFallback goes to fixed replicas after a number of failures.
	SensorFailureFallback SensorFailureMode = "Fallback"
)

// SensorFailurePolicy is the autoscaler's answer to missing data.
// +kubebuilder:validation:XValidation:rule="self.mode != 'Fallback' || has(self.replicas)",message="replicas is required when mode is Fallback"
type SensorFailurePolicy struct {
	// mode is Hold (default) or Fallback.
	// +optional
	// +kubebuilder:default=Hold
	Mode SensorFailureMode `json:"mode,omitempty"`

	// replicas is the Fallback count.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Replicas *int32 `json:"replicas,omitempty"`

	// failureThreshold is how many consecutive failed polls trigger Fallback. Default 3.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	FailureThreshold int32 `json:"failureThreshold,omitempty"`
}

// PredictiveScaling forecasts metrics with Holt's linear trend.
type PredictiveScaling struct {
	// lookahead is how far ahead to forecast; the autoscaler acts on the larger of the
	// current and the forecast value when scaling up.
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="lookahead must be positive"
	Lookahead metav1.Duration `json:"lookahead"`

	// history is how much recent history the forecast uses. Default 10m.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="history must be positive"
	History *metav1.Duration `json:"history,omitempty"`
}

// FailoverSelection is how a failover policy elects its primary.
// +kubebuilder:validation:Enum=Failover;Best
type FailoverSelection string

const (
	// SelectionFailover keeps a healthy primary and moves only when it fails.
	SelectionFailover FailoverSelection = "Failover"
	// SelectionBest always moves to the healthy candidate of highest weight.
	SelectionBest FailoverSelection = "Best"
)

// FailoverPolicy points a Service at the elected primary.
type FailoverPolicy struct {
	// service names a Service in the app's namespace; its selector is set to the
	// primary's pod labels.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Service string `json:"service"`

	// candidates are the components that may be primary.
	// +required
	// +listType=map
	// +listMapKey=component
	// +kubebuilder:validation:MinItems=2
	// +kubebuilder:validation:MaxItems=16
	Candidates []FailoverCandidate `json:"candidates"`

	// selection is Failover (default: keep a healthy primary) or Best.
	// +optional
	// +kubebuilder:default=Failover
	Selection FailoverSelection `json:"selection,omitempty"`

	// scaleStandby scales a standby that has zero replicas up before traffic moves to it,
	// and the old primary down after. Default true.
	// +optional
	ScaleStandby *bool `json:"scaleStandby,omitempty"`
}

// FailoverCandidate is a component that may be primary.
type FailoverCandidate struct {
	// component names a component of the app.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Component string `json:"component"`

	// weight orders candidates; higher wins. Default 100.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Weight int32 `json:"weight,omitempty"`
}

// Guards hold actions back.
type Guards struct {
	// cooldown is the least time between two actions of this app. Default 0s.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	Cooldown *metav1.Duration `json:"cooldown,omitempty"`

	// maxActions caps how many actions the app takes within a window.
	// +optional
	MaxActions *RateLimit `json:"maxActions,omitempty"`

	// maxUnhealthyPods holds disruptive actions back when more than this share (or count)
	// of the app's pods is unhealthy, counting pods an in-flight action is disrupting:
	// the problem is wider than a few pods. Default: no limit.
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:Pattern=`^(100|[1-9]?[0-9])%$`
	// +kubebuilder:validation:XValidation:rule="self >= 0 || self.endsWith('%')",message="maxUnhealthyPods must be a count >= 0 or a percentage from 0% to 100%"
	MaxUnhealthyPods *intstr.IntOrString `json:"maxUnhealthyPods,omitempty"`
}

// RateLimit is a count per window.
type RateLimit struct {
	// count is how many actions the window allows, at most 50 (the ledger's length).
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=50
	Count int32 `json:"count"`

	// per is the window, for example 1h.
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="per must be positive"
	Per metav1.Duration `json:"per"`
}
