package demo

import (
	"math"

	"k8s.io/apimachinery/pkg/api/resource"
)

// The demo load's model. One number, the requests a second the api Deployment receives
// (data.rps of the ConfigMap homeostat-demo/demo-load), is spread evenly over its
// serving pods, as a Service spreads it; each pod's share sets its CPU usage and the
// latency of its requests:
//
//	per pod      rps / serving pods
//	cpu          10m + 1m per request a second (each request costs a millisecond of CPU)
//	p95 latency  50ms / (1 - per pod / 500), 10s at and past 500 a second
//
// The latency grows as a queue's does as a pod nears its capacity of 500 requests a
// second; a request's latency is exponentially distributed around it (the sojourn time of
// an M/M/1 queue is), so histogram_quantile(0.95, ...) over the exporter's histogram
// reads back about the p95 of the formula.
//
// Against the autoscale sample (CPU at 70% of the 500m request; p95 between 100ms and
// 300ms): 300 a second on 2 pods is 150 each, 160m (32%) and 71ms, so api stays at
// minReplicas 2. 900 a second on 2 pods is 450 each, 460m (92%) and 500ms: the latency
// asks for 4 replicas and the CPU for 3. On 4 pods it is 225 each, 235m (47%) and
// 91ms, and both ask for 3, to which api scales down once the scale-down window (5
// minutes) has passed; on 3 pods, 300 each, 310m (62%) and 125ms, within the band and
// near the target, it stays. More pods lower every pod's CPU and latency, so the
// autoscaler settles instead of running away.
const (
	// DefaultRPS is the load of a new demo.
	DefaultRPS = 300
	// PodCapacity is the most requests a second one pod serves.
	PodCapacity = 500.0
	// IdleP95 is the p95 latency, in seconds, of a pod with no queue.
	IdleP95 = 0.05
	// MaxP95 is the p95 latency, in seconds, of a saturated pod.
	MaxP95 = 10.0
	// IdleMilliCPU is a pod's CPU usage, in millicores, with no requests.
	IdleMilliCPU = 10
	// MilliCPUPerRPS is the CPU, in millicores, one request a second costs.
	MilliCPUPerRPS = 1.0
)

// podMemory is every demo pod's memory usage: the model leaves memory alone.
var podMemory = resource.MustParse("96Mi")

// PodLoad is what one serving pod does under the demo load.
type PodLoad struct {
	// RPS is the requests a second the pod serves.
	RPS float64
	// P95 is the p95 latency of its requests, in seconds.
	P95 float64
	// MilliCPU is its CPU usage in millicores.
	MilliCPU int64
}

// Spread is the load of each of n serving pods when they share rps requests a second.
// With no serving pod nothing is served: every figure is zero.
func Spread(rps float64, n int) PodLoad {
	if n <= 0 || !(rps >= 0) {
		return PodLoad{}
	}
	per := rps / float64(n)
	return PodLoad{RPS: per, P95: p95(per), MilliCPU: IdleMilliCPU + int64(math.Round(per*MilliCPUPerRPS))}
}

// p95 is the p95 latency of a pod that serves per requests a second.
func p95(per float64) float64 {
	busy := per / PodCapacity
	if busy >= 1 {
		return MaxP95
	}
	return min(IdleP95/(1-busy), MaxP95)
}

// idleUsage is the usage of a demo pod that serves no requests: not ready, or not of the
// api Deployment.
func idleUsage() (cpu, memory resource.Quantity) {
	return *resource.NewMilliQuantity(IdleMilliCPU, resource.DecimalSI), podMemory.DeepCopy()
}

// usage is the usage of a serving pod under l.
func (l PodLoad) usage() (cpu, memory resource.Quantity) {
	return *resource.NewMilliQuantity(l.MilliCPU, resource.DecimalSI), podMemory.DeepCopy()
}
