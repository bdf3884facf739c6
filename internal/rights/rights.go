package rights

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// Subject is the ServiceAccount whose rights bound what Homeostat does for an app.
type Subject struct {
	Namespace string
	Name      string
}

// User is the subject's user name as the API server authenticates it.
func (s Subject) User() string { return "system:serviceaccount:" + s.Namespace + ":" + s.Name }

// Groups are the groups the API server puts every ServiceAccount of the namespace in.
func (s Subject) Groups() []string {
	return []string{"system:serviceaccounts", "system:serviceaccounts:" + s.Namespace, "system:authenticated"}
}

// String names the subject in messages: ServiceAccount shop/healer.
func (s Subject) String() string { return "ServiceAccount " + s.Namespace + "/" + s.Name }

// Access is one request Homeostat makes on an app's behalf: the attributes of a
// SubjectAccessReview.
type Access struct {
	// Verb is get, list, create, patch, delete...
	Verb string
	// Group is the API group; "" for the core group.
	Group string
	// Resource is the plural resource, for example pods.
	Resource string
	// Subresource is eviction, scale..., or "".
	Subresource string
	// Namespace is "" for a cluster-scoped resource, or for a namespaced one in every
	// namespace (a drain evicts the pods of a node, whatever their namespace).
	Namespace string
	// Name is the object's name; "" when the request names none (list, or an object
	// whose name is not known beforehand).
	Name string
}

// resource is how kubectl names the access's resource: deployments.apps/scale.
func (a Access) resource() string {
	r := a.Resource
	if a.Group != "" {
		r += "." + a.Group
	}
	if a.Subresource != "" {
		r += "/" + a.Subresource
	}
	return r
}

// where says where the access applies, for messages.
func (a Access) where() string {
	if a.Namespace == "" {
		return "cluster-wide"
	}
	return "in namespace " + a.Namespace
}

// String says the access in words: create pods/eviction "web-1" in namespace shop.
func (a Access) String() string {
	s := a.Verb + " " + a.resource()
	if a.Name != "" {
		s += fmt.Sprintf(" %q", a.Name)
	}
	return s + " " + a.where()
}

// rule is the RBAC rule that grants the access, in YAML flow style.
func (a Access) rule() string {
	res := a.Resource
	if a.Subresource != "" {
		res += "/" + a.Subresource
	}
	return fmt.Sprintf(`{apiGroups: [%q], resources: [%q], verbs: [%q]}`, a.Group, res, a.Verb)
}

// Authorizer answers whether a ServiceAccount exists and what it may do.
type Authorizer interface {
	// Exists reports whether the subject's ServiceAccount exists. An error means it
	// could not tell.
	Exists(ctx context.Context, s Subject) (bool, error)
	// Allowed reports whether the subject may make the access, with the authorizer's
	// reason when it says one. An error means it could not tell.
	Allowed(ctx context.Context, s Subject, a Access) (bool, string, error)
}

// Forbidden is a refusal: the subject's ServiceAccount does not exist, it may not make
// some of the accesses, a rule of Homeostat's refuses the action, or the authorizer could
// not answer. Its Error is a sentence that says what to grant or change.
type Forbidden struct {
	Subject Subject
	// Missing is true when the ServiceAccount does not exist.
	Missing bool
	// Denied are the accesses the authorizer refused, in the order they were asked.
	Denied []Access
	// Reason is the authorizer's reason for the first refusal, if it gave one.
	Reason string
	// Rule is a rule of Homeostat's that refuses the action, in a sentence (runJob's Job
	// must run as the app's ServiceAccount).
	Rule string
	// Err is why the authorizer could not answer; the access it was asked about is in
	// Denied, and is refused.
	Err error
}

// Error says what was refused and how to grant it.
func (f *Forbidden) Error() string {
	switch {
	case f.Missing:
		return fmt.Sprintf("%s does not exist, and the app acts with its rights: create it (kubectl create serviceaccount %s -n %s) "+
			"and grant it what the app's actions need, or set spec.serviceAccountName to a ServiceAccount of namespace %s",
			f.Subject, f.Subject.Name, f.Subject.Namespace, f.Subject.Namespace)
	case f.Rule != "":
		return f.Rule
	case f.Err != nil && len(f.Denied) > 0:
		return fmt.Sprintf("Could not check whether %s may %s, so it was refused: %v", f.Subject, f.Denied[0], f.Err)
	case f.Err != nil:
		return fmt.Sprintf("Could not check the rights of %s, so the action was refused: %v", f.Subject, f.Err)
	case len(f.Denied) == 0:
		return fmt.Sprintf("%s may not do this", f.Subject)
	}
	msg := fmt.Sprintf("%s may not %s", f.Subject, denials(f.Denied))
	if f.Reason != "" {
		msg += fmt.Sprintf(" (%s)", strings.TrimSuffix(f.Reason, "."))
	}
	return msg + ": " + grant(f.Denied)
}

// Unwrap returns the authorizer's error, if any.
func (f *Forbidden) Unwrap() error { return f.Err }

// IsForbidden reports whether err is, or wraps, a *Forbidden, and returns it.
func IsForbidden(err error) (*Forbidden, bool) {
	var f *Forbidden
	ok := errors.As(err, &f)
	return f, ok
}

