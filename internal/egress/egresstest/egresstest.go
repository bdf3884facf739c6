// Package egresstest builds the egress policy of tests whose servers listen on loopback:
// the policy the test suites' managers run with (--egress-allow-cidrs=127.0.0.0/8,::1/128).
// Only tests import it.
package egresstest

import (
	"context"
	"net/netip"

	"github.com/homeostat-dev/homeostat/internal/egress"
)

// LoopbackCIDRs is the value of --egress-allow-cidrs that the test suites' managers run
// with, so that their sensors and webhooks reach the tests' servers on loopback.
const LoopbackCIDRs = "127.0.0.0/8,::1/128"

// TB is what AllowLoopback needs of a *testing.T or GinkgoT().
type TB interface {
	Helper()
	Fatal(args ...any)
}

// AllowLoopback is the built-in policy with loopback allowed; mutate changes the rest of
// its config. It knows no host addresses of its own (LocalAddrs is empty), so it reads no
// interface, and it resolves nothing unless mutate names a host.
func AllowLoopback(t TB, mutate ...func(*egress.Config)) *egress.Policy {
	t.Helper()
	allow, err := egress.ParseCIDRs(LoopbackCIDRs)
	if err != nil {
		t.Fatal(err)
	}
	cfg := egress.Config{Allow: allow, LocalAddrs: []netip.Addr{}}
	for _, m := range mutate {
		m(&cfg)
	}
	p, err := egress.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
