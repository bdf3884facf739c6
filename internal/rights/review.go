package rights

import (
	"container/list"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Defaults of a Reviewer.
const (
	// DefaultCacheTTL is how long an answer is kept: a Role granted or revoked counts
	// after at most this long.
	DefaultCacheTTL = 10 * time.Second
	// DefaultCacheSize bounds how many answers are kept; the oldest go first.
	DefaultCacheSize = 4096
)

// Reviewer is the Authorizer of the API server. It asks with a SubjectAccessReview
// (authorization.k8s.io/v1) for each access, as the ServiceAccount's user and groups,
// so every authorizer of the cluster answers (RBAC, a webhook, Node), and it reads the
// ServiceAccount with a get. Each answer, allowed or refused, is kept for TTL; an error
// is never kept, so the next question asks again. It is safe for concurrent use.
type Reviewer struct {
	// Client creates the SubjectAccessReviews.
	Client client.Writer
	// Reader gets ServiceAccounts. Use a reader that goes to the API server
	// (mgr.GetAPIReader()): a cached one would list and watch every ServiceAccount.
	Reader client.Reader
	// Clock times the answers. Default: the real one.
	Clock clock.PassiveClock
	// TTL is how long an answer is kept. Default DefaultCacheTTL.
	TTL time.Duration
	// Size bounds the answers kept. Default DefaultCacheSize.
	Size int

	mu      sync.Mutex
	entries map[string]*list.Element
	order   *list.List // of *answer, oldest first: with one TTL, also the first to expire
}

// answer is one kept answer.
type answer struct {
	key     string
	yes     bool
	reason  string
	expires time.Time
}

var _ Authorizer = &Reviewer{}

// Exists reports whether the subject's ServiceAccount exists.
func (r *Reviewer) Exists(ctx context.Context, s Subject) (bool, error) {
	key := "serviceaccount\x00" + s.Namespace + "\x00" + s.Name
	if a, ok := r.lookup(key); ok {
		return a.yes, nil
	}
	sa := &corev1.ServiceAccount{}
	err := r.Reader.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Name}, sa)
	switch {
	case apierrors.IsNotFound(err):
		r.keep(key, false, "")
		return false, nil
	case err != nil:
		return false, err
	}
	r.keep(key, true, "")
	return true, nil
}

// Allowed asks the API server whether the subject may make the access.
func (r *Reviewer) Allowed(ctx context.Context, s Subject, a Access) (bool, string, error) {
	key := strings.Join([]string{"access", s.Namespace, s.Name, a.Verb, a.Group, a.Resource, a.Subresource, a.Namespace, a.Name}, "\x00")
	if ans, ok := r.lookup(key); ok {
		return ans.yes, ans.reason, nil
	}
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   s.User(),
		Groups: s.Groups(),
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: a.Namespace, Verb: a.Verb, Group: a.Group, Resource: a.Resource,
			Subresource: a.Subresource, Name: a.Name,
		},
	}}
	if err := r.Client.Create(ctx, review); err != nil {
		return false, "", fmt.Errorf("the SubjectAccessReview failed: %w", err)
	}
	st := review.Status
	if st.EvaluationError != "" && !st.Allowed {
		// An authorizer failed on its way to the answer: the refusal may be its error, not
		// the rules; say so, and do not keep it.
		return false, "", fmt.Errorf("the API server could not evaluate the rules: %s", st.EvaluationError)
	}
	r.keep(key, st.Allowed, st.Reason)
	return st.Allowed, st.Reason, nil
}

func (r *Reviewer) now() time.Time {
	if r.Clock == nil {
		return time.Now()
	}
	return r.Clock.Now()
}

// lookup returns the kept answer for key if it has not expired.
func (r *Reviewer) lookup(key string) (answer, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	el, ok := r.entries[key]
	if !ok {
		return answer{}, false
	}
	a := el.Value.(*answer)
	if !r.now().Before(a.expires) {
		r.order.Remove(el)
		delete(r.entries, key)
		return answer{}, false
	}
	return *a, true
}

// keep stores an answer for TTL, dropping the oldest answers beyond Size.
func (r *Reviewer) keep(key string, yes bool, reason string) {
	ttl := r.TTL
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	size := r.Size
	if size <= 0 {
		size = DefaultCacheSize
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.entries == nil {
		r.entries, r.order = map[string]*list.Element{}, list.New()
	}
	if el, ok := r.entries[key]; ok {
		r.order.Remove(el)
	}
	r.entries[key] = r.order.PushBack(&answer{key: key, yes: yes, reason: reason, expires: r.now().Add(ttl)})
	for r.order.Len() > size {
		oldest := r.order.Front()
		r.order.Remove(oldest)
		delete(r.entries, oldest.Value.(*answer).key)
	}
}

// Len is how many answers are kept, expired or not; for tests and metrics.
func (r *Reviewer) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.order == nil {
		return 0
	}
	return r.order.Len()
}
