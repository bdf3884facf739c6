package monitor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/rights"
)

// TenantRights says as whom an app reads and whether it may: a *rights.Checker.
type TenantRights interface {
	SubjectOf(app *v1alpha1.AutonomicApp) (rights.Subject, bool)
	Check(ctx context.Context, s rights.Subject, accesses ...rights.Access) error
}

var _ TenantRights = &rights.Checker{}

// authorizedProbe reads an object sensor's object only if the app's ServiceAccount may
// get it: what an app makes Homeostat read is what its ServiceAccount could read itself.
// An app that acts as the manager (no ServiceAccount) is not checked.
type authorizedProbe struct {
	p     *Poller
	ns    string
	ref   v1alpha1.ObjectReference
	inner probe
}

// authorized wraps an object sensor's probe in the check of the tenant's rights, when
// the poller has them.
func (p *Poller) authorized(inner probe, ns string, spec *v1alpha1.ObjectSensor) probe {
	if p.Rights == nil {
		return inner
	}
	return &authorizedProbe{p: p, ns: ns, ref: spec.Ref, inner: inner}
}

func (a *authorizedProbe) release() { a.inner.release() }

func (a *authorizedProbe) read(ctx context.Context, key types.NamespacedName, timeout time.Duration) (float64, *PodCounts, error) {
	app := &v1alpha1.AutonomicApp{}
	if err := a.p.Reader.Get(ctx, key, app); err != nil {
		return 0, nil, fmt.Errorf("reading the app to know as whom to read %s %q: %w", a.ref.Kind, a.ref.Name, err)
	}
	subject, ok := a.p.Rights.SubjectOf(app)
	if !ok {
		return a.inner.read(ctx, key, timeout)
	}
	access, err := a.access()
	if err != nil {
		return 0, nil, err
	}
	if err := a.p.Rights.Check(ctx, subject, access); err != nil {
		return 0, nil, fmt.Errorf("reading %s %q is refused by the tenant's rights: %w", a.ref.Kind, a.ref.Name, err)
	}
	return a.inner.read(ctx, key, timeout)
}

// access is the get the sensor makes, with the resource and scope the REST mapper knows
// the kind by: a cluster-scoped kind is asked about cluster-wide, never in the app's
// namespace (a Role of the namespace does not grant it).
func (a *authorizedProbe) access() (rights.Access, error) {
	gv, err := schema.ParseGroupVersion(a.ref.APIVersion)
	if err != nil {
		return rights.Access{}, fmt.Errorf("apiVersion %q is not valid: %w", a.ref.APIVersion, err)
	}
	mapper, ok := a.p.APIReader.(interface{ RESTMapper() meta.RESTMapper })
	if !ok {
		return rights.Access{}, errors.New("the poller has no REST mapper to tell which resource an object sensor reads")
	}
	m, err := mapper.RESTMapper().RESTMapping(schema.GroupKind{Group: gv.Group, Kind: a.ref.Kind}, gv.Version)
	if err != nil {
		return rights.Access{}, fmt.Errorf("finding the resource of %s %q: %w", a.ref.Kind, a.ref.Name, err)
	}
	acc := rights.Access{Verb: "get", Group: m.Resource.Group, Resource: m.Resource.Resource, Name: a.ref.Name}
	if m.Scope.Name() != meta.RESTScopeNameRoot {
		acc.Namespace = a.ns
	}
	return acc, nil
}
