package controllers

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/pager"
)

// After an outage the restarted API server's watch cache starts at a newer resource
// version than an informer last saw, so the watch the reflector resumes ends at once
// with "too old resource version" (410). The reflector's answer is to list again, but
// only after its backoff (0.8-1.6 s, more after other failures), and its list, at the
// version it last saw, is served from a watch cache that may not be ready. The
// relister answers the 410 inside the watch instead: it lists afresh (a consistent
// read), hands the reflector the events that bring the informer's store to that list
// (added, modified, and deleted for what is gone), and goes on with a watch from the
// list's version. The reflector sees one watch that never broke.

// relister lists an informer's objects again inside a watch. store is the informer's
// store (what the reflector has delivered so far); example is an object of the
// informer's type.
type relister struct {
	store   func() toolscache.Store
	example runtime.Object
}

// expired says whether err is the API server refusing a watch's resource version as too
// old: the only error the relister answers.
func expired(err error) bool {
	return apierrors.IsResourceExpired(err) || apierrors.IsGone(err)
}

// relistPageSize is the page size of a relist, as the reflector's own.
const relistPageSize = 500

// events lists the informer's objects afresh with the selectors of opts and returns the
// events that bring the store to the list, ending with a bookmark at the list's
// resource version, and that version.
func (r *relister) events(ctx context.Context, list func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error),
	opts metav1.ListOptions) ([]watch.Event, string, error) {
	p := pager.New(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return list(ctx, o) })
	p.PageSize = relistPageSize
	obj, _, err := p.ListWithAlloc(ctx, metav1.ListOptions{LabelSelector: opts.LabelSelector, FieldSelector: opts.FieldSelector})
	if err != nil {
		return nil, "", err
	}
	lm, err := meta.ListAccessor(obj)
	if err != nil {
		return nil, "", err
	}
	items, err := meta.ExtractListWithAlloc(obj)
	if err != nil {
		return nil, "", err
	}
	known := map[string]runtime.Object{}
	for _, o := range r.store().List() {
		if ro, ok := o.(runtime.Object); ok {
			if key, err := toolscache.MetaNamespaceKeyFunc(ro); err == nil {
				known[key] = ro
			}
		}
	}
	var out []watch.Event
	for _, it := range items {
		key, err := toolscache.MetaNamespaceKeyFunc(it)
		if err != nil {
			return nil, "", err
		}
		old, ok := known[key]
		delete(known, key)
		switch {
		case !ok:
			out = append(out, watch.Event{Type: watch.Added, Object: it})
		case resourceVersion(old) != resourceVersion(it):
			out = append(out, watch.Event{Type: watch.Modified, Object: it})
		}
	}
	gone := make([]string, 0, len(known))
	for key := range known {
		gone = append(gone, key)
	}
	slices.Sort(gone)
	for _, key := range gone {
		// A copy: the reflector's store transforms what it is handed, and the cached
		// object is shared with its readers. Its version is the list's, as a deletion
		// seen in a watch would carry one newer than the object's.
		o := known[key].DeepCopyObject()
		if m, err := meta.Accessor(o); err == nil {
			m.SetResourceVersion(lm.GetResourceVersion())
		}
		out = append(out, watch.Event{Type: watch.Deleted, Object: o})
	}
	if b := r.bookmark(lm.GetResourceVersion()); b != nil {
		out = append(out, watch.Event{Type: watch.Bookmark, Object: b})
	}
	return out, lm.GetResourceVersion(), nil
}

// stored waits, at most within, until the informer's store holds the last change of
// evs (the store applies a reflector's events in order), or done is closed; it says
// whether it does.
func (r *relister) stored(done <-chan struct{}, evs []watch.Event, within time.Duration) bool {
	var last *watch.Event
	for i := range evs {
		if evs[i].Type != watch.Bookmark {
			last = &evs[i]
		}
	}
	if last == nil {
		return true
	}
	key, err := toolscache.MetaNamespaceKeyFunc(last.Object)
	if err != nil {
		return false
	}
	want := resourceVersion(last.Object)
	deadline := time.Now().Add(within)
	for {
		o, ok, err := r.store().GetByKey(key)
		if err == nil {
			if last.Type == watch.Deleted && !ok {
				return true
			}
			if ro, isObj := o.(runtime.Object); ok && isObj && last.Type != watch.Deleted && resourceVersion(ro) == want {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-done:
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func resourceVersion(o runtime.Object) string {
	m, err := meta.Accessor(o)
	if err != nil {
		return ""
	}
	return m.GetResourceVersion()
}

// bookmark is an empty object of the informer's type at resource version rv: the
// reflector resumes its next watch from there.
func (r *relister) bookmark(rv string) runtime.Object {
	t := reflect.TypeOf(r.example)
	if t == nil || t.Kind() != reflect.Pointer {
		return nil
	}
	o, ok := reflect.New(t.Elem()).Interface().(runtime.Object)
	if !ok {
		return nil
	}
	m, err := meta.Accessor(o)
	if err != nil {
		return nil
	}
	m.SetResourceVersion(rv)
	o.GetObjectKind().SetGroupVersionKind(r.example.GetObjectKind().GroupVersionKind())
	return o
}

// watchBound is how long a watch call may go unanswered, while its informer is down,
// before it is abandoned and made again; each abandoned call doubles it, up to
// watchBoundMax. A restarting API server can hold a watch sent before it was ready for
// seconds, while one sent a moment later is answered at once.
const (
	watchBound    = time.Second
	watchBoundMax = 8 * time.Second
)

// errUnanswered is a watch call abandoned after its bound.
var errUnanswered = errors.New("the API server did not answer the watch in time")

// watchWithin makes the watch call, abandoning it if it is not answered within bound.
// The watch that is answered runs on until it is stopped.
func watchWithin(ctx context.Context, bound time.Duration, call func(ctx context.Context) (watch.Interface, error)) (watch.Interface, error) {
	cctx, cancel := context.WithCancel(ctx)
	t := time.AfterFunc(bound, cancel)
	w, err := call(cctx)
	if !t.Stop() {
		// The bound passed: the call's context is ending, or has ended.
		if err == nil {
			w.Stop()
		}
		cancel()
		return nil, errUnanswered
	}
	if err != nil {
		cancel()
		return nil, err
	}
	return &cancelOnStop{Interface: w, cancel: cancel}, nil
}

// cancelOnStop is a watch whose call's context ends when it is stopped.
type cancelOnStop struct {
	watch.Interface
	cancel context.CancelFunc
}

func (w *cancelOnStop) Stop() {
	w.Interface.Stop()
	w.cancel()
}
