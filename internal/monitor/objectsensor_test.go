package monitor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

func configMap(ns, name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
}

// testMapper is the REST mapper of a small cluster: ConfigMaps, Secrets and a Queue
// custom resource are namespaced; Nodes, Namespaces and StorageClasses are not.
func testMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	for _, k := range []struct {
		gvk   schema.GroupVersionKind
		scope meta.RESTScope
	}{
		{schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, meta.RESTScopeNamespace},
		{schema.GroupVersionKind{Version: "v1", Kind: "Secret"}, meta.RESTScopeNamespace},
		{schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Queue"}, meta.RESTScopeNamespace},
		{schema.GroupVersionKind{Version: "v1", Kind: "Node"}, meta.RESTScopeRoot},
		{schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, meta.RESTScopeRoot},
		{schema.GroupVersionKind{Group: "storage.k8s.io", Version: "v1", Kind: "StorageClass"}, meta.RESTScopeRoot},
	} {
		m.Add(k.gvk, k.scope)
	}
	return m
}

func TestObjectSensorEvaluatesCELOverTheFetchedObject(t *testing.T) {
	cm := configMap("shop", "q", map[string]string{"depth": "42", "ratio": "0.5", "label": "deep"})
	cm.Labels = map[string]string{"tier": "1"}
	p := &Poller{APIReader: fake.NewClientBuilder().WithObjects(cm).Build(), RESTMapper: testMapper()}
	p.init()
	// Ten nested ranges of ten: ten billion iterations, stopped by the cost limit.
	var huge strings.Builder
	for range 6 {
		huge.WriteString("[0,1,2,3,4,5,6,7,8,9].map(x, ")
	}
	huge.WriteString("1" + strings.Repeat(")", 6))

	cases := []struct {
		name    string
		ref     v1alpha1.ObjectReference
		expr    string
		want    float64
		wantErr string
	}{
		{name: "a string field converted to double", expr: "double(object.data.depth)", want: 42},
		{name: "an int result is a number", expr: "int(object.data.depth) * 2", want: 84},
		{name: "a uint result is a number", expr: "uint(object.data.depth)", want: 42},
		{name: "metadata is readable", expr: "double(object.metadata.labels.tier) + double(object.data.ratio)", want: 1.5},
		{name: "optional fields with a default", expr: "double(object.data.?missing.orValue('7'))", want: 7},
		{name: "a string result is not a number",
			expr:    "object.data.depth",
			wantErr: `ConfigMap "q": the expression returned a string, not a number (convert it with double() or int())`},
		{name: "a bool result is rejected when compiled",
			expr:    "double(object.data.depth) > 1.0",
			wantErr: "the expression returns bool, not a number (convert it with double() or int())"},
		{name: "a missing key is an evaluation error",
			expr:    "double(object.data.nope)",
			wantErr: `ConfigMap "q": evaluating the expression failed: the object has no key "nope" (guard the read with has() or the ? operator)`},
		{name: "a syntax error is reported with its position",
			expr:    "double(object.data.",
			wantErr: "the expression does not compile: ERROR: <input>:1:20: Syntax error: no viable alternative at input '.'\n | double(object.data.\n | ...................^"},
		{name: "NaN is not a number a sensor reads",
			expr:    "double('NaN')",
			wantErr: `ConfigMap "q": the expression returned NaN; a sensor needs a finite number`},
		{name: "the cost limit stops an expensive expression",
			expr:    "double(size(" + huge.String() + "))",
			wantErr: `ConfigMap "q": evaluating the expression failed: the expression exceeded its cost limit of 1000000 (it walks too much of the object)`},
		{name: "a missing object",
			ref:     v1alpha1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Name: "nope"},
			expr:    "double(object.data.depth)",
			wantErr: `ConfigMap "nope" not found in namespace shop`},
		{name: "an invalid apiVersion",
			ref:     v1alpha1.ObjectReference{APIVersion: "a/b/c", Kind: "ConfigMap", Name: "q"},
			expr:    "1.0",
			wantErr: `apiVersion "a/b/c" is not valid: unexpected GroupVersion string: a/b/c`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ref := tc.ref
			if ref.Name == "" {
				ref = v1alpha1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Name: "q"}
			}
			pr := newObjectProbe(p, "shop", &v1alpha1.ObjectSensor{Ref: ref, Expression: tc.expr})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got, _, err := pr.read(ctx, types.NamespacedName{Namespace: "shop", Name: "app"}, 5*time.Second)
			switch {
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
				t.Fatalf("got %v, %v\nwant error %s", got, err, tc.wantErr)
			case tc.wantErr == "" && (err != nil || got != tc.want):
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestObjectSensorReadsDirectlyAndSaysWhenRBACForbidsIt(t *testing.T) {
	gets := 0
	reader := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			gets++
			return apierrors.NewForbidden(schema.GroupResource{Group: "example.com", Resource: "queues"}, key.Name, errors.New("no RBAC policy matched"))
		},
		List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
			t.Error("an object sensor listed objects; it must only get one")
			return nil
		},
	}).Build()
	p := &Poller{APIReader: reader, RESTMapper: testMapper()}
	p.init()
	pr := newObjectProbe(p, "shop", &v1alpha1.ObjectSensor{
		Ref:        v1alpha1.ObjectReference{APIVersion: "example.com/v1", Kind: "Queue", Name: "orders"},
		Expression: "double(object.status.depth)",
	})
	_, _, err := pr.read(context.Background(), types.NamespacedName{}, time.Second)
	want := `reading Queue "orders" is forbidden: the operator's RBAC must allow get on Queue.example.com ` +
		`(queues.example.com "orders" is forbidden: no RBAC policy matched)`
	if err == nil || err.Error() != want || gets != 1 {
		t.Fatalf("got %v after %d gets\nwant %s", err, gets, want)
	}
}

