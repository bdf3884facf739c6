package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// lockedBuffer is a buffer the watch writes to while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWhyWatchRedrawsWhenTheAppChanges runs `why --watch` against an API server
// (envtest) and changes the app's status under it.
func TestWhyWatchRedrawsWhenTheAppChanges(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set: run `make test` or set it to $(bash hack/tools.sh envtest-dir)")
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join("..", "..", "config", "crd", "bases")}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	app := &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "shop"},
		Spec: v1alpha1.AutonomicAppSpec{
			Components: []v1alpha1.Component{{Name: "web", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}}},
			Healing:    v1alpha1.Healing{Symptoms: []v1alpha1.Symptom{{Name: "CrashLooping", Expression: "components.web.crashLoopingPods > 0"}}},
		},
	}
	if err := c.Create(ctx, app); err != nil {
		t.Fatal(err)
	}

	out := &lockedBuffer{}
	ns := "default"
	cf := genericclioptions.NewConfigFlags(false)
	cf.Namespace = &ns
	o := &Options{Streams: genericiooptions.IOStreams{Out: out, ErrOut: &bytes.Buffer{}}, Config: cf, Width: 100, Now: time.Now, scheme: Scheme(), client: c}
	done := make(chan error, 1)
	go func() { done <- o.watchWhy(ctx, "shop") }()
	waitFor := func(what string, ok func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok(out.String()) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 10s; printed:\n%s", what, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("first drawing", func(s string) bool { return strings.Contains(s, "AutonomicApp default/shop") })
	if strings.Contains(out.String(), "---") {
		t.Fatalf("the watch redrew before anything changed:\n%s", out.String())
	}

	since := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	app.Status = v1alpha1.AutonomicAppStatus{Phase: v1alpha1.PhaseRemediating,
		Symptoms: []v1alpha1.SymptomStatus{{Name: "CrashLooping", Active: true, Holding: true, Since: &since}}}
	if err := c.Status().Update(ctx, app); err != nil {
		t.Fatal(err)
	}
	waitFor("redrawing after the status changed", func(s string) bool {
		_, after, ok := strings.Cut(s, "---\n")
		return ok && strings.Contains(after, "CrashLooping: active for") && strings.Contains(after, "Remediating")
	})

	if err := c.Delete(ctx, app); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if exitCode(err) != ExitNotFound {
			t.Errorf("the watch of a deleted app ended with %v (exit %d), want exit %d", err, exitCode(err), ExitNotFound)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not end when the app was deleted")
	}
}
