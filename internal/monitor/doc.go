// Package monitor is the Monitor stage: it gathers what an app's components are doing
// from the informer cache (workloads, their ReplicaSets and pods, child apps) and turns
// it into the built-in component sensors. It also owns the cache indexes that map a pod
// or workload change to exactly the apps that watch it, and the transform that trims
// cached objects to what the sensors read.
//
// It also polls the apps' external sensors (Prometheus, metrics.k8s.io, HTTP, and single
// objects read through a non-caching reader, only when the app's ServiceAccount may get
// them: see internal/rights) on a work queue of its own, whose workers are shared among
// namespaces in turn, with a per-namespace and a per-app share (internal/fair), into an
// in-memory Readings store the reconciler reads. Its http and Prometheus requests go
// through the one client of the admin's egress policy (internal/egress), which also caps
// their timeouts.
//
// It never writes to the API server; it does not judge: symptoms over the sensors are
// the analyzer's, and decisions are the planner's.
package monitor