// maxNamed is how many object names a refusal lists for one permission.
const maxNamed = 3

// denials lists the refused permissions, each once, with the objects they were asked
// about: create pods/eviction in namespace shop ("web-1", "web-2"), nor patch ....
func denials(denied []Access) string {
	type perm struct {
		a     Access
		names []string
	}
	var perms []*perm
	for _, a := range denied {
		key := a
		key.Name = ""
		i := slices.IndexFunc(perms, func(p *perm) bool { return p.a == key })
		if i < 0 {
			perms = append(perms, &perm{a: key})
			i = len(perms) - 1
		}
		if a.Name != "" {
			perms[i].names = append(perms[i].names, fmt.Sprintf("%q", a.Name))
		}
	}
	parts := make([]string, len(perms))
	for i, p := range perms {
		parts[i] = p.a.String()
		if n := len(p.names); n > 0 {
			shown := strings.Join(p.names[:min(n, maxNamed)], ", ")
			if n > maxNamed {
				shown += fmt.Sprintf(" and %d more", n-maxNamed)
			}
			parts[i] += " (" + shown + ")"
		}
	}
	return strings.Join(parts, ", nor ")
}

// grant says where to grant the refused permissions: a Role of the namespace for those
// in a namespace, a ClusterRole bound by a ClusterRoleBinding for cluster-wide ones.
func grant(denied []Access) string {
	var roles, cluster []string
	byNS := map[string][]string{}
	var namespaces []string
	for _, a := range denied {
		r := a.rule()
		if a.Namespace == "" {
			if !slices.Contains(cluster, r) {
				cluster = append(cluster, r)
			}
			continue
		}
		if _, ok := byNS[a.Namespace]; !ok {
			namespaces = append(namespaces, a.Namespace)
		}
		if !slices.Contains(byNS[a.Namespace], r) {
			byNS[a.Namespace] = append(byNS[a.Namespace], r)
		}
	}
	for _, ns := range namespaces {
		roles = append(roles, fmt.Sprintf("in a Role of namespace %s bound to the ServiceAccount, with %s %s",
			ns, ruleWord(len(byNS[ns])), strings.Join(byNS[ns], " and ")))
	}
	if len(cluster) > 0 {
		roles = append(roles, fmt.Sprintf("in a ClusterRole bound to the ServiceAccount by a ClusterRoleBinding, with %s %s",
			ruleWord(len(cluster)), strings.Join(cluster, " and ")))
	}
	it := "it"
	if len(denied) > 1 {
		it = "them"
	}
	return fmt.Sprintf("grant %s %s", it, strings.Join(roles, "; and "))
}

func ruleWord(n int) string {
	if n == 1 {
		return "the rule"
	}
	return "the rules"
}

// Checker is the manager's tenancy: as whom each app reads and acts, and the
// authorizer that answers for them. A nil Checker has no default ServiceAccount and no
// authorizer: an app that names a ServiceAccount is then refused everything.
type Checker struct {
	// Authorizer answers the questions.
	Authorizer Authorizer
	// DefaultServiceAccount is the ServiceAccount, in each app's own namespace, of the
	// apps that name none (--default-service-account); "" acts as the manager, as
	// Homeostat always has.
	DefaultServiceAccount string
}

// SubjectOf is the ServiceAccount the app acts as: spec.serviceAccountName, else the
// default. ok is false when neither is set: the app acts as the manager and nothing is
// checked.
func (c *Checker) SubjectOf(app *v1alpha1.AutonomicApp) (s Subject, ok bool) {
	if app == nil {
		return Subject{}, false
	}
	var def string
	if c != nil {
		def = c.DefaultServiceAccount
	}
	name := cmp.Or(app.Spec.ServiceAccountName, def)
	if name == "" {
		return Subject{}, false
	}
	return Subject{Namespace: app.Namespace, Name: name}, true
}

// Check returns nil when the subject's ServiceAccount exists and may make every access,
// else a *Forbidden that lists every access refused. An authorizer that cannot answer
// refuses, with its error; so does a Checker without an authorizer.
func (c *Checker) Check(ctx context.Context, s Subject, accesses ...Access) error {
	if c == nil || c.Authorizer == nil {
		return &Forbidden{Subject: s, Err: errors.New("the manager has no authorizer for the tenant's rights")}
	}
	exists, err := c.Authorizer.Exists(ctx, s)
	switch {
	case err != nil:
		return &Forbidden{Subject: s, Err: fmt.Errorf("reading the ServiceAccount failed: %w", err)}
	case !exists:
		return &Forbidden{Subject: s, Missing: true}
	}
	f := &Forbidden{Subject: s}
	for _, a := range accesses {
		ok, reason, err := c.Authorizer.Allowed(ctx, s, a)
		if err != nil {
			return &Forbidden{Subject: s, Denied: []Access{a}, Err: err}
		}
		if !ok {
			f.Denied = append(f.Denied, a)
			f.Reason = cmp.Or(f.Reason, reason)
		}
	}
	if len(f.Denied) > 0 {
		return f
	}
	return nil
}