// secretValue looks like what a Secret or a ConfigMap may hold: no message, error, log
// line or status may ever show it.
const secretValue = "aHVudGVyMi1zM2NyM3Q="

// countGets wraps c so that every Get is counted.
func countGets(c client.WithWatch, gets *int) client.WithWatch {
	return interceptor.NewClient(c, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			*gets++
			return c.Get(ctx, key, obj, opts...)
		},
	})
}

func TestObjectSensorNeverReadsASecret(t *testing.T) {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db"},
		Data: map[string][]byte{"password": []byte(secretValue)}}
	gets := 0
	reader := countGets(fake.NewClientBuilder().WithObjects(secret).Build(), &gets)
	for _, tc := range []struct {
		name   string
		ref    v1alpha1.ObjectReference
		mapper meta.RESTMapper
	}{
		{name: "kind Secret", ref: v1alpha1.ObjectReference{APIVersion: "v1", Kind: "Secret", Name: "db"}},
		{name: "kind secret in lower case", ref: v1alpha1.ObjectReference{APIVersion: "v1", Kind: "secret", Name: "db"}},
		{name: "the core group spelt with a slash", ref: v1alpha1.ObjectReference{APIVersion: "/v1", Kind: "Secret", Name: "db"}},
		{name: "a kind the REST mapper maps to the secrets resource",
			ref:    v1alpha1.ObjectReference{APIVersion: "v1", Kind: "Credentials", Name: "db"},
			mapper: secretsAlias{testMapper()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mapper := tc.mapper
			if mapper == nil {
				mapper = testMapper()
			}
			p := &Poller{APIReader: reader, RESTMapper: mapper}
			p.init()
			pr := newObjectProbe(p, "shop", &v1alpha1.ObjectSensor{Ref: tc.ref, Expression: "double(size(object.data.password))"})
			_, _, err := pr.read(context.Background(), types.NamespacedName{Namespace: "shop", Name: "app"}, time.Second)
			if err == nil || !strings.HasPrefix(err.Error(), "object sensors never read Secrets: ") {
				t.Fatalf("got %v, want the Secret refused", err)
			}
			if gets != 0 {
				t.Fatalf("the Secret was read %d times", gets)
			}
		})
	}
}

// secretsAlias maps kind Credentials to the secrets resource, as an aggregated API or a
// future alias could: the resource is what is refused, whatever the kind's name.
type secretsAlias struct{ meta.RESTMapper }

func (m secretsAlias) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	if gk.Kind == "Credentials" {
		return &meta.RESTMapping{Resource: corev1.SchemeGroupVersion.WithResource("secrets"),
			GroupVersionKind: corev1.SchemeGroupVersion.WithKind("Credentials"), Scope: meta.RESTScopeNamespace}, nil
	}
	return m.RESTMapper.RESTMapping(gk, versions...)
}

