// Package rights decides as whom Homeostat reads and acts for an app, and asks the API
// server whether that ServiceAccount may.
//
// An app acts as a ServiceAccount of its own namespace: spec.serviceAccountName, or the
// manager's --default-service-account. What Homeostat reads or changes for it is what
// that ServiceAccount could read or change itself. Before an effector runs, or an object
// sensor reads, the caller lists the accesses it will make (verb, group, resource,
// subresource, namespace, name) and a Checker asks the Authorizer about each one. The
// Authorizer of a running manager is a Reviewer: a SubjectAccessReview per access, and a
// get of the ServiceAccount, each answer cached for a short time.
//
// An app without a ServiceAccount (neither the field nor the flag set) acts as the
// manager, as it always has: nothing is asked. An authorizer that cannot answer refuses:
// an error is never taken as an allowance.
//
// The package never acts: it answers, and it explains a refusal in a sentence that
// names the ServiceAccount, the missing permission and the RBAC rule that grants it.
package rights
