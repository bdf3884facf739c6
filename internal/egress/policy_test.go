package egress

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// These tests never dial: they call Check and Control with resolved addresses.

// testConfig is a manager with its metrics on 127.0.0.1:8080, its health probes on every
// address at :8081 and its webhook at :9443, on a host whose pod address is 10.244.1.7,
// with the API server at 10.96.0.1:443 (the kubernetes Service) and 192.0.2.10:6443.
func testConfig() Config {
	return Config{
		APIServers: []string{"https://10.96.0.1:443", "192.0.2.10:6443"},
		Listeners: []Listener{
			{Name: "metrics", Flag: "--metrics-bind-address", Address: "127.0.0.1:8080"},
			{Name: "health probe", Flag: "--health-probe-bind-address", Address: ":8081"},
			{Name: "webhook", Flag: "--webhook-port", Address: ":9443"},
			{Name: "pprof", Flag: "--pprof-bind-address", Address: ""},
		},
		LocalAddrs: []netip.Addr{netip.MustParseAddr("10.244.1.7"), netip.MustParseAddr("fd12::7")},
	}
}

func cidrs(t *testing.T, s string) []netip.Prefix {
	t.Helper()
	p, err := ParseCIDRs(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckRefusesByRuleInOrderWithoutDialing(t *testing.T) {
	const (
		byDefault = "denied by default"
		byDeny    = "--egress-deny-cidrs ("
		byAPI     = "the Kubernetes API server"
		byOwn     = "the manager's own"
	)
	tests := []struct {
		name        string
		addr        string
		allow, deny string
		refused     string // a part of the rule in the error; "" means allowed
	}{
		{name: "the cloud metadata service", addr: "169.254.169.254:80", refused: "link-local address, where cloud metadata services answer (169.254.0.0/16), " + byDefault},
		{name: "the AWS metadata service over IPv6", addr: "[fd00:ec2::254]:80", refused: "a cloud metadata address (fd00:ec2::254/128), " + byDefault},
		{name: "the Alibaba Cloud metadata service", addr: "100.100.100.200:80", refused: "a cloud metadata address (100.100.100.200/32)"},
		{name: "an IPv6 link-local address with a zone", addr: "[fe80::1%eth0]:80", refused: "a link-local address (fe80::/10)"},
		{name: "a private address by default", addr: "10.0.0.1:80"},
		{name: "a private address the admin denies", addr: "10.0.0.1:80", deny: "10.0.0.0/8", refused: byDeny + "10.0.0.0/8)"},
		{name: "a private address the admin allows", addr: "10.0.0.1:80", allow: "10.0.0.0/8"},
		{name: "deny wins over allow", addr: "10.0.0.1:80", allow: "10.0.0.0/8", deny: "10.0.0.1", refused: byDeny + "10.0.0.1/32)"},
		{name: "deny wins over allow on loopback", addr: "127.0.0.1:9090", allow: "127.0.0.0/8", deny: "127.0.0.1/32", refused: byDeny},
		{name: "0.0.0.0", addr: "0.0.0.0:80", refused: "an unspecified address (0.0.0.0/8)"},
		{name: "::", addr: "[::]:80", refused: "the unspecified address (::/128)"},
		{name: "IPv4 multicast", addr: "224.0.0.1:80", refused: "a multicast address (224.0.0.0/4)"},
		{name: "IPv6 multicast", addr: "[ff02::1]:80", refused: "a multicast address (ff00::/8)"},
		{name: "loopback by default", addr: "127.0.0.1:9090", refused: "a loopback address (127.0.0.0/8), " + byDefault},
		{name: "loopback the admin allows", addr: "127.0.0.1:9090", allow: "127.0.0.0/8,::1/128"},
		{name: "IPv6 loopback by default", addr: "[::1]:9090", refused: "the loopback address (::1/128)"},
		{name: "IPv6 loopback the admin allows", addr: "[::1]:9090", allow: "127.0.0.0/8,::1/128"},
		{name: "loopback written as IPv4-mapped IPv6", addr: "[::ffff:127.0.0.1]:9090", refused: "a loopback address (127.0.0.0/8)"},
		{name: "the API server's ClusterIP", addr: "10.96.0.1:443", refused: byAPI},
		{name: "the API server even when its range is allowed", addr: "10.96.0.1:443", allow: "10.0.0.0/8", refused: byAPI},
		{name: "the API server's address as IPv4-mapped IPv6", addr: "[::ffff:192.0.2.10]:6443", refused: byAPI},
		{name: "another port of the API server's address", addr: "10.96.0.1:80"},
		{name: "the metrics port on loopback when loopback is allowed", addr: "127.0.0.1:8080", allow: "127.0.0.0/8,::1/128",
			refused: byOwn + " metrics listener (--metrics-bind-address)"},
		{name: "the metrics port through the unspecified address", addr: "0.0.0.0:8080", allow: "0.0.0.0/8", refused: byOwn + " metrics"},
		{name: "the metrics port on another loopback address it does not listen on", addr: "127.0.0.2:8080", allow: "127.0.0.0/8"},
		{name: "the probe port on any loopback address", addr: "127.0.0.5:8081", allow: "127.0.0.0/8", refused: byOwn + " health probe listener"},
		{name: "the probe port on the pod's own address", addr: "10.244.1.7:8081", refused: byOwn + " health probe listener"},
		{name: "the webhook port on IPv6 loopback", addr: "[::1]:9443", allow: "::1/128", refused: byOwn + " webhook listener (--webhook-port)"},
		{name: "the webhook port on the pod's own IPv6 address", addr: "[fd12::7]:9443", refused: byOwn + " webhook listener"},
		{name: "the probe port of another pod", addr: "10.244.1.8:8081"},
		{name: "a public address", addr: "203.0.113.9:443"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Allow, cfg.Deny = cidrs(t, tt.allow), cidrs(t, tt.deny)
			p, err := New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			addr := netip.MustParseAddrPort(tt.addr)
			err = p.Check(addr)
			if tt.refused == "" {
				if err != nil {
					t.Fatalf("Check(%s) = %v, want allowed", tt.addr, err)
				}
				return
			}
			var re *RefusedError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), tt.refused) {
				t.Fatalf("Check(%s) = %v, want refused with %q", tt.addr, err, tt.refused)
			}
			if re.Addr != addr || !strings.HasPrefix(err.Error(), "the egress policy refused "+addr.String()+": ") {
				t.Errorf("the error %q does not name the address %s first", err, addr)
			}
			// The Control hook decides the same, from the text the dialer gives it.
			if cerr := p.Control("tcp", addr.String(), nil); cerr == nil || cerr.Error() != err.Error() {
				t.Errorf("Control() = %v, want %v", cerr, err)
			}
		})
	}
}

