// Package metricsapi is a metrics.k8s.io/v1beta1 API for tests and for make run's demo
// (internal/devcluster/demo): an aggregated API server of the caller's own, on 127.0.0.1,
// whose pod and node usage figures the caller sets. It stands in for metrics-server, which
// cannot run on the local control plane because it scrapes kubelets at the nodes'
// addresses, and kwok's nodes have fake ones.
//
//	test ──SetPodUsage──> table
//	client ──GET /apis/metrics.k8s.io/v1beta1/...──> kube-apiserver (authn, authz)
//	  ──aggregator: APIService v1beta1.metrics.k8s.io──> Service (ExternalName 127.0.0.1)
//	  ──TLS, front-proxy client certificate, X-Remote-User──> Server ──> PodMetrics
//
// Start serves the API and registers it with a cluster: a Service of type ExternalName
// whose external name is the literal address 127.0.0.1, so the aggregator dials loopback
// without a name lookup, and an APIService that names that Service, with the server's
// CA. It returns once the APIService is Available and a list through the apiserver
// succeeds. Stop unregisters the API first, so that the cluster's discovery never
// reports a broken group after a test.
//
// What the package decides:
//
//   - What metrics-server would report: a PodMetrics for every pod that exists, is
//     Running and has usage in the table, with the pod's labels (label and field
//     selectors select pods, as metrics-server's do) and one entry per container of the
//     pod, the first carrying the pod's usage and the others zero; a NodeMetrics for
//     every node with usage in the table. A pod without usage in the table is a pod
//     metrics-server has not scraped yet: it is left out of the list and a get of it is
//     NotFound.
//   - Every sample is fresh: its timestamp is the time of the request and its window
//     Options.Window (default 15s, metrics-server's resolution), as if the kubelet had
//     been scraped just then. A change of the table is seen by the next request, so a
//     test measures its consumers, not a scrape interval.
//   - Who may ask: requests must come from the apiserver's front proxy (a client
//     certificate of the requestheader CA and allowed names the apiserver publishes in
//     kube-system/extension-apiserver-authentication); the user is read from its
//     headers and recorded. Authorization is left to the apiserver, which authorizes
//     every request before it proxies it. /healthz, /livez and /readyz are open.
//   - Discovery as an aggregated server serves it (APIGroupList, APIGroup,
//     APIResourceList, JSON), and an empty OpenAPI v2 and v3, so the aggregator's
//     discovery and OpenAPI controllers are satisfied. Objects are in the first of JSON and
//     protobuf that the request's Accept header lists (JSON for */*); Tables are not
//     served, so kubectl falls back to JSON.
//
// What it never does: listen on or dial anything but 127.0.0.1, watch (metrics-server
// does not either), or write an object other than its Service and APIService.
package metricsapi
