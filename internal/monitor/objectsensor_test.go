package monitor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

func TestObjectSensorEvaluatesCELOverTheFetchedObject(t *testing.T) {
	cm := configMap("shop", "q", map[string]string{"depth": "42", "ratio": "0.5", "label": "deep"})
	cm.Labels = map[string]string{"tier": "1"}
	p := &Poller{APIReader: fake.NewClientBuilder().WithObjects(cm).Build()}
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
			wantErr: `ConfigMap "q": the expression returned string "42", not a number (convert it with double() or int())`},
		{name: "a bool result is rejected when compiled",
			expr:    "double(object.data.depth) > 1.0",
			wantErr: "the expression returns bool, not a number (convert it with double() or int())"},
		{name: "a missing key is an evaluation error",
			expr:    "double(object.data.nope)",
			wantErr: `ConfigMap "q": evaluating the expression failed: no such key: nope`},
		{name: "a syntax error is reported with its position",
			expr:    "double(object.data.",
			wantErr: "the expression does not compile: ERROR: <input>:1:20: Syntax error: no viable alternative at input '.'\n | double(object.data.\n | ...................^"},
		{name: "NaN is not a number a sensor reads",
			expr:    "double('NaN')",
			wantErr: `ConfigMap "q": the expression returned NaN; a sensor needs a finite number`},
		{name: "the cost limit stops an expensive expression",
			expr:    "double(size(" + huge.String() + "))",
			wantErr: `ConfigMap "q": evaluating the expression failed: operation cancelled: actual cost limit exceeded`},
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
	p := &Poller{APIReader: reader}
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
