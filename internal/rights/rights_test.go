package rights

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

var healer = Subject{Namespace: "shop", Name: "healer"}

var evictWeb1 = Access{Verb: "create", Resource: "pods", Subresource: "eviction", Namespace: "shop", Name: "web-1"}

// fakeAPI is an API server that answers SubjectAccessReviews by rules and counts them.
type fakeAPI struct {
	// allow says what the server answers; err fails the review instead.
	allow  func(attrs *authorizationv1.ResourceAttributes) (bool, string)
	err    error
	calls  atomic.Int32
	review *authorizationv1.SubjectAccessReview
}

func (f *fakeAPI) reviewer(t *testing.T, clk *clocktesting.FakeClock, objs ...client.Object) *Reviewer {
	t.Helper()
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			sar, ok := obj.(*authorizationv1.SubjectAccessReview)
			if !ok {
				return c.Create(ctx, obj, opts...)
			}
			f.calls.Add(1)
			f.review = sar.DeepCopy()
			if f.err != nil {
				return f.err
			}
			sar.Status.Allowed, sar.Status.Reason = f.allow(sar.Spec.ResourceAttributes)
			return nil
		},
	}).Build()
	return &Reviewer{Client: c, Reader: c, Clock: clk, TTL: 10 * time.Second, Size: 3}
}

func serviceAccount(ns, name string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

// TestReviewerAsksAsTheServiceAccountAndKeepsTheAnswerForItsTTL: the review names the
// ServiceAccount's user and groups and the access's attributes; a second question within
// the TTL is answered from the cache, one after it asks again, and the cache never holds
// more than its size.
func TestReviewerAsksAsTheServiceAccountAndKeepsTheAnswerForItsTTL(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	api := &fakeAPI{allow: func(a *authorizationv1.ResourceAttributes) (bool, string) {
		return a.Verb == "create", "RBAC: allowed by RoleBinding"
	}}
	r := api.reviewer(t, clk)

	ok, reason, err := r.Allowed(ctx, healer, evictWeb1)
	if err != nil || !ok || reason != "RBAC: allowed by RoleBinding" {
		t.Fatalf("Allowed = %v, %q, %v; want allowed with the server's reason", ok, reason, err)
	}
	spec := api.review.Spec
	if spec.User != "system:serviceaccount:shop:healer" ||
		strings.Join(spec.Groups, ",") != "system:serviceaccounts,system:serviceaccounts:shop,system:authenticated" {
		t.Errorf("the review asked as %q %v; want the ServiceAccount's user and groups", spec.User, spec.Groups)
	}
	if got := *spec.ResourceAttributes; got != (authorizationv1.ResourceAttributes{Namespace: "shop", Verb: "create",
		Resource: "pods", Subresource: "eviction", Name: "web-1"}) {
		t.Errorf("the review asked about %+v", got)
	}

	steps := []struct {
		name      string
		advance   time.Duration
		access    Access
		wantOK    bool
		wantCalls int32
	}{
		{name: "the same question within the TTL is a cache hit", advance: 9 * time.Second, access: evictWeb1, wantOK: true, wantCalls: 1},
		{name: "after the TTL it asks again", advance: 2 * time.Second, access: evictWeb1, wantOK: true, wantCalls: 2},
		{name: "a refusal is asked once", access: Access{Verb: "delete", Resource: "pods", Namespace: "shop"}, wantCalls: 3},
		{name: "and kept like an allowance", access: Access{Verb: "delete", Resource: "pods", Namespace: "shop"}, wantCalls: 3},
		{name: "another name is another question", access: Access{Verb: "create", Resource: "pods", Subresource: "eviction", Namespace: "shop", Name: "web-2"},
			wantOK: true, wantCalls: 4},
		{name: "another subresource is another question", access: Access{Verb: "create", Resource: "pods", Namespace: "shop", Name: "web-1"},
			wantOK: true, wantCalls: 5},
	}
	for _, s := range steps {
		clk.Step(s.advance)
		ok, _, err := r.Allowed(ctx, healer, s.access)
		if err != nil || ok != s.wantOK || api.calls.Load() != s.wantCalls {
			t.Errorf("%s: Allowed = %v, %v after %d reviews; want %v after %d", s.name, ok, err, api.calls.Load(), s.wantOK, s.wantCalls)
		}
	}
	if r.Len() > 3 {
		t.Errorf("the cache holds %d answers; its size is 3", r.Len())
	}
	// The oldest answer was dropped for the newest: the refusal is asked again.
	before := api.calls.Load()
	if _, _, err := r.Allowed(ctx, healer, evictWeb1); err != nil || api.calls.Load() != before+1 {
		t.Errorf("the oldest answer should have been dropped at the cache's size: %d reviews, want %d", api.calls.Load(), before+1)
	}
}

// TestReviewerNeverTakesAnErrorForAnAnswer: a failed review, or one the server could
// not evaluate, is an error and is not kept, so the next question asks again.
func TestReviewerNeverTakesAnErrorForAnAnswer(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(time.Now())
	cases := []struct {
		name    string
		api     *fakeAPI
		wantErr string
	}{
		{name: "the review fails", api: &fakeAPI{err: errors.New("connection refused")}, wantErr: "the SubjectAccessReview failed: connection refused"},
		{name: "the server could not evaluate the rules", api: &fakeAPI{allow: func(*authorizationv1.ResourceAttributes) (bool, string) {
			return false, ""
		}}, wantErr: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.api.reviewer(t, clk)
			if tc.api.err == nil {
				// The server answers with an evaluation error.
				r.Client = evaluationError{r.Client}
				tc.wantErr = `the API server could not evaluate the rules: role.rbac.authorization.k8s.io "healer" not found`
			}
			for range 2 {
				ok, _, err := r.Allowed(ctx, healer, evictWeb1)
				if ok || err == nil || err.Error() != tc.wantErr {
					t.Fatalf("Allowed = %v, %v; want refused with %q", ok, err, tc.wantErr)
				}
			}
			if r.Len() != 0 {
				t.Errorf("an error was kept in the cache")
			}
		})
	}
}

