package leader

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func waitFor(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal(what)
}

func holder(t *testing.T, cs *fake.Clientset) string {
	t.Helper()
	l, err := cs.CoordinationV1().Leases("homeostat-system").Get(context.Background(), "lease", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func elector(cs *fake.Clientset, id string, c Config) *Elector {
	c.Namespace, c.Name, c.Identity = "homeostat-system", "lease", id
	return &Elector{Config: c, Gate: NewGate(), Client: cs}
}

// A leader that shuts down releases the Lease only after the work inside its gate has
// left; the standby, watching the Lease, takes it at once rather than at its retry
// period (here far longer than the test waits).
func TestStandbyTakesAReleasedLeaseAtOnce(t *testing.T) {
	cs := fake.NewClientset()
	slow := Config{LeaseDuration: 10 * time.Minute, RenewDeadline: 5 * time.Minute, RetryPeriod: time.Minute}
	a, b := elector(cs, "a", slow), elector(cs, "b", slow)
	ctxA, stopA := context.WithCancel(t.Context())
	doneA := make(chan error, 1)
	go func() { doneA <- a.Start(ctxA) }()
	waitFor(t, "a never led", 10*time.Second, a.Gate.Leading)
	go func() { _ = b.Start(t.Context()) }()
	// b's first try failed (a holds the Lease); its next is a minute away.
	waitFor(t, "b never tried", 10*time.Second, func() bool {
		for _, act := range cs.Actions() {
			if act.GetVerb() == "get" && act.GetResource().Resource == "leases" {
				return true
			}
		}
		return false
	})
	time.Sleep(100 * time.Millisecond)
	if b.Gate.Leading() {
		t.Fatal("b leads while a holds the Lease")
	}

	_, done, ok := a.Gate.Enter(t.Context())
	if !ok {
		t.Fatal("a's gate refused work")
	}
	stopA()
	time.Sleep(100 * time.Millisecond)
	if h := holder(t, cs); h != "a" {
		t.Fatalf("a released the Lease (holder %q) while its work was still inside", h)
	}
	done()
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b did not take the released Lease before its retry period", 20*time.Second, b.Gate.Leading)
	if h := holder(t, cs); h != "b" {
		t.Fatalf("the Lease is held by %q, want b", h)
	}
}

// A leader whose renewals fail past the renew deadline stops acting and stands by; once
// the API server answers again it takes the Lease back at once, in the same process and
// under the same identity, well before the Lease would expire for anyone else.
func TestLeaderThatLostTheLeaseInAnOutageTakesItBack(t *testing.T) {
	cs := fake.NewClientset()
	var down atomic.Bool
	cs.PrependReactor("*", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if down.Load() {
			return true, nil, errors.New("connection refused")
		}
		return false, nil, nil
	})
	a := elector(cs, "a", Config{LeaseDuration: 10 * time.Minute, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond})
	var gained, lost atomic.Int32
	a.Gate.OnGained(func() { gained.Add(1) })
	a.Gate.OnLost(func() { lost.Add(1) })
	go func() { _ = a.Start(t.Context()) }()
	waitFor(t, "a never led", 10*time.Second, a.Gate.Leading)

	down.Store(true)
	waitFor(t, "a kept leading with every renewal failing", 10*time.Second, func() bool { return !a.Gate.Leading() })
	if lost.Load() != 1 {
		t.Fatalf("lost %d times, want 1", lost.Load())
	}
	down.Store(false)
	waitFor(t, "a did not take its Lease back when the API server answered", 10*time.Second, a.Gate.Leading)
	if gained.Load() != 2 {
		t.Fatalf("gained %d times, want 2", gained.Load())
	}
	if h := holder(t, cs); h != "a" {
		t.Fatalf("the Lease is held by %q, want a", h)
	}
}

func TestConfigValidateNamesTheFlags(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}, ""},
		{Config{LeaseDuration: 10 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}, "--leader-elect-lease-duration (10s, recorded in the Lease as 10s) must be longer than --leader-elect-renew-deadline (10s)"},
		// The Lease records whole seconds: 1.5s is 1s to the other replicas.
		{Config{LeaseDuration: 1500 * time.Millisecond, RenewDeadline: 1200 * time.Millisecond, RetryPeriod: 500 * time.Millisecond}, "recorded in the Lease as 1s"},
		{Config{LeaseDuration: 15 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 2 * time.Second}, "--leader-elect-renew-deadline (2s) must be longer than 1.2 × --leader-elect-retry-period (2s)"},
		{Config{LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second}, "must be positive"},
	} {
		err := c.cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.cfg, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: got %v, want an error containing %q", c.cfg, err, c.want)
		}
	}
}

func TestNamespaceFromTheFlagOrTheError(t *testing.T) {
	if ns, err := Namespace("ops"); err != nil || ns != "ops" {
		t.Fatalf("Namespace(ops) = %q, %v", ns, err)
	}
	if _, err := Namespace(""); err == nil || !strings.Contains(err.Error(), "--leader-election-namespace") {
		t.Fatalf("outside a pod, Namespace(\"\") = %v; want an error naming the flag", err)
	}
}
