// Package demo serves, beside the local cluster of `make run`, what the samples'
// sensors read in a real cluster: metrics.k8s.io (metrics-server's API) and a Prometheus
// with a latency histogram to query. Both are driven by one number the user sets, the
// demo load: data.rps of the ConfigMap homeostat-demo/demo-load, the requests a second
// the api Deployment of config/samples/autonomicapp_autoscale.yaml receives.
//
//	kubectl patch configmap demo-load ──> driver (informers on the namespace's pods
//	    and ConfigMaps) ──> Spread(rps, serving api pods)
//	      ──> metricsapi: each serving pod's CPU, every other pod idle ──> resource sensor
//	      ──> exporter on 127.0.0.1: http_request_duration_seconds
//	            <── Prometheus on 127.0.0.1:9090 (job api; the manager as job homeostat)
//	            <── prometheus sensor: histogram_quantile(0.95, ... {job="api"} ...)
//
// What the package decides:
//
//   - The model (model.go): the load is spread evenly over the api pods that are
//     running, ready and not terminating; a pod's CPU is 10m plus 1m per request a
//     second, its p95 latency 50ms / (1 - its share / 500). So scaling up lowers every
//     pod's CPU and latency and the sample's autoscaler settles (converge_test.go runs
//     the sample's policy through the planner against the model to prove it).
//   - The exporter counts the expected requests of the load as time passes, each with a
//     latency exponentially distributed around the model's p95, so the histogram's
//     quantile reads the model back; it serves no per-pod series.
//   - Prometheus is Debian's package (hack/tools.sh prometheus), a process of the cluster
//     (devcluster.Cluster.StartComponent): it logs to logs/prometheus.log, keeps its data
//     in <cluster dir>/prometheus, fresh at every start, and stops and dies with the
//     cluster. It scrapes the exporter every 2s and the manager's plain-HTTP metrics, when
//     its arguments say where they are (ManagerMetrics), every 10s.
//   - The samples' Prometheus sensors look at 127.0.0.1:9090. Prometheus listens there
//     unless told otherwise; then PointSamplesAt rewrites those sensors, and only those,
//     before they are applied. A taken port fails at once (CheckAddress).
//   - Start returns when the samples' sensors that the demo serves answer, so the manager
//     starts on sensors that work; it waits at most 30s and then says which does not.
//   - A value of data.rps that is not a number from 0 to 10,000,000, or a deleted
//     ConfigMap, keeps the load as it was and is logged once. 0 is no traffic: the
//     latency query then has nothing to measure (NaN), as on a real idle service.
//
// What it never does: listen on or connect to anything but loopback (pod and node
// addresses are fake), write to the cluster other than the ConfigMap, the namespace when
// it is missing, and metricsapi's Service and APIService, or run against a cluster it did
// not start: devcluster runs it only with its own.
package demo