func TestRefusalsNameTheFlagThatWouldAllowThem(t *testing.T) {
	cfg := testConfig()
	cfg.Deny = cidrs(t, "10.0.0.0/8")
	p, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{
		"169.254.169.254:80": "the egress policy refused 169.254.169.254:80: it is a link-local address, where cloud metadata services answer " +
			"(169.254.0.0/16), denied by default; --egress-allow-cidrs=169.254.0.0/16 would allow it",
		"[::1]:80": "the egress policy refused [::1]:80: it is the loopback address (::1/128), denied by default; " +
			"--egress-allow-cidrs=::1/128 would allow it",
		"10.1.2.3:80": "the egress policy refused 10.1.2.3:80: it is in --egress-deny-cidrs (10.0.0.0/8); " +
			"only removing 10.0.0.0/8 from --egress-deny-cidrs allows it",
		"127.0.0.1:8080":  "the egress policy refused 127.0.0.1:8080: it is the manager's own metrics listener (--metrics-bind-address); no flag allows it",
		"192.0.2.10:6443": "the egress policy refused 192.0.2.10:6443: it is the Kubernetes API server; no flag allows it",
	} {
		if err := p.Check(netip.MustParseAddrPort(addr)); err == nil || err.Error() != want {
			t.Errorf("Check(%s) = %v\nwant %s", addr, err, want)
		}
	}
}