// evaluationError answers every review as RBAC does when a RoleBinding names a Role
// that does not exist.
type evaluationError struct{ client.Writer }

func (e evaluationError) Create(_ context.Context, obj client.Object, _ ...client.CreateOption) error {
	sar := obj.(*authorizationv1.SubjectAccessReview)
	sar.Status = authorizationv1.SubjectAccessReviewStatus{EvaluationError: `role.rbac.authorization.k8s.io "healer" not found`}
	return nil
}

// TestCheckerRefusesWithTheMissingPermissionAndTheRuleThatGrantsIt is the table of what
// a refusal says: each refused permission once, the objects asked about, and where to
// grant it; and of what is refused besides: a ServiceAccount that does not exist, and an
// authorizer that cannot answer (refused, never allowed).
func TestCheckerRefusesWithTheMissingPermissionAndTheRuleThatGrantsIt(t *testing.T) {
	ctx := context.Background()
	nothing := func(*authorizationv1.ResourceAttributes) (bool, string) { return false, "" }
	cases := []struct {
		name     string
		api      *fakeAPI
		noSA     bool
		accesses []Access
		want     string // "" for allowed
	}{
		{name: "allowed", api: &fakeAPI{allow: func(*authorizationv1.ResourceAttributes) (bool, string) { return true, "" }},
			accesses: []Access{evictWeb1}},
		{name: "no access asked: only that the ServiceAccount exists", api: &fakeAPI{allow: nothing}},
		{name: "one refused", api: &fakeAPI{allow: nothing}, accesses: []Access{evictWeb1},
			want: `ServiceAccount shop/healer may not create pods/eviction in namespace shop ("web-1"): ` +
				`grant it in a Role of namespace shop bound to the ServiceAccount, with the rule {apiGroups: [""], resources: ["pods/eviction"], verbs: ["create"]}`},
		{name: "several objects of one permission are named once, up to three", api: &fakeAPI{allow: nothing}, accesses: []Access{
			evictWeb1,
			{Verb: "create", Resource: "pods", Subresource: "eviction", Namespace: "shop", Name: "web-2"},
			{Verb: "create", Resource: "pods", Subresource: "eviction", Namespace: "shop", Name: "web-3"},
			{Verb: "create", Resource: "pods", Subresource: "eviction", Namespace: "shop", Name: "web-4"},
		}, want: `ServiceAccount shop/healer may not create pods/eviction in namespace shop ("web-1", "web-2", "web-3" and 1 more): ` +
			`grant them in a Role of namespace shop bound to the ServiceAccount, with the rule {apiGroups: [""], resources: ["pods/eviction"], verbs: ["create"]}`},
		{name: "only the refused ones, with the server's reason", api: &fakeAPI{allow: func(a *authorizationv1.ResourceAttributes) (bool, string) {
			if a.Resource == "deployments" {
				return true, ""
			}
			return false, "no RBAC policy matched"
		}}, accesses: []Access{
			{Verb: "patch", Group: "apps", Resource: "deployments", Namespace: "shop", Name: "web"},
			{Verb: "get", Group: "apps", Resource: "replicasets", Namespace: "shop", Name: "web-7d9"},
		}, want: `ServiceAccount shop/healer may not get replicasets.apps in namespace shop ("web-7d9") (no RBAC policy matched): ` +
			`grant it in a Role of namespace shop bound to the ServiceAccount, with the rule {apiGroups: ["apps"], resources: ["replicasets"], verbs: ["get"]}`},
		{name: "cluster-wide permissions need a ClusterRole", api: &fakeAPI{allow: nothing}, accesses: []Access{
			{Verb: "patch", Resource: "nodes", Name: "n1"},
			{Verb: "create", Resource: "pods", Subresource: "eviction"},
		}, want: `ServiceAccount shop/healer may not patch nodes cluster-wide ("n1"), nor create pods/eviction cluster-wide: ` +
			`grant them in a ClusterRole bound to the ServiceAccount by a ClusterRoleBinding, with the rules ` +
			`{apiGroups: [""], resources: ["nodes"], verbs: ["patch"]} and {apiGroups: [""], resources: ["pods/eviction"], verbs: ["create"]}`},
		{name: "the ServiceAccount does not exist", api: &fakeAPI{allow: nothing}, noSA: true, accesses: []Access{evictWeb1},
			want: "ServiceAccount shop/healer does not exist, and the app acts with its rights: create it (kubectl create serviceaccount healer -n shop) " +
				"and grant it what the app's actions need, or set spec.serviceAccountName to a ServiceAccount of namespace shop"},
		{name: "an error of the API server refuses", api: &fakeAPI{err: errors.New("the server is currently unable to handle the request")},
			accesses: []Access{evictWeb1},
			want: `Could not check whether ServiceAccount shop/healer may create pods/eviction "web-1" in namespace shop, so it was refused: ` +
				`the SubjectAccessReview failed: the server is currently unable to handle the request`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var objs []client.Object
			if !tc.noSA {
				objs = append(objs, serviceAccount("shop", "healer"))
			}
			c := &Checker{Authorizer: tc.api.reviewer(t, clocktesting.NewFakeClock(time.Now()), objs...)}
			err := c.Check(ctx, healer, tc.accesses...)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check = %v; want allowed", err)
				}
				return
			}
			f, ok := IsForbidden(err)
			if !ok {
				t.Fatalf("Check = %v; want a *Forbidden", err)
			}
			if f.Error() != tc.want {
				t.Errorf("Check says\n  %s\nwant\n  %s", f.Error(), tc.want)
			}
		})
	}
}

