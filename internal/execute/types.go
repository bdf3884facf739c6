package execute

import (
	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/rights"
)

// Request is one action to carry out: the app, its ledger record (whose ID the effector
// stamps on what it changes, and whose Objects, Replicas and Failover were fixed when the
// intent was recorded), the action, and the component it targets as the monitor saw it.
type Request struct {
	App    *v1alpha1.AutonomicApp
	Record *v1alpha1.ActionRecord
	Action v1alpha1.Action
	// Target is the component the action names; nil for actions without one (notify,
	// webhook, runJob, failover).
	Target *monitor.Component
	// Subject is the ServiceAccount the app acts as (spec.serviceAccountName or the
	// manager's default); nil when it sets none, and then the action is not checked
	// against anyone's rights. Prepare lists the accesses to check as Subject; a runJob's
	// Job runs as it.
	Subject *rights.Subject
	// ClusterPolicy is true when the action comes from a ClusterHealingPolicy: its
	// webhook reads the header Secret from the manager's namespace, not the app's.
	ClusterPolicy bool
}

// Prepared is what Prepare fixes before the intent is written to the ledger.
type Prepared struct {
	// Kind is the action's name, for example "restartPods".
	Kind string
	// Target is a short description of what changes, for example "Deployment/web".
	Target string
	// Objects are the exact objects to change (for restartPods the pod names).
	Objects []string
	// Replicas is the absolute count a scale action will set.
	Replicas *int32
	// Failover is what a failover record changes (failover actions only).
	Failover *v1alpha1.FailoverRecord
	// Disruptive is true for actions that take capacity away (evictions, restarts,
	// rollbacks, drains, scale-down): the maxUnhealthyPods guard and the storm breaker
	// hold them back.
	Disruptive bool
	// Pods counts the pods the action will disrupt, for the maxUnhealthyPods guard.
	Pods int
	// Accesses are what the action will ask of the API server on the app's behalf, to be
	// authorized as the request's Subject before the intent is recorded; none without a
	// Subject. See Effectors.Accesses.
	Accesses []rights.Access
}

// Outcome is an effector's report.
type Outcome struct {
	Result  v1alpha1.ActionResult
	Message string
}
