// Package egress is the admin's policy for every request Homeostat sends on a tenant's
// behalf: http sensors, Prometheus sensors and webhook actions. It builds the one
// http.Client those use, and it decides, for each connection, whether its address may be
// dialled.
//
// It decides on the resolved address, at dial time (net.Dialer.Control), so a host name
// that resolves to a refused address, or starts to (DNS rebinding), is refused too. In
// this order, the first rule that matches an address decides:
//
//  1. An address in --egress-deny-cidrs is refused.
//  2. The manager's own listeners (metrics, health probes, webhook, pprof) and the
//     Kubernetes API server are refused, on their ports; no flag opens them.
//  3. An address in --egress-allow-cidrs is allowed.
//  4. The built-in deny list is refused: loopback, link-local (the cloud metadata
//     service at 169.254.169.254), unspecified, multicast, and the metadata addresses
//     outside those ranges (fd00:ec2::254, 100.100.100.200).
//  5. Anything else is allowed.
//
// The client never uses a proxy, never follows a redirect (a 3xx is the answer), reads a
// response body up to --egress-max-response-bytes and fails beyond it, and gives up on a
// request after --egress-max-timeout; Cap gives callers that timeout as a ceiling for the
// timeouts their users ask for. A refusal is a *RefusedError that names the address, the
// rule and the flag that would allow it; it never quotes a response.
//
// It never decides what a request says or where a tenant may point it (that is the API's
// validation and the tenant's RBAC), never reads the cluster, and never dials to check an
// address: Check is a pure function of the address and the policy.
package egress