// TestCheckerWithoutAnAuthorizerRefuses: an app that names a ServiceAccount on a manager
// that has no authorizer is refused, never let through as the manager.
func TestCheckerWithoutAnAuthorizerRefuses(t *testing.T) {
	var c *Checker
	if err := c.Check(context.Background(), healer, evictWeb1); err == nil {
		t.Fatal("a nil Checker allowed an access")
	}
	if err := (&Checker{}).Check(context.Background(), healer); err == nil {
		t.Fatal("a Checker without an authorizer allowed an access")
	}
}

// TestSubjectOfIsTheAppsServiceAccountElseTheDefault: the field wins, the default stands
// in, and with neither the app acts as the manager (nothing checked).
func TestSubjectOfIsTheAppsServiceAccountElseTheDefault(t *testing.T) {
	app := func(sa string) *v1alpha1.AutonomicApp {
		a := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop"}}
		a.Spec.ServiceAccountName = sa
		return a
	}
	cases := []struct {
		name    string
		checker *Checker
		app     *v1alpha1.AutonomicApp
		want    Subject
		wantOK  bool
	}{
		{name: "neither: acts as the manager", checker: &Checker{}, app: app("")},
		{name: "nil checker, no field", app: app("")},
		{name: "the field", checker: &Checker{}, app: app("healer"), want: healer, wantOK: true},
		{name: "the field on a nil checker", app: app("healer"), want: healer, wantOK: true},
		{name: "the default", checker: &Checker{DefaultServiceAccount: "homeostat"}, app: app(""),
			want: Subject{Namespace: "shop", Name: "homeostat"}, wantOK: true},
		{name: "the field wins over the default", checker: &Checker{DefaultServiceAccount: "homeostat"}, app: app("healer"),
			want: healer, wantOK: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.checker.SubjectOf(tc.app)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("SubjectOf = %v, %v; want %v, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}
