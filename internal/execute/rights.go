package execute

import (
	"cmp"
	"strings"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/rights"
)

// declarer is implemented by the effectors whose actions read or change objects for the
// app, next to effector. accesses lists what Execute will ask of the API server for the
// request's record, as the app's ServiceAccount would need to be allowed to do it by
// hand: the eviction of each pod, the patch of the workload's scale, the create of the
// Job. The action id Homeostat stamps on what it changes is its own bookkeeping and is
// not listed: asking for it would make a tenant grant patch on pods to allow evictions.
// An error refuses the action outright: it is a *rights.Forbidden that says why (a
// runJob's Job that would run as another ServiceAccount). A kind without it (notify)
// asks for nothing.
type declarer interface {
	accesses(req Request) ([]rights.Access, error)
}

// Accesses lists what carrying out the request's recorded intent will ask of the API
// server on the app's behalf, to authorize as req.Subject before Execute runs: Prepare
// fills Prepared.Accesses with the same list for a new intent, and the controller asks
// again for an intent it resumes. It reads only the request. Without a Subject it lists
// nothing: the app acts as the manager.
func (e *Effectors) Accesses(req Request) ([]rights.Access, error) {
	if req.Subject == nil || req.Record == nil {
		return nil, nil
	}
	f, ok := registry[Kind(req.Action)]
	if !ok {
		return nil, nil
	}
	d, ok := f.(declarer)
	if !ok {
		return nil, nil
	}
	return d.accesses(req)
}

// declare adds to what prepare fixed the accesses the intent will make, reading them
// off a record that holds the prepared objects, as the intent's record will.
func declare(f effector, req Request, p Prepared) (Prepared, error) {
	d, ok := f.(declarer)
	if req.Subject == nil || !ok {
		return p, nil
	}
	rec := v1alpha1.ActionRecord{}
	if req.Record != nil {
		rec = *req.Record.DeepCopy()
	}
	rec.Action = cmp.Or(rec.Action, p.Kind)
	rec.Objects, rec.Replicas, rec.Failover = p.Objects, p.Replicas, p.Failover
	req.Record = &rec
	acc, err := d.accesses(req)
	if err != nil {
		return p, err
	}
	p.Accesses = acc
	return p, nil
}

// workloadAccess is an access to the workload or one of its subresources.
func workloadAccess(w workload, verb, subresource string) rights.Access {
	return rights.Access{Verb: verb, Group: "apps", Resource: strings.ToLower(w.kind) + "s", Subresource: subresource,
		Namespace: w.namespace, Name: w.name}
}

// podEvictions are the evictions of the named pods of a namespace.
func podEvictions(ns string, names []string) []rights.Access {
	out := make([]rights.Access, 0, len(names))
	for _, n := range names {
		out = append(out, rights.Access{Verb: "create", Resource: "pods", Subresource: "eviction", Namespace: ns, Name: n})
	}
	return out
}

// nodePatches are the patches of the named nodes.
func nodePatches(names []string) []rights.Access {
	out := make([]rights.Access, 0, len(names))
	for _, n := range names {
		out = append(out, rights.Access{Verb: "patch", Resource: "nodes", Name: n})
	}
	return out
}
