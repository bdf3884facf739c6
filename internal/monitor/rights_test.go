package monitor

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta/testrestmapper"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/rights"
)

// readRights lets ServiceAccount shop/healer get what may allows, and records what it
// was asked.
type readRights struct {
	may   func(rights.Access) bool
	asked []rights.Access
}

func (r *readRights) SubjectOf(app *v1alpha1.AutonomicApp) (rights.Subject, bool) {
	return (&rights.Checker{}).SubjectOf(app)
}

func (r *readRights) Check(_ context.Context, s rights.Subject, accesses ...rights.Access) error {
	r.asked = append(r.asked, accesses...)
	for _, a := range accesses {
		if !r.may(a) {
			return &rights.Forbidden{Subject: s, Denied: []rights.Access{a}}
		}
	}
	return nil
}

// TestAnObjectSensorReadsOnlyWhatTheAppsServiceAccountMayGet: the object is read only
// after a get of it, in the app's namespace, is authorized as the app's ServiceAccount;
// refused, the sensor's error names the missing permission and nothing is read. An app
// that names no ServiceAccount is read as before, unchecked.
func TestAnObjectSensorReadsOnlyWhatTheAppsServiceAccountMayGet(t *testing.T) {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	sensor := &v1alpha1.Sensor{Name: "backlog", Object: &v1alpha1.ObjectSensor{
		Ref: v1alpha1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Name: "q"}, Expression: "double(object.data.depth)"}}
	key := types.NamespacedName{Namespace: "shop", Name: "shop"}
	cases := []struct {
		name    string
		sa      string
		may     bool
		want    float64
		wantErr string
		asked   []rights.Access
	}{
		{name: "allowed", sa: "healer", may: true, want: 42,
			asked: []rights.Access{{Verb: "get", Resource: "configmaps", Namespace: "shop", Name: "q"}}},
		{name: "refused", sa: "healer",
			wantErr: `reading ConfigMap "q" is refused by the tenant's rights: ServiceAccount shop/healer may not get configmaps in namespace shop ("q")`,
			asked:   []rights.Access{{Verb: "get", Resource: "configmaps", Namespace: "shop", Name: "q"}}},
		{name: "no ServiceAccount: read unchecked", want: 42},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop"}}
			app.Spec.ServiceAccountName = tc.sa
			c := fake.NewClientBuilder().WithScheme(scheme).WithRESTMapper(testrestmapper.TestOnlyStaticRESTMapper(scheme)).
				WithObjects(app, configMap("shop", "q", map[string]string{"depth": "42"})).Build()
			r := &readRights{may: func(rights.Access) bool { return tc.may }}
			p := &Poller{Reader: c, APIReader: c, Rights: r}
			p.init()
			v, _, err := p.newProbe("shop", sensor).read(context.Background(), key, time.Second)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("read = %v, %v; want the error %q", v, err, tc.wantErr)
				}
			} else if err != nil || v != tc.want {
				t.Fatalf("read = %v, %v; want %v", v, err, tc.want)
			}
			if len(r.asked) != len(tc.asked) || (len(tc.asked) > 0 && r.asked[0] != tc.asked[0]) {
				t.Errorf("asked %v; want %v", r.asked, tc.asked)
			}
		})
	}
}
