package v1alpha1

// Kind returns the name of the action's set member, for example "restartPods", or ""
// when none is set. It is the action's name in status, Events and metrics.
func (a Action) Kind() string {
	switch {
	case a.RestartPods != nil:
		return "restartPods"
	case a.RolloutRestart != nil:
		return "rolloutRestart"
	case a.Rollback != nil:
		return "rollback"
	case a.Scale != nil:
		return "scale"
	case a.Failover != nil:
		return "failover"
	case a.CordonNode != nil:
		return "cordonNode"
	case a.DrainNode != nil:
		return "drainNode"
	case a.RunJob != nil:
		return "runJob"
	case a.Webhook != nil:
		return "webhook"
	case a.Notify != nil:
		return "notify"
	}
	return ""
}

// Component returns the component the action names, or "" for actions that name none
// (failover, runJob, webhook, notify).
func (a Action) Component() string {
	switch {
	case a.RestartPods != nil:
		return a.RestartPods.Component
	case a.RolloutRestart != nil:
		return a.RolloutRestart.Component
	case a.Rollback != nil:
		return a.Rollback.Component
	case a.Scale != nil:
		return a.Scale.Component
	case a.CordonNode != nil:
		return a.CordonNode.Component
	case a.DrainNode != nil:
		return a.DrainNode.Component
	}
	return ""
}