func TestControlRefusesWhatIsNotAnAddress(t *testing.T) {
	p := Default()
	for _, a := range []string{"", "localhost:80", "10.0.0.1"} {
		if err := p.Control("tcp", a, nil); err == nil {
			t.Errorf("Control(%q) allowed it", a)
		}
	}
	if err := p.Check(netip.AddrPort{}); err == nil {
		t.Errorf("Check(zero address) allowed it")
	}
}

func TestAPIServerAddressesAreResolvedFromTheRestConfigHost(t *testing.T) {
	tests := []struct {
		host    string
		refused string
		allowed string
	}{
		{host: "https://10.96.0.1", refused: "10.96.0.1:443", allowed: "10.96.0.1:6443"},
		{host: "https://[fd00::1]:6443/prefix", refused: "[fd00::1]:6443", allowed: "[fd00::1]:443"},
		{host: "http://192.0.2.1", refused: "192.0.2.1:80"},
		{host: "192.0.2.1:6443", refused: "192.0.2.1:6443"},
		{host: "https://localhost:6443", refused: "127.0.0.1:6443"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			p, err := New(context.Background(), Config{APIServers: []string{tt.host}, Allow: cidrs(t, "127.0.0.0/8,::1/128"),
				Resolver: pipeResolver(t, nil), LocalAddrs: []netip.Addr{}})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Check(netip.MustParseAddrPort(tt.refused)); err == nil || !strings.Contains(err.Error(), "the Kubernetes API server") {
				t.Errorf("Check(%s) = %v, want the API server refused", tt.refused, err)
			}
			if tt.allowed != "" {
				if err := p.Check(netip.MustParseAddrPort(tt.allowed)); err != nil {
					t.Errorf("Check(%s) = %v, want allowed", tt.allowed, err)
				}
			}
		})
	}
}

func TestParseCIDRs(t *testing.T) {
	got, err := ParseCIDRs(" 127.0.0.0/8, ::1/128,10.1.2.3/8,192.0.2.7,::ffff:10.0.0.0/104,")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "192.0.2.7/32", "10.0.0.0/8"}
	if len(got) != len(want) {
		t.Fatalf("ParseCIDRs() = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("ParseCIDRs()[%d] = %s, want %s", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0.0/8,nope"} {
		if _, err := ParseCIDRs(bad); err == nil {
			t.Errorf("ParseCIDRs(%q) accepted it", bad)
		}
	}
}

func TestNewRefusesBadLimitsAndListeners(t *testing.T) {
	for name, cfg := range map[string]Config{
		"a negative body limit":      {MaxResponseBytes: -1},
		"a negative timeout":         {MaxTimeout: -time.Second},
		"a listener without a port":  {Listeners: []Listener{{Name: "metrics", Flag: "--metrics-bind-address", Address: "127.0.0.1"}}},
		"a listener with a bad port": {Listeners: []Listener{{Name: "metrics", Flag: "--metrics-bind-address", Address: ":http"}}},
	} {
		if _, err := New(context.Background(), cfg); err == nil {
			t.Errorf("%s: New() accepted it", name)
		}
	}
}

func TestCapLimitsATimeoutToTheMaximum(t *testing.T) {
	p, err := New(context.Background(), Config{MaxTimeout: 30 * time.Second, LocalAddrs: []netip.Addr{}})
	if err != nil {
		t.Fatal(err)
	}
	if d, capped := p.Cap(10 * time.Second); d != 10*time.Second || capped {
		t.Errorf("Cap(10s) = %s, %v", d, capped)
	}
	if d, capped := p.Cap(time.Hour); d != 30*time.Second || !capped {
		t.Errorf("Cap(1h) = %s, %v", d, capped)
	}
	if got, want := p.CapNote(time.Hour), "the timeout asked for, 1h0m0s, is capped at 30s by --egress-max-timeout"; got != want {
		t.Errorf("CapNote(1h) = %q, want %q", got, want)
	}
	if got := p.CapNote(time.Second); got != "" {
		t.Errorf("CapNote(1s) = %q, want none", got)
	}
	if d := Default(); d.MaxTimeout() != DefaultMaxTimeout || d.MaxResponseBytes() != DefaultMaxResponseBytes {
		t.Errorf("Default() limits = %s, %d", d.MaxTimeout(), d.MaxResponseBytes())
	}
}