func TestObjectSensorReadsNamespacedKindsInTheAppsNamespaceAndClusterKindsOnlyWhenAllowed(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"zone": "3"}}}
	other := configMap("other", "q", map[string]string{"depth": "9"})
	// The mapper comes from the API reader, as mgr.GetAPIReader() has one.
	c := fake.NewClientBuilder().WithRESTMapper(testMapper()).WithObjects(node, other).Build()
	read := func(allowed []schema.GroupKind, ref v1alpha1.ObjectReference, expr string) (float64, error) {
		p := &Poller{APIReader: c, ClusterKinds: allowed}
		p.init()
		pr := newObjectProbe(p, "shop", &v1alpha1.ObjectSensor{Ref: ref, Expression: expr})
		v, _, err := pr.read(context.Background(), types.NamespacedName{Namespace: "shop", Name: "app"}, time.Second)
		return v, err
	}
	nodeRef := v1alpha1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: "n1"}
	nodeKind := schema.GroupKind{Kind: "Node"}
	storageClass := schema.GroupKind{Group: "storage.k8s.io", Kind: "StorageClass"}

	if _, err := read(nil, nodeRef, "double(object.metadata.labels.zone)"); err == nil || err.Error() != "Node is cluster-scoped, "+
		"and the cluster admin allows object sensors to read none of the cluster-scoped kinds (the manager's "+
		"--object-sensor-cluster-kinds); read an object of the app's namespace instead" {
		t.Fatalf("a Node read by default: %v", err)
	}
	if _, err := read([]schema.GroupKind{storageClass}, nodeRef, "double(object.metadata.labels.zone)"); err == nil ||
		!strings.Contains(err.Error(), "allows object sensors to read only StorageClass.storage.k8s.io of the cluster-scoped kinds") {
		t.Fatalf("a Node read with only StorageClasses allowed: %v", err)
	}
	if v, err := read([]schema.GroupKind{storageClass, nodeKind}, nodeRef, "double(object.metadata.labels.zone)"); err != nil || v != 3 {
		t.Fatalf("a Node the admin allows: %v, %v; want 3", v, err)
	}
	// There is no namespace in a reference: a ConfigMap of another namespace is out of reach.
	if _, err := read(nil, v1alpha1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Name: "q"}, "double(object.data.depth)"); err == nil ||
		err.Error() != `ConfigMap "q" not found in namespace shop` {
		t.Fatalf("a ConfigMap of namespace other: %v", err)
	}
	if _, err := read(nil, v1alpha1.ObjectReference{APIVersion: "example.com/v1", Kind: "Nope", Name: "q"}, "1.0"); err == nil ||
		err.Error() != `reading Nope "q": the cluster serves no kind Nope in example.com/v1` {
		t.Fatalf("an unknown kind: %v", err)
	}
}

func TestObjectSensorErrorsNeverQuoteTheObject(t *testing.T) {
	cm := configMap("shop", "db", map[string]string{"password": secretValue, "when": secretValue})
	p := &Poller{Readings: NewReadings(), APIReader: fake.NewClientBuilder().WithObjects(cm).Build(), RESTMapper: testMapper()}
	p.init()
	for _, tc := range []struct {
		expr, want string
	}{
		{"object.data.password", "the expression returned a string, not a number"},
		{"object.data", "the expression returned a map, not a number"},
		{"dyn([object.data.password])", "the expression returned a list, not a number"},
		{"dyn(bytes(object.data.password))", "the expression returned bytes, not a number"},
		{"dyn(timestamp('2026-01-01T00:00:00Z'))", "the expression returned a timestamp, not a number"},
		{"int(object.data.password)", "a value of the object could not be converted"},
		{"double(object.data.password)", "a value of the object could not be converted"},
		{"uint(object.data.password)", "a value of the object could not be converted"},
		{"double(duration(object.data.password).getSeconds())", "a value of the object could not be converted"},
		{"double(timestamp(object.data.when).getSeconds())", "a value of the object could not be converted"},
		{"double(object.data[object.data.password])", "the object lacks a key the expression reads"},
		{"double({object.data.password: 1}[object.data.when + 'x'])", "the object lacks a key the expression reads"},
		{"dyn(object.data.password) + 1", "does not take the types it was given"},
		{"object.data.password.matches(object.data.password + '[') ? 1.0 : 0.0", "a regular expression given to matches() is not valid"},
		{"double(size(object.data.password)) / double(int(object.data.password))", "a value of the object could not be converted"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			pr := newObjectProbe(p, "shop", &v1alpha1.ObjectSensor{
				Ref: v1alpha1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Name: "db"}, Expression: tc.expr})
			if f, ok := pr.(failingProbe); ok {
				t.Fatalf("the expression does not compile: %v", f.err)
			}
			_, _, err := pr.read(context.Background(), types.NamespacedName{Namespace: "shop", Name: "app"}, time.Second)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			// As the reconciler writes it to status.sensors[].error.
			app := types.NamespacedName{Namespace: "shop", Name: "app"}
			p.Readings.record(app, "s", 0, nil, err, time.Now())
			status := p.Readings.Get(app)["s"].Status("s")
			for what, text := range map[string]string{"the error": err.Error(), "the status": status.Error} {
				if strings.Contains(text, secretValue) || strings.Contains(text, secretValue[:8]) {
					t.Fatalf("%s quotes the object: %s", what, text)
				}
			}
		})
	}
}
