// Package cli is the kubectl plugin, `kubectl homeostat`: it explains what Homeostat
// decided and why (why), what happened when (timeline), what a policy would have done
// over recorded history (simulate), and pauses or resumes an app (pause, resume).
//
// It reads what the manager wrote (the app's status, its Events), for timeline also the
// Events of the app's workloads, their ReplicaSets and pods, and, for simulate, the
// sensor history a Prometheus that scrapes the manager holds; the judgement it shows or
// replays is internal/plan's and internal/analyze's, never its own. It never changes an
// app except for the paused annotation, and it takes the kubeconfig flags every kubectl
// plugin takes (k8s.io/cli-runtime).
package cli
